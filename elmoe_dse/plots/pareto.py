"""Pareto fronts: throughput vs energy per token, one panel per batch size.

Data (:func:`pareto_data`, pure, on tables): within each of the sweep's Pareto groups (its
``group_by``, split further by any workload column that varies, :data:`CONDITIONS`: a design
cannot choose its model, dataset or context; one panel per batch size), the designs whose
(throughput, energy per token) no other design beats in both, by the one kernel
:func:`elmoe_dse.explore.pareto.pareto_mask` (throughput negated once, so both are minimized).
Designs sharing objective values count as one front point (``designs``); front points are
numbered left to right (lowest energy first) and keyed to their knobs in a companion table, with
the knobs that do not act at each point (:func:`idle_knobs`). Every design is kept for drawing,
thinned to one per occupied cell of a :data:`THIN_CELLS` x :data:`THIN_CELLS` log-log grid (the
cloud looks the same; a million-point sweep draws in a second). Baselines at the same workloads
are marked, flagged ``dominated`` when the front beats them.

Drawing (:func:`draw_pareto_panel`, :func:`pareto_figure`): faint platform-coloured cloud, the
front as a line with markers, numbers on up to :data:`MAX_LABELS` front points, baselines as
large edged markers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import ENERGY_PER_TOKEN_J as ENERGY
from elmoe_dse.columns import PARETO as SWEEP_PARETO  # under the sweep's objectives, maybe more
from elmoe_dse.columns import THROUGHPUT_TOK_PER_S as THROUGHPUT
from elmoe_dse.explore.pareto import pareto_mask, to_minimize
from elmoe_dse.plots import style
from elmoe_dse.plots.reduce import drawn_rows, row_count

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

BATCH = "knob.batch_size"
#: Cells per axis of the log-log grid that thins the drawn cloud.
THIN_CELLS = 300
#: Labels per panel (evenly along the front, ends included).
MAX_LABELS = 8
#: Front points closer than this (share of the axes' diagonal) share one label, "3-5".
LABEL_SEPARATION = 0.06
#: An axis is logarithmic where its values span more than this ratio.
LOG_SPAN = 8.0
#: Columns that may tell front designs apart besides the knobs.
META_VARYING = ("meta.model", "meta.dataset", "meta.platform", "meta.policy")
#: Workload columns: a design serves a workload, it cannot choose one, so wherever one of these
#: takes more than one value the fronts are drawn per value (a condition, like the batch size),
#: whatever the sweep's ``group_by``; never a design column of a front.
CONDITIONS = ("meta.model", "meta.dataset", "knob.context_len")
#: The knobs set away from their default that do not act at a point (the sweep's column).
INACTIVE = "meta.inactive_knobs"
#: What decides which knobs act at a point (:func:`elmoe_dse.knobs.inactive_knob_names`: the
#: platform, the policy and its draft, the cache), besides whether the point decodes plainly.
ACTING_KEY = ("meta.platform", "meta.policy", "meta.draft", "meta.cache_policy")
DRAFT_LENGTH = "metric.draft_length_tokens"
#: Baseline marker per system.
BASELINE_MARKERS: dict[str, str] = {
    "xpu": "X",
    "xpu-pim": "s",
    "xpu-logicpim": "D",
    "xpu-nmp": "^",
    "hb-xpu": "P",
}


@dataclass(frozen=True)
class Cloud:
    """Every design of one platform in a panel, thinned for drawing."""

    platform: str
    points: int
    energy_j_per_token: tuple[float, ...]
    throughput_tok_per_s: tuple[float, ...]
    #: Distinct HB capacities of the designs (GB), where the sweep varies it.
    hb_gb: tuple[float, ...] = ()

    @property
    def label(self) -> str:
        return style.designs_label(self.platform, self.hb_gb)


@dataclass(frozen=True)
class FrontPoint:
    """A distinct point of the front, its number, and the knobs of one design at it."""

    label: int
    shown: bool
    platform: str
    energy_j_per_token: float
    throughput_tok_per_s: float
    designs: int
    knobs: tuple[tuple[str, Any], ...]
    #: knob columns that do not act at this point (e.g. the draft knobs where it decodes plainly)
    inactive: tuple[str, ...] = ()


@dataclass(frozen=True)
class Baseline:
    """A baseline system at one workload of the panel."""

    system: str
    platform: str
    model: str
    dataset: str
    energy_j_per_token: float
    throughput_tok_per_s: float
    dominated: bool


@dataclass(frozen=True)
class Label:
    """A number (or a run of numbers, "3-5") written next to front points that sit together."""

    text: str
    energy_j_per_token: float
    throughput_tok_per_s: float


@dataclass(frozen=True)
class ParetoPanel:
    """One Pareto group: its batch size, any other group keys, its designs, front and baselines;
    the axis scales (``log`` where values span more than :data:`LOG_SPAN`) and the labels."""

    batch_size: float
    group: tuple[tuple[str, Any], ...]
    points: int
    clouds: tuple[Cloud, ...]
    front: tuple[FrontPoint, ...]
    baselines: tuple[Baseline, ...]
    labels: tuple[Label, ...]
    xscale: str
    yscale: str
    other_optimal: Cloud | None = None

    @property
    def title(self) -> str:
        return style.batch_label(self.batch_size)

    @property
    def group_title(self) -> str:
        """The other group keys as text (model display names), "" if none."""
        return ", ".join(_group_text(c, v) for c, v in self.group)


@dataclass(frozen=True)
class ParetoData:
    """Panels of one figure, and the columns the front table shows."""

    panels: tuple[ParetoPanel, ...]
    knob_columns: tuple[str, ...]


def _group_text(column: str, value: Any) -> str:
    if column == "meta.model":
        return style.model_label(str(value))
    if column == "knob.context_len":
        return f"context {float(value):g} tokens"
    return str(value)


def _num(value: Any) -> float:
    return float(value)


def _plain(value: Any, column: str) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return "auto" if column.startswith("knob.") else None
    return value


def varying_columns(frame: pd.DataFrame, exclude: Sequence[str]) -> tuple[str, ...]:
    """``knob.*`` and scenario columns that take more than one value (NaN = auto counts)."""
    cols = [c for c in frame.columns if c.startswith("knob.")] + [
        c for c in META_VARYING if c in frame.columns
    ]
    out = [c for c in cols if c not in exclude and frame[c].nunique(dropna=False) > 1]
    return tuple(out)


def thin(x: np.ndarray, y: np.ndarray, cells: int = THIN_CELLS) -> np.ndarray:
    """Indices of one point per occupied cell of a ``cells`` x ``cells`` log-log grid (the first
    in input order), sorted."""
    if x.size == 0:
        return np.zeros(0, dtype=int)
    lx, ly = np.log10(x), np.log10(y)

    def cell(v: np.ndarray) -> np.ndarray:
        lo, hi = float(v.min()), float(v.max())
        span = hi - lo if hi > lo else 1.0
        return np.minimum(((v - lo) / span * cells).astype(int), cells - 1)

    code = cell(lx) * cells + cell(ly)
    _, first = np.unique(code, return_index=True)
    return np.sort(first)


def label_positions(n: int, max_labels: int = MAX_LABELS) -> list[int]:
    """Positions 0..n-1 to label: evenly spread, both ends included."""
    if n <= max_labels:
        return list(range(n))
    return sorted({round(float(v)) for v in np.linspace(0, n - 1, max_labels)})


def scale_of(values: Sequence[float]) -> str:
    """``log`` if the positive values span more than :data:`LOG_SPAN`, else ``linear``."""
    v = [x for x in values if x > 0]
    return "log" if v and max(v) / min(v) > LOG_SPAN else "linear"


def _unit(values: np.ndarray, scale: str, lo: float, hi: float) -> np.ndarray:
    f = np.log10 if scale == "log" else (lambda a: a)
    span = f(hi) - f(lo)
    return (f(values) - f(lo)) / (span if span > 0 else 1.0)


def front_labels(
    front: Sequence[FrontPoint],
    *,
    xlim: tuple[float, float],
    ylim: tuple[float, float],
    xscale: str,
    yscale: str,
    max_labels: int = MAX_LABELS,
    separation: float = LABEL_SEPARATION,
) -> tuple[tuple[Label, ...], set[int]]:
    """Labels of the front and the numbers they cover.

    Consecutive front points within ``separation`` (in axes units, scale-aware) of a run's first
    point form one run, labelled "a" or "a-b" at its middle point; at most ``max_labels`` runs,
    evenly spread, are labelled.
    """
    if not front:
        return (), set()
    x = _unit(np.asarray([p.energy_j_per_token for p in front]), xscale, *xlim)
    y = _unit(np.asarray([p.throughput_tok_per_s for p in front]), yscale, *ylim)
    runs: list[list[int]] = []
    for i in range(len(front)):
        if runs and math.hypot(x[i] - x[runs[-1][0]], y[i] - y[runs[-1][0]]) < separation:
            runs[-1].append(i)
        else:
            runs.append([i])
    labels: list[Label] = []
    covered: set[int] = set()
    for r in (runs[k] for k in label_positions(len(runs), max_labels)):
        first, last, mid = front[r[0]], front[r[-1]], front[r[len(r) // 2]]
        text = str(first.label) if len(r) == 1 else f"{first.label}-{last.label}"
        labels.append(Label(text, mid.energy_j_per_token, mid.throughput_tok_per_s))
        covered.update(front[i].label for i in r)
    return tuple(labels), covered


def _acting_keys(frame: pd.DataFrame) -> np.ndarray | None:
    """Per row, what decides which knobs act there (:data:`ACTING_KEY` and whether the point
    decodes plainly) as one string; None without those columns."""
    if any(c not in frame.columns for c in ACTING_KEY):
        return None
    parts = [frame[c].astype(str).to_numpy(dtype=object) for c in ACTING_KEY]
    plain = (
        frame[DRAFT_LENGTH].to_numpy(dtype=float) <= 0
        if DRAFT_LENGTH in frame.columns
        else np.zeros(len(frame), dtype=bool)
    )
    key = parts[0]
    for part in [*parts[1:], np.where(plain, "plain", "draft").astype(object)]:
        key = key + "|" + part
    return np.asarray(key)


def idle_knobs(frame: pd.DataFrame) -> dict[str, frozenset[str]]:
    """Acting key (:func:`_acting_keys`) -> the knobs that do not act at any point of that key.

    The rule of :func:`elmoe_dse.knobs.inactive_knob_names` depends on the key alone; the
    sweep's column lists a knob only where it is set away from its default, so a knob listed at
    one point of a key is idle at every point of that key (at its default value too)."""
    if INACTIVE not in frame.columns:
        return {}
    # Only the distinct (key, listed knobs) pairs matter: the rows that hold them, not the table.
    decides = [c for c in (*ACTING_KEY, INACTIVE, DRAFT_LENGTH) if c in frame.columns]
    frame = frame.loc[~frame[decides].duplicated(), decides]
    keys = _acting_keys(frame)
    if keys is None:
        return {}
    names = frame[INACTIVE].astype(str).to_numpy(dtype=object)
    listed = names != ""
    out: dict[str, set[str]] = {}
    for key, text in set(zip(keys[listed], names[listed], strict=True)):
        out.setdefault(str(key), set()).update(n for n in str(text).split(",") if n)
    return {k: frozenset(v) for k, v in out.items()}


def _inactive(
    row: pd.Series, key: str | None, idle: dict[str, frozenset[str]], knob_columns: Sequence[str]
) -> tuple[str, ...]:
    names = set(idle.get(key, frozenset())) if key is not None else set()
    if INACTIVE in row.index:
        names.update(n for n in str(row[INACTIVE]).split(",") if n)
    return tuple(c for c in knob_columns if c.removeprefix("knob.") in names)


def _front(
    rows: pd.DataFrame,
    knob_columns: Sequence[str],
    idle: dict[str, frozenset[str]] | None = None,
) -> tuple[FrontPoint, ...]:
    loss = to_minimize(rows[[THROUGHPUT, ENERGY]].to_numpy(dtype=float), [-1.0, 1.0])
    front = rows.iloc[np.flatnonzero(pareto_mask(loss))]
    front = front.sort_values([ENERGY, THROUGHPUT], kind="stable")
    counts = front.groupby([ENERGY, THROUGHPUT], sort=False).size()
    distinct = front.drop_duplicates(subset=[ENERGY, THROUGHPUT])
    keys = _acting_keys(distinct)
    out = []
    for i, (_, row) in enumerate(distinct.iterrows()):
        key = None if keys is None else str(keys[i])
        energy, tput = _num(row[ENERGY]), _num(row[THROUGHPUT])
        out.append(
            FrontPoint(
                label=i + 1,
                shown=False,
                platform=str(row["meta.platform"]),
                energy_j_per_token=energy,
                throughput_tok_per_s=tput,
                designs=int(counts.loc[(energy, tput)]),
                knobs=tuple((c, _plain(row[c], c)) for c in knob_columns),
                inactive=_inactive(row, key, idle or {}, knob_columns),
            )
        )
    return tuple(out)


def _baselines(
    rows: pd.DataFrame, baselines: pd.DataFrame | None, front: tuple[FrontPoint, ...]
) -> tuple[Baseline, ...]:
    if baselines is None or baselines.empty or rows.empty:
        return ()
    batch = float(rows[BATCH].iloc[0])
    workloads = {
        (str(m), str(d), float(c))
        for m, d, c in zip(rows["meta.model"], rows["meta.dataset"], _context(rows), strict=True)
    }
    sel = baselines[baselines[BATCH] == batch]
    keep = [
        (str(m), str(d), float(c)) in workloads
        for m, d, c in zip(sel["meta.model"], sel["meta.dataset"], _context(sel), strict=True)
    ]
    sel = sel[np.asarray(keep, dtype=bool)] if len(sel) else sel
    front_loss = np.asarray(
        [[-p.throughput_tok_per_s, p.energy_j_per_token] for p in front], dtype=float
    ).reshape(-1, 2)
    out = []
    for _, row in sel.iterrows():
        tput, energy = _num(row[THROUGHPUT]), _num(row[ENERGY])
        mask = pareto_mask(np.vstack([front_loss, [[-tput, energy]]]))
        out.append(
            Baseline(
                system=str(row["meta.system"]),
                platform=str(row["meta.platform"]),
                model=str(row["meta.model"]),
                dataset=str(row["meta.dataset"]),
                energy_j_per_token=energy,
                throughput_tok_per_s=tput,
                dominated=not bool(mask[-1]),
            )
        )
    return tuple(out)


def _context(frame: pd.DataFrame) -> np.ndarray:
    if "knob.context_len" in frame.columns:
        return frame["knob.context_len"].to_numpy(dtype=float)
    return np.full(len(frame), np.nan)


def workloads(frame: pd.DataFrame) -> list[tuple[str, str, float]]:
    """Distinct (model, dataset, context length) of a results table, sorted."""
    ctx = _context(frame)
    found = {
        (str(m), str(d), float(c))
        for m, d, c in zip(frame["meta.model"], frame["meta.dataset"], ctx, strict=True)
    }
    return sorted(found)


def _clouds(rows: pd.DataFrame, thin_cells: int) -> list[Cloud]:
    """Every design of a panel per platform, thinned for drawing."""
    clouds = []
    for platform, prow in rows.groupby("meta.platform", sort=True, observed=True):
        x = prow[ENERGY].to_numpy(dtype=float)
        y = prow[THROUGHPUT].to_numpy(dtype=float)
        idx = thin(x, y, thin_cells)
        hb = "knob.hb_capacity_gb"
        hb_gb = tuple(sorted(set(prow[hb].dropna().astype(float)))) if hb in prow else ()
        clouds.append(
            Cloud(
                platform=str(platform),
                points=row_count(prow),
                energy_j_per_token=tuple(x[idx].tolist()),
                throughput_tok_per_s=tuple(y[idx].tolist()),
                hb_gb=hb_gb,
            )
        )
    return clouds


def _other_optimal(
    rows: pd.DataFrame, front: Sequence[FrontPoint], thin_cells: int
) -> Cloud | None:
    """Designs the sweep flags Pareto-optimal (under all its objectives) off this 2-D front."""
    if SWEEP_PARETO not in rows.columns:
        return None
    on_front = {(p.energy_j_per_token, p.throughput_tok_per_s) for p in front}
    flagged = rows[rows[SWEEP_PARETO].to_numpy(dtype=bool)]
    x = flagged[ENERGY].to_numpy(dtype=float)
    y = flagged[THROUGHPUT].to_numpy(dtype=float)
    off = np.asarray([(a, b) not in on_front for a, b in zip(x, y, strict=True)], dtype=bool)
    if not off.any():
        return None
    idx = thin(x[off], y[off], thin_cells)
    return Cloud("", int(off.sum()), tuple(x[off][idx].tolist()), tuple(y[off][idx].tolist()))


#: A column of row positions, beside the panel keys while grouping.
_POSITION = "__position"


def pareto_data(
    frame: pd.DataFrame,
    *,
    group_columns: Sequence[str] = (BATCH,),
    baselines: pd.DataFrame | None = None,
    max_labels: int = MAX_LABELS,
    thin_cells: int = THIN_CELLS,
) -> list[ParetoData]:
    """Pareto panels of a results table, one :class:`ParetoData` (figure) per value of the group
    keys other than the batch size.

    Args:
        frame: results rows (``meta.*``, ``knob.batch_size``, the two metric columns).
        group_columns: the sweep's Pareto groups (``knob.batch_size`` is added if absent, and
            every :data:`CONDITIONS` column that varies: fronts are per workload).
        baselines: rows like ``reproduce``'s systems table (``meta.system``, ``meta.platform``,
            ``meta.model``, ``meta.dataset``, ``knob.batch_size``, ``knob.context_len``, the two
            metrics) to mark on panels of the same batch size and workloads.
        max_labels: front points numbered per panel.
        thin_cells: cells per axis of the thinning grid.
    """
    groups = [c for c in group_columns if c != BATCH]
    groups += [
        c
        for c in CONDITIONS
        if c in frame.columns and c not in groups and frame[c].nunique(dropna=False) > 1
    ]
    knob_columns = varying_columns(frame, exclude=[BATCH, *groups])
    idle = idle_knobs(frame)
    figures: dict[tuple[Any, ...], list[ParetoPanel]] = {}
    drawn = drawn_rows(frame)
    # Grouped by the key columns alone: each panel's rows are taken from the table, never a
    # copy of the whole drawable table (a 10 M point sweep's reduced table is 1.2 M rows).
    keys = frame.loc[drawn, [*groups, BATCH]]
    keys[_POSITION] = np.flatnonzero(drawn)
    for key, at in keys.groupby([*groups, BATCH], sort=True, observed=True):
        rows = frame.iloc[at[_POSITION].to_numpy()]
        key_t: tuple[Any, ...] = key if isinstance(key, tuple) else (key,)
        other = tuple((c, _plain(v, c)) for c, v in zip(groups, key_t[:-1], strict=True))
        clouds = _clouds(rows, thin_cells)
        front = _front(rows, knob_columns, idle)
        marks = _baselines(rows, baselines, front)
        xs = [v for c in clouds for v in c.energy_j_per_token] + [
            b.energy_j_per_token for b in marks
        ]
        ys = [v for c in clouds for v in c.throughput_tok_per_s] + [
            b.throughput_tok_per_s for b in marks
        ]
        xscale, yscale = scale_of(xs), scale_of(ys)
        labels, covered = front_labels(
            front,
            xlim=(min(xs), max(xs)),
            ylim=(min(ys), max(ys)),
            xscale=xscale,
            yscale=yscale,
            max_labels=max_labels,
        )
        front = tuple(replace(p, shown=p.label in covered) for p in front)
        extra_optimal = _other_optimal(rows, front, thin_cells)
        panel = ParetoPanel(
            batch_size=float(key_t[-1]),
            group=other,
            points=row_count(rows),
            clouds=tuple(clouds),
            front=front,
            baselines=marks,
            labels=labels,
            xscale=xscale,
            yscale=yscale,
            other_optimal=extra_optimal,
        )
        figures.setdefault(tuple(v for _, v in other), []).append(panel)
    return [ParetoData(tuple(panels), knob_columns) for panels in figures.values()]


def front_table(data: ParetoData) -> list[dict[str, Any]]:
    """Rows of the companion table: every distinct front point with its number and knobs (SI)."""
    rows = []
    for panel in data.panels:
        for p in panel.front:
            rows.append(
                {
                    BATCH: panel.batch_size,
                    **dict(panel.group),
                    "label": p.label,
                    "shown": p.shown,
                    "meta.platform": p.platform,
                    THROUGHPUT: p.throughput_tok_per_s,
                    ENERGY: p.energy_j_per_token,
                    "designs": p.designs,
                    **dict(p.knobs),
                    "inactive": ",".join(c.removeprefix("knob.") for c in p.inactive),
                }
            )
    return rows


def caption(data: ParetoData) -> str:
    """What to read: the front's span per batch and how many baselines it dominates."""
    parts = []
    for panel in data.panels:
        if not panel.front:
            continue
        e = [p.energy_j_per_token for p in panel.front]
        t = [p.throughput_tok_per_s for p in panel.front]
        n = len(panel.front)
        text = f"{style.batch_label(panel.batch_size)}: {n} front point{'s' if n > 1 else ''}, "
        text += f"{_span(t, 1.0)} tok/s at {_span(e, 1e3)} mJ/token"
        if panel.baselines:
            dom = sum(b.dominated for b in panel.baselines)
            text += f", dominating {dom} of {len(panel.baselines)} baseline points"
        if panel.other_optimal is not None:
            text += (
                f" ({panel.other_optimal.points} more designs are Pareto-optimal under the "
                "sweep's further objectives: hollow)"
            )
        parts.append(text)
    return "; ".join(parts) + "."


