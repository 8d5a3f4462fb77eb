"""A second stack or a bigger HB? Throughput, energy per token and the communication share of
the step against the number of devices (``sweeps/devices.toml``).

A sweep over the layout knobs (``tp``, ``ep``, ``dp_attention``, ``pp``: the device count is
``tp x dp x pp``, :func:`elmoe_dse.parallel.attention_groups`) and the HB capacity gives two
series per batch size:

- ``n stacks``: ``n`` devices of the sweep's smallest HB, at the fastest feasible layout and
  other knobs (draft length ...) for that device count;
- ``one stack``: one device whose HB is ``n`` times the smallest (the same total HB in one
  package), drawn at ``n`` so the two series meet at one device.

:func:`devices_table` is pure (from the results table); :func:`devices_caption` says where the
stacks win and how much of their step the collectives take; :func:`devices_figure` only draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import (
    DEVICE_LINK_TIME_PER_STEP_S,
    ENERGY_PER_TOKEN_J,
    FEASIBLE,
    THROUGHPUT_TOK_PER_S,
    TIME_PER_STEP_S,
    knob_column,
)
from elmoe_dse.parallel import attention_groups

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

TP, EP, DP, PP = (knob_column(k) for k in ("tp", "ep", "dp_attention", "pp"))
HB = knob_column("hb_capacity_gb")
BATCH_SIZE = knob_column("batch_size")
NEEDS = (TP, EP, HB, BATCH_SIZE, FEASIBLE, THROUGHPUT_TOK_PER_S, ENERGY_PER_TOKEN_J)
COLUMNS = ["series", "devices", "hb_gb", "batch", "layout", "throughput_tok_per_s"]
COLUMNS += ["energy_per_token_j", "comm_frac"]


def devices_of(frame: pd.DataFrame) -> np.ndarray:
    """Devices of each row: tp x dp_attention (auto: ep / tp where ep > tp) x pp."""
    tp, ep = frame[TP].to_numpy(float), frame[EP].to_numpy(float)
    dp = frame[DP].to_numpy(float) if DP in frame else np.full(len(frame), np.nan)
    pp = frame[PP].to_numpy(float) if PP in frame else np.ones(len(frame))
    return np.asarray(tp * attention_groups(tp, ep, dp) * pp)


def _layout(row: Any) -> str:
    parts = [f"{k}{int(row[c])}" for k, c in (("tp", TP), ("ep", EP)) if float(row[c]) > 1]
    return " ".join(parts) or "one device"


def devices_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Fastest feasible design per series, device count (or HB multiple) and batch size."""
    import pandas as pd

    ok = frame[frame[FEASIBLE].astype(bool)].copy()
    ok["devices"] = devices_of(ok)
    ok["comm_frac"] = ok[DEVICE_LINK_TIME_PER_STEP_S] / ok[TIME_PER_STEP_S]
    base = float(ok[HB].min())
    stacks = ok[ok[HB] == base].assign(series="n stacks")
    one = ok[ok["devices"] == 1].assign(series="one stack")
    one["devices"] = one[HB] / base
    both = pd.concat([stacks, one[one["devices"] > 1]])
    keys = ["series", "devices", BATCH_SIZE]
    best = both.loc[both.groupby(keys)[THROUGHPUT_TOK_PER_S].idxmax()].copy()
    best["layout"] = [_layout(r) for _, r in best.iterrows()]
    best["hb_gb"] = best[HB] * np.where(best["series"] == "n stacks", best["devices"], 1.0)
    best["batch"] = best[BATCH_SIZE]
    best = best.rename(
        columns={
            THROUGHPUT_TOK_PER_S: "throughput_tok_per_s",
            ENERGY_PER_TOKEN_J: "energy_per_token_j",
        }
    )
    return best[COLUMNS].sort_values(["series", "batch", "devices"]).reset_index(drop=True)


