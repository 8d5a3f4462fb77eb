"""``elmoe-dse reproduce`` and ``elmoe-dse calibrate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from elmoe_dse.cli._common import console, guarded, print_json


def reproduce(
    out: Path = typer.Option(  # noqa: B008
        Path("results"), "--out", help="output directory (a reproduce/ folder is written inside)"
    ),
    calibration: str = typer.Option(
        "shipped",
        "--calibration",
        help="the fixed draw of the per-cell tables: 'shipped' (the ensemble's posterior median"
        " draw), 'none' (spec defaults), a calibration TOML or an ensemble JSON file",
    ),
    ensemble: str = typer.Option(
        "shipped",
        "--ensemble",
        help="posterior ensemble for the bands: 'shipped', 'none' or a file",
    ),
    assume: list[str] = typer.Option(  # noqa: B008
        [], "--assume", help="structural assumption KEY=VALUE (repeatable; default: defaults)"
    ),
    draws: int = typer.Option(40, "--draws", min=0, help="draws per band (0: no bands)"),
    alt_draws: int = typer.Option(
        10, "--alt-draws", min=1, help="draws per band under each other assumption alternative"
    ),
    seed: int = typer.Option(20260417, "--seed", help="seed of the prior and cut-posterior draws"),
    processes: int = typer.Option(2, "--processes", min=1, help="worker processes for the draws"),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """The paper's headline numbers: the model at one fixed draw, prior and posterior 90 % bands,
    P(within 10 % of the paper | prior), under each structural assumption."""
    import time

    from elmoe_dse.calibration import load_ensemble, resolve_calibration
    from elmoe_dse.explore.alternatives import assumption_table, label, parse_assume
    from elmoe_dse.explore.ensemble import BandSettings
    from elmoe_dse.results import (
        REPRODUCE_DIR,
        ensure_dir,
    )

    with guarded():
        start = time.perf_counter()
        table = assumption_table()
        choice = parse_assume(assume, table)
        cal = resolve_calibration(calibration, label(choice, table))
        ens = (
            None
            if ensemble == "none"
            else load_ensemble(None if ensemble == "shipped" else ensemble)
        )
        folder = ensure_dir(out / REPRODUCE_DIR)
        settings = BandSettings(draws, alt_draws, seed, processes) if draws > 0 else None
        result, bands = run_and_save(folder, cal, choice, table, ens, settings, start)
        show(result, bands, folder, json_out, time.perf_counter() - start)


def run_and_save(
    folder: Path,
    cal: Any,
    choice: dict[str, str],
    table: Any,
    ens: Any,
    settings: Any,
    start: float,
) -> tuple[Any, dict[str, Any] | None]:
    """The fixed-draw reproduction and (with ``settings``) its bands, written to ``folder`` in
    one commit; the fixed draw is evaluated while the worker processes draw the bands."""
    import time

    from elmoe_dse.explore.ensemble import ensemble_bands
    from elmoe_dse.explore.figure_tables import write_figure_tables
    from elmoe_dse.explore.reproduce import reproduce as run_reproduce
    from elmoe_dse.explore.reproduce import save_bands, save_reproduce
    from elmoe_dse.results import staged_run

    point: list[Any] = []

    def fixed_draw() -> None:
        point.append(run_reproduce(cal, choice=choice, table=table))

    bands = None
    with staged_run(folder) as stage:  # tables, bands, run.json, figure tables: one commit
        if settings is not None:
            bands = ensemble_bands(ens, choice, table, settings, fixed_draw)
            bands["elapsed_s"] = time.perf_counter() - start
            save_bands(bands, stage.folder)
        if not point:
            fixed_draw()
        save_reproduce(point[0], stage.folder)
        write_figure_tables(stage.folder)
    return point[0], bands


def show(result: Any, bands: dict[str, Any] | None, folder: Path, json_out: bool, s: float) -> None:
    """Print a reproduction (``--json`` or tables), its edge counts, bands and where it went."""
    from elmoe_dse.explore.reproduce import draft_length_edges
    from elmoe_dse.results import CELLS_FILE, RUN_FILE, SYSTEMS_CSV_FILE

    targets = merged_targets([t.as_dict() for t in result.targets], bands)
    edges = draft_length_edges(result.systems)
    if json_out:
        out = {"targets": targets, "bands": bands, "draft_length_edges": edges}
        print_json({**out, "out": str(folder)})
        return
    render(targets, result.cells, result.calibration is not None)
    console().print(edges_line(edges), soft_wrap=True, highlight=False)
    if bands is not None:
        render_bands(bands)
    console().print(
        f"per-cell table: {folder / CELLS_FILE}; per-system rows: "
        f"{folder / SYSTEMS_CSV_FILE}; targets: {folder / RUN_FILE}; bands: {folder}/bands.json"
        f" ({s:.1f} s)"
    )


def edges_line(edges: dict[str, dict[str, int]]) -> str:
    """One line: per speculating system, its rows whose best draft length is on an edge."""
    parts = [
        f"{system} {e['at_top']} of {e['speculating']} at {e['range_hi']} ({e['at_bottom']} at"
        f" {e['range_lo']})"
        for system, e in edges.items()
    ]
    lo, hi = next(iter(edges.values()))["range_lo"], next(iter(edges.values()))["range_hi"]
    return f"best draft length on the edge of its search range {lo}..{hi}: " + "; ".join(parts)


def merged_targets(
    targets: list[dict[str, Any]], bands: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """The fixed-draw targets with the selected alternative's ``paper``/``prior``/``posterior``
    bands and ``p_within_10pct_prior`` merged in."""
    if bands is None:
        return targets
    sel = bands["alternatives"][bands["selected"]]["targets"]
    return [{**t, **sel[t["name"]]} for t in targets]


def _band_text(b: dict[str, Any] | None) -> str:
    if b is None or b["n"] == 0:
        return "n/a"
    return f"{b['p50']:.2f}x [{b['p5']:.2f}, {b['p95']:.2f}]"


def render_bands(bands: dict[str, Any]) -> None:
    """Per alternative: paper, prior band, posterior band, P(within 10 % | prior); tension."""
    from rich.table import Table

    con = console()
    for lab, alt in bands["alternatives"].items():
        first = next(iter(alt["targets"].values()))
        n_post = first["posterior"]["n"] if first["posterior"] else 0
        table = Table(
            title=f"Bands under assumptions: {lab} (posterior from: {alt['posterior_from']}; "
            f"bands from {first['prior']['n']} prior / {n_post} posterior draws)"
        )
        for col in (
            "target",
            "paper",
            "prior p50 \\[p5, p95]",
            "posterior p50 \\[p5, p95]",
            "prior draws within 10 %",
        ):
            table.add_column(col, justify="left" if col == "target" else "right")
        for name, t in alt["targets"].items():
            table.add_row(
                name,
                f"{t['paper']:.2f}x",
                _band_text(t["prior"]),
                _band_text(t["posterior"]),
                f"{round(t['p_within_10pct_prior'] * t['prior']['n'])} of {t['prior']['n']}",
            )
        con.print(table)
    tt = Table(title="Tension: paper-informed parameters, furthest from their prior first")
    for col in ("parameter", "prior p50", "posterior p50 \\[p5, p95]", "z"):
        tt.add_column(col, justify="left" if col == "parameter" else "right")
    for row in bands["tension"][:12]:
        p = row["posterior"]
        many = f" ({row['members']} moved together)" if row["members"] > 1 else ""
        tt.add_row(
            row["parameter"] + many,
            f"{row['prior_p50']:.4g}",
            f"{p['p50']:.4g} [{p['p5']:.4g}, {p['p95']:.4g}]",
            f"{row['z']:+.2f}",
        )
    con.print(tt)


def render(targets: list[dict[str, Any]], cells: Any, calibrated: bool) -> None:
    from rich.table import Table

    con = console()
    table = Table(
        title="ELMoE-3D (8 GB) headline numbers: paper vs model at one draw "
        f"({'posterior median draw' if calibrated else 'spec defaults'})"
    )
    for col in ("target", "paper", "model (arith. mean/max)", "geo. mean", "rel. error", ""):
        table.add_column(col, justify="left" if col in ("target", "") else "right")
    for t in targets:
        geo = "" if t["model_geomean"] is None else f"{t['model_geomean']:.2f}x"
        err = t["rel_error"]
        style = "green" if abs(err) <= 0.10 else "yellow" if abs(err) <= 0.30 else "red"
        table.add_row(
            t["name"],
            f"{t['paper']:.2f}x",
            f"{t['model']:.2f}x",
            geo,
            f"[{style}]{err:+.1%}[/{style}]",
            "observed" if t["fitted"] else "check",
        )
    con.print(table)
    per_batch = cells.groupby("knob.batch_size")[
        [
            "metric.speedup_vs_xpu",
            "metric.speedup_vs_best_prior",
            "metric.energy_vs_xpu",
            "metric.energy_vs_best_prior",
        ]
    ].mean()
    bt = Table(title="Mean over models and datasets, per batch size")
    for col in (
        "B",
        "speedup vs xPU",
        "speedup vs best prior",
        "energy eff. vs xPU",
        "energy eff. vs best prior",
    ):
        bt.add_column(col, justify="right")
    for b, row in per_batch.iterrows():
        bt.add_row(str(b), *[f"{v:.2f}x" for v in row.to_numpy()])
    con.print(bt)


def calibrate(
    walkers: int = typer.Option(
        16, "--walkers", min=2, help="emcee walkers (at least 2 x dims + 2)"
    ),
    steps: int = typer.Option(120, "--steps", min=2, help="emcee steps per walker"),
    burn_in: int = typer.Option(40, "--burn-in", min=0, help="steps discarded as burn-in"),
    keep: int = typer.Option(256, "--keep", min=1, help="posterior draws kept in the file"),
    seed: int = typer.Option(20260417, "--seed", help="sampler seed"),
    models: list[str] = typer.Option(  # noqa: B008
        [], "--model", help="models of the grid (default: the paper's 4)"
    ),
    informed: list[str] = typer.Option(  # noqa: B008
        [],
        "--informed",
        help="parameter key or pattern the paper informs, one sampled dimension each (default:"
        " the priors flagged paper_informed)",
    ),
    assume: list[str] = typer.Option([], "--assume", help="structural assumption KEY=VALUE"),  # noqa: B008
    processes: int = typer.Option(2, "--processes", min=1, help="worker processes"),
    out: Path = typer.Option(Path("results/ensemble.json"), "--out", help="ensemble file to write"),  # noqa: B008
    append: bool = typer.Option(False, "--append", help="add this posterior to --out's ensemble"),
    date: str = typer.Option("", "--date", help="date to record (default: today)"),
    start_from: str = typer.Option(
        "",
        "--start-from",
        help="start the walkers at draws of this ensemble's posterior of the same parameters"
        " ('shipped' or a file; default: the best prior Latin-hypercube points)",
    ),
) -> None:
    """Sample the posterior of the paper-informed parameters (emcee) given the paper's numbers,
    and write the ensemble file."""
    from rich.progress import Progress

    from elmoe_dse.calibration import load_ensemble
    from elmoe_dse.explore.alternatives import assumption_table, label, parse_assume
    from elmoe_dse.explore.posterior import Settings, ensemble_json, make_problem, warm_start
    from elmoe_dse.explore.posterior import calibrate as run_calibrate
    from elmoe_dse.explore.reproduce import PAPER_MODELS
    from elmoe_dse.results import write_text

    command = " ".join(
        [
            "elmoe-dse calibrate",
            f"--walkers {walkers} --steps {steps} --burn-in {burn_in}",
            f"--keep {keep} --seed {seed}",
            *[f"--model {m}" for m in models],
            *[f"--informed '{k}'" for k in informed],
            *[f"--assume {a}" for a in assume],
            f"--out {out}",
            *(["--append"] if append else []),
            *([f"--start-from {start_from}"] if start_from else []),
        ]
    )
    with guarded(), Progress(console=console(), transient=True) as bar:
        table = assumption_table()
        choice = parse_assume(assume, table)
        problem = make_problem(informed or None, choice, tuple(models) or PAPER_MODELS)
        task = bar.add_task("sampling", total=steps)
        into = load_ensemble(out) if append and out.exists() else None
        start = None
        if start_from:
            previous = load_ensemble(None if start_from == "shipped" else start_from)
            start = warm_start(previous.posterior(label(choice, table)), problem, walkers)
        ens = run_calibrate(
            problem,
            Settings(walkers, steps, min(burn_in, steps - 1), keep, seed, processes, start),
            command=command,
            label=label(choice, table),
            date=date or None,
            into=into,
            progress=lambda done, total: bar.update(task, completed=done),
        )
        write_text(out, ensemble_json(ens))
    post = ens.posterior(label(choice, table))
    console().print(
        f"wrote {out}: {len(post.draws)} draws of {len(post.groups)} dimensions, "
        f"{post.walkers} walkers x {post.steps} steps (burn-in {post.burn_in}), "
        f"acceptance fraction {post.acceptance_fraction:.2f}"
    )
