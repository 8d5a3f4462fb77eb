"""Roofline per platform: the decode operators placed at their arithmetic intensity.

Data (:func:`panels_from_tables`, pure, on the run's figure tables
``figure_roofline_points.parquet`` and ``figure_roofline_roofs.parquet``, which
:mod:`elmoe_dse.explore.figure_steps` reads off the cost records when the run is written): for
each operator of each pass, its intensity = ops / bytes moved and its attained rate = ops / time,
where it ran (host, near-memory unit, PE array) and which term bound it; the roofs are the
numbers the model used (docs/model.md §7).

Drawing (:func:`draw_roofline_panel`, :func:`roofline_figure`): log-log; memory roofs as slopes
and compute roofs as flat lines in the platform colour (dashed for a near-memory unit); operators
as markers by operator, filled at the smallest batch and hollow at the largest, small for draft
passes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import BOUND, DATASET, MODEL, PLATFORM, knob_column
from elmoe_dse.explore.figure_columns import (
    ATTAINED_OPS_PER_S,
    INTENSITY_OPS_PER_BYTE,
    OPERATOR,
    PANEL,
    PASS,
    PRECISION,
    ROOF_KIND,
    ROOF_NAME,
    ROOF_PER_S,
    TIME_SHARE_FRAC,
    UNIT,
)
from elmoe_dse.plots import style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BATCH = knob_column("batch_size")
HOST_UNITS = ("xpu", "pe-array")


@dataclass(frozen=True)
class Roof:
    """A compute peak (ops/s, ``name`` = precision) or a bandwidth (bytes/s, ``name`` = tier)
    of one execution unit."""

    unit: str
    kind: str
    name: str
    value: float


@dataclass(frozen=True)
class OpPoint:
    """One operator of one pass at one batch size."""

    operator: str
    pass_kind: str
    batch_size: float
    unit: str
    precision: str
    intensity_ops_per_byte: float
    attained_ops_per_s: float
    bound: str
    time_share: float


@dataclass(frozen=True)
class RooflinePanel:
    platform: str
    title: str
    roofs: tuple[Roof, ...]
    points: tuple[OpPoint, ...]


def panels_from_tables(points: pd.DataFrame, roofs: pd.DataFrame) -> list[RooflinePanel]:
    """One panel per ``meta.panel`` of the figure tables, in order; roofs host units first."""
    panels = []
    for i in sorted({int(v) for v in points[PANEL]} | {int(v) for v in roofs[PANEL]}):
        pts = points[points[PANEL] == i]
        rfs = roofs[roofs[PANEL] == i]
        platform = str(pts[PLATFORM].iloc[0] if len(pts) else rfs[PLATFORM].iloc[0])
        found = {
            (str(u), str(k), str(n)): float(v)
            for u, k, n, v in zip(
                rfs[UNIT], rfs[ROOF_KIND], rfs[ROOF_NAME], rfs[ROOF_PER_S], strict=True
            )
        }
        ordered = sorted(found.items(), key=lambda kv: (kv[0][0] not in HOST_UNITS, kv[0]))
        panels.append(
            RooflinePanel(
                platform=platform,
                title=style.platform_label(platform),
                roofs=tuple(Roof(u, k, n, v) for (u, k, n), v in ordered),
                points=tuple(_point(row) for _, row in pts.iterrows()),
            )
        )
    return panels


def _point(row: pd.Series) -> OpPoint:
    return OpPoint(
        operator=str(row[OPERATOR]),
        pass_kind=str(row[PASS]),
        batch_size=float(row[BATCH]),
        unit=str(row[UNIT]),
        precision=str(row[PRECISION]),
        intensity_ops_per_byte=float(row[INTENSITY_OPS_PER_BYTE]),
        attained_ops_per_s=float(row[ATTAINED_OPS_PER_S]),
        bound=str(row[BOUND]),
        time_share=float(row[TIME_SHARE_FRAC]),
    )


def workload(points: pd.DataFrame) -> tuple[str, str]:
    """The (model, dataset) the roofline points were evaluated at."""
    return str(points[MODEL].iloc[0]), str(points[DATASET].iloc[0])


def caption(panels: Sequence[RooflinePanel]) -> str:
    """What to read: which operator takes the most step time and what bounds it, per platform
    and batch size (merged where every platform agrees), and how its intensity moves with B."""
    tops: list[tuple[str, float, OpPoint]] = []
    for panel in panels:
        for b in sorted({p.batch_size for p in panel.points}):
            pts = [p for p in panel.points if p.batch_size == b]
            tops.append((panel.platform, b, max(pts, key=lambda p: p.time_share)))
    if not tops:
        return "No operators."
    ops = {t.operator for _, _, t in tops}
    bounds = {t.bound for _, _, t in tops}
    shares = [t.time_share for _, _, t in tops]
    if len(ops) == 1:
        op = next(iter(ops)).replace("_", " ")
        text = (
            f"{op} take the largest share of step time on every platform at every batch size "
            f"({min(shares):.0%}-{max(shares):.0%})"
        )
        text += f", always {next(iter(bounds))}-bound" if len(bounds) == 1 else ""
    else:
        text = "; ".join(
            f"{style.platform_label(pl)} {style.batch_label(b)}: {t.operator.replace('_', ' ')} "
            f"({t.time_share:.0%}, {t.bound}-bound)"
            for pl, b, t in tops
        )
    first = [t for pl, _, t in tops if pl == panels[0].platform]
    if len(first) > 1:
        lo, hi = first[0], first[-1]
        text += (
            f"; on {style.platform_label(panels[0].platform)} its intensity goes from "
            f"{lo.intensity_ops_per_byte:.3g} ops/byte at {style.batch_label(lo.batch_size)} to "
            f"{hi.intensity_ops_per_byte:.3g} at {style.batch_label(hi.batch_size)}"
        )
    return text + "."


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------

UNIT_LABELS = {"xpu": "", "pe-array": "", "bank-pim": "PIM", "logic-pim": "Logic-PIM", "nmp": "NMP"}


def _roof_label(roof: Roof) -> str:
    unit = UNIT_LABELS.get(roof.unit, roof.unit)
    if roof.kind == "compute":
        text = f"{roof.name.upper()} {style.si_text(roof.value, 'OPS')}"
    else:
        text = f"{roof.name.upper()} {style.si_text(roof.value, 'B/s')}"
    return f"{unit} {text}".strip()


def _limits(panel: RooflinePanel) -> tuple[float, float, float, float]:
    """(x_lo, x_hi, y_lo, y_hi) in ops/byte and ops/s: every operator, every roof's ridge, room
    below the operators for the labels."""
    xs = [p.intensity_ops_per_byte for p in panel.points] or [1.0]
    ys = [p.attained_ops_per_s for p in panel.points] or [1e12]
    peaks = [r.value for r in panel.roofs if r.kind == "compute"] or [max(ys)]
    slowest = min([r.value for r in panel.roofs if r.kind == "memory"] or [1.0])
    x_lo = 10 ** math.floor(math.log10(min(xs)) - 0.3)
    x_hi = 10 ** math.ceil(math.log10(max(max(xs), max(peaks) / slowest) + 0.3))
    return x_lo, x_hi, min(ys) / 20, max(peaks) * 3


def _draw_roof(ax: Axes, panel: RooflinePanel, roof: Roof, limits: tuple[float, ...]) -> None:
    """A memory roof as a slope capped by its unit's peak, labelled along it; a compute roof as
    a flat line labelled at the right edge. Dashed for a near-memory unit."""
    x_lo, x_hi, y_lo, y_hi = limits
    grid = np.geomspace(x_lo, x_hi, 200)
    color = style.platform_color(panel.platform)
    text_color = style.text_color(color)
    # the unit's own peak caps its slopes; else the highest peak (y_hi is 3x it)
    same_unit = [r.value for r in panel.roofs if r.unit == roof.unit and r.kind == "compute"]
    unit_peak = max(same_unit or [y_hi / 3])
    ls = (0, (4, 2)) if roof.unit not in HOST_UNITS else "-"
    if roof.kind != "memory":
        ax.plot(
            grid,
            np.full_like(grid, roof.value / 1e12),
            color=color,
            lw=0.6,
            ls=ls,
            alpha=0.6,
            zorder=2,
        )
        ax.annotate(
            _roof_label(roof),
            (x_hi, roof.value / 1e12),
            xytext=(-2, 2),
            textcoords="offset points",
            fontsize=5.5,
            ha="right",
            va="bottom",
            color=text_color,
        )
        return
    ax.plot(
        grid, np.minimum(grid * roof.value, unit_peak) / 1e12, color=color, lw=0.9, ls=ls, zorder=2
    )
    # label along the slope from just after where it enters the view (the operators sit
    # further up, at intensities of one and more)
    x_text = max(x_lo, y_lo / roof.value) * 1.3
    y_text = x_text * roof.value / 1e12
    ax.text(
        x_text,
        y_text,
        _roof_label(roof),
        fontsize=5.5,
        color=text_color,
        ha="left",
        va="bottom",
        rotation=math.degrees(math.atan2(y_text, x_text)),
        rotation_mode="anchor",
        transform_rotates_text=True,
    )


def draw_roofline_panel(panel: RooflinePanel, ax: Axes | None = None) -> Axes:
    """Roofs, then operator points, on log-log axes."""
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.6).add_subplot()
    color = style.platform_color(panel.platform)
    limits = _limits(panel)
    for roof in panel.roofs:
        _draw_roof(ax, panel, roof, limits)
    batches = sorted({p.batch_size for p in panel.points})
    for p in panel.points:
        filled = p.batch_size == batches[0]
        ax.scatter(
            p.intensity_ops_per_byte,
            p.attained_ops_per_s / 1e12,
            marker=style.OPERATOR_MARKERS.get(p.operator, "o"),
            s=14 if p.pass_kind == "draft" else 30,
            facecolors=color if filled else "white",
            edgecolors="0.1",
            linewidths=0.6,
            zorder=4,
        )
    x_lo, x_hi, y_lo, y_hi = limits
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(x_lo, x_hi)
    ax.set_ylim(y_lo / 1e12, y_hi / 1e12)
    ax.set_title(panel.title)
    ax.set_xlabel("arithmetic intensity (ops/byte)")
    ax.set_ylabel("attained (TOPS)")
    return ax


def _legend_handles(panels: Sequence[RooflinePanel]) -> tuple[list[Any], list[str]]:
    from matplotlib.lines import Line2D

    ops = []
    for panel in panels:
        for p in panel.points:
            if p.operator not in ops:
                ops.append(p.operator)
    handles: list[Any] = [
        Line2D(
            [],
            [],
            ls="",
            marker=style.OPERATOR_MARKERS.get(o, "o"),
            markerfacecolor="0.6",
            markeredgecolor="0.1",
            markersize=5,
        )
        for o in ops
    ]
    labels = [o.replace("_", " ") for o in ops]
    batches = sorted({p.batch_size for panel in panels for p in panel.points})
    if batches:
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                markerfacecolor="0.6",
                markeredgecolor="0.1",
                markersize=5,
            )
        )
        labels.append(f"{style.batch_label(batches[0])} (filled)")
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                markerfacecolor="white",
                markeredgecolor="0.1",
                markersize=5,
            )
        )
        labels.append(f"{style.batch_label(batches[-1])} (hollow)")
    if any(p.pass_kind == "draft" for panel in panels for p in panel.points):
        handles.append(
            Line2D(
                [],
                [],
                ls="",
                marker="o",
                markerfacecolor="0.6",
                markeredgecolor="0.1",
                markersize=3,
            )
        )
        labels.append("draft pass (small)")
    handles.append(Line2D([], [], color="0.3", ls=(0, (4, 2))))
    labels.append("near-memory unit roof")
    return handles, labels


def roofline_figure(panels: Sequence[RooflinePanel]) -> Figure:
    """One panel per platform (three per row), one legend below."""
    n = len(panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    width = style.COLUMN_WIDTH_IN if cols == 1 else style.PAGE_WIDTH_IN
    fig = style.new_figure(width, 2.35 * rows + 0.6)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, panel in zip(axes.flat, panels, strict=False):
        draw_roofline_panel(panel, ax)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = _legend_handles(panels)
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 6))
    return fig
