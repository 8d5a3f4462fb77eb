"""``elmoe-dse long-context DIR``: the long-context figure, its table and the report section from
a ``sweeps/long_context.toml`` output folder."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from elmoe_dse.cli._common import console, guarded


def long_context(
    directory: Annotated[
        Path, typer.Argument(help="output folder of `elmoe-dse sweep sweeps/long_context.toml`")
    ],
) -> None:
    """Write figure_long_context.parquet, long_context.png and long_context.md into DIR and print
    the section (speedup over xPU 1k -> 128k, the context where it halves)."""
    with guarded():
        from elmoe_dse.errors import ElmoeError

        results = directory / "results.parquet"
        if not results.exists():
            raise ElmoeError(
                f"{results}: not found; run "
                f"`elmoe-dse sweep sweeps/long_context.toml -o {directory}`"
            )
        from elmoe_dse.explore.long_context import write_figure
        from elmoe_dse.report_design import long_context_section

        paths = write_figure(directory)
        text = long_context_section(directory)
        md = directory / "long_context.md"
        md.write_text(text)
        con = console()
        con.print(text, markup=False)
        for path in [*paths, md]:
            con.print(f"wrote {path}", markup=False)
