"""``elmoe-dse sweep``: every design point of a sweep file, Pareto fronts per group."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from elmoe_dse.cli._common import console, guarded, progress_bar, si

if TYPE_CHECKING:
    from elmoe_dse.explore.grid import Grid
    from elmoe_dse.explore.scale import LocalPool
    from elmoe_dse.explore.sweep import ParetoGroup, Runner
    from elmoe_dse.specs.sweep import SweepSpec

#: Grids at least this large get a progress bar.
PROGRESS_MIN_POINTS = 200_000
#: Groups whose Pareto designs are printed (the others: "N more in FILE").
MAX_GROUPS = 20


def sweep(
    file: Annotated[Path, typer.Argument(help="sweep file (TOML), e.g. sweeps/paper.toml")],
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="output folder \\[default: results/<sweep name>]"),
    ] = None,
    show: Annotated[
        int, typer.Option("--show", min=1, help="Pareto designs printed per group")
    ] = 8,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="processes evaluating the grid, 1: this process only \\[default: the cores; "
            "1 for a grid under 131,072 points]",
        ),
    ] = None,
    scheduler: Annotated[
        str | None,
        typer.Option(
            "--scheduler",
            help="run on the Dask cluster of this scheduler, e.g. tcp://HOST:8786 "
            "(see README, Scaling a sweep)",
        ),
    ] = None,
) -> None:
    """Evaluate every design point of FILE; write results.parquet and run.json; print the Pareto
    designs per group. Memory stays bounded whatever the grid size (rows are streamed to disk).
    The output is the same with any --workers or --scheduler."""
    with guarded(), early_pool(workers, scheduler) as started:
        from rich.markup import escape

        from elmoe_dse.explore.grid import expand
        from elmoe_dse.explore.sweep import check_out_dir
        from elmoe_dse.results import staged_run
        from elmoe_dse.specs.sweep import load_sweep

        spec = load_sweep(file)
        out_dir = out if out is not None else Path("results") / str(spec.name)
        grid = expand(spec, path=str(file))
        if spec.design is not None:  # fronts over hardware designs (explore/design.py)
            from elmoe_dse.cli.design import design_sweep

            check_out_dir(out_dir)
            design_sweep(
                spec,
                file,
                out_dir,
                show=show,
                render=render_pareto,
                written_line=written_line,
                progress_min=PROGRESS_MIN_POINTS,
            )
            return
        runner, where = pick_runner(grid, workers, scheduler, started)
        with runner if isinstance(runner, AbstractContextManager) else nullcontext():
            check_out_dir(out_dir)
            console().print(
                f"[bold]{escape(str(spec.name))}[/bold]: {grid.size:,} design points "
                f"({len(grid.combinations)} combinations x {grid.points_per_combination:,} "
                f"knob settings) on {where}"
            )
            with staged_run(out_dir) as stage:  # table, run.json, figure tables: one commit
                result = run_into(stage.folder, spec, file, grid, runner)
        print_run(result, spec, out_dir, stage.written, show)


def run_into(folder: Path, spec: SweepSpec, file: Path, grid: Grid, runner: Runner) -> Any:
    """Stream the sweep into a run's stage ``folder``, its figure tables computed while its
    table is encoded; return the run."""
    from elmoe_dse.explore.figure_tables import write_figure_tables
    from elmoe_dse.explore.sweep import stream_sweep

    def figure_tables(run: Any, record: Mapping[str, Any]) -> None:
        write_figure_tables(folder, fastest=run.fastest, record=record)

    enabled = grid.size >= PROGRESS_MIN_POINTS
    with progress_bar("evaluating", grid.size, enabled=enabled) as bar:
        run, _ = stream_sweep(
            spec,
            folder,
            sweep_file=str(file),
            progress=bar.advance,
            runner=runner,
            alongside=figure_tables,
        )
    return run


@contextmanager
def early_pool(workers: int | None, scheduler: str | None) -> Iterator[LocalPool | None]:
    """With ``--workers K`` (K > 1, no ``--scheduler``), the pool started at once: its
    processes import the evaluator while this one reads the sweep. Shut down on exit unless
    the sweep ran on it (:func:`pick_runner`)."""
    if scheduler is not None or workers is None or workers <= 1:
        yield None
        return
    from elmoe_dse.explore.scale import LocalPool

    with LocalPool(workers).start() as pool:
        yield pool


def pick_runner(
    grid: Grid, workers: int | None, scheduler: str | None, started: LocalPool | None = None
) -> tuple[Runner, str]:
    """What runs the sweep's work units (``--workers``, ``--scheduler``; ``started``: the pool
    :func:`early_pool` started) and where, in words. A cluster is connected to at once, so a
    bad address fails before anything is written."""
    from elmoe_dse.errors import ElmoeError
    from elmoe_dse.explore.scale import DaskCluster, LocalPool, pool_workers

    if scheduler is not None:
        if workers is not None:
            raise ElmoeError(
                "sweep: --workers and --scheduler exclude each other (a cluster's workers are "
                "its 'dask worker' processes); give one"
            )
        return DaskCluster(scheduler), f"the Dask cluster at {scheduler}"
    processes = pool_workers(grid, workers)
    where = f"{processes} worker processes" if processes > 1 else "1 process"
    return (started if started is not None and processes > 1 else LocalPool(processes)), where


def print_run(result: Any, spec: SweepSpec, out_dir: Path, paths: list[Path], show: int) -> None:
    """The end of a sweep's printout: timing, the fronts (at most MAX_GROUPS), the files."""
    from rich.markup import escape

    render_summary(result.summary, result.timing_s)
    render_pareto(result.groups(max_rows=show, max_groups=MAX_GROUPS), spec)
    more = len(result.group_points) - MAX_GROUPS
    con = console()
    if more > 0:
        con.print(
            f"{more:,} more groups in {escape(str(out_dir / 'results.parquet'))} (their "
            f"Pareto designs: rows with meta.pareto; per group counts: "
            f"{escape(str(out_dir / 'run.json'))} 'pareto')",
            highlight=False,
        )
    con.print(escape(written_line(paths)), highlight=False)


