"""``elmoe-dse report``: DIR/report.md and a self-contained DIR/report.html."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elmoe_dse.cli._common import console, guarded


def report(
    directory: Annotated[
        Path, typer.Argument(help="a sweep, optimize or reproduce output directory")
    ],
    summary: Annotated[
        bool,
        typer.Option(
            "--summary", help="print the headline findings and where to look (a few lines)"
        ),
    ] = False,
) -> None:
    """The findings (headline, the figure that matters most), what was run, every figure with
    its caption, the calibration."""
    from elmoe_dse.report import REPORT_HTML, REPORT_MD, summary_lines, write_report_data

    with guarded():
        written, data = write_report_data(directory)
    if summary:
        for line in summary_lines(data, directory):
            typer.echo(line)
        return
    figures = sum(1 for p in written if p.suffix == ".png")
    console().print(
        f"wrote {directory / REPORT_MD} and {directory / REPORT_HTML} ({figures} figures drawn "
        f"now into {directory / 'plots'}; the others read from there as `plot` wrote them)"
    )
