"""``elmoe-dse optimize``: an Optuna multi-objective study per group of a sweep file's space."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elmoe_dse.cli._common import console, guarded, progress_bar

if TYPE_CHECKING:
    from elmoe_dse.explore.optimize import OptimizeOptions, OptimizeResult
    from elmoe_dse.specs.sweep import SweepSpec

EXIT_INTERRUPTED = 130


FileArg = Annotated[Path, typer.Argument(help="sweep file (TOML), e.g. sweeps/paper.toml")]
TrialsOpt = Annotated[
    int | None,
    typer.Option(
        "--trials", "-n", min=1, help="completed trials per study \\[default: the file's]"
    ),
]
StorageOpt = Annotated[
    str | None,
    typer.Option(
        "--storage",
        help="Optuna RDB URL shared by every worker, e.g. "
        "postgresql+psycopg2://user:pw@host/db \\[default: sqlite file OUT/study.db]",
    ),
]
StudyOpt = Annotated[
    str | None,
    typer.Option("--study", help="study name prefix (one study per group) \\[default: name]"),
]
WorkersOpt = Annotated[int, typer.Option("--workers", "-j", min=1, help="local worker processes")]
SeedOpt = Annotated[
    int | None,
    typer.Option("--seed", min=0, max=2**32 - 1, help="sampler seed \\[default: the file's]"),
]
SamplerOpt = Annotated[
    str | None, typer.Option("--sampler", help="tpe or random \\[default: the file's]")
]
OutOpt = Annotated[
    Path | None,
    typer.Option("--out", "-o", help="output folder \\[default: results/<name>/optimize]"),
]
GridOpt = Annotated[
    bool | None,
    typer.Option(
        "--grid/--no-grid",
        help="score the search against the exhaustive grid \\[default: if it has at most "
        "5,000,000 points]",
    ),
]
BatchOpt = Annotated[
    int | None,
    typer.Option(
        "--batch",
        min=1,
        help="trials asked per batch, evaluated in one vectorized call, then told (a study "
        "starts with single trials and grows its batches up to this) \\[default: 16]",
    ),
]
ShowOpt = Annotated[int, typer.Option("--show", min=1, help="Pareto designs printed per group")]


def optimize(
    file: FileArg,
    trials: TrialsOpt = None,
    storage: StorageOpt = None,
    study: StudyOpt = None,
    workers: WorkersOpt = 1,
    seed: SeedOpt = None,
    sampler: SamplerOpt = None,
    out: OutOpt = None,
    grid: GridOpt = None,
    batch: BatchOpt = None,
    show: ShowOpt = 8,
) -> None:
    """Search FILE's space with Optuna (resumable: run the same command again to continue);
    write results.parquet and run.json; print the best designs per group."""
    from elmoe_dse.explore.figure_tables import write_figure_tables
    from elmoe_dse.explore.optimize import resolve_options, save_optimize
    from elmoe_dse.explore.sweep import check_out_dir
    from elmoe_dse.results import staged_run
    from elmoe_dse.specs.sweep import load_sweep

    with guarded():
        spec = load_sweep(file)
        out_dir = out if out is not None else Path("results") / str(spec.name) / "optimize"
        if spec.design is not None:  # Optuna over the hardware knobs (explore/design.py)
            _design(spec, file, out_dir, trials, seed, sampler, grid, show, storage, study, workers)
            return
        options = resolve_options(
            spec,
            out_dir=out_dir,
            trials=trials,
            storage=storage,
            study=study,
            workers=workers,
            seed=seed,
            sampler=sampler,
            batch=batch,
        )
        check_out_dir(out_dir)
        result = _search(spec, options, compare_grid=grid)
        with staged_run(out_dir) as stage:  # the table, run.json and figure tables: one commit
            save_optimize(result, stage.folder, sweep_file=str(file))
            write_figure_tables(stage.folder)
        paths = stage.written
        _render(result, show, paths)


def _design(
    spec: SweepSpec, file: Path, out_dir: Path, trials: int | None, seed: int | None,
    sampler: str | None, grid: bool | None, show: int, storage: str | None, study: str | None,
    workers: int,
) -> None:  # fmt: skip
    """A [design] sweep: in-memory studies over the hardware knobs (cli/design.py)."""
    from elmoe_dse.cli.design import design_optimize
    from elmoe_dse.cli.sweep import render_pareto, written_line
    from elmoe_dse.errors import SpecError
    from elmoe_dse.explore.sweep import check_out_dir

    for flag, value in (("--storage", storage), ("--study", study), ("--workers", workers > 1)):
        if value:
            raise SpecError(
                f"{flag} is not supported with [design] (the design search runs in memory, one "
                "process); remove it",
                path=str(file),
                field="design",
            )
    if sampler is not None and sampler not in ("tpe", "random"):
        raise SpecError(f"--sampler {sampler}: use tpe or random", path=str(file), field="design")
    check_out_dir(out_dir)
    options = {"trials": trials, "seed": seed, "sampler": sampler, "grid": grid}
    design_optimize(
        spec, file, out_dir, options=options, show=show, render=render_pareto,
        written_line=written_line,
    )  # fmt: skip


def _search(
    spec: SweepSpec, options: OptimizeOptions, *, compare_grid: bool | None
) -> OptimizeResult:
    """Announce the studies, run them under a progress bar; exit 130 on Ctrl-C."""
    from rich.markup import escape

    from elmoe_dse.explore.optimize import Interrupted, run_studies, study_plans

    n_plans = len(study_plans(spec, options.study))
    workers = options.workers
    console().print(
        f"[bold]{escape(str(spec.name))}[/bold]: {n_plans} "
        f"{'study' if n_plans == 1 else 'studies'} x {options.trials} trials, "
        f"{workers} worker{'s' if workers > 1 else ''}"
    )
    try:
        with progress_bar("trials") as bar:
            return run_studies(spec, options, compare_grid=compare_grid, progress=bar.update)
    except Interrupted as err:
        typer.echo(f"stopped: {err}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _render(result: OptimizeResult, show: int, paths: list[Path]) -> None:
    """The studies table, the best designs per group and the files written."""
    from rich.markup import escape

    from elmoe_dse.cli.sweep import render_pareto
    from elmoe_dse.explore.sweep import pareto_groups

    spec = result.spec
    render_studies(result)
    render_pareto(
        pareto_groups(result.frame, spec, max_rows=show),
        spec,
        title=f"Best designs found (Pareto-optimal) per {', '.join(spec.group_by) or 'study'}",
    )
    for path in paths:
        console().print(f"wrote {escape(str(path))}", highlight=False)
    console().print(
        f"browse the studies: optuna-dashboard {escape(result.storage_display)} "
        "(pip install optuna-dashboard)",
        highlight=False,
    )


def render_studies(result: OptimizeResult) -> None:
    """Trials, speed and hypervolume per study (as a fraction of the grid's where scored)."""
    from rich.markup import escape
    from rich.table import Table

    from elmoe_dse.explore.optimize import enumerable_note

    con = console()
    summary = result.summary
    search_s = result.timing_s.get("search_s", math.nan)
    con.print(
        f"{summary['complete_trials']:,} completed trials in {len(result.studies)} "
        f"{'study' if len(result.studies) == 1 else 'studies'}; search "
        f"{search_s:.1f} s; storage {escape(result.storage_display)}"
    )
    table = Table(title="Studies (hypervolume normalized by the reference front, ref. point 1.1)")
    for col in (
        "study",
        "trials",
        "feasible",
        "infeasible",
        "distinct",
        "space",
        "hypervolume",
        "grid",
        "fraction of grid",
    ):
        table.add_column(col, justify="left" if col == "study" else "right")
    for s in result.studies:
        table.add_row(
            escape(s["study"]),
            str(s["complete_trials"]),
            str(s["feasible_trials"]),
            str(s["complete_trials"] - s["feasible_trials"]),
            str(s.get("distinct_points", "-")),
            f"{s['space_points']:,}" if "space_points" in s else "-",
            _num(s.get("hypervolume")),
            _num(s.get("grid_hypervolume")),
            _num(s.get("hypervolume_fraction_of_grid")),
        )
    con.print(table)
    note = enumerable_note(result.studies, result.trials_requested)
    if note:
        con.print(escape(note), highlight=False)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"
