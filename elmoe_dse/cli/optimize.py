"""``elmoe-dse optimize``: an Optuna multi-objective study per group of a sweep file's space."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elmoe_dse.cli._common import console, guarded, progress_bar

if TYPE_CHECKING:
    from elmoe_dse.explore.optimize import OptimizeResult

EXIT_INTERRUPTED = 130


def optimize(
    file: Annotated[Path, typer.Argument(help="sweep file (TOML), e.g. sweeps/paper.toml")],
    trials: Annotated[
        int | None,
        typer.Option(
            "--trials", "-n", min=1, help="completed trials per study [default: the file's]"
        ),
    ] = None,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage",
            help="Optuna RDB URL shared by every worker, e.g. "
            "postgresql+psycopg2://user:pw@host/db [default: sqlite file OUT/study.db]",
        ),
    ] = None,
    study: Annotated[
        str | None,
        typer.Option("--study", help="study name prefix (one study per group) [default: name]"),
    ] = None,
    workers: Annotated[
        int, typer.Option("--workers", "-j", min=1, help="local worker processes")
    ] = 1,
    seed: Annotated[
        int | None, typer.Option("--seed", help="sampler seed [default: the file's]")
    ] = None,
    sampler: Annotated[
        str | None, typer.Option("--sampler", help="tpe or random [default: the file's]")
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="output folder [default: results/<name>/optimize]"),
    ] = None,
    grid: Annotated[
        bool | None,
        typer.Option(
            "--grid/--no-grid",
            help="score the search against the exhaustive grid [default: if it has at most "
            "5,000,000 points]",
        ),
    ] = None,
    show: Annotated[
        int, typer.Option("--show", min=1, help="Pareto designs printed per group")
    ] = 8,
) -> None:
    """Search FILE's space with Optuna (resumable: run the same command again to continue);
    write results.parquet and run.json; print the best designs per group."""
    from rich.markup import escape

    from elmoe_dse.cli.sweep import render_pareto
    from elmoe_dse.explore.optimize import (
        Interrupted,
        OptimizeError,
        run_optimize,
        save_optimize,
        study_plans,
    )
    from elmoe_dse.explore.sweep import check_out_dir, pareto_groups
    from elmoe_dse.specs.sweep import load_sweep

    with guarded():
        if sampler is not None and sampler not in ("tpe", "random"):
            raise OptimizeError(f"--sampler {sampler}: use tpe or random")
        spec = load_sweep(file)
        out_dir = out if out is not None else Path("results") / str(spec.name) / "optimize"
        check_out_dir(out_dir)
        n = trials if trials is not None else spec.optimize.trials
        plans = study_plans(spec, study or str(spec.name))
        con = console()
        con.print(
            f"[bold]{escape(str(spec.name))}[/bold]: {len(plans)} "
            f"{'study' if len(plans) == 1 else 'studies'} x {n} trials, "
            f"{workers} worker{'s' if workers > 1 else ''}"
        )
        try:
            with progress_bar("trials") as bar:
                result = run_optimize(
                    spec,
                    out_dir=out_dir,
                    trials=n,
                    storage=storage,
                    study=study,
                    workers=workers,
                    seed=seed,
                    sampler=sampler,
                    compare_grid=grid,
                    progress=bar.update,
                )
        except Interrupted as err:
            typer.echo(f"stopped: {err}", err=True)
            raise typer.Exit(EXIT_INTERRUPTED) from None
        paths = save_optimize(result, out_dir, sweep_file=str(file))
        render_studies(result)
        render_pareto(
            pareto_groups(result.frame, spec, max_rows=show),
            spec,
            title=f"Best designs found (Pareto-optimal) per {', '.join(spec.group_by) or 'study'}",
        )
        for path in paths:
            con.print(f"wrote {escape(str(path))}", highlight=False)


def render_studies(result: OptimizeResult) -> None:
    """Trials, speed and hypervolume per study (as a fraction of the grid's where scored)."""
    from rich.markup import escape
    from rich.table import Table

    con = console()
    summary = result.summary
    search_s = result.timing_s.get("search_s", math.nan)
    con.print(
        f"{summary['complete_trials']:,} completed trials in {len(result.studies)} "
        f"{'study' if len(result.studies) == 1 else 'studies'}; search "
        f"{search_s:.1f} s; storage {escape(result.storage_display)}"
    )
    table = Table(title="Studies (hypervolume normalized by the reference front, ref. point 1.1)")
    for col in ("study", "trials", "feasible", "hypervolume", "grid", "fraction of grid"):
        table.add_column(col, justify="left" if col == "study" else "right")
    for s in result.studies:
        table.add_row(
            escape(s["study"]),
            str(s["complete_trials"]),
            str(s["feasible_trials"]),
            _num(s.get("hypervolume")),
            _num(s.get("grid_hypervolume")),
            _num(s.get("hypervolume_fraction_of_grid")),
        )
    con.print(table)


def _num(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4f}"
