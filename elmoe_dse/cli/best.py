"""``elmoe-dse best``: the best (for instance the cheapest) feasible design per group that meets
conditions, from a sweep or optimize results folder."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from elmoe_dse.cli._common import console, guarded, print_json

if TYPE_CHECKING:
    import pandas as pd

#: Rows printed before "N more".
SHOW_ROWS = 40


def best(
    directory: Annotated[
        Path, typer.Argument(help="a sweep or optimize output folder (holds results.parquet)")
    ],
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            "-w",
            help="condition COLUMN OP VALUE (OP: >= <= == != > <); repeat, or join with 'and'",
        ),
    ] = None,
    minimize: Annotated[
        str | None, typer.Option("--minimize", help="column to minimize, e.g. knob.hb_capacity_gb")
    ] = None,
    maximize: Annotated[
        str | None,
        typer.Option("--maximize", help="column to maximize, e.g. metric.throughput_tok_per_s"),
    ] = None,
    by: Annotated[
        str, typer.Option("--by", help="comma-separated columns: one answer per group")
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="print the answer as JSON")] = False,
) -> None:
    """Answer "which design reaches X at least cost": among the feasible rows of DIR that meet
    every --where condition, the one minimizing (or maximizing) a column, per --by group. Ties go
    to the higher throughput, then the lower energy per token. Short column names work
    (model, batch_size, throughput_tok_per_s)."""
    from elmoe_dse.errors import SpecError
    from elmoe_dse.results import RESULTS_FILE, verify_run

    with guarded():
        if (minimize is None) == (maximize is None):
            raise SpecError("give exactly one of --minimize COLUMN or --maximize COLUMN")
        table = directory / RESULTS_FILE
        if not table.is_file():
            raise SpecError(
                f"no {RESULTS_FILE} here; run `elmoe-dse sweep FILE --out {directory}` first",
                path=str(directory),
            )
        verify_run(directory, required=(RESULTS_FILE,))  # its files belong together
        frame = _answer(table, where or [], minimize, maximize, by)
    if as_json:
        print_json(json.loads(frame.to_json(orient="records")))
        return
    _render(frame)


def _answer(
    table: Path, where: list[str], minimize: str | None, maximize: str | None, by: str
) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from elmoe_dse.errors import SpecError
    from elmoe_dse.explore.query import best_designs, build_query

    try:
        columns = pq.ParquetFile(table).schema_arrow.names
        query = build_query(
            columns,
            where,
            minimize if minimize is not None else str(maximize),
            minimize=minimize is not None,
            by=by.split(","),
        )
        return best_designs(table, query)
    except (pa.ArrowException, OSError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SpecError(
            f"cannot read the results table ({first}); rerun the sweep", path=str(table)
        ) from None


def _render(frame: pd.DataFrame) -> None:
    from rich.table import Table

    from elmoe_dse.explore.query import varying

    con = console()
    if frame.empty:
        con.print("no feasible design meets the conditions")
        return
    cols = varying(frame, list(frame.columns))
    table = Table(title=f"{len(frame)} answer(s)")
    for c in cols:
        table.add_column(c)
    for _, row in frame.head(SHOW_ROWS).iterrows():
        table.add_row(*(_cell(c, row[c]) for c in cols))
    con.print(table)
    same = [c for c in frame.columns if c not in cols and frame[c].notna().all()]
    if same:
        con.print("every answer: " + ", ".join(f"{c} {_cell(c, frame[c].iloc[0])}" for c in same))
    if len(frame) > SHOW_ROWS:
        con.print(f"{len(frame) - SHOW_ROWS} more: use --json")


def _cell(column: str, value: object) -> str:
    from elmoe_dse.render import unit_text

    return unit_text(column, value)
