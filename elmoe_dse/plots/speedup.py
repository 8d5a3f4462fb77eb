"""Speedup and energy-efficiency gain over the naive xPU vs batch size, grouped bars per model.

Data (:func:`speedup_data`, pure, on a systems table such as ``reproduce``'s): per (model, dataset,
batch) cell, every system's throughput over ``xpu``'s (speedup) and ``xpu``'s energy per token
over the system's (energy-efficiency gain), then the arithmetic mean over the datasets of the
model, the same mean ``reproduce`` compares with the paper. The paper's reported means of
ELMoE-3D over xPU (6.6x and 4.4x, arXiv 2604.14626 abstract) are carried as reference lines.

Drawing (:func:`draw_ratio_panel`, :func:`speedup_figure`): two rows (speedup, energy
efficiency) x one panel per model; bars coloured by platform and hatched by policy; a solid line
at 1 (xPU) and a dashed line at the paper's mean.
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

REFERENCE = "xpu"
KEYS = ("meta.model", "meta.dataset", "knob.batch_size")
METRICS = ("speedup", "energy")
METRIC_LABELS = {
    "speedup": "speedup over xPU",
    "energy": "energy-efficiency gain over xPU",
}


@dataclass(frozen=True)
class SystemBars:
    """One system's bars in one model panel: the mean ratio per batch size."""

    system: str
    platform: str
    policy: str
    values: tuple[float, ...]


@dataclass(frozen=True)
class RatioPanel:
    """One model and one metric (``speedup`` or ``energy``)."""

    model: str
    metric: str
    bars: tuple[SystemBars, ...]
    reference: float


@dataclass(frozen=True)
class SpeedupData:
    """Panels (metric-major, models in paper order), the batch sizes and the datasets averaged,
    and per system its mean ratio over every cell (``overall``: system -> (speedup, energy))."""

    batches: tuple[float, ...]
    datasets: tuple[str, ...]
    panels: tuple[RatioPanel, ...]
    overall: tuple[tuple[str, float, float], ...]


def reference_label(speedup: float, energy: float) -> str:
    """Legend entry of the dashed lines (the paper's means, arXiv 2604.14626 abstract)."""
    return f"paper's mean for ELMoE-3D ({speedup:g}x speedup, {energy:g}x energy efficiency)"


def model_order(models: Sequence[str], order: Sequence[str] = ()) -> list[str]:
    """The models of ``order`` (the paper's, from ``figures.json``) in that order, then any
    others sorted."""
    present = set(models)
    return [m for m in order if m in present] + sorted(present - set(order))


def system_order(systems: Sequence[str], order: Sequence[str] = ()) -> list[str]:
    """Systems not in ``order`` (``reproduce``'s, from ``figures.json``; a sweep's designs)
    sorted, then those of ``order`` in that order."""
    present = set(systems)
    return sorted(present - set(order)) + [s for s in order if s in present]


def speedup_data(
    systems: pd.DataFrame,
    *,
    reference: str = REFERENCE,
    paper_speedup: float,
    paper_energy: float,
    models_order: Sequence[str] = (),
    systems_order: Sequence[str] = (),
) -> SpeedupData:
    """Mean ratios over ``reference`` per model, system and batch (see the module docstring).

    ``systems`` has one row per (model, dataset, batch, system) with ``meta.platform``,
    ``meta.policy``, ``metric.throughput_tok_per_s`` and ``metric.energy_per_token_j``.
    """
    tput = systems.pivot_table(
        index=list(KEYS),
        columns="meta.system",
        values="metric.throughput_tok_per_s",
        observed=True,
    )
    energy = systems.pivot_table(
        index=list(KEYS),
        columns="meta.system",
        values="metric.energy_per_token_j",
        observed=True,
    )
    ratios = {
        "speedup": tput.div(tput[reference], axis=0),
        "energy": 1.0 / energy.div(energy[reference], axis=0),
    }
    info = systems.drop_duplicates("meta.system").set_index("meta.system")
    names = [s for s in system_order(list(tput.columns), systems_order) if s != reference]
    batches = tuple(float(b) for b in sorted(tput.index.get_level_values(2).unique()))
    models = model_order([str(m) for m in tput.index.get_level_values(0).unique()], models_order)
    refs = {"speedup": paper_speedup, "energy": paper_energy}
    panels = []
    for metric in METRICS:
        means = ratios[metric].groupby(level=[0, 2], observed=True).mean()
        lookup: dict[Any, dict[Any, Any]] = means.to_dict(orient="index")
        for model in models:
            bars = []
            for s in names:
                values = tuple(
                    float(lookup.get((model, b), {}).get(s, float("nan"))) for b in batches
                )
                bars.append(
                    SystemBars(
                        s,
                        str(info.loc[s, "meta.platform"]),
                        str(info.loc[s, "meta.policy"]),
                        values,
                    )
                )
            panels.append(RatioPanel(model, metric, tuple(bars), refs[metric]))
    overall = tuple(
        (s, float(ratios["speedup"][s].mean()), float(ratios["energy"][s].mean())) for s in names
    )
    datasets = tuple(sorted(str(d) for d in tput.index.get_level_values(1).unique()))
    return SpeedupData(batches, datasets, tuple(panels), overall)


