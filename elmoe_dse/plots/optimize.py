"""Optimize runs: hypervolume over trials, and Optuna parameter importances per objective.

Data: :func:`hypervolume_data` (pure) reads the per-study records ``elmoe-dse optimize`` writes in
``run.json`` (``studies[*].hypervolume_history``, normalized by the grid front when the grid was
enumerated, with its hypervolume ``grid_hypervolume`` as the line to reach).
:func:`importance_data` (pure) turns per-study, per-objective importances into the numbers drawn;
:func:`study_importances` computes them from the Optuna storage with the PED-ANOVA evaluator
(Optuna's evaluator that needs no scikit-learn), over the feasible trials with finite objectives.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.plots import style

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Colours of objectives in the importance bars (Tol "muted", not a platform colour).
OBJECTIVE_COLORS = ("#332288", "#88CCEE", "#DDCC77", "#CC6677", "#44AA99")


def group_label(group: Mapping[str, Any]) -> str:
    """A study's group as text: ``B = 4``, or ``model=..., B = 4``."""
    parts = []
    for col, value in group.items():
        if col == "knob.batch_size":
            parts.append(style.batch_label(float(value)))
        elif col.startswith("meta."):
            parts.append(str(value))  # a model, platform or dataset id names itself
        else:
            parts.append(f"{col.split('.', 1)[-1]}={value}")
    return ", ".join(parts) or "all"


@dataclass(frozen=True)
class HypervolumeLine:
    """One study: the normalized hypervolume after each completed trial."""

    study: str
    label: str
    hypervolume: tuple[float, ...]
    grid_hypervolume: float | None
    normalization: str


@dataclass(frozen=True)
class HypervolumeData:
    lines: tuple[HypervolumeLine, ...]


def hypervolume_data(studies: Sequence[Mapping[str, Any]]) -> HypervolumeData:
    """Lines of the studies that have a hypervolume history (``run.json`` ``studies``)."""
    lines = []
    for s in studies:
        history = s.get("hypervolume_history")
        if not history:
            continue
        grid = s.get("grid_hypervolume")
        lines.append(
            HypervolumeLine(
                study=str(s.get("study", "")),
                label=group_label(s.get("group") or {}),
                hypervolume=tuple(float(h) for h in history),
                grid_hypervolume=None if grid is None else float(grid),
                normalization=str(s.get("normalization", "")),
            )
        )
    return HypervolumeData(tuple(lines))


def hypervolume_caption(data: HypervolumeData) -> str:
    parts = []
    for line in data.lines:
        n = len(line.hypervolume)
        final = line.hypervolume[-1]
        text = f"{line.label}: {final:.3g} after {n} trials"
        if line.grid_hypervolume:
            text += f" ({final / line.grid_hypervolume:.0%} of the exhaustive grid's front"
            reach = next(
                (i + 1 for i, h in enumerate(line.hypervolume) if h >= 0.9 * line.grid_hypervolume),
                None,
            )
            text += f", 90 % reached at trial {reach})" if reach else ", 90 % not reached)"
        parts.append(text)
    return "; ".join(parts) + "."


#: Above this many studies the hypervolume plot draws thin unlabelled lines and their median.
MAX_LABELLED_STUDIES = 6


def draw_hypervolume(data: HypervolumeData, ax: Axes | None = None) -> Axes:
    """Hypervolume vs completed trials per study.

    Where every study knows its exhaustive grid's front, each curve is drawn as a fraction of it
    (1 = the grid's front reached), so studies of different groups share one scale; otherwise the
    normalized hypervolume is drawn with the grid's value dashed. Many studies are drawn thin,
    unlabelled, with their median bold.
    """
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.4).add_subplot()
    base = style.platform_color("elmoe3d-8g")
    n = len(data.lines)
    as_fraction = n > 0 and all(line.grid_hypervolume for line in data.lines)
    many = n > MAX_LABELLED_STUDIES
    curves = []
    for k, line in enumerate(data.lines):
        y = np.asarray(line.hypervolume, dtype=float)
        if as_fraction:
            y = y / float(line.grid_hypervolume or 1.0)
        curves.append(y)
        color = style.tint(base, 0.65 * (1 - k / max(n - 1, 1))) if n > 1 else base
        x = np.arange(1, len(y) + 1)
        if many:
            ax.step(x, y, where="post", color=style.tint(base, 0.55), lw=0.6)
        else:
            ax.step(x, y, where="post", color=color, label=line.label)
            if line.grid_hypervolume is not None and not as_fraction:
                ax.axhline(line.grid_hypervolume, color=color, lw=0.8, ls=(0, (4, 2)))
    if many:
        length = min(len(c) for c in curves)
        median = np.median(np.stack([c[:length] for c in curves]), axis=0)
        ax.step(
            np.arange(1, length + 1),
            median,
            where="post",
            color=base,
            lw=1.8,
            label=f"median of {n} studies (thin: each study)",
        )
    ax.set_xlabel("completed trials")
    if as_fraction:
        ax.axhline(1.0, color="0.3", lw=0.8, ls=(0, (4, 2)), label="exhaustive grid's front")
        ax.set_ylabel("hypervolume / grid's")
        ax.set_ylim(0, 1.05)
    else:
        ax.set_ylabel("hypervolume (normalized)")
        ax.set_ylim(bottom=0)
        if any(line.grid_hypervolume is not None for line in data.lines):
            ax.plot([], [], color="0.3", lw=0.8, ls=(0, (4, 2)), label="exhaustive grid's front")
    ax.legend(loc="lower right")
    return ax


def hypervolume_figure(data: HypervolumeData) -> Figure:
    fig = style.new_figure(style.COLUMN_WIDTH_IN, 2.5)
    draw_hypervolume(data, fig.add_subplot())
    return fig


