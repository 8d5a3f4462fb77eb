"""``elmoe-dse explain``: one design point, operator by operator."""

from __future__ import annotations

from typing import Any

import typer

from elmoe_dse.cli._common import console, guarded, print_json, si


def explain(
    model: str = typer.Option(..., "--model", "-m", help="model id or config.json/TOML path"),
    platform: str = typer.Option(..., "--platform", "-p", help="platform name or TOML path"),
    batch: int = typer.Option(1, "--batch", "-b", help="batch size B (sequences)"),
    context: int = typer.Option(1024, "--context", "-s", help="context length s (tokens)"),
    routing: str = typer.Option(
        "",
        "--routing",
        help="uniform or zipf:A (default: the dataset profile's Zipf skew for this model)",
    ),
    dataset: str = typer.Option(
        "mt-bench",
        "--dataset",
        "-d",
        help="dataset profile (name or TOML path): routing skew, overlap rho, acceptance",
    ),
    calibration: str = typer.Option(
        "shipped",
        "--calibration",
        help="calibration applied to shipped platform and dataset specs: 'shipped', 'none' or a"
        " file (--set still wins)",
    ),
    sets: list[str] = typer.Option(  # noqa: B008
        [], "--set", help="override a knob, model or platform field: KEY=VALUE (repeatable)"
    ),
    policy: str = typer.Option(
        "",
        "--policy",
        help="decoding policy (same as --set policy=NAME; see 'elmoe-dse knobs'): ar, ar-cache,"
        " elastic-sd, eagle-sd, slm-sd, quant-sd, elmoe3d or auto",
    ),
    calibrate_as: str = typer.Option(
        "",
        "--calibrate-as",
        help="give a platform file (a path) the calibration of this shipped platform, as"
        ' calibration = "shipped:NAME" in the file does',
    ),
    json_out: bool = typer.Option(False, "--json", help="print JSON"),
    csv_out: bool = typer.Option(
        False,
        "--csv",
        help="print the operator table (every pass, and the step totals) as CSV; with --vary,"
        " the rows",
    ),
    bands: bool = typer.Option(
        False,
        "--bands",
        help="90 % bands of the totals over the shipped posterior ensemble (with --vary: per row,"
        " at most 1024 rows x draws)",
    ),
    draws: int = typer.Option(64, "--draws", min=1, help="ensemble draws for --bands"),
    vary: list[str] = typer.Option(  # noqa: B008
        [],
        "--vary",
        help="KEY=V1,V2,...: one row of step totals per value instead of the operator table"
        " (KEY as for --set; repeat for the cross product, at most 256 rows)",
    ),
) -> None:
    """Cost of one decode step: time, bound, bytes per tier, ops and energy per operator; with
    --vary, one row of step totals per value (what do I need to reach X?)."""
    with guarded():
        if policy:
            sets = [*sets, f"policy={policy}"]
        refs = (model, platform, dataset, calibration)
        point = dict(batch=batch, context=context, routing=routing, sets=sets)
        output = "json" if json_out else "csv" if csv_out else "table"
        band_draws = draws if bands else 0
        if vary:
            from elmoe_dse.cli.explain_vary import vary_command

            vary_command(refs, point, vary, calibrate_as=calibrate_as or None,
                         band_draws=band_draws, output=output)  # fmt: skip
            return
        _point_command(refs, point, calibrate_as or None, band_draws, output)


def _point_command(
    refs: tuple[str, str, str, str],
    point: dict[str, Any],
    calibrate_as: str | None,
    band_draws: int,
    output: str,
) -> None:
    """One design point: the operator tables and step totals (or JSON, or the operator CSV)."""
    from elmoe_dse.explain import explain_point

    data = explain_point(*refs, calibrate_as=calibrate_as, **point)
    if band_draws:
        model, platform, dataset, _ = refs
        data["bands"] = _bands(model, platform, dataset, data["knobs"], point["sets"], band_draws)
    if output == "json":
        print_json(data)
        return
    warn(data)
    if output == "csv":
        typer.echo(operators_csv(data), nl=False)
        return
    render(data)
    if band_draws:
        render_bands(data["bands"])


def warn(data: dict[str, Any]) -> None:
    """The calibration notes and the knobs that do not act at this point, one line each, on
    stderr."""
    for note in data["notes"]:
        typer.echo(f"note: {note}", err=True)
    for name, why in data["inactive_knobs"].items():
        typer.echo(f"warning: knob {name} {why}", err=True)


def operators_csv(data: dict[str, Any]) -> str:
    """Every operator of every pass (SI units), then one ``step total`` row, as CSV text."""
    import csv
    import io

    tiers = sorted(
        {t for ps in data["passes"] for op in ps["operators"] for t in op["bytes_read_by_tier"]}
    )
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(
        ["pass", "pass_index", "operator", "layers", "unit", "time_s", "bound"]
        + [f"{t}_read_bytes" for t in tiers]
        + ["ops", "energy_j"]
    )
    for ps in data["passes"]:
        for op in ps["operators"]:
            w.writerow(
                [
                    *(ps["kind"], ps["index"], op["name"], op["layers"], op["unit"]),
                    *(op["time_s"], op["bound"]),
                    *[op["bytes_read_by_tier"].get(t, 0.0) for t in tiers],
                    *(op["ops"], op["energy_j"]),
                ]
            )
    m = data["metrics"]
    w.writerow(
        ["step", "", "step total", "", "", m["time_per_step_s"], data["bound"]]
        + [data["bytes_by_tier"].get(t, 0.0) for t in tiers]
        + ["", m["energy_per_step_j"]]
    )
    return buf.getvalue()