def best_system_per_batch(data: SpeedupData, metric: str) -> list[tuple[float, str, float]]:
    """(batch, system, mean over models) of the system with the highest mean ratio per batch."""
    panels = [p for p in data.panels if p.metric == metric]
    out = []
    for i, b in enumerate(data.batches):
        means = {
            bars.system: float(np.nanmean([p.bars[k].values[i] for p in panels]))
            for k, bars in enumerate(panels[0].bars)
        }
        best = max(means, key=lambda s: means[s])
        out.append((b, best, means[best]))
    return out


def caption(data: SpeedupData) -> str:
    """What to read: ELMoE-3D's mean gains against the paper's, and the winner per batch."""
    parts = []
    overall = {s: (sp, en) for s, sp, en in data.overall}
    lead = "elmoe3d" if "elmoe3d" in overall else next(iter(overall), None)
    if lead is not None:
        sp, en = overall[lead]
        parts.append(
            f"{style.system_label(lead)} over xPU, mean of all cells: {sp:.2f}x faster (paper "
            f"{data.panels[0].reference:g}x for ELMoE-3D) and {en:.2f}x more energy-efficient "
            f"(paper {data.panels[-1].reference:g}x)"
        )
    if data.panels and data.panels[0].bars:
        best = best_system_per_batch(data, "speedup")
        lo, hi = best[0], best[-1]
        parts.append(
            f"fastest at {style.batch_label(lo[0])}: {style.system_label(lo[1])} "
            f"({lo[2]:.2f}x), at {style.batch_label(hi[0])}: {style.system_label(hi[1])} "
            f"({hi[2]:.2f}x)"
        )
    return "; ".join(parts) + "."


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------


def draw_ratio_panel(
    panel: RatioPanel, batches: Sequence[float], ax: Axes | None = None, *, label: str = ""
) -> Axes:
    """Grouped bars (one group per batch size, one bar per system) on a log axis."""
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.2).add_subplot()
    n = max(len(panel.bars), 1)
    width = 0.8 / n
    x = np.arange(len(batches))
    for k, bars in enumerate(panel.bars):
        ax.bar(
            x - 0.4 + width * (k + 0.5),
            bars.values,
            width,
            color=style.platform_color(bars.platform),
            hatch=style.policy_hatch(bars.policy),
            edgecolor="white" if style.policy_hatch(bars.policy) else "0.15",
            linewidth=0.3,
            label=style.system_label(bars.system),
        )
    ax.axhline(1.0, color="0.1", lw=0.8, zorder=0.5)
    ax.axhline(panel.reference, color="0.1", lw=0.8, ls=(0, (4, 2)), label=label)
    ax.set_yscale("log")
    style.plain_log_ticks(ax, "y")
    ax.set_xticks(x, [f"{b:g}" for b in batches])
    ax.set_xlabel("batch size B")
    ax.grid(axis="x", visible=False)
    return ax


def speedup_figure(data: SpeedupData) -> Figure:
    """Two rows (speedup, energy efficiency) x one column per model; one legend below."""
    models = [p.model for p in data.panels if p.metric == METRICS[0]]
    cols = max(len(models), 1)
    width = style.COLUMN_WIDTH_IN if cols == 1 else style.PAGE_WIDTH_IN
    fig = style.new_figure(width, 4.4 if cols > 1 else 4.0)
    axes = fig.subplots(2, cols, squeeze=False, sharey="row")
    refs = {p.metric: p.reference for p in data.panels}
    label = reference_label(refs.get("speedup", math.nan), refs.get("energy", math.nan))
    for panel in data.panels:
        row = METRICS.index(panel.metric)
        ax = axes[row, models.index(panel.model)]
        draw_ratio_panel(panel, data.batches, ax, label=label)
        if row == 0:
            ax.set_title(style.model_label(panel.model))
            ax.set_xlabel("")
        if models.index(panel.model) == 0:
            ax.set_ylabel(METRIC_LABELS[panel.metric] + " (x)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(
        handles, labels, loc="outside lower center", ncol=min(len(labels), 5 if cols > 1 else 2)
    )
    return fig
