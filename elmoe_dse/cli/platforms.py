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
def list_cmd(json_out: bool = typer.Option(False, "--json", help="print JSON")) -> None:
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


@app.command("show")
def show_cmd(
    platform: str = typer.Argument(
        ..., help="a platform name (see 'platforms list') or a TOML path"
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    toml_out: bool = typer.Option(
        False, "--toml", help="print the spec file itself: start your own platform from it"
    ),
) -> None:
    """Show a platform's full spec with the source of every section (``--toml``: the file, to
    copy and edit, e.g. ``elmoe-dse platforms show elmoe3d-8g --toml > my.toml``)."""
    from rich.table import Table

    from elmoe_dse.overrides import field_paths
    from elmoe_dse.platforms import load_platform
    from elmoe_dse.specs.platform import get_field

    with guarded():
        p = load_platform(platform)
        if toml_out:
            typer.echo(spec_file(platform).read_text(encoding="utf-8"), nl=False)
            return
        if json_out:
            print_json(p.model_dump())
            return
        table = Table(title=f"{p.name} ({p.family})", show_header=False)
        table.add_column("field", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_column("range")
        for path in field_paths(p):
            if path.startswith("ranges."):
                continue
            rng = p.ranges.get(path)
            try:
                value: object = get_field(p, path)
            except ValueError:
                value = path_value(p.model_dump(), path)
            table.add_row(path, str(value), f"[{rng.min:g}, {rng.max:g}]" if rng else "")
        console().print(table)


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