def _span(values: Sequence[float], scale: float) -> str:
    lo, hi = f"{min(values) * scale:.3g}", f"{max(values) * scale:.3g}"
    return lo if lo == hi else f"{lo}-{hi}"


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------


def draw_pareto_panel(panel: ParetoPanel, ax: Axes | None = None) -> Axes:
    """Draw one panel: cloud, front with numbers, baselines. Returns the Axes."""
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.6).add_subplot()
    for cloud in panel.clouds:
        ax.scatter(
            np.asarray(cloud.energy_j_per_token) * 1e3,
            cloud.throughput_tok_per_s,
            s=3,
            color=style.tint(style.platform_color(cloud.platform), 0.3),
            alpha=0.45,
            linewidths=0,
            rasterized=True,
            label=cloud.label,
            zorder=1,
        )
    if panel.other_optimal is not None:
        ax.scatter(
            np.asarray(panel.other_optimal.energy_j_per_token) * 1e3,
            panel.other_optimal.throughput_tok_per_s,
            s=10,
            facecolors="none",
            edgecolors="0.25",
            linewidths=0.5,
            zorder=2,
            label="optimal under all the sweep's objectives",
        )
    if panel.front:
        fx = np.asarray([p.energy_j_per_token for p in panel.front]) * 1e3
        fy = np.asarray([p.throughput_tok_per_s for p in panel.front])
        ax.plot(fx, fy, color="0.15", lw=0.9, zorder=3, label="Pareto front", drawstyle="default")
        ax.scatter(
            fx,
            fy,
            s=14,
            c=[style.platform_color(p.platform) for p in panel.front],
            edgecolors="0.1",
            linewidths=0.5,
            zorder=4,
        )
        for label in panel.labels:
            ax.annotate(
                label.text,
                (label.energy_j_per_token * 1e3, label.throughput_tok_per_s),
                xytext=(4, 2),
                textcoords="offset points",
                ha="left",
                va="bottom",
                fontsize=6,
                fontweight="bold",
                color="0.1",
                zorder=6,
            )
    seen: set[str] = set()
    for b in panel.baselines:
        ax.scatter(
            b.energy_j_per_token * 1e3,
            b.throughput_tok_per_s,
            s=30,
            marker=BASELINE_MARKERS.get(b.system, "o"),
            color=style.platform_color(b.platform),
            edgecolors="0.1",
            linewidths=0.5,
            zorder=5,
            label=None if b.system in seen else style.system_label(b.system),
        )
        seen.add(b.system)
    ax.set_xscale(panel.xscale)
    ax.set_yscale(panel.yscale)
    style.plain_log_ticks(ax)
    ax.set_title(panel.title)
    ax.set_xlabel("energy per token (mJ)")
    ax.set_ylabel("throughput (tokens/s)")
    return ax


