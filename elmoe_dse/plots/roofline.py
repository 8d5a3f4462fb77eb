"""Roofline per platform: the decode operators placed at their arithmetic intensity.

Data (:func:`roofline_panel`, pure, on cost records): for each operator of each pass of a step
(0-d :class:`~elmoe_dse.evaluator.StepCost`), its intensity = ops / bytes moved (reads and writes,
every tier) and its attained rate = ops / time, where it ran (host, near-memory unit, PE array)
and which term bound it. The roofs are read back from the same records, so they are exactly the
numbers the model used: a compute peak = ops per instance / compute time term, a tier's bandwidth
= bytes per instance / that tier's time term (docs/model.md §7).
Operators of passes that did not run
(a draft pass repeated 0 times) are left out.

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

from elmoe_dse.plots import style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from elmoe_dse.evaluator import StepCost

#: Significant digits roofs are rounded to before duplicates are merged.
ROOF_DIGITS = 6
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


def _round(x: float) -> float:
    return float(f"{x:.{ROOF_DIGITS}g}")


def roofline_panel(
    steps: Sequence[tuple[float, StepCost]], *, platform: str, title: str
) -> RooflinePanel:
    """Operator points and roofs of ``steps`` ((batch size, 0-d step cost) pairs)."""
    roofs: dict[tuple[str, str, str], float] = {}
    points: list[OpPoint] = []
    for batch, step in steps:
        total = float(np.asarray(step.time_per_step_s))
        for ps in step.passes:
            repeats = float(np.asarray(ps.repeats))
            if repeats <= 0:
                continue
            for op in ps.operators:
                ops = float(np.asarray(op.ops))
                moved = sum(float(np.asarray(v)) for v in op.bytes_read.values()) + sum(
                    float(np.asarray(v)) for v in op.bytes_written.values()
                )
                time_s = float(np.asarray(op.time_s))
                if ops <= 0 or moved <= 0 or time_s <= 0:
                    continue
                unit = str(np.asarray(op.unit).item())
                terms = {k: float(np.asarray(v)) for k, v in op.terms_s.items()}
                if terms.get("compute", 0.0) > 0:
                    roofs[(unit, "compute", op.precision)] = _round(
                        ops / op.layers / terms["compute"]
                    )
                for tier in set(op.bytes_read) | set(op.bytes_written):
                    nbytes = float(np.asarray(op.bytes_read.get(tier, 0.0))) + float(
                        np.asarray(op.bytes_written.get(tier, 0.0))
                    )
                    if nbytes > 0 and terms.get(tier, 0.0) > 0:
                        roofs[(unit, "memory", tier)] = _round(nbytes / op.layers / terms[tier])
                points.append(
                    OpPoint(
                        operator=op.name,
                        pass_kind=ps.kind,
                        batch_size=float(batch),
                        unit=unit,
                        precision=op.precision,
                        intensity_ops_per_byte=ops / moved,
                        attained_ops_per_s=ops / time_s,
                        bound=str(np.asarray(op.bound_label()).item()),
                        time_share=time_s * repeats / total,
                    )
                )
    ordered = sorted(roofs.items(), key=lambda kv: (kv[0][0] not in HOST_UNITS, kv[0]))
    return RooflinePanel(
        platform=platform,
        title=title,
        roofs=tuple(Roof(u, k, n, v) for (u, k, n), v in ordered),
        points=tuple(points),
    )


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
# Steps to place
# ----------------------------------------------------------------------------------------------


def reproduce_panels(
    systems: pd.DataFrame,
    *,
    model: str,
    dataset: str,
    batches: Sequence[float],
    context_len: float,
    calibration: str | None,
) -> list[RooflinePanel]:
    """One panel per platform of a reproduce table (its main system on that platform: ELMoE-3D
    on its own hardware), re-evaluated at the draft length each ran at."""
    from elmoe_dse.plots.evaluated import evaluate_at, scenario, scenario_knobs
    from elmoe_dse.plots.speedup import system_order

    sel = systems[(systems["meta.model"] == model) & (systems["meta.dataset"] == dataset)]
    panels = []
    seen: set[str] = set()
    for system in system_order(list(sel["meta.system"].unique())):
        rows = sel[sel["meta.system"] == system]
        platform = str(rows["meta.platform"].iloc[0])
        if platform in seen:
            continue
        seen.add(platform)
        policy = str(rows["meta.policy"].iloc[0])
        sc = scenario(model, platform, dataset, calibration)
        steps = []
        for b in batches:
            row = rows[rows["knob.batch_size"] == b]
            if row.empty:
                continue
            knobs = scenario_knobs(
                sc,
                policy=policy,
                batch_size=float(b),
                context_len=context_len,
                draft_length=float(row["metric.draft_length_tokens"].iloc[0]),
            )
            steps.append((float(b), evaluate_at(sc, knobs)))
        title = style.platform_label(platform)
        panels.append(roofline_panel(steps, platform=platform, title=title))
    return panels


def sweep_panels(
    frame: pd.DataFrame,
    *,
    extra_platforms: Sequence[tuple[str, str]] = (("xpu", "ar"),),
    calibration: str | None = None,
) -> list[RooflinePanel]:
    """One panel per platform of a sweep: its fastest design at the smallest and the largest
    batch size (knobs from the table), for the model and dataset of the fastest design overall;
    plus ``extra_platforms`` ((platform, policy)) at the same workload for reference."""
    from elmoe_dse.plots.evaluated import evaluate_at, knobs_from_row, scenario, scenario_knobs
    from elmoe_dse.plots.inputs import best_row

    batches = sorted(float(b) for b in frame["knob.batch_size"].unique())
    ends = [batches[0], batches[-1]] if len(batches) > 1 else batches
    best = best_row(frame, "metric.throughput_tok_per_s")
    model, dataset = str(best["meta.model"]), str(best["meta.dataset"])
    context = float(np.asarray(best["knob.context_len"])) if "knob.context_len" in best else 1024.0
    wl = frame[(frame["meta.model"] == model) & (frame["meta.dataset"] == dataset)]
    panels = []
    for platform, rows in wl.groupby("meta.platform", sort=True, observed=True):
        sc = scenario(model, str(platform), dataset, calibration)
        steps = []
        for b in ends:
            at = rows[rows["knob.batch_size"] == b]
            if at.empty:
                continue
            fastest = best_row(at, "metric.throughput_tok_per_s")
            steps.append((b, evaluate_at(sc, knobs_from_row(fastest))))
        panels.append(
            roofline_panel(steps, platform=str(platform), title=style.platform_label(str(platform)))
        )
    names = {p.platform for p in panels}
    for platform, policy in extra_platforms:
        if platform in names:
            continue
        sc = scenario(model, platform, dataset, calibration)
        steps = [
            (
                b,
                evaluate_at(
                    sc,
                    scenario_knobs(
                        sc, policy=policy, batch_size=b, context_len=context, draft_length=0.0
                    ),
                ),
            )
            for b in ends
        ]
        panels.append(
            roofline_panel(steps, platform=platform, title=style.platform_label(platform))
        )
    return panels


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


def draw_roofline_panel(panel: RooflinePanel, ax: Axes | None = None) -> Axes:
    """Roofs, then operator points, on log-log axes."""
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.6).add_subplot()
    color = style.platform_color(panel.platform)
    xs = [p.intensity_ops_per_byte for p in panel.points] or [1.0]
    ys = [p.attained_ops_per_s for p in panel.points] or [1e12]
    peaks = [r.value for r in panel.roofs if r.kind == "compute"] or [max(ys)]
    x_lo = 10 ** math.floor(math.log10(min(xs)) - 0.3)
    x_hi = 10 ** math.ceil(
        math.log10(
            max(
                max(xs),
                max(peaks) / min([r.value for r in panel.roofs if r.kind == "memory"] or [1.0]),
            )
            + 0.3
        )
    )
    grid = np.geomspace(x_lo, x_hi, 200)
    y_lo, y_hi = min(ys) / 20, max(peaks) * 3  # room below the operators for the labels
    for roof in panel.roofs:
        near = roof.unit not in HOST_UNITS
        unit_peak = max(
            [r.value for r in panel.roofs if r.unit == roof.unit and r.kind == "compute"] or peaks
        )
        ls = (0, (4, 2)) if near else "-"
        text_color = style.text_color(color)
        if roof.kind == "memory":
            ax.plot(
                grid,
                np.minimum(grid * roof.value, unit_peak) / 1e12,
                color=color,
                lw=0.9,
                ls=ls,
                zorder=2,
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
        else:
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
