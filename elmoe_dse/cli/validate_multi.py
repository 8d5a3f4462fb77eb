"""The multi-device part of ``elmoe-dse validate``: the shipped ``gpu-multi.json`` points."""

from __future__ import annotations

from pathlib import Path
from typing import Any

CSV_NAME = "validate-multi.csv"


def report_multi(con: Any, out: Path) -> Path:
    """Print predicted vs measured for the shipped multi-device points; write their CSV."""
    from rich.table import Table

    from elmoe_dse.explore.validate_multi import load_multi_points, multi_validation_table

    table = multi_validation_table(load_multi_points())
    csv = out / CSV_NAME
    table.to_csv(csv, index=False)
    view = Table(title="more than one GPU: model vs measured decode (ms per output token)")
    for col in ("point", "devices", "measured", "predicted", "error", "speed-up error"):
        view.add_column(col, justify="left" if col == "point" else "right")
    for r in table.itertuples():
        view.add_row(
            str(r.id),
            str(r.devices),
            f"{r.measured_ms_per_token:.2f}",
            f"{r.predicted_ms_per_token:.2f}",
            f"{r.error_frac:+.1%}",
            f"{r.speedup_error_frac:+.1%}",
        )
    con.print(view)
    err = table["error_frac"].abs()
    speed = table["speedup_error_frac"].abs()
    con.print(
        f"{len(table)} multi-device points: median |error| {err.median():.1%}, worst "
        f"{err.max():.1%}; speed-up over each series' fewest devices: worst {speed.max():.1%}"
    )
    con.print(f"table: {csv}")
    return csv