def written_line(paths: list[Path]) -> str:
    """One line for the files a run wrote: the record and the table by path, the figure tables
    (``figure_*.parquet``, ``figures.json``) counted."""
    main = [p for p in paths if not p.name.startswith("figure")]
    figures = [p for p in paths if p.name.startswith("figure")]
    main.sort(key=lambda p: p.suffix != ".json")
    text = "wrote " + ", ".join(str(p) for p in main)
    if figures:
        where = figures[0].parent
        text += f" and {len(figures)} figure tables (figure_*.parquet, figures.json) in {where}"
    return text


def render_summary(summary: Mapping[str, Any], timing: Mapping[str, float]) -> None:
    """Kept and rejected points (by reason) and the time taken."""
    from rich.markup import escape
    from rich.table import Table

    con = console()
    rate = timing.get("points_per_s", math.nan)
    con.print(
        f"kept {summary['kept_points']:,} of {summary['grid_points']:,} points, "
        f"{summary['pareto_points']:,} Pareto-optimal; {timing.get('total_s', 0.0):.1f} s "
        f"({rate:,.0f} points/s evaluated)"
    )
    rejected = summary["rejected_by_reason"]
    if rejected:
        table = Table(title="Rejected design points")
        table.add_column("points", justify="right")
        table.add_column("reason")
        for reason, count in rejected.items():
            table.add_row(f"{count:,}", escape(reason))
        con.print(table)


def render_pareto(groups: list[ParetoGroup], spec: SweepSpec, *, title: str = "") -> None:
    """One table: the sampled Pareto designs of each group, groups separated by a rule. Cells
    never wrap (each column is as wide as its widest value); headers wrap between words."""
    from rich.table import Table

    con = console()
    if not groups:
        con.print("[yellow]no design point survived; nothing is Pareto-optimal[/yellow]")
        return
    key_cols = list(groups[0].key)
    objectives = [o.metric for o in spec.objectives]
    # A knob that has the same value in every row shown goes to the caption, not a column.
    same = {
        c: fmt(c, groups[0].rows[0][c])
        for c in groups[0].columns
        if c not in objectives and len({fmt(c, r[c]) for g in groups for r in g.rows}) == 1
    }
    cols = [c for c in groups[0].columns if c not in same]
    arrows = {o.metric: ("↑" if o.direction == "maximize" else "↓") for o in spec.objectives}
    sections = [
        [
            [fmt(c, g.key[c]) if j == 0 else "" for c in key_cols]
            + [fmt(c, row[c]) for c in cols]
            + [str(row["designs"])]
            for j, row in enumerate(g.rows)
        ]
        for g in groups
    ]
    headers = [header(c) for c in key_cols]
    headers += [header(c) + (f" {arrows[c]}" if c in arrows else "") for c in cols]
    headers.append("designs")
    widths = [
        max([len(w) for w in h.split()] + [len(r[i]) for rows in sections for r in rows])
        for i, h in enumerate(headers)
    ]
    shown = sum(len(g.rows) for g in groups)
    distinct = sum(g.distinct for g in groups)
    table = Table(
        title=title or f"Pareto-optimal designs per {', '.join(spec.group_by) or 'sweep'}",
        caption=(
            (
                f"every row: {', '.join(f'{header(c)} {v}' for c, v in same.items())}\n"
                if same
                else ""
            )
            + f"{shown} of {distinct} distinct Pareto points shown, spread along each front "
            "(--show N); designs: Pareto designs with the same objective values"
        ),
    )
    for i, h in enumerate(headers):
        table.add_column(
            h, justify="right", width=widths[i], style="bold" if i < len(key_cols) else None
        )
    for i, rows in enumerate(sections):
        if i:
            table.add_section()
        # One row of multi-line cells per group: the same lines as a row per design (no cell
        # wraps), drawn in a few hundred cells instead of thousands.
        table.add_row(*("\n".join(column) for column in zip(*rows, strict=True)))
    con.print(table)


def label(column: str) -> str:
    """A results column's name without its role prefix."""
    return column.split(".", 1)[1] if "." in column else column


_CELL_UNITS = ("_tok_per_s", "_j", "_s", "_bytes", "_frac", "_usd", "_mm2", "_w")


def header(column: str) -> str:
    """Table header of a results column: words separated by spaces, so rich can wrap them; a
    metric's unit suffix is dropped because its cells carry the unit."""
    name = label(column)
    if column.startswith("metric."):
        for suffix in _CELL_UNITS:
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
    return name.replace("_", " ")


def fmt(column: str, value: Any) -> str:
    """Render a raw SI value for a table cell, by the unit its column name carries."""
    if value is None:
        return "-"
    if isinstance(value, str):
        from rich.markup import escape

        return escape(value)
    v = float(value)
    if math.isnan(v):
        return "auto" if column.startswith("knob.") else "-"
    name = label(column)
    if name.endswith("_tok_per_s"):
        return f"{v:,.4g} tok/s"
    if name.endswith("_j"):
        return si(v, "J")
    if name.endswith("_s"):
        return si(v, "s")
    if name.endswith("_bytes"):
        return si(v, "B")
    if name.endswith("_frac"):
        return f"{v:.3f}"
    if name.endswith("_usd"):
        return f"{v:,.1f} USD"
    if name.endswith("_mm2"):
        return f"{v:,.1f} mm2"
    if name.endswith("_w"):
        return si(v, "W")
    return f"{v:g}"
