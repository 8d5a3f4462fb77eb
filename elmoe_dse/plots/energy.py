"""Energy breakdown of a decode step: stacked bars of HB read, LPDDR read, writes, compute, link
and static energy, per generated token (the step's energy over the tokens it commits, so plain and
speculative systems compare on the same footing; the shares are those of the step).

Data (:func:`energy_data`, pure, on a results-like table): every ``metric.energy_<key>_per_step_j``
column divided by ``metric.tokens_per_step``, grouped into components (writes of every tier add
up; each tier's reads stay apart), one stack per row, panels and bars named by the table's
``plot.panel`` and ``plot.bar`` columns. :func:`reproduce_rows` and :func:`sweep_rows` make such
tables from the run's figure table ``figure_energy.parquet`` (computed when the run is written,
:mod:`elmoe_dse.explore.figure_tables`): a reproduce run's systems with their energy components
(its systems table holds none), a sweep's fastest and lowest-energy designs read from its table
plus the baselines at the same workload.

Drawing (:func:`draw_energy_panel`, :func:`energy_figure`): one stacked bar per system,
component colours from :mod:`elmoe_dse.plots.style`, bar labels coloured by platform.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.plots import style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

ENERGY_COLUMN = re.compile(r"^metric\.energy_(?P<key>[a-z0-9_]+)_per_step_j$")
PANEL = "plot.panel"
BAR = "plot.bar"
TOKENS = "metric.tokens_per_step"


@dataclass(frozen=True)
class Stack:
    """One bar: its label, platform and policy, and energy per token by component (J)."""

    label: str
    platform: str
    policy: str
    components: tuple[tuple[str, float], ...]

    @property
    def total_j(self) -> float:
        return sum(v for _, v in self.components)

    def share(self, component: str) -> float:
        """The component's share of the total (0-1)."""
        total = self.total_j
        return dict(self.components).get(component, 0.0) / total if total > 0 else 0.0


@dataclass(frozen=True)
class EnergyPanel:
    title: str
    stacks: tuple[Stack, ...]


@dataclass(frozen=True)
class EnergyData:
    """Panels in table order and the components present, in stacking order."""

    panels: tuple[EnergyPanel, ...]
    components: tuple[str, ...]


def component_columns(columns: Iterable[str]) -> dict[str, list[str]]:
    """Energy columns of a table grouped by component, in stacking order."""
    groups: dict[str, list[str]] = {}
    for col in columns:
        m = ENERGY_COLUMN.match(col)
        if m:
            groups.setdefault(style.component_of(m["key"]), []).append(col)
    return {c: groups[c] for c in sorted(groups, key=style.component_rank)}


def energy_data(frame: pd.DataFrame) -> EnergyData:
    """Stacks of energy per token by component, one per row (see the module docstring)."""
    groups = component_columns(frame.columns)
    tokens = frame[TOKENS].to_numpy(dtype=float)
    per_token = {
        c: frame[cols].to_numpy(dtype=float).sum(axis=1) / tokens for c, cols in groups.items()
    }
    present = tuple(c for c, v in per_token.items() if np.any(v > 0))
    panels: dict[str, list[Stack]] = {}
    for i, (panel, bar, platform, policy) in enumerate(
        zip(frame[PANEL], frame[BAR], frame["meta.platform"], frame["meta.policy"], strict=True)
    ):
        stack = Stack(
            str(bar),
            str(platform),
            str(policy),
            tuple((c, float(per_token[c][i])) for c in present),
        )
        panels.setdefault(str(panel), []).append(stack)
    return EnergyData(tuple(EnergyPanel(t, tuple(s)) for t, s in panels.items()), present)


def caption(data: EnergyData) -> str:
    """What to read: which bar is lowest most often (and where not), which is highest, and the
    largest component of the lowest bars and of the rest."""
    panels = [p for p in data.panels if p.stacks]
    if not panels:
        return "No bars."
    lows = [min(p.stacks, key=lambda s: s.total_j) for p in panels]
    highs = [max(p.stacks, key=lambda s: s.total_j) for p in panels]
    winner, wins = Counter(s.label for s in lows).most_common(1)[0]
    text = f"lowest energy per token: {winner} in {wins} of {len(panels)} panels"
    others = [
        f"{s.label} in {p.title}" for s, p in zip(lows, panels, strict=True) if s.label != winner
    ]
    if others:
        text += f" ({'; '.join(others)})"
    text += "; highest: " + ", ".join(
        f"{label} in {n}" for label, n in Counter(s.label for s in highs).most_common()
    )

    def main(s: Stack) -> str:
        return max(data.components, key=s.share)

    win_main = Counter(main(s) for p in panels for s in p.stacks if s.label == winner)
    rest = [s for p in panels for s in p.stacks if s.label != winner]
    rest_main = Counter(main(s) for s in rest)
    text += f"; largest component of the {winner} bars: " + ", ".join(
        f"{style.component_label(c)} in {n}" for c, n in win_main.most_common()
    )
    if rest_main:
        c, n = rest_main.most_common(1)[0]
        shares = [s.share(c) for s in rest if main(s) == c]
        text += (
            f"; of the other bars: {style.component_label(c)} in {n} of {len(rest)} "
            f"({min(shares):.0%}-{max(shares):.0%} of their energy)"
        )
    return text + "."


def _num(value: Any) -> float:
    return float(value)


# ----------------------------------------------------------------------------------------------
# Tables of bars
# ----------------------------------------------------------------------------------------------


def _metrics(row: pd.Series) -> dict[str, float]:
    """The ``metric.*`` values a figure-table row holds (a component its platform lacks is
    absent)."""
    return {str(k): float(v) for k, v in row.items() if str(k).startswith("metric.") and v == v}


