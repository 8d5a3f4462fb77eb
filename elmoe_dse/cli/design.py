"""``elmoe-dse sweep FILE`` for a sweep file with ``[design]``: fronts over hardware designs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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
