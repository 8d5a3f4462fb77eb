"""``elmoe-dse sweep FILE`` for a sweep file with ``[design]``: fronts over hardware designs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elmoe_dse.cli._common import console, progress_bar

if TYPE_CHECKING:
    from elmoe_dse.specs.sweep import SweepSpec


def design_sweep(
    spec: SweepSpec,
    file: Path,
    out_dir: Path,
    *,
    show: int,
    render: Callable[..., None],
    written_line: Callable[[list[Path]], str],
    progress_min: int,
) -> None:
    """Evaluate every point, choose the run-time setting per design and condition, aggregate,
    write the design tables and print each group's Pareto-optimal designs (``render``:
    ``sweep``'s Pareto table; ``written_line``: its files line; a progress bar from
    ``progress_min`` points)."""
    from rich.markup import escape

    from elmoe_dse.explore.design import (
        conditions_per_design,
        design_groups,
        run_design,
        save_design,
    )
    from elmoe_dse.explore.grid import expand
    from elmoe_dse.results import staged_run

    grid = expand(spec, path=str(file))
    con = console()
    design = spec.design
    assert design is not None
    con.print(
        f"[bold]{escape(str(spec.name))}[/bold]: {grid.size:,} design points; designs over "
        f"platform x {', '.join(design.hardware)}, each serving {conditions_per_design(spec)} "
        f"conditions ({', '.join(c for c in design.conditions if c not in spec.group_by)}) "
        f"with {', '.join(design.runtime) or 'no run-time knob'} chosen per condition by "
        f"{design.select} ({design.select_direction}), aggregated by {design.aggregate}"
    )
    with staged_run(out_dir) as stage:
        enabled = grid.size >= progress_min
        with progress_bar("evaluating", grid.size, enabled=enabled) as bar:
            run = run_design(spec, progress=bar.advance)
        save_design(run, stage.folder, sweep_file=str(file))
    summary = run.summary
    con.print(
        f"kept {summary['kept_designs']:,} of {summary['designs']:,} designs, "
        f"{summary['pareto_designs']:,} Pareto-optimal; {summary['rejected_points']:,} of "
        f"{summary['grid_points']:,} points dropped; {run.timing_s['total_s']:.1f} s"
    )
    for reason, count in summary["dropped_designs_by_reason"].items():
        con.print(f"  {count:,} designs dropped: {escape(reason)}", highlight=False)
    for reason, count in summary["rejected_by_reason"].items():
        con.print(f"  {count:,} points dropped: {escape(reason)}", highlight=False)
    title = f"Pareto-optimal hardware designs per {', '.join(spec.group_by) or 'sweep'}"
    render(design_groups(run, max_rows=show), spec, title=title)
    con.print(escape(written_line(stage.written)), highlight=False)


def design_optimize(
    spec: SweepSpec,
    file: Path,
    out_dir: Path,
    *,
    options: dict[str, Any],
    show: int,
    render: Callable[..., None],
    written_line: Callable[[list[Path]], str],
) -> None:
    """``optimize`` on a ``[design]`` sweep: an Optuna study over the hardware knobs per group
    (``options``: trials, seed, sampler, grid from the command line; None = the file's), the
    run-time choice per condition exhaustive; scored against the exhaustive design sweep unless
    ``grid`` is False. Writes the design tables like ``sweep`` does."""
    from rich.markup import escape

    from elmoe_dse.explore.design import (
        design_groups,
        hypervolume_fractions,
        optimize_design,
        run_design,
        save_design,
    )
    from elmoe_dse.results import staged_run

    con = console()
    run, studies = optimize_design(
        spec, trials=options["trials"], seed=options["seed"], sampler=options["sampler"] or ""
    )
    fractions = {} if options["grid"] is False else hypervolume_fractions(run, run_design(spec))
    for study in studies:
        label = ", ".join(str(v) for v in study["group"].values()) or "all"
        study["hypervolume_fraction_of_grid"] = fractions.get(label)
        frac = fractions.get(label)
        con.print(
            f"{escape(label)}: {study['designs_evaluated']} of {study['designs_in_space']} designs "
            f"evaluated in {study['trials']} trials"
            + (f"; hypervolume {frac:.3f} of the exhaustive front's" if frac is not None else ""),
            highlight=False,
        )
    with staged_run(out_dir) as stage:
        save_design(run, stage.folder, sweep_file=str(file), command="optimize", studies=studies)
    title = (
        f"Best hardware designs found (Pareto-optimal) per {', '.join(spec.group_by) or 'study'}"
    )
    render(design_groups(run, max_rows=show), spec, title=title)
    con.print(escape(written_line(stage.written)), highlight=False)
