"""What a design costs for what it delivers: the front over hardware designs of a design sweep
(a sweep file with ``[design]``, e.g. ``sweeps/design.toml``), one figure per group (model).

:func:`cost_data` is pure: from the design table (one row per hardware design and group, its
metrics aggregated over the conditions it serves at its best run-time setting per condition) it
takes, per group, every design's HB capacity, PE count, dollar cost, logic area, static power,
aggregated throughput and energy per token, and whether it is Pareto-optimal (``meta.pareto``,
over the sweep's objectives). :func:`cost_figure` only draws: throughput (left) and energy per
token (right) against dollar cost; colour = HB capacity, marker = PE count, filled = Pareto-
optimal, the line = the throughput-vs-cost front (the designs no cheaper design out-runs).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from elmoe_dse.columns import (
    COST_USD,
    ENERGY_PER_TOKEN_J,
    LOGIC_AREA_MM2,
    PARETO,
    PLATFORM,
    STATIC_POWER_W,
    THROUGHPUT_TOK_PER_S,
    knob_column,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

HB = knob_column("hb_capacity_gb")
PES = knob_column("pe_count")
HB_COLORS = ("#1b4f72", "#2e86c1", "#28b463", "#d68910", "#c0392b", "#7d3c98", "#566573")
PE_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


@dataclass(frozen=True)
class CostPanel:
    """One group's designs (records sorted by cost) and what the sweep varied and aggregated."""

    group: tuple[tuple[str, Any], ...]
    designs: tuple[dict[str, Any], ...]
    hb_values: tuple[float, ...]
    pe_values: tuple[float, ...]
    varied: str
    served: str


def cost_data(designs: pd.DataFrame, groups: list[str], served: str) -> list[CostPanel]:
    """Per group of the design table, its designs (see the module docstring); ``served`` says
    which conditions each design serves and how they are aggregated (for the labels)."""
    hbs = tuple(sorted(float(v) for v in designs[HB].unique()))
    pes = tuple(sorted(float(v) for v in designs[PES].unique()))
    platforms = sorted(str(p) for p in designs[PLATFORM].unique())
    varied = (
        f"designs varied: HB capacity {', '.join(f'{v:g}' for v in hbs)} GB x PEs "
        f"{', '.join(f'{v:g}' for v in pes)} on {', '.join(platforms)}"
    )
    panels = []
    parts = designs.groupby(groups, sort=True, observed=True) if groups else [((), designs)]
    for key, part in parts:
        values = key if isinstance(key, tuple) else (key,)
        rows = part.sort_values([COST_USD, THROUGHPUT_TOK_PER_S], kind="stable")
        records = tuple(
            {
                "platform": str(r[PLATFORM]),
                "hb_gb": float(r[HB]),
                "pe_count": float(r[PES]),
                "cost_usd": float(r[COST_USD]),
                "logic_area_mm2": float(r[LOGIC_AREA_MM2]),
                "static_power_w": float(r[STATIC_POWER_W]),
                "throughput_tok_per_s": float(r[THROUGHPUT_TOK_PER_S]),
                "energy_per_token_j": float(r[ENERGY_PER_TOKEN_J]),
                "pareto": bool(r[PARETO]),
            }
            for _, r in rows.iterrows()
        )
        group = tuple((c, _plain(v)) for c, v in zip(groups, values, strict=True))
        panels.append(CostPanel(group, records, hbs, pes, varied, served))
    return panels


def cost_front(panel: CostPanel) -> list[dict[str, Any]]:
    """The throughput-vs-cost front: designs (by cost) that out-run every cheaper design."""
    front, best = [], float("-inf")
    for d in panel.designs:
        if d["throughput_tok_per_s"] > best:
            front.append(d)
            best = d["throughput_tok_per_s"]
    return front


def cost_caption(panel: CostPanel) -> str:
    """What to read: the Pareto-optimal designs, cheapest first, and the spread they span."""
    optimal = [d for d in panel.designs if d["pareto"]]
    if not optimal:
        return f"no Pareto-optimal design; {panel.varied}"
    cheap, fast = optimal[0], max(optimal, key=lambda d: d["throughput_tok_per_s"])
    names = "; ".join(
        f"{d['hb_gb']:g} GB x {d['pe_count']:g} PEs ({d['cost_usd']:.0f} USD, "
        f"{d['throughput_tok_per_s']:.4g} tok/s)"
        for d in optimal
    )
    ratio = fast["throughput_tok_per_s"] / cheap["throughput_tok_per_s"]
    return (
        f"{len(optimal)} of {len(panel.designs)} designs are Pareto-optimal: {names}. From the "
        f"cheapest to the fastest, cost x{fast['cost_usd'] / cheap['cost_usd']:.2f} buys "
        f"throughput x{ratio:.2f}. {panel.varied}; {panel.served}"
    )


