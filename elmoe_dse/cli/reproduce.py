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
        help="calibration file to apply, 'shipped' (the package's) or 'none' (spec defaults)",
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """The paper's headline numbers regenerated, next to the paper's values and the error."""
    from elmoe_dse.calibration import resolve_calibration
    from elmoe_dse.explore.figure_tables import write_figure_tables
    from elmoe_dse.explore.reproduce import reproduce as run_reproduce
    from elmoe_dse.explore.reproduce import save_reproduce
    from elmoe_dse.results import CELLS_FILE, REPRODUCE_DIR, RUN_FILE, SYSTEMS_CSV_FILE, ensure_dir

    with guarded():
        cal = resolve_calibration(calibration)
        folder = ensure_dir(out / REPRODUCE_DIR)
        result = run_reproduce(cal)
        save_reproduce(result, folder)
        write_figure_tables(folder)
        targets = [t.as_dict() for t in result.targets]
        if json_out:
            print_json({"targets": targets, "out": str(folder)})
            return
        render(targets, result.cells, cal is not None)
        console().print(
            f"per-cell table: {folder / CELLS_FILE}; per-system rows: "
            f"{folder / SYSTEMS_CSV_FILE}; targets: {folder / RUN_FILE}"
        )


def render(targets: list[dict[str, Any]], cells: Any, calibrated: bool) -> None:
    from rich.table import Table

    con = console()
    table = Table(
        title="ELMoE-3D (8 GB) headline numbers: paper vs model "
        f"({'calibrated' if calibrated else 'spec defaults'})"
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
            "fitted" if t["fitted"] else "check",
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
    trials: int = typer.Option(800, "--trials", min=1, help="Optuna trials"),
    seed: int = typer.Option(20260417, "--seed", help="sampler seed"),
    out: Path = typer.Option(  # noqa: B008
        Path("results/calibration.toml"), "--out", help="calibration file to write"
    ),
    date: str = typer.Option("", "--date", help="date to record (default: today)"),
    start: str = typer.Option(
        "", "--start", help="a calibration file to evaluate first (a refit never gets worse)"
    ),
) -> None:
    """Fit the free parameters, inside their ranges, to the paper's four mean targets."""
    from rich.progress import Progress

    from elmoe_dse.calibration import calibration_toml, load_calibration
    from elmoe_dse.explore.calibrate import calibrate as run_calibrate
    from elmoe_dse.results import write_text

    with guarded(), Progress(console=console(), transient=True) as bar:
        task = bar.add_task("calibrating", total=trials)

        def tick(done: int, total: int, loss: float) -> None:
            bar.update(task, completed=done, description=f"calibrating (loss {loss:.4f})")

        first = load_calibration(start) if start else None
        cal = run_calibrate(trials, seed, date=date or None, progress=tick, start=first)
        text = calibration_toml(cal)
        write_text(out, text)
    con = console()
    for name, err in cal.fit_error.items():
        con.print(f"{name}: model {cal.model[name]:.3f}x, error {err:+.1%}")
    con.print(f"wrote {out} (loss {cal.loss:.4g}, seed {seed}, {trials} trials)")
