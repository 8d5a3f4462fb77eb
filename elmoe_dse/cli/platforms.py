"""``elmoe-dse platforms list|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from elmoe_dse.cli._common import console, guarded, print_json

app = typer.Typer(
    help="Hardware platforms: the shipped specs, or your own TOML.", no_args_is_help=True
)


@app.command("list")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    csv_out: bool = typer.Option(False, "--csv", help="print the table as CSV"),
) -> None:
    """List the shipped platforms."""
    from rich.table import Table

    from elmoe_dse.platforms import load_platform
    from elmoe_dse.specs.platform import list_platforms

    with guarded():
        rows: list[dict[str, Any]] = []
        for name in list_platforms():
            p = load_platform(name)
            rows.append(
                {
                    "name": p.name,
                    "family": p.family,
                    "description": p.description,
                    "tiers": {
                        t: {"capacity_gb": s.capacity_gb, "peak_bw_gb_per_s": s.peak_bw_gb_per_s}
                        for t, s in p.tiers.items()
                    },
                    "peak_tops_w8a8": p.compute.peak_tops.w8a8,
                }
            )
        if json_out:
            print_json(rows)
            return
        if csv_out:
            typer.echo(_list_csv(rows), nl=False)
            return
        table = Table(title="Shipped platforms")
        for col in ("name", "family", "tiers (GB @ GB/s)", "W8A8 TOPS", "description"):
            table.add_column(col)
        for r in rows:
            tiers = ", ".join(
                f"{t} {v['capacity_gb']:g} @ {v['peak_bw_gb_per_s']:g}"
                for t, v in r["tiers"].items()
            )
            table.add_row(
                r["name"], r["family"], tiers, f"{r['peak_tops_w8a8']:g}", r["description"]
            )
        console().print(table)


def _list_csv(rows: list[dict[str, Any]]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["name", "family", "tier", "capacity_gb", "peak_bw_gb_per_s", "peak_tops_w8a8"])
    for r in rows:
        for t, v in r["tiers"].items():
            cap, bw = v["capacity_gb"], v["peak_bw_gb_per_s"]
            w.writerow([r["name"], r["family"], t, cap, bw, r["peak_tops_w8a8"]])
    return buf.getvalue()


@app.command("show")
def show_cmd(
    platform: str = typer.Argument(
        ..., help="a platform name (see 'platforms list') or a TOML path"
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    toml_out: bool = typer.Option(
        False, "--toml", help="print the spec file itself: start your own platform from it"
    ),
    calibration: str = typer.Option(
        "shipped",
        "--calibration",
        help="the calibration whose values 'runs' shows: 'shipped', 'none' or a file",
    ),
) -> None:
    """Show a platform's full spec with the source of every section: each field's value in the
    file, the value that runs (after the calibration, with its source) and its range
    (``--toml``: the file, to copy and edit, e.g.
    ``elmoe-dse platforms show elmoe3d-8g --toml > my.toml``)."""
    from rich.table import Table

    from elmoe_dse.platforms import load_platform

    with guarded():
        p = load_platform(platform)
        if toml_out:
            typer.echo(spec_file(platform).read_text(encoding="utf-8"), nl=False)
            return
        rows, notes = show_rows(platform, calibration)
        if json_out:
            calibrated = {
                r["field"]: {k: r[k] for k in ("file", "runs", "calibration_source")}
                for r in rows
                if r["runs"] != r["file"]
            }
            print_json({**p.model_dump(), "calibrated": calibrated, "notes": notes})
            return
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        table = Table(title=f"{p.name} ({p.family})")
        for col in ("field", "file", "runs", "range", "calibration source"):
            table.add_column(col, overflow="fold", no_wrap=col == "field")
        for r in rows:
            rng = r["range"]
            runs = "" if r["runs"] == r["file"] else str(r["runs"])
            table.add_row(
                r["field"],
                str(r["file"]),
                runs,
                f"[{rng[0]:g}, {rng[1]:g}]" if rng else "",
                (r["calibration_source"] or "").split(";")[0],
            )
        console().print(table)


def show_rows(platform: str, calibration: str) -> tuple[list[dict[str, Any]], list[str]]:
    """Per field of a platform: its value in the file, the value that runs under
    ``calibration`` (by explicit mapping: a shipped name, or a file's opt-in), its range and
    the calibrated value's source; and the calibration notes."""
    from elmoe_dse.calibration import resolve_calibration
    from elmoe_dse.overrides import field_paths
    from elmoe_dse.platforms import load_platform
    from elmoe_dse.scenario import resolve_inputs
    from elmoe_dse.specs.platform import get_field, list_platforms

    p = load_platform(platform)
    cal = resolve_calibration(calibration)
    inputs = resolve_inputs([platform], [], cal)
    runs = inputs.platforms[platform]
    shipped = platform.strip().lower() in list_platforms()
    target = p.name if shipped else p.calibrate_as
    rows: list[dict[str, Any]] = []
    for path in field_paths(p):
        if path.startswith("ranges."):
            continue
        rng = p.ranges.get(path)
        try:
            value: object = get_field(p, path)
            ran: object = get_field(runs, path)
        except ValueError:
            value = ran = path_value(p.model_dump(), path)
        cv = (
            None
            if cal is None or target is None
            else cal.parameters.get(f"platform.{target}.{path}")
        )
        rows.append(
            {
                "field": path,
                "file": value,
                "runs": ran,
                "range": [rng.min, rng.max] if rng else None,
                "calibration_source": cv.source if cv is not None and ran != value else None,
            }
        )
    return rows, list(inputs.notes)


def spec_file(platform: str) -> Path:
    """The TOML file of a shipped platform name, or the path itself."""
    from elmoe_dse.specs._base import DATA_DIR

    shipped = DATA_DIR / "platforms" / f"{platform}.toml"
    return shipped if shipped.is_file() else Path(platform)


def path_value(data: dict[str, object], path: str) -> object:
    node: object = data
    for part in path.split("."):
        node = node[part] if isinstance(node, dict) else node
    return node
