"""Knob sensitivity on small dedicated grids, read from the run's figure tables
(:mod:`elmoe_dse.explore.figure_steps` computes them when the run is written).

- **Acceptance and tokens per step vs draft bits and pool size** (heat maps, Elastic-SD on an
  ELMoE-3D platform): acceptance alpha (docs/model.md §6) and B x tau; cells whose pool does not fit
  in
  HB at that draft width are hatched.
- **Hit rate vs cache capacity**: share of routed expert selections served from the fast tier as
  HB grows, for HB-xPU's full-precision LRU cache, ELMoE-3D's bit-nested hot set (MSB slices,
  about twice the experts per byte) and a random pool of the same slots (ablation).
- **Time per token vs draft length**: latency between two tokens of a sequence vs gamma, one line
  per batch size; gamma = 0 is plain decoding from the same pool, the best gamma is starred.

Data functions (:func:`heatmap_data`, :func:`hit_rate_panels`, :func:`draft_length_panels`) are
pure: they take a figure table (``figure_acceptance.parquet``, ``figure_hit_rate.parquet``,
``figure_draft_length.parquet``) and return the numbers drawn; ``draw_*`` / ``*_figure`` only draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    CACHE_POLICY,
    DATASET,
    FEASIBLE,
    HIT_RATE_FRAC,
    LATENCY_PER_TOKEN_S,
    MODEL,
    PLATFORM,
    TOKENS_PER_STEP,
    knob_column,
)
from elmoe_dse.explore.figure_columns import LINE
from elmoe_dse.plots import style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

BATCH = knob_column("batch_size")
DRAFT_LENGTH = knob_column("draft_length")
DRAFT_BITS = knob_column("draft_bits")
POOL = knob_column("pool_experts")
CAPACITY = knob_column("hb_capacity_gb")
ROUNDING = knob_column("rounding")


def _rows(a: np.ndarray) -> tuple[tuple[float, ...], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(a, dtype=float))


# ----------------------------------------------------------------------------------------------
# Acceptance heat maps
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeatmapData:
    """Acceptance and tokens per step over draft bits (rows) x pool experts (columns)."""

    model: str
    platform: str
    dataset: str
    batch_size: float
    draft_length: float
    draft_bits: tuple[float, ...]
    pool_experts: tuple[float, ...]
    acceptance: tuple[tuple[float, ...], ...]
    tokens_per_step: tuple[tuple[float, ...], ...]
    feasible: tuple[tuple[bool, ...], ...]


def _grid(frame: pd.DataFrame, rows: str, cols: str, value: str) -> np.ndarray:
    """``value`` of a tidy grid as a (rows x cols) array, axes in table order."""
    r = list(dict.fromkeys(frame[rows].to_numpy(dtype=float)))
    c = list(dict.fromkeys(frame[cols].to_numpy(dtype=float)))
    return frame[value].to_numpy().reshape(len(r), len(c))


def _first(frame: pd.DataFrame, column: str) -> Any:
    return frame[column].iloc[0]


def heatmap_data(frame: pd.DataFrame) -> HeatmapData:
    """The numbers of the heat maps from ``figure_acceptance.parquet`` (one row per draft bits x
    pool size)."""
    bits = tuple(float(b) for b in dict.fromkeys(frame[DRAFT_BITS].to_numpy(dtype=float)))
    pools = tuple(float(c) for c in dict.fromkeys(frame[POOL].to_numpy(dtype=float)))
    feasible = _grid(frame, DRAFT_BITS, POOL, FEASIBLE).astype(bool)
    return HeatmapData(
        model=str(_first(frame, MODEL)),
        platform=str(_first(frame, PLATFORM)),
        dataset=str(_first(frame, DATASET)),
        batch_size=float(_first(frame, BATCH)),
        draft_length=float(_first(frame, DRAFT_LENGTH)),
        draft_bits=bits,
        pool_experts=pools,
        acceptance=_rows(_grid(frame, DRAFT_BITS, POOL, ACCEPTANCE_FRAC)),
        tokens_per_step=_rows(_grid(frame, DRAFT_BITS, POOL, TOKENS_PER_STEP)),
        feasible=tuple(tuple(bool(v) for v in row) for row in feasible),
    )


def heatmap_caption(data: HeatmapData) -> str:
    acc = np.asarray(data.acceptance)
    ok = np.asarray(data.feasible)
    if not ok.any():
        return "No pool fits at any draft width."
    i, j = np.unravel_index(
        np.argmax(np.where(ok, np.asarray(data.tokens_per_step), -1)), acc.shape
    )
    return (
        f"{style.model_label(data.model)} on {style.platform_label(data.platform)}, "
        f"{data.dataset}, {style.batch_label(data.batch_size)}, γ = {data.draft_length:g}: "
        f"acceptance rises with pool size and draft bits, but wider drafts fit fewer experts in "
        f"HB (hatched: does not fit); most tokens per step "
        f"({float(data.tokens_per_step[i][j]):.3g}) at {data.draft_bits[i]:g} bits and "
        f"{data.pool_experts[j]:g} experts per layer (acceptance {float(acc[i, j]):.2f})."
    )


def _draw_grid(
    ax: Axes,
    values: np.ndarray,
    ok: np.ndarray,
    rows: Sequence[float],
    cols: Sequence[float],
    *,
    vmin: float,
    vmax: float,
    fmt: str,
    title: str,
) -> AxesImage:
    from matplotlib.patches import Rectangle

    shown = np.ma.masked_where(~ok, values)
    image = ax.imshow(shown, origin="lower", aspect="auto", cmap="cividis", vmin=vmin, vmax=vmax)
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            if not ok[i, j]:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor="0.92",
                        edgecolor="0.6",
                        hatch="////",
                        linewidth=0,
                    )
                )
                continue
            v = values[i, j]
            light = (v - vmin) / (vmax - vmin if vmax > vmin else 1.0) > 0.6
            ax.text(
                j,
                i,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=5.5,
                color="0.1" if light else "white",
            )
    ax.set_xticks(range(len(cols)), [f"{c:g}" for c in cols])
    ax.set_yticks(range(len(rows)), [f"{r:g}" for r in rows])
    ax.set_xlabel("pool size (experts per layer)")
    ax.set_ylabel("draft bits $b_d$")
    ax.set_title(title)
    ax.grid(False)
    return image


def draw_heatmaps(data: HeatmapData, axes: Sequence[Axes] | None = None) -> Sequence[Axes]:
    """Acceptance (left) and tokens per step (right), with colour bars."""
    if axes is None:
        fig = style.new_figure(style.PAGE_WIDTH_IN, 2.6)
        axes = list(fig.subplots(1, 2))
    ok = np.asarray(data.feasible)
    acc = np.asarray(data.acceptance)
    tok = np.asarray(data.tokens_per_step)
    im = _draw_grid(
        axes[0],
        acc,
        ok,
        data.draft_bits,
        data.pool_experts,
        vmin=0.0,
        vmax=1.0,
        fmt="{:.2f}",
        title="acceptance α",
    )
    axes[0].figure.colorbar(im, ax=axes[0], fraction=0.05, pad=0.02)
    top = float(tok[ok].max()) if ok.any() else 1.0
    im = _draw_grid(
        axes[1],
        tok,
        ok,
        data.draft_bits,
        data.pool_experts,
        vmin=data.batch_size,
        vmax=top,
        fmt="{:.3g}",
        title=f"tokens per step (B·τ, {style.batch_label(data.batch_size)})",
    )
    axes[1].figure.colorbar(im, ax=axes[1], fraction=0.05, pad=0.02)
    return axes


def heatmap_figure(data: HeatmapData) -> Figure:
    fig = style.new_figure(style.PAGE_WIDTH_IN, 2.6)
    draw_heatmaps(data, list(fig.subplots(1, 2)))
    return fig


# ----------------------------------------------------------------------------------------------
# Hit rate vs capacity
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HitLine:
    label: str
    platform: str
    cache: str
    hit_rate: tuple[float, ...]


@dataclass(frozen=True)
class HitRatePanel:
    model: str
    capacities_gb: tuple[float, ...]
    lines: tuple[HitLine, ...]


def hit_rate_panels(frame: pd.DataFrame) -> list[HitRatePanel]:
    """One panel per model of ``figure_hit_rate.parquet``: each cache's hit rate (share of
    routed selections from HB) per capacity, lines in table order."""
    panels = []
    for model in dict.fromkeys(frame[MODEL].astype(str)):
        rows = frame[frame[MODEL].astype(str) == model]
        lines = []
        for label in dict.fromkeys(rows[LINE].astype(str)):
            line = rows[rows[LINE].astype(str) == label]
            lines.append(
                HitLine(
                    label,
                    str(_first(line, PLATFORM)),
                    str(_first(line, CACHE_POLICY)),
                    tuple(float(v) for v in line[HIT_RATE_FRAC]),
                )
            )
        capacities = tuple(float(c) for c in dict.fromkeys(rows[CAPACITY].to_numpy(dtype=float)))
        panels.append(HitRatePanel(model, capacities, tuple(lines)))
    return panels


def hit_rate_caption(panels: Sequence[HitRatePanel]) -> str:
    parts = []
    for panel in panels:
        by = {line.cache: line for line in panel.lines}
        if "hot" in by and "lru" in by:
            k = panel.capacities_gb.index(4.0) if 4.0 in panel.capacities_gb else 0
            parts.append(
                f"{style.model_label(panel.model)} at {panel.capacities_gb[k]:g} GB: hot set "
                f"{by['hot'].hit_rate[k]:.0%} vs LRU {by['lru'].hit_rate[k]:.0%}"
                + (f" vs random {by['random'].hit_rate[k]:.0%}" if "random" in by else "")
            )
    return "; ".join(parts) + "."


def draw_hit_rate_panel(panel: HitRatePanel, ax: Axes | None = None) -> Axes:
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.2).add_subplot()
    for line in panel.lines:
        ax.plot(
            panel.capacities_gb,
            line.hit_rate,
            color=style.platform_color(line.platform),
            ls=(0, (4, 2)) if line.cache == "random" else "-",
            marker="o" if line.cache != "random" else None,
            markersize=2.5,
            label=line.label,
        )
    ax.set_xscale("log", base=2)
    ax.set_xticks(panel.capacities_gb, [f"{c:g}" for c in panel.capacities_gb])
    ax.minorticks_off()
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("HB capacity (GB)")
    ax.set_ylabel("hit rate (share of selections)")
    ax.set_title(style.model_label(panel.model))
    return ax


def hit_rate_figure(panels: Sequence[HitRatePanel]) -> Figure:
    return _row_figure(panels, draw_hit_rate_panel, height=2.3)


# ----------------------------------------------------------------------------------------------
# Time per token vs draft length
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DraftLengthPanel:
    model: str
    platform: str
    gammas: tuple[float, ...]
    batches: tuple[float, ...]
    latency_s: tuple[tuple[float, ...], ...]
    best_gamma: tuple[float, ...]


def draft_length_panels(frame: pd.DataFrame) -> list[DraftLengthPanel]:
    """One panel per model of ``figure_draft_length.parquet``: latency per token (s) per batch
    and draft length, and the best draft length per batch."""
    panels = []
    for model in dict.fromkeys(frame[MODEL].astype(str)):
        rows = frame[frame[MODEL].astype(str) == model]
        gammas = tuple(float(g) for g in dict.fromkeys(rows[DRAFT_LENGTH].to_numpy(dtype=float)))
        lat = _grid(rows, BATCH, DRAFT_LENGTH, LATENCY_PER_TOKEN_S).astype(float)
        panels.append(
            DraftLengthPanel(
                model,
                str(_first(rows, PLATFORM)),
                gammas,
                tuple(float(b) for b in dict.fromkeys(rows[BATCH].to_numpy(dtype=float))),
                _rows(lat),
                tuple(float(gammas[int(i)]) for i in np.argmin(lat, axis=1)),
            )
        )
    return panels


def draft_length_caption(panels: Sequence[DraftLengthPanel]) -> str:
    parts = []
    for panel in panels:
        first, last = panel.best_gamma[0], panel.best_gamma[-1]
        lat0 = panel.latency_s[-1][0]
        lat_best = min(panel.latency_s[-1])
        parts.append(
            f"{style.model_label(panel.model)}: best γ {first:g} at "
            f"{style.batch_label(panel.batches[0])}, {last:g} at "
            f"{style.batch_label(panel.batches[-1])} ({lat0 / lat_best:.2f}x faster than "
            "γ = 0)"
        )
    return "; ".join(parts) + "."


def draw_draft_length_panel(panel: DraftLengthPanel, ax: Axes | None = None) -> Axes:
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.2).add_subplot()
    color = style.platform_color(panel.platform)
    markers = ("o", "s", "^", "D", "v", "P")
    n = len(panel.batches)
    for k, (b, lat) in enumerate(zip(panel.batches, panel.latency_s, strict=True)):
        shade = style.tint(color, 0.6 * (1 - k / max(n - 1, 1)))
        y = np.asarray(lat) * 1e3
        ax.plot(
            panel.gammas,
            y,
            color=shade,
            marker=markers[k % len(markers)],
            markersize=2.5,
            label=style.batch_label(b),
        )
        best = int(np.argmin(y))
        ax.scatter(
            panel.gammas[best],
            y[best],
            marker="*",
            s=45,
            color=shade,
            edgecolors="0.1",
            linewidths=0.4,
            zorder=5,
        )
    ax.set_yscale("log")
    style.plain_log_ticks(ax, "y")
    ax.set_xticks(panel.gammas)
    ax.set_xlim(panel.gammas[0] - 0.4, panel.gammas[-1] + 0.4)
    ax.set_xlabel("draft length γ")
    ax.set_ylabel("time per token (ms)")
    ax.set_title(style.model_label(panel.model))
    return ax


def draft_length_figure(panels: Sequence[DraftLengthPanel]) -> Figure:
    return _row_figure(panels, draw_draft_length_panel, height=2.3)


def _row_figure(
    panels: Sequence[Any], draw: Callable[[Any, Axes], Axes], *, height: float
) -> Figure:
    """Panels in one row (two rows above four), a shared legend below."""
    n = len(panels)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    width = style.COLUMN_WIDTH_IN if cols == 1 else style.PAGE_WIDTH_IN
    fig = style.new_figure(width, height * rows + 0.35)
    axes = fig.subplots(rows, cols, squeeze=False, sharey=True)
    for ax, panel in zip(axes.flat, panels, strict=False):
        draw(panel, ax)
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.set_visible(False)
        elif i % cols:
            ax.set_ylabel("")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels))
    return fig