def devices_comparison(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per multi-device count and batch: n stacks against one stack of the same total HB."""
    one = table[table["series"] == "one stack"].set_index(["devices", "batch"])
    rows = []
    for rec in table[(table["series"] == "n stacks") & (table["devices"] > 1)].to_dict("records"):
        key = (rec["devices"], rec["batch"])
        if key not in one.index:
            continue
        ref = one.loc[key]
        rows.append(
            {
                "devices": rec["devices"],
                "batch": rec["batch"],
                "layout": rec["layout"],
                "speedup": rec["throughput_tok_per_s"] / float(ref["throughput_tok_per_s"]),
                "energy_ratio": rec["energy_per_token_j"] / float(ref["energy_per_token_j"]),
                "comm_frac": rec["comm_frac"],
            }
        )
    return rows


def _span(values: list[float], fmt: str = "x{:.2f}") -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if np.isclose(lo, hi) else f"{fmt.format(lo)}-{fmt.format(hi)}"


def devices_caption(table: pd.DataFrame) -> str:
    """Where n stacks beat one stack of the same total HB, at what energy, and the largest
    communication share of a step."""
    rows = devices_comparison(table)
    if not rows:
        return "no device count has a single-stack counterpart of the same total HB in the sweep"
    base = float(table.loc[table["series"] == "n stacks", "hb_gb"].min())
    parts = []
    for n in sorted({r["devices"] for r in rows}):
        mine = [r for r in rows if r["devices"] == n]
        wins = [r["batch"] for r in mine if r["speedup"] > 1.0]
        verdict = f"beat it at B = {', '.join(f'{b:g}' for b in wins)}" if wins else "never beat it"
        parts.append(
            f"{n:g} x {base:g} GB stacks against 1 x {n * base:g} GB {verdict} (throughput "
            f"{_span([r['speedup'] for r in mine])}, energy per token "
            f"{_span([r['energy_ratio'] for r in mine])}; layouts "
            f"{', '.join(sorted({r['layout'] for r in mine}))})"
        )
    stacks = table[table["series"] == "n stacks"]
    worst = stacks.iloc[int(np.argmax(stacks["comm_frac"].to_numpy(float)))]
    dominated = stacks[stacks["comm_frac"] > 0.5]
    where = (
        "communication takes more than half of the step at "
        + ", ".join(f"{r.devices:g} devices B = {r.batch:g}" for r in dominated.itertuples())
        if len(dominated)
        else "communication never takes half of a step"
    )
    return (
        "; ".join(parts) + f". The collectives take at most {worst['comm_frac']:.0%} of a step "
        f"({worst['devices']:g} devices, B = {worst['batch']:g}, {worst['layout']}): {where}"
    )


def devices_figure(table: pd.DataFrame) -> Figure:
    """Throughput, energy per token and communication share vs devices; colour = batch size,
    solid = n stacks, dashed = one stack with n times the HB."""
    from matplotlib import colormaps

    from elmoe_dse.plots import style

    fig = style.new_figure(12.0, 3.8)
    axes = fig.subplots(1, 3)
    batches = sorted(table["batch"].unique())
    cmap = colormaps["viridis"]
    for i, b in enumerate(batches):
        color = cmap(0.1 + 0.8 * i / max(len(batches) - 1, 1))
        for series, style_kw in (
            ("n stacks", {"linestyle": "-", "marker": "o"}),
            ("one stack", {"linestyle": "--", "marker": "s", "markerfacecolor": "none"}),
        ):
            rows = table[(table["series"] == series) & (table["batch"] == b)]
            if series == "one stack":
                rows = _with_one_device(table, rows, b)
            label = f"B = {b:g}" if series == "n stacks" else None
            kw = {"color": color, "label": label, **style_kw}
            axes[0].plot(rows["devices"], rows["throughput_tok_per_s"], **kw)
            axes[1].plot(rows["devices"], rows["energy_per_token_j"] * 1e3, **kw)
            if series == "n stacks":
                axes[2].plot(rows["devices"], rows["comm_frac"] * 100.0, **kw)
    _decorate(axes, table)
    return fig


def _with_one_device(table: pd.DataFrame, rows: pd.DataFrame, batch: float) -> pd.DataFrame:
    """The one-stack series starts at the one-device point of the n-stacks series."""
    import pandas as pd

    start = table[(table["series"] == "n stacks") & (table["devices"] == 1)]
    return pd.concat([start[start["batch"] == batch], rows]).sort_values("devices")


def _decorate(axes: Any, table: pd.DataFrame) -> None:
    from matplotlib.lines import Line2D

    from elmoe_dse.plots import style

    base = float(table.loc[table["series"] == "n stacks", "hb_gb"].min())
    counts = sorted(table["devices"].unique())
    labels = ("throughput (tok/s)", "energy per token (mJ)", "collectives, % of step time")
    for ax, label in zip(axes, labels, strict=True):
        ax.set_xscale("log", base=2)
        ax.set_xticks(counts, [f"{c:g}" for c in counts])
        ax.set_xlabel(f"stacks of {base:g} GB (dashed: one stack, that many times the HB)")
        ax.set_ylabel(label)
    for ax in axes[:2]:
        ax.set_yscale("log")
        style.plain_log_ticks(ax, which="y")
    axes[2].set_ylim(0, 100)
    axes[2].axhline(50, color="0.6", linewidth=0.8, linestyle=":")
    handles, _ = axes[0].get_legend_handles_labels()
    handles += [
        Line2D([], [], color="0.3", linestyle="-", marker="o", label="n stacks"),
        Line2D(
            [],
            [],
            color="0.3",
            linestyle="--",
            marker="s",
            markerfacecolor="none",
            label="one stack, n x HB",
        ),
    ]
    axes[0].legend(handles=handles, fontsize=7)


def build(run: Any, record: Callable[..., Any]) -> list[Any]:
    """The devices figure of a sweep with more than one device count (``run``: a
    :class:`~elmoe_dse.plots.inputs.RunDir`; ``record``: the figure record type); not
    applicable otherwise."""
    from functools import partial

    from elmoe_dse.plots.inputs import NotApplicable

    if run.sweep is None:
        raise NotApplicable("needs a sweep or optimize run (results.parquet)")
    frame = run.sweep.frame
    if TP not in frame.columns or EP not in frame.columns or len(set(devices_of(frame))) < 2:
        raise NotApplicable(
            "needs a sweep over more than one device (tp, ep), e.g. sweeps/devices.toml"
        )
    run.sweep.require([*NEEDS, TIME_PER_STEP_S, DEVICE_LINK_TIME_PER_STEP_S], "devices")
    table = devices_table(frame)
    models = ", ".join(sorted(frame["meta.model"].unique()))
    platforms = ", ".join(sorted(frame["meta.platform"].unique()))
    return [
        record(
            name="devices",
            family="devices",
            title="A second stack or a bigger HB",
            caption=devices_caption(table),
            source=f"{models} on {platforms}, sweep '{run.sweep.name}' (results.parquet), fastest "
            "feasible layout and draft length per device count and batch",
            draw=partial(devices_figure, table),
            table=tuple({str(k): v for k, v in r.items()} for r in table.to_dict("records")),
        )
    ]
