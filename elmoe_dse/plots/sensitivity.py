"""Knob sensitivity, computed with the evaluator on small dedicated grids.

- **Acceptance and tokens per step vs draft bits and pool size** (heat maps, Elastic-SD on an
  ELMoE-3D platform): acceptance alpha (docs/model.md §6) and B x tau; cells whose pool does not fit
  in
  HB at that draft width are hatched.
- **Hit rate vs cache capacity**: share of routed expert selections served from the fast tier as
  HB grows, for HB-xPU's full-precision LRU cache, ELMoE-3D's bit-nested hot set (MSB slices,
  about twice the experts per byte) and a random pool of the same slots (ablation).
- **Time per token vs draft length**: latency between two tokens of a sequence vs gamma, one line
  per batch size; gamma = 0 is plain decoding from the same pool, the best gamma is starred.

Data functions (:func:`heatmap_data`, :func:`hit_rate_data`, :func:`draft_length_data`) are pure:
they take the evaluated :class:`~elmoe_dse.evaluator.StepCost` grids and return the numbers drawn;
``evaluate_*`` make those grids; ``draw_*`` / ``*_figure`` only draw.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.plots import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

    from elmoe_dse.evaluator import StepCost
    from elmoe_dse.scenario import Scenario

DRAFT_BITS = (2, 3, 4, 5, 6, 7, 8)
POOL_STEPS = 9
CAPACITIES_GB = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
GAMMAS = tuple(range(0, 9))
#: Draft length of the heat maps (the knob's default).
HEATMAP_GAMMA = 4.0
ROUNDING = "lsb-augmented"


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


def pool_axis(largest: float, num_experts: int, steps: int = POOL_STEPS) -> tuple[float, ...]:
    """About ``steps`` whole pool sizes from 0 to a step beyond ``largest`` (the most experts
    that fit at any draft width), at most E."""
    top = min(float(num_experts), largest * steps / (steps - 1.5))
    return tuple(float(v) for v in np.unique(np.round(np.linspace(0, top, steps))))


def evaluate_heatmap(
    sc: Scenario, *, batch_size: float, draft_length: float = HEATMAP_GAMMA
) -> tuple[StepCost, tuple[float, ...], tuple[float, ...]]:
    """Elastic-SD over draft bits x pool sizes; the step and the two axes."""
    from elmoe_dse.plots.evaluated import evaluate_at, scenario_knobs

    bits = tuple(float(b) for b in DRAFT_BITS)
    fits = scenario_knobs(
        sc,
        policy="elastic-sd",
        batch_size=batch_size,
        draft_length=draft_length,
        rounding=ROUNDING,
        draft_bits=np.asarray(bits),
    )
    slots = np.asarray(evaluate_at(sc, fits).cache.pool_experts_per_layer, dtype=float)
    pools = pool_axis(float(slots.max()), sc.model.num_experts)
    knobs = scenario_knobs(
        sc,
        policy="elastic-sd",
        batch_size=batch_size,
        draft_length=draft_length,
        rounding=ROUNDING,
        draft_bits=np.asarray(bits)[:, None],
        pool_experts=np.asarray(pools)[None, :],
    )
    return evaluate_at(sc, knobs), bits, pools


def heatmap_data(
    step: StepCost,
    *,
    draft_bits: Sequence[float],
    pool_experts: Sequence[float],
    model: str,
    platform: str,
    dataset: str,
    batch_size: float,
    draft_length: float,
) -> HeatmapData:
    """The numbers of the heat maps from a (bits x pools) step."""
    shape = (len(draft_bits), len(pool_experts))
    return HeatmapData(
        model=model,
        platform=platform,
        dataset=dataset,
        batch_size=float(batch_size),
        draft_length=float(draft_length),
        draft_bits=tuple(float(b) for b in draft_bits),
        pool_experts=tuple(float(c) for c in pool_experts),
        acceptance=_rows(np.broadcast_to(step.speculative.acceptance_frac, shape)),
        tokens_per_step=_rows(np.broadcast_to(step.tokens_per_step, shape)),
        feasible=tuple(
            tuple(bool(v) for v in row) for row in np.broadcast_to(step.feasible, shape)
        ),
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


#: (label, platform, policy, cache policy) of the hit-rate lines; ``None`` = the ELMoE-3D
#: platform of the run.
CACHES = (
    ("HB-xPU, LRU full precision", "hb-xpu", "ar-cache", "lru"),
    ("ELMoE-3D, hot set of MSB slices", None, "ar-cache", "hot"),
    ("ELMoE-3D slots, random pool", None, "ar-cache", "random"),
)


def evaluate_hit_rates(
    model: str,
    dataset: str,
    calibration: str | None,
    *,
    elmoe_platform: str = "elmoe3d-8g",
    batch_size: float = 1.0,
) -> list[tuple[str, str, str, StepCost]]:
    """(label, platform, cache, step over :data:`CAPACITIES_GB`) of each of :data:`CACHES`."""
    from elmoe_dse.plots.evaluated import evaluate_at, scenario, scenario_knobs

    out = []
    for label, named, policy, cache in CACHES:
        platform = named or elmoe_platform
        sc = scenario(model, platform, dataset, calibration)
        knobs = scenario_knobs(
            sc,
            policy=policy,
            cache_policy=cache,
            batch_size=batch_size,
            hb_capacity_gb=np.asarray(CAPACITIES_GB),
        )
        out.append((label, platform, cache, evaluate_at(sc, knobs)))
    return out


def hit_rate_data(
    model: str, capacities_gb: Sequence[float], steps: Sequence[tuple[str, str, str, StepCost]]
) -> HitRatePanel:
    """One panel: each cache's hit rate (share of routed selections from HB) per capacity."""
    n = len(capacities_gb)
    lines = tuple(
        HitLine(
            label,
            platform,
            cache,
            tuple(float(v) for v in np.broadcast_to(step.cache.hit_rate_frac, (n,))),
        )
        for label, platform, cache, step in steps
    )
    return HitRatePanel(model, tuple(float(c) for c in capacities_gb), lines)


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


def evaluate_draft_lengths(
    sc: Scenario, batches: Sequence[float]
) -> tuple[StepCost, tuple[float, ...], tuple[float, ...]]:
    """Elastic-SD over batch (rows) x draft length 0..8 (columns)."""
    from elmoe_dse.plots.evaluated import evaluate_at, scenario_knobs

    b = tuple(float(x) for x in batches)
    g = tuple(float(x) for x in GAMMAS)
    knobs = scenario_knobs(
        sc,
        policy="elastic-sd",
        rounding=ROUNDING,
        batch_size=np.asarray(b)[:, None],
        draft_length=np.asarray(g)[None, :],
    )
    return evaluate_at(sc, knobs), b, g


def draft_length_data(
    step: StepCost,
    *,
    model: str,
    platform: str,
    batches: Sequence[float],
    gammas: Sequence[float],
) -> DraftLengthPanel:
    """Latency per token (s) per batch and draft length, and the best draft length per batch."""
    lat = np.broadcast_to(step.latency_per_token_s, (len(batches), len(gammas)))
    best = tuple(float(gammas[int(i)]) for i in np.argmin(lat, axis=1))
    return DraftLengthPanel(
        model,
        platform,
        tuple(float(g) for g in gammas),
        tuple(float(b) for b in batches),
        _rows(lat),
        best,
    )


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