def cost_figure(panel: CostPanel) -> Figure:
    """Throughput (left) and energy per token (right) vs cost; see the module docstring."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import LogLocator

    from elmoe_dse.plots import style

    fig = style.new_figure(style.PAGE_WIDTH_IN, 3.9)
    left, right = fig.subplots(1, 2)
    front = cost_front(panel)
    left.plot(
        [d["cost_usd"] for d in front],
        [d["throughput_tok_per_s"] for d in front],
        color="#999999",
        linewidth=1.0,
        drawstyle="steps-post",
        zorder=1,
    )
    for d in panel.designs:
        color = HB_COLORS[panel.hb_values.index(d["hb_gb"]) % len(HB_COLORS)]
        marker = PE_MARKERS[panel.pe_values.index(d["pe_count"]) % len(PE_MARKERS)]
        kw = {"marker": marker, "s": 42, "edgecolors": color, "linewidths": 1.2, "zorder": 2}
        kw["facecolors"] = color if d["pareto"] else "none"
        left.scatter(d["cost_usd"], d["throughput_tok_per_s"], **kw)
        right.scatter(d["cost_usd"], d["energy_per_token_j"] * 1e3, **kw)
    for ax, label in (
        (left, "throughput, aggregated (tok/s)"),
        (right, "energy per token, aggregated (mJ)"),
    ):
        ax.set_xlabel("design cost (USD: logic die + HB + LPDDR)")
        ax.set_ylabel(label)
        ax.set_yscale("log")
        style.plain_log_ticks(ax, which="y")
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 1.5, 2.0, 3.0, 5.0, 7.0)))
    handles = [
        Line2D([], [], linestyle="", marker="o", color=HB_COLORS[i % len(HB_COLORS)],
               label=f"HB {v:g} GB")
        for i, v in enumerate(panel.hb_values)
    ] + [
        Line2D([], [], linestyle="", marker=PE_MARKERS[i % len(PE_MARKERS)], color="#333333",
               markerfacecolor="none", label=f"{v:g} PEs")
        for i, v in enumerate(panel.pe_values)
    ]  # fmt: skip
    right.legend(handles=handles, fontsize=6.5, ncol=2, loc="best")
    where = ", ".join(str(v) for _, v in panel.group)
    lines = [
        f"{where + ': ' if where else ''}{panel.varied}",
        *textwrap.wrap(panel.served, 125),
        "filled = Pareto-optimal (throughput, energy per token, cost); line = the designs no "
        "cheaper design out-runs",
    ]
    fig.suptitle("\n".join(lines), fontsize=7)
    return fig


def build_cost(run: Any, record: Callable[..., Any], slug: Callable[[list[Any]], str]) -> list[Any]:
    """The cost figures of a design sweep (``run``: a :class:`~elmoe_dse.plots.inputs.RunDir`;
    ``record``: the figure record type; ``slug``: a file stem of group values), one per group;
    not applicable otherwise."""
    from functools import partial

    import pandas as pd

    from elmoe_dse.plots.inputs import NotApplicable

    design = run.design
    if design is None:
        raise NotApplicable("needs a design sweep (a sweep file with [design], sweeps/design.toml)")
    frame = design.designs
    if HB not in frame.columns or PES not in frame.columns:
        raise NotApplicable("needs hb_capacity_gb and pe_count among the design's hardware knobs")
    axes, section = design.axes, design.design_section
    conditions = [c.split(".", 1)[1] for c in axes["conditions"]]
    served = (
        f"each design serves every {' x '.join(conditions) or 'condition'} at its best run-time "
        f"setting of {', '.join(section.get('runtime') or []) or 'no knob'} per condition; "
        f"metrics: {section.get('aggregate', 'mean')} over them"
    )
    records = []
    for panel in cost_data(frame, axes["groups"], served):
        key = [v for _, v in panel.group]
        name = "cost" if not key else f"cost-{slug(key)}"
        rows = [{**dict(panel.group), **d} for d in panel.designs]
        buf = pd.DataFrame(rows).to_csv(index=False, float_format="%.10g")
        records.append(
            record(
                name=name,
                family="cost",
                title="Cost vs performance of the hardware designs"
                + (f" ({', '.join(str(v) for v in key)})" if key else ""),
                caption=cost_caption(panel),
                source=f"designs read from {design.folder.name}/results.parquet (design sweep "
                f"'{design.name}'; costs from the platforms' [cost] parts, elmoe_dse/costs.py); "
                f"every design in {name}_designs.csv",
                draw=partial(cost_figure, panel),
                companions=((f"{name}_designs.csv", buf),),
                table=tuple(rows),
            )
        )
    return records


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