# ----------------------------------------------------------------------------------------------
# Importances
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportancePanel:
    """One study: importance (0-1, summing to 1 per objective) of each searched parameter."""

    label: str
    objectives: tuple[str, ...]
    params: tuple[str, ...]
    importance: tuple[tuple[float, ...], ...]


@dataclass(frozen=True)
class ImportanceData:
    panels: tuple[ImportancePanel, ...]


def importance_data(
    studies: Sequence[tuple[str, Mapping[str, Mapping[str, float]]]],
) -> ImportanceData:
    """Panels from (label, {objective: {param: importance}}); params ordered by their largest
    importance over the objectives (most important first)."""
    panels = []
    for label, per_objective in studies:
        objectives = tuple(per_objective)
        params = sorted(
            {p for imp in per_objective.values() for p in imp},
            key=lambda p: (-max(per_objective[o].get(p, 0.0) for o in objectives), p),
        )
        values = tuple(
            tuple(float(per_objective[o].get(p, 0.0)) for p in params) for o in objectives
        )
        panels.append(ImportancePanel(label, objectives, tuple(params), values))
    return ImportanceData(tuple(panels))


def importance_caption(data: ImportanceData) -> str:
    parts = []
    for panel in data.panels:
        tops = []
        for o, values in zip(panel.objectives, panel.importance, strict=True):
            if values:
                i = int(np.argmax(values))
                tops.append(f"{_objective_label(o)}: {panel.params[i]} ({values[i]:.0%})")
        parts.append(f"{panel.label}: " + ", ".join(tops))
    return "most important knob per objective: " + "; ".join(parts) + "."


def _objective_label(column: str) -> str:
    name = column.split(".", 1)[-1]
    for suffix in ("_tok_per_s", "_j", "_s", "_gb", "_frac"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.replace("_", " ")


def draw_importance_panel(panel: ImportancePanel, ax: Axes | None = None) -> Axes:
    """Horizontal grouped bars: one group per parameter, one bar per objective."""
    if ax is None:
        ax = style.new_figure(style.COLUMN_WIDTH_IN, 2.2).add_subplot()
    n = max(len(panel.objectives), 1)
    height = 0.8 / n
    y = np.arange(len(panel.params))
    for k, (o, values) in enumerate(zip(panel.objectives, panel.importance, strict=True)):
        ax.barh(
            y - 0.4 + height * (k + 0.5),
            values,
            height,
            color=OBJECTIVE_COLORS[k % len(OBJECTIVE_COLORS)],
            label=_objective_label(o),
        )
    ax.set_yticks(y, [p.replace("_", " ") for p in panel.params])
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.5, 1], ["0", "0.5", "1"])
    ax.set_xlabel("importance (share)")
    ax.set_title(panel.label)
    ax.grid(axis="y", visible=False)
    return ax


def importance_figure(data: ImportanceData) -> Figure:
    n = len(data.panels)
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    width = style.COLUMN_WIDTH_IN if cols == 1 else style.PAGE_WIDTH_IN
    height = max(1.2, 0.22 * max((len(p.params) for p in data.panels), default=3) + 0.8)
    fig = style.new_figure(width, height * rows + 0.35)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True)
    for ax, panel in zip(axes.flat, data.panels, strict=False):
        draw_importance_panel(panel, ax)
    for i, ax in enumerate(axes.flat):
        if i + cols < n:  # a panel below shares this axis: its label says it once
            ax.set_xlabel("")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="outside lower center",
        ncol=len(labels),
        title="PED-ANOVA importance of each searched knob, per objective",
    )
    return fig


def _feasible(trial: Any) -> bool:
    constraints = [v for k, v in trial.system_attrs.items() if k.startswith("constraints")]
    flat: list[float] = []
    for v in constraints:
        flat.extend(v if isinstance(v, list | tuple) else [v])
    return all(float(v) <= 0.0 for v in flat)


def _target(index: int, sign: float) -> Callable[[Any], float]:
    """The ``index``-th objective of a trial times ``sign``."""

    def target(trial: Any) -> float:
        return sign * float(trial.values[index])

    return target


def study_importances(
    storage_url: str, studies: Sequence[Mapping[str, Any]], objectives: Sequence[str]
) -> list[tuple[str, dict[str, dict[str, float]]]]:
    """Per study (``run.json`` records), PED-ANOVA importances per objective, computed over its
    feasible COMPLETE trials with finite objectives (studies with fewer than 4 such trials are
    left out)."""
    import optuna
    from optuna.study import StudyDirection
    from optuna.trial import TrialState

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    out = []
    for s in studies:
        study = optuna.load_study(study_name=str(s["study"]), storage=storage_url)
        trials = [
            t
            for t in study.get_trials(deepcopy=False)
            if t.state == TrialState.COMPLETE
            and t.values is not None
            and all(math.isfinite(v) for v in t.values)
            and _feasible(t)
        ]
        if len(trials) < 4 or not trials[0].params:
            continue
        clean = optuna.create_study(directions=study.directions)
        clean.add_trials(trials)
        per_objective: dict[str, dict[str, float]] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for i, objective in enumerate(objectives):
                # PED-ANOVA ranks low targets best: maximized objectives are negated
                sign = -1.0 if study.directions[i] == StudyDirection.MAXIMIZE else 1.0
                imp = optuna.importance.get_param_importances(
                    clean,
                    evaluator=optuna.importance.PedAnovaImportanceEvaluator(),
                    target=_target(i, sign),
                )
                per_objective[objective] = {k: float(v) for k, v in imp.items()}
        out.append((group_label(s.get("group") or {}), per_objective))
    return out
