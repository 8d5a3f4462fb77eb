"""``elmoe-dse plot``: the figures of a sweep, optimize or reproduce output directory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elmoe_dse.cli._common import console, guarded

FAMILIES_HELP = (
    "pareto, speedup, energy, roofline, acceptance, hit_rate, draft_length, hypervolume,"
    " importance, stacks, devices"
)


def plot(
    directory: Annotated[
        Path,
        typer.Argument(
            help="a sweep, optimize or reproduce output directory (figures go to DIR/plots)"
        ),
    ],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="figure format: png, svg or pdf")
    ] = "png",
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only", help=f"draw only these figures (repeat or comma-separate): {FAMILIES_HELP}"
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="processes drawing the figures \\[default: the machine's cores]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Draw every figure the directory supports into DIR/plots, each with a caption.

    The figures are the same with any --workers."""
    from elmoe_dse.plots.figures import plot_directory
    from elmoe_dse.processes import default_workers

    names = [n.strip() for item in only or [] for n in item.split(",") if n.strip()]
    with guarded():
        outcome = plot_directory(
            directory, fmt=fmt.lower(), only=names, workers=workers or default_workers()
        )
    from rich.markup import escape

    con = console()
    for record in outcome.records:  # captions and reasons may hold brackets ("[design]")
        con.print(f"[bold]{escape(record.name)}[/bold]: {escape(record.caption)}")
    for family, reason in outcome.skipped:
        con.print(f"[dim]{escape(family)}: not drawn, {escape(reason)}[/dim]")
    figures = len(outcome.records)
    con.print(
        f"wrote {figures} figure{'s' if figures != 1 else ''} to {escape(str(outcome.folder))}"
    )
