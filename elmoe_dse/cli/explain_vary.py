"""``elmoe-dse explain --vary KEY=V1,V2,...``: one row of step totals per value, as a table,
JSON (one object with a ``rows`` list) or CSV."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import typer

from elmoe_dse.cli._common import console, print_json, si

#: The scalar fields of a row, in CSV column order (after the varied keys and the metrics).
ROW_FIELDS = (
    "bound",
    "policy",
    "draft",
    "draft_length",
    "acceptance",
    "tau",
    "cache_policy",
    "pool_experts_per_layer",
    "hit_rate",
    "unique_experts_per_layer",
)
#: The band percentiles CSV writes per banded metric.
BAND_STATS = ("p5", "p50", "p95")


def vary_command(
    refs: tuple[str, str, str, str],
    point: Mapping[str, Any],
    vary: Sequence[str],
    *,
    calibrate_as: str | None,
    band_draws: int,
    output: str,
) -> None:
    """Evaluate the rows (``refs``: model, platform, dataset, calibration; ``point``: batch,
    context, routing, sets) and print them as ``output`` (table, json or csv)."""
    from elmoe_dse.explain_vary import vary_point

    data = vary_point(*refs, vary=vary, calibrate_as=calibrate_as, band_draws=band_draws, **point)
    if output == "json":
        print_json(data)
        return
    for note in data["notes"]:
        typer.echo(f"note: {note}", err=True)
    if output == "csv":
        typer.echo(vary_csv(data), nl=False)
        return
    render_vary(data)


def _csv_key(key: str, taken: set[str]) -> str:
    return f"set.{key}" if key in taken else key


def vary_csv(data: Mapping[str, Any]) -> str:
    """One CSV line per row: the varied keys, ``feasible``, the metrics (SI), :data:`ROW_FIELDS`,
    the inactive knobs, the reason a row does not fit, and any band percentiles."""
    import csv
    import io

    rows = data["rows"]
    metrics = list(next((r["metrics"] for r in rows), {}))
    banded = list(next((r["bands"] for r in rows if r.get("bands")), {}))
    fixed = {"feasible", *metrics, *ROW_FIELDS, "inactive_knobs", "infeasible_reason"}
    keys = [a["key"] for a in data["vary"]]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        [_csv_key(k, fixed) for k in keys]
        + ["feasible", *metrics, *ROW_FIELDS, "inactive_knobs", "infeasible_reason"]
        + [f"{m}_{s}" for m in banded for s in BAND_STATS]
    )
    for r in rows:
        bands = r.get("bands") or {}
        w.writerow(
            [r["values"][k] for k in keys]
            + [r["feasible"], *(r["metrics"][m] for m in metrics)]
            + [r[f] for f in ROW_FIELDS]
            + [",".join(r["inactive_knobs"]), r["infeasible_reason"] or ""]
            + [bands.get(m, {}).get(s, "") for m in banded for s in BAND_STATS]
        )
    return buf.getvalue()


def _band_text(band: Mapping[str, Any] | None) -> str:
    if not band or not band.get("n"):
        return "n/a"
    return f"{band['p50']:.4g} [{band['p5']:.4g}, {band['p95']:.4g}]"


def _decoding(row: Mapping[str, Any]) -> str:
    if row["draft"] == "none":
        return str(row["policy"])
    return f"{row['policy']} g={row['draft_length']:g}"


def _columns(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, Any]]:
    """(header, cell of a feasible row) of the table, dropping columns no row needs."""
    m = "metrics"
    cols: list[tuple[str, Any]] = [
        ("time/step", lambda r: si(r[m]["time_per_step_s"], "s")),
        ("tok/step", lambda r: f"{r[m]['tokens_per_step']:.3g}"),
        ("tok/s", lambda r: f"{r[m]['throughput_tok_per_s']:.4g}"),
        ("J/token", lambda r: si(r[m]["energy_per_token_j"], "J")),
        ("static", lambda r: si(r[m]["static_power_w"], "W")),
        ("bound", lambda r: r["bound"]),
        ("decoding", _decoding),
    ]
    if any(r["acceptance"] is not None for r in rows):
        cols.append(("accept", lambda r: _opt(r["acceptance"], ".3f")))
    cols.append(("unique/layer", lambda r: _opt(r["unique_experts_per_layer"], ".1f")))
    if any(r["hit_rate"] is not None for r in rows):
        cols.append(("pool/layer", lambda r: _opt(r["pool_experts_per_layer"], "g")))
        cols.append(("hit rate", lambda r: _opt(r["hit_rate"], ".3f")))
    if any(r.get("bands") for r in rows):
        cols.append(("tok/s p50 [p5, p95]", lambda r: _band_text(_band(r, "throughput"))))
        cols.append(("J/token p50 [p5, p95]", lambda r: _band_text(_band(r, "energy"))))
    if any(r["inactive_knobs"] for r in rows):
        cols.append(("inactive", lambda r: ", ".join(r["inactive_knobs"])))
    return cols


def _band(row: Mapping[str, Any], metric: str) -> Any:
    name = "throughput_tok_per_s" if metric == "throughput" else "energy_per_token_j"
    return (row.get("bands") or {}).get(name)


def _opt(value: Any, spec: str) -> str:
    return "" if value is None else format(value, spec)


def render_vary(data: Mapping[str, Any]) -> None:
    """A rich table: the varied keys, then the step totals of each row (a row that does not fit
    says why instead)."""
    from rich.table import Table

    rows = data["rows"]
    keys = [a["key"] for a in data["vary"]]
    cols = _columns(rows)
    where = [data["model"], "on", f"{data['platform']},", data["dataset"]]
    if "batch_size" not in keys:
        where[-1] += f", B={data['batch_size']}"
    if "context_len" not in keys:
        where[-1] += f", s={data['context_len']}"
    title = " ".join(where) + ": one row per --vary value (g: draft length)"
    caption = f"--set {' '.join(data['sets'])}" if data["sets"] else None
    table = Table(title=title, caption=caption)
    for k in keys:
        table.add_column(k, justify="right", no_wrap=True)
    for head, _ in cols:
        left = head in ("bound", "decoding", "inactive")
        table.add_column(head, justify="left" if left else "right", no_wrap=head != "inactive")
    misfit = any(not r["feasible"] for r in rows)
    if misfit:
        table.add_column("does not fit")
    for r in rows:
        given = [_given(r["values"][k]) for k in keys]
        cells = [str(cell(r)) if r["feasible"] else "" for _, cell in cols]
        reason = [] if not misfit else [r["infeasible_reason"] or ""]
        table.add_row(*given, *cells, *reason)
    con = console()
    if not con.is_terminal:  # pipes and files: as wide as the table needs
        con.width = max(con.width, 200)
    con.print(table)


def _given(value: Any) -> str:
    if value is None:
        return "auto"
    return f"{value:g}" if isinstance(value, float) else str(value)
