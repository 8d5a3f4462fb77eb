"""``elmoe-dse models list|show``."""

from __future__ import annotations

from typing import Any

import typer

from elmoe_dse.cli._common import console, guarded, print_json
from elmoe_dse.render import si

app = typer.Typer(
    help="MoE models: the shipped specs, or any Hugging Face config.json.", no_args_is_help=True
)


@app.command("list")
def list_cmd(
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    csv_out: bool = typer.Option(False, "--csv", help="print the table as CSV"),
) -> None:
    """List the shipped models with their size."""
    from rich.table import Table

    from elmoe_dse.specs.model import list_models, load_model

    with guarded():
        rows: list[dict[str, Any]] = []
        for mid in list_models():
            m = load_model(mid)
            rows.append(
                {
                    "id": m.id,
                    "display_name": m.display_name,
                    "total_params": m.total_params(),
                    "active_params": m.active_params(),
                    "num_experts": m.num_experts,
                    "experts_per_token": m.experts_per_token,
                    "attention": m.attention_kind,
                }
            )
        if json_out:
            print_json(rows)
            return
        if csv_out:
            typer.echo(_list_csv(rows), nl=False)
            return
        table = Table(title="Shipped MoE models")
        for col in ("id", "name", "total", "active", "experts", "top-k", "attention"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                r["id"],
                r["display_name"],
                si(r["total_params"], ""),
                si(r["active_params"], ""),
                str(r["num_experts"]),
                str(r["experts_per_token"]),
                r["attention"],
            )
        console().print(table)


def _list_csv(rows: list[dict[str, Any]]) -> str:
    """The model list as CSV, one row per model, parameter counts in parameters (not G)."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["id"], lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@app.command("show")
def show_cmd(
    model: str = typer.Argument(
        ..., help="a model id (see 'models list') or a config.json/TOML path"
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
) -> None:
    """Show a model's architecture and parameter counts."""
    from rich.table import Table

    from elmoe_dse.specs.model import load_model

    with guarded():
        m = load_model(model)
        data = m.model_dump()
        data.update(
            {
                "total_params": m.total_params(),
                "active_params": m.active_params(),
                "expert_params": m.expert_params(),
                "num_moe_layers": m.num_moe_layers,
                "kv_elements_per_token_per_layer": m.kv_elements_per_token_per_layer(),
            }
        )
        if json_out:
            print_json(data)
            return
        table = Table(title=f"{m.display_name} ({m.id})", show_header=False)
        table.add_column("field")
        table.add_column("value")
        for key, value in data.items():
            shown = (
                si(value, "")
                if key.endswith("_params") and isinstance(value, int | float)
                else str(value)
            )
            table.add_row(key, shown)
        console().print(table)
