"""``elmoe-dse validate [FILE]``: the model against measured end-to-end GPU decode points."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from elmoe_dse.cli._common import console, guarded

CSV_NAME = "validate.csv"
PNG_NAME = "validate.png"
JSON_NAME = "validate.json"


def validate(
    file: Path | None = typer.Argument(  # noqa: B008
        None, help="a JSON or CSV table of measured points (default: the shipped public set)"
    ),
    out: Path = typer.Option(  # noqa: B008
        Path("results/validate"),
        "--out",
        help="folder for validate.csv, validate.png and validate.json (the summary)",
    ),
) -> None:
    """Predicted vs measured time per output token, the error per point, median and worst."""
    from rich.table import Table

    from elmoe_dse.explore.validate import HELD_OUT, load_points, summary, validation_table
    from elmoe_dse.plots.validate import write_validate_png

    with guarded():
        table = validation_table(load_points(file))
        out.mkdir(parents=True, exist_ok=True)
        csv = out / CSV_NAME
        table.to_csv(csv, index=False)
        png = write_validate_png(csv, out / PNG_NAME)
        s = summary(table)
        roles = {
            "fit_point_ids": sorted(table.id[table.role != HELD_OUT]),
            "held_out_point_ids": sorted(table.id[table.role == HELD_OUT]),
        }
        (out / JSON_NAME).write_text(json.dumps({**s, **roles}, indent=1) + "\n")
        view = Table(title="model vs measured decode (ms per output token)")
        for col in ("point", "gpu", "engine", "batch", "measured", "predicted", "error", "role"):
            view.add_column(
                col, justify="left" if col in ("point", "gpu", "engine", "role") else "right"
            )
        for r in table.itertuples():
            mark = "" if r.headline else " *"
            view.add_row(
                f"{r.id}{mark}",
                str(r.platform),
                str(r.engine or "-"),
                str(r.batch),
                f"{r.measured_ms_per_token:.2f}",
                f"{r.predicted_ms_per_token:.2f}",
                f"{r.error_frac:+.1%}",
                str(r.role),
            )
        con = console()
        con.print(view)
        con.print(
            f"{int(s['headline_points'])} headline points of {int(s['points'])}: median |error| "
            f"{s['median_abs_error_frac']:.1%}, worst {s['worst_abs_error_frac']:.1%}"
            + (
                ""
                if s["headline_points"] == s["points"]
                else " (* = not in the headline, see its reason in the CSV)"
            )
        )
        con.print(
            f"{int(s['held_out_points'])} held-out headline points (fitted nothing): median "
            f"|error| {s['median_abs_error_held_out_frac']:.1%}, worst "
            f"{s['worst_abs_error_held_out_frac']:.1%} (role 'fit: ...': the point fitted that "
            "term of its preset: kernel_gap_s on batch <= 4, an engine's factors on its points at "
            "batch <= 16)"
        )
        con.print(f"table: {csv}; scatter: {png}; summary: {out / JSON_NAME}")
        if file is None:
            from elmoe_dse.cli.validate_multi import report_multi

            report_multi(con, out)