#: Panels across the page at most: more leave no room for their axis labels (16 batch sizes
#: give 4 rows of 4).
MAX_PANEL_COLUMNS = 4


def pareto_figure(data: ParetoData) -> Figure:
    """All panels of one figure in a row (two rows above three panels, more rows above eight:
    at most :data:`MAX_PANEL_COLUMNS` across the page), a shared legend below."""
    n = len(data.panels)
    cols = n if n <= 3 else min(math.ceil(n / 2), MAX_PANEL_COLUMNS)
    rows = math.ceil(n / cols)
    width = style.COLUMN_WIDTH_IN if n == 1 else style.PAGE_WIDTH_IN
    fig = style.new_figure(width, 2.3 * rows + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, panel in zip(axes.flat, data.panels, strict=False):
        draw_pareto_panel(panel, ax)
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    if data.panels and data.panels[0].group_title:
        fig.suptitle(data.panels[0].group_title, fontsize=style.RC["axes.titlesize"] + 0.5)
    from matplotlib.lines import Line2D

    handles: dict[str, Any] = {}
    for ax in axes.flat[:n]:
        for h, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, h)
    for cloud in (c for panel in data.panels for c in panel.clouds):
        # the cloud's own markers are too small to read in a legend
        handles[cloud.label] = Line2D(
            [],
            [],
            ls="",
            marker="o",
            markersize=4,
            markeredgewidth=0,
            color=style.tint(style.platform_color(cloud.platform), 0.3),
        )
    fig.legend(
        list(handles.values()),
        list(handles.keys()),
        loc="outside lower center",
        ncol=min(len(handles), 4),
    )
    return fig