def _bands(
    model: str,
    platform: str,
    dataset: str,
    knobs: dict[str, Any],
    sets: list[str],
    draws: int,
) -> dict[str, Any]:
    """Bands over the shipped ensemble's cut posterior at this design point (routing: each
    draw's dataset-profile skew)."""
    from elmoe_dse.calibration import load_ensemble
    from elmoe_dse.explore.ensemble import point_bands

    knob_values = {k: v for k, v in knobs.items() if k != "overlap_frac"}
    point: dict[str, Any] = {"model": model, "platform": platform, "dataset": dataset}
    point |= {"knobs": knob_values, "sets": sets}
    return point_bands(point, load_ensemble().posterior(), draws, seed=20260417)


def render_bands(bands: dict[str, Any]) -> None:
    """The bands of ``explain --bands``."""
    from rich.table import Table

    table = Table(title="90 % bands over the posterior ensemble (p50 \\[p5, p95])")
    table.add_column("metric")
    table.add_column("band", justify="right")
    for name, b in bands.items():
        table.add_row(name, f"{b['p50']:.4g} [{b['p5']:.4g}, {b['p95']:.4g}] (n={b['n']})")
    console().print(table)


def render(data: dict[str, Any]) -> None:
    """Rich tables of the operators of each pass and the totals."""
    from rich.table import Table

    con = console()
    shown = [ps for ps in data["passes"] if ps["kind"] != "draft" or ps["index"] == 0]
    for ps in shown:
        repeat = ""
        if ps["kind"] == "draft":
            n = sum(1 for q in data["passes"] if q["kind"] == "draft")
            repeat = f" (x{n}, one per drafted token)"
        tiers = sorted({t for op in ps["operators"] for t in op["bytes_read_by_tier"]})
        table = Table(
            title=f"{data['model']} on {data['platform']}: {ps['kind']} pass{repeat}, "
            f"{ps['tokens']:g} tokens, {ps['unique_experts_per_layer']:.1f} unique experts/layer "
            f"({ps['resident_experts_per_layer']:.1f} resident)"
        )
        table.add_column("operator", no_wrap=True)
        table.add_column("layers", justify="right")
        table.add_column("unit")
        table.add_column("time", justify="right")
        table.add_column("bound", no_wrap=True)
        for t in tiers:
            table.add_column(f"{t} read", justify="right")
        table.add_column("ops", justify="right")
        table.add_column("energy", justify="right")
        for op in ps["operators"]:
            table.add_row(
                op["name"],
                str(op["layers"]),
                str(op["unit"]),
                si(op["time_s"], "s"),
                op["bound"],
                *[si(op["bytes_read_by_tier"].get(t), "B") for t in tiers],
                si(op["ops"], "op"),
                si(op["energy_j"], "J"),
            )
        table.add_section()
        table.add_row(
            "pass total",
            "",
            "",
            si(ps["time_s"], "s"),
            "",
            *[si(ps["bytes_by_tier"].get(t), "B") for t in tiers],
            "",
            si(ps["energy_j"], "J"),
        )
        con.print(table)
    m = data["metrics"]
    totals = Table(title="Step totals", show_header=False)
    totals.add_column("metric")
    totals.add_column("value", justify="right")
    totals.add_row("time per step", si(m["time_per_step_s"], "s"))
    totals.add_row("tokens per step", f"{m['tokens_per_step']:g}")
    totals.add_row("throughput", f"{m['throughput_tok_per_s']:.4g} tok/s")
    totals.add_row("latency per token", si(m["latency_per_token_s"], "s"))
    totals.add_row("energy per step", si(m["energy_per_step_j"], "J"))
    totals.add_row("energy per token", si(m["energy_per_token_j"], "J"))
    totals.add_row("bound", str(data["bound"]))
    for k, v in data["energy_by_component_j"].items():
        totals.add_row(f"  energy: {k}", si(v, "J"))
    sp = data["speculative"]
    totals.add_row("policy", f"{sp['policy']} (draft: {sp['draft']})")
    if sp["draft_length"]:
        totals.add_row("  draft length gamma", f"{sp['draft_length']:g}")
        totals.add_row("  acceptance alpha", f"{sp['acceptance']:.3f}")
        totals.add_row("  tokens per verify tau", f"{sp['tau']:.3f}")
    c = data["cache"]
    totals.add_row("expert cache", f"{c['policy']}{' (bit-nested)' if c['bit_nested'] else ''}")
    if c["policy"] != "none":
        totals.add_row("  pool experts/layer", f"{c['pool_experts_per_layer']:g}")
        totals.add_row("  hit rate (selections)", f"{c['hit_rate']:.3f}")
    if not data["feasible"]:
        totals.add_row("[red]infeasible[/red]", str(data["infeasible_reason"]))
    con.print(totals)
