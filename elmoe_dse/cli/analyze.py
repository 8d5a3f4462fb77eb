"""``elmoe-dse analyze``: (re)compute the figure tables of an existing results directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elmoe_dse.cli._common import console, guarded


def analyze(
    directory: Annotated[
        Path,
        typer.Argument(help="a sweep, optimize or reproduce output directory (its run.json)"),
    ],
) -> None:
    """Compute what the figures draw (baselines, rooflines, sensitivities ...) with the specs and
    calibration recorded in DIR/run.json, into figure_*.parquet beside the results (and in
    DIR/reproduce if present). sweep, optimize and reproduce do this themselves; run it for a
    folder written by an older elmoe-dse or after editing a spec the run named."""
    from rich.markup import escape

    from elmoe_dse.explore.figure_tables import analyze_directory

    with guarded():
        written = analyze_directory(directory)
    con = console()
    for path in written:
        con.print(f"wrote {escape(str(path))}", highlight=False)