def reproduce_rows(
    table: pd.DataFrame,
    systems: pd.DataFrame,
    *,
    model_order: Sequence[str] = (),
    system_order: Sequence[str] = (),
) -> tuple[pd.DataFrame, float]:
    """Bars of ``figure_energy.parquet`` (a reproduce run's systems at two batch sizes), by batch,
    model and system; and the largest relative throughput difference from the run's systems
    table (0 when the figure table was computed with the run's numbers)."""
    import pandas as pd

    from elmoe_dse.plots.speedup import model_order as order_models
    from elmoe_dse.plots.speedup import system_order as order_systems

    keys = ["meta.model", "meta.dataset", "meta.system", "knob.batch_size"]
    ran = systems.set_index(keys)["metric.throughput_tok_per_s"]
    order = {
        s: i for i, s in enumerate(order_systems(list(table["meta.system"].unique()), system_order))
    }
    models = order_models(list(table["meta.model"].unique()), model_order)
    rows: list[dict[str, Any]] = []
    drift = 0.0
    for _, r in table.iterrows():
        row: dict[str, Any] = _metrics(r)
        key = tuple(r[k] for k in keys)
        if key in ran.index:
            drift = max(drift, abs(row["metric.throughput_tok_per_s"] / float(ran[key]) - 1.0))
        row.update(
            {
                PANEL: f"{style.model_label(str(r['meta.model']))}, "
                f"{style.batch_label(float(r['knob.batch_size']))}",
                BAR: style.system_label(str(r["meta.system"])),
                "meta.system": str(r["meta.system"]),
                "knob.batch_size": float(r["knob.batch_size"]),
                "meta.platform": str(r["meta.platform"]),
                "meta.policy": str(r["meta.policy"]),
                "sort": (
                    float(r["knob.batch_size"]),
                    models.index(str(r["meta.model"])),
                    order[str(r["meta.system"])],
                ),
            }
        )
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame = frame.sort_values("sort", kind="stable").drop(columns="sort")
    return frame.fillna({c: 0.0 for c in frame.columns if c.startswith("metric.")}), drift


def sweep_rows(frame: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """Per batch size: the fastest and the lowest-energy design (read from the table) and the
    baselines at the fastest design's workload (``figure_energy.parquet``)."""
    import pandas as pd

    from elmoe_dse.plots.inputs import best_row

    rows: list[dict[str, Any]] = []
    metric_cols = [c for c in frame.columns if ENERGY_COLUMN.match(c)] + [TOKENS]
    for batch, group in frame.groupby("knob.batch_size", sort=True, observed=True):
        fast = best_row(group, "metric.throughput_tok_per_s")
        lean = best_row(group, "metric.energy_per_token_j", largest=False)
        panel = style.batch_label(_num(batch))
        for label, r in (("front: fastest", fast), ("front: least energy", lean)):
            rows.append(
                {
                    PANEL: panel,
                    BAR: label,
                    "meta.platform": str(r["meta.platform"]),
                    "meta.policy": str(r["meta.policy"]),
                    **{c: _num(r[c]) for c in metric_cols},
                }
            )
        for _, b in baselines[baselines["knob.batch_size"] == _num(batch)].iterrows():
            rows.append(
                {
                    PANEL: panel,
                    BAR: style.system_label(str(b["meta.system"])),
                    "meta.platform": str(b["meta.platform"]),
                    "meta.policy": str(b["meta.policy"]),
                    **_metrics(b),
                }
            )
    out = pd.DataFrame(rows)
    return out.fillna({c: 0.0 for c in out.columns if c.startswith("metric.")})


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------


def draw_energy_panel(
    panel: EnergyPanel, components: Sequence[str], ax: Axes | None = None
) -> Axes:
    """Stacked bars (mJ per token) of one panel; tick labels coloured by platform."""
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.4).add_subplot()
    x = np.arange(len(panel.stacks))
    bottom = np.zeros(len(panel.stacks))
    for c in components:
        values = np.asarray([dict(s.components).get(c, 0.0) for s in panel.stacks]) * 1e3
        ax.bar(
            x,
            values,
            0.75,
            bottom=bottom,
            color=style.component_color(c),
            edgecolor="white",
            linewidth=0.3,
            label=style.component_label(c),
        )
        bottom += values
    ax.set_xticks(
        x, [s.label for s in panel.stacks], rotation=55, ha="right", rotation_mode="anchor"
    )
    for tick, s in zip(ax.get_xticklabels(), panel.stacks, strict=True):
        tick.set_color(style.text_color(style.platform_color(s.platform)))
    ax.set_title(panel.title)
    ax.grid(axis="x", visible=False)
    return ax


def energy_figure(
    data: EnergyData, *, columns: int | None = None, share_rows: bool = True
) -> Figure:
    """Panels in a grid (``columns`` wide; default: up to 4), a shared component legend below;
    panels of a row share their energy axis if ``share_rows``."""
    n = len(data.panels)
    cols = columns or min(n, 4)
    rows = math.ceil(n / cols)
    width = style.COLUMN_WIDTH_IN if cols == 1 else style.PAGE_WIDTH_IN
    fig = style.new_figure(width, 2.1 * rows + 0.45)
    axes = fig.subplots(rows, cols, squeeze=False, sharey="row" if share_rows else "none")
    for i, panel in enumerate(data.panels):
        ax = axes.flat[i]
        draw_energy_panel(panel, data.components, ax)
        if i % cols == 0 or not share_rows:
            ax.set_ylabel("energy per token (mJ)")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels))
    return fig
