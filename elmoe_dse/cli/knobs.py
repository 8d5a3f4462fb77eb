"""``elmoe-dse knobs``: every design knob with its unit, range or choices, default and help."""

from __future__ import annotations

import math
from typing import Any

import typer

from elmoe_dse.cli._common import console, guarded, print_json


def knob_rows() -> list[dict[str, Any]]:
    """One record per knob of :data:`elmoe_dse.knobs.KNOB_INFO`, defaults from :class:`Knobs`."""
    from dataclasses import fields

    from elmoe_dse.knobs import KNOB_INFO, Knobs

    defaults = {f.name: getattr(Knobs(), f.name) for f in fields(Knobs)}
    rows: list[dict[str, Any]] = []
    for name, info in KNOB_INFO.items():
        default = defaults.get(name)
        if isinstance(default, float) and math.isnan(default):
            default = "auto"
        rows.append(
            {
                "name": name,
                "unit": info.unit,
                "min": info.lo,
                "max": info.hi,
                "integer": info.integer,
                "choices": list(info.choices),
                "auto": info.auto,
                "default": default,
                "help": info.help,
            }
        )
    return rows


def _allowed(row: dict[str, Any]) -> str:
    if row["choices"]:
        return ", ".join(row["choices"])
    kind = "integer " if row["integer"] else ""
    auto = " or auto" if row["auto"] else ""
    return f"{kind}{row['min']:g} .. {row['max']:g}{auto}"


def knobs(
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    csv_out: bool = typer.Option(False, "--csv", help="print the table as CSV"),
) -> None:
    """List every knob `--set`, sweep files and `optimize` accept: unit, range or choices,
    default and meaning."""
    from rich.table import Table

    with guarded():
        rows = knob_rows()
    if json_out:
        print_json(rows)
        return
    if csv_out:
        import csv
        import io

        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["knob", "unit", "allowed", "default", "meaning"])
        for r in rows:
            w.writerow([r["name"], r["unit"], _allowed(r), r["default"], r["help"]])
        typer.echo(buf.getvalue(), nl=False)
        return
    table = Table(title="Knobs (--set KEY=VALUE, \\[knobs] in sweep files)")
    for col in ("knob", "unit", "allowed", "default", "meaning"):
        table.add_column(col, overflow="fold")
    for r in rows:
        table.add_row(r["name"], r["unit"], _allowed(r), str(r["default"]), r["help"])
    console().print(table)
    console().print(
        "spec fields (platform, model) are set the same way: see `elmoe-dse platforms show NAME`"
    )
