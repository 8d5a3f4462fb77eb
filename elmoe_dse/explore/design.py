"""Fronts over hardware designs: the best run-time setting per condition, aggregated over them.

A chip is built once and must serve every operating condition; only its run-time knobs change
between them. A sweep file's ``[design]`` section (:class:`~elmoe_dse.specs.sweep.DesignSection`)
gives each varying axis one role:

- **hardware** knobs (``hb_capacity_gb``, ``pe_count``), with the platform, name a *design*;
- **run-time** knobs (``draft_length``, ``draft_bits``, ``pool_experts``, ``rounding``,
  ``mode_threshold``) are chosen per design and condition;
- **conditions** (``model``, ``dataset``, ``batch_size``, ``context_len``) are what a design
  must serve; ``group_by`` conditions split the fronts (one front per value), the others are
  aggregated.

The whole grid is evaluated exhaustively by the vectorized evaluator, chunk by chunk
(:func:`~elmoe_dse.explore.sweep.kept_blocks`: points dropped by feasibility, objectives or
constraints are counted by reason). Per (group, design, condition) the kept point that is best in
``select`` (ties: the objectives in order, then grid order) is the design's run-time setting
there; only these rows are kept between chunks. A design then gets its metrics aggregated over
its conditions (``mean``, ``geomean`` or ``worst``: the lowest of a higher-is-better metric, the
highest of the others); a design that cannot serve a condition (every run-time setting dropped
there) is dropped, counted by reason. The design cost columns (``metric.static_power_w``,
``metric.logic_area_mm2``, ``metric.cost_usd``) do not depend on the condition. ``meta.pareto``
marks each group's Pareto-optimal designs under the sweep's objectives.

Outputs (:func:`save_design`): ``results.parquet`` (one row per design and group),
``conditions.parquet`` (the chosen run-time setting and its metrics per design and condition),
``fronts.parquet`` (the Pareto-optimal designs) and ``run.json``. The dataset is a condition,
never a design column.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    DESIGN_COST_COLUMNS,
    HIT_RATE_FRAC,
    METRIC,
    PLATFORM,
    TAU_TOKENS,
    THROUGHPUT_TOK_PER_S,
    TOKENS_PER_STEP,
)
from elmoe_dse.explore.grid import CHUNK_POINTS, expand
from elmoe_dse.explore.pareto import to_minimize
from elmoe_dse.explore.sweep import (
    _ZERO_WHEN_ABSENT,
    PARETO_COLUMN,
    ParetoGroup,
    Progress,
    Tally,
    group_indices,
    kept_blocks,
    pareto_column,
    run_record,
)
from elmoe_dse.results import RESULTS_FILE, RUN_FILE, in_stage, staged_run, write_json, write_table
from elmoe_dse.specs.sweep import DesignSection, SweepSpec, axis_column, resolve_axis

if TYPE_CHECKING:
    import pandas as pd

CONDITIONS_FILE = "conditions.parquet"
FRONTS_FILE = "fronts.parquet"
#: Conditions a design serves (all of its group's, or it is dropped).
CONDITIONS_COLUMN = "meta.conditions"
AGGREGATE_COLUMN = "meta.aggregate"
#: Metrics where more is better (``worst`` takes their minimum, the maximum of any other).
HIGHER_IS_BETTER = (
    THROUGHPUT_TOK_PER_S,
    TOKENS_PER_STEP,
    HIT_RATE_FRAC,
    ACCEPTANCE_FRAC,
    TAU_TOKENS,
)


@dataclass(frozen=True)
class DesignAxes:
    """Result columns by role: fronts (``groups``), the design, the aggregated conditions, and
    the run-time knobs chosen per condition."""

    groups: tuple[str, ...]
    design: tuple[str, ...]
    conditions: tuple[str, ...]
    runtime: tuple[str, ...]

    @property
    def design_keys(self) -> list[str]:
        """Columns that identify one design of one group."""
        return [*self.groups, *self.design]

    @property
    def condition_keys(self) -> list[str]:
        """Columns that identify one condition of one design."""
        return [*self.groups, *self.design, *self.conditions]


def section(spec: SweepSpec) -> DesignSection:
    """The sweep's ``[design]`` section (raises if it has none)."""
    if spec.design is None:
        raise ValueError(f"sweep '{spec.name}' has no [design] section")
    return spec.design


def design_axes(spec: SweepSpec) -> DesignAxes:
    """The columns of each role of ``spec``'s ``[design]``."""
    design = section(spec)
    return DesignAxes(
        groups=spec.group_columns(),
        design=(PLATFORM, *(axis_column(n) for n in design.hardware)),
        conditions=tuple(axis_column(n) for n in design.conditions if n not in spec.group_by),
        runtime=tuple(axis_column(n) for n in design.runtime),
    )


def conditions_per_design(spec: SweepSpec) -> int:
    """How many conditions each design must serve in its group (the aggregated ones' product)."""
    design = section(spec)
    sizes = []
    for name in design.conditions:
        if name in spec.group_by:
            continue
        if name in ("model", "dataset"):
            sizes.append(len(getattr(spec, f"{name}s")))
        else:
            sizes.append(len(resolve_axis(name, spec.knobs[name])) if name in spec.knobs else 1)
    return math.prod(sizes)


def selection_order(spec: SweepSpec) -> list[tuple[str, float]]:
    """(column, sign) of the run-time choice, minimized lexicographically: ``select`` first,
    then the metric objectives (tie-breakers)."""
    design = section(spec)
    sign = -1.0 if design.select_direction == "maximize" else 1.0
    order = [(design.select, sign)]
    order += [
        (o.metric, o.sign)
        for o in spec.objectives
        if o.metric.startswith(METRIC) and o.metric != design.select
    ]
    return order


def best_rows(frame: pd.DataFrame, keys: list[str], order: list[tuple[str, float]]) -> pd.DataFrame:
    """Per ``keys`` value, the first row of ``frame`` in ``order`` (lexicographic, stable: among
    equal rows the earliest wins; a NaN loses to any number)."""
    losses = []
    for column, sign in order:
        loss = sign * np.asarray(frame[column], dtype=float)
        losses.append(np.where(np.isnan(loss), np.inf, loss))
    idx = np.lexsort(losses[::-1]) if losses else np.arange(len(frame))
    return frame.iloc[idx].drop_duplicates(subset=keys, keep="first")


@dataclass
class RunningBest:
    """Per (group, design, condition), the best kept row seen so far (:func:`best_rows`)."""

    keys: list[str]
    order: list[tuple[str, float]]
    rows: Any = None  # pd.DataFrame once a block was added

    def add(self, columns: Mapping[str, np.ndarray]) -> None:
        """Merge one block of kept rows (equal-length columns)."""
        import pandas as pd

        frame = pd.DataFrame(dict(columns))
        if self.rows is not None:
            frame = pd.concat([self.rows, frame], ignore_index=True)
            absent = [c for c in frame.columns if c.startswith(_ZERO_WHEN_ABSENT)]
            frame[absent] = frame[absent].fillna(0.0)
        self.rows = best_rows(frame, self.keys, self.order).reset_index(drop=True)

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return self.rows if self.rows is not None else pd.DataFrame(columns=self.keys)


def aggregate(
    chosen: pd.DataFrame, axes: DesignAxes, how: str, expected: int
) -> tuple[pd.DataFrame, Counter[str]]:
    """One row per design of each group: its metrics over its conditions (``how``); designs that
    serve fewer than ``expected`` conditions are dropped and counted by reason."""
    import pandas as pd

    keys = axes.design_keys
    if chosen.empty:
        return pd.DataFrame(columns=[*keys, CONDITIONS_COLUMN]), Counter()
    metrics = [c for c in chosen.columns if c.startswith(METRIC)]
    grouped = chosen.groupby(keys, sort=True, observed=True, dropna=False)
    out: pd.DataFrame
    if how == "geomean":
        with np.errstate(divide="ignore"):
            logs = pd.DataFrame(np.log(chosen[metrics].to_numpy(dtype=float)), columns=metrics)
        logs[keys] = chosen[keys].to_numpy()
        means = logs.groupby(keys, sort=True, observed=True, dropna=False)[metrics].mean()
        out = pd.DataFrame(np.exp(means.to_numpy()), index=means.index, columns=metrics)
    elif how == "worst":
        rule = {c: "min" if c in HIGHER_IS_BETTER else "max" for c in metrics}
        out = grouped[metrics].agg(rule)
    else:
        out = grouped[metrics].mean()
    fixed = [c for c in DESIGN_COST_COLUMNS if c in metrics]
    out[fixed] = grouped[fixed].first()
    out[CONDITIONS_COLUMN] = grouped.size()
    out = out.reset_index()
    short = out[CONDITIONS_COLUMN] < expected
    dropped: Counter[str] = Counter(
        f"serves {n} of {expected} conditions (every run-time setting dropped at the others)"
        for n in out.loc[short, CONDITIONS_COLUMN].tolist()
    )
    out = out.loc[~short].reset_index(drop=True)
    out[AGGREGATE_COLUMN] = how
    return out, dropped


@dataclass(kw_only=True)
class DesignRun:
    """A finished design sweep: the design table (with ``meta.pareto``), the chosen run-time
    setting per design and condition, rejected points and dropped designs by reason, timing."""

    spec: SweepSpec
    grid_points: int
    designs: pd.DataFrame
    chosen: pd.DataFrame
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def front(self) -> pd.DataFrame:
        """The Pareto-optimal designs, by group then the first objective (best first)."""
        first = self.spec.objectives[0]
        front = self.designs[self.designs[PARETO_COLUMN].to_numpy(dtype=bool)]
        axes = design_axes(self.spec)
        by = [*axes.groups, first.metric]
        ascending = [True] * len(axes.groups) + [first.direction == "minimize"]
        return front.sort_values(by, ascending=ascending, kind="stable").reset_index(drop=True)

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "grid_points": self.grid_points,
            "rejected_points": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "designs": len(self.designs) + sum(self.dropped.values()),
            "kept_designs": len(self.designs),
            "dropped_designs_by_reason": dict(self.dropped.most_common()),
            "pareto_designs": int(self.designs[PARETO_COLUMN].sum()) if len(self.designs) else 0,
            "conditions_per_design": conditions_per_design(self.spec),
            "aggregate": section(self.spec).aggregate,
        }


def run_design(
    spec: SweepSpec, *, chunk_points: int = CHUNK_POINTS, progress: Progress | None = None
) -> DesignRun:
    """Evaluate ``spec``'s grid exhaustively and build the fronts over hardware designs."""
    start = time.perf_counter()
    axes = design_axes(spec)
    grid = expand(spec)
    tally = Tally()
    best = RunningBest(axes.condition_keys, selection_order(spec))
    for columns in kept_blocks(spec, grid, tally, chunk_points=chunk_points, progress=progress):
        best.add(columns)
    chosen = best.frame().sort_values(axes.condition_keys, kind="stable").reset_index(drop=True)
    designs, dropped = aggregate(chosen, axes, section(spec).aggregate, conditions_per_design(spec))
    designs[PARETO_COLUMN] = pareto_column(designs, spec)  # per group: group_by = the groups
    kept = designs[axes.design_keys].drop_duplicates()
    chosen = chosen.merge(kept, on=axes.design_keys, how="inner")
    total = time.perf_counter() - start
    timing = {"total_s": total, "evaluate_s": tally.evaluate_s}
    timing["points_per_s"] = grid.size / tally.evaluate_s if tally.evaluate_s > 0 else math.nan
    return DesignRun(
        spec=spec,
        grid_points=grid.size,
        designs=designs,
        chosen=chosen,
        rejected=tally.rejected,
        dropped=dropped,
        timing_s=timing,
    )


def save_design(
    run: DesignRun,
    out_dir: Path,
    *,
    sweep_file: str | None = None,
    command: str = "sweep",
    **extra: Any,
) -> list[Path]:
    """Write the design table, the chosen settings, the fronts and ``run.json`` as one run
    (``command``: ``sweep`` or ``optimize``; ``extra``: more sidecar fields)."""
    if not in_stage(out_dir):
        with staged_run(out_dir) as stage:
            save_design(run, stage.folder, sweep_file=sweep_file, command=command, **extra)
        return stage.written
    record = run_record(
        run.spec,
        command,
        mode="design",
        sweep_file=sweep_file,
        timing=run.timing_s,
        points=run.summary,
        design_axes=design_axes(run.spec).__dict__,
        **extra,
    )
    return [
        write_table(out_dir / RESULTS_FILE, _categorical(run.designs)),
        write_table(out_dir / CONDITIONS_FILE, _categorical(run.chosen)),
        write_table(out_dir / FRONTS_FILE, _categorical(run.front)),
        write_json(out_dir / RUN_FILE, record),
    ]


def _categorical(frame: pd.DataFrame) -> pd.DataFrame:
    """Strings as categoricals, as every results table holds them."""
    import pandas as pd

    out = frame.copy()
    for name in out.columns:
        if out[name].dtype == object:
            out[name] = pd.Categorical(out[name])
    return out


def design_groups(run: DesignRun, *, max_rows: int = 8) -> list[ParetoGroup]:
    """Per group, the Pareto-optimal designs for display (at most ``max_rows``, spread along the
    front): design columns that vary, the objectives and the design cost columns."""
    axes = design_axes(run.spec)
    front = run.front
    if front.empty:
        return []
    objectives = [o.metric for o in run.spec.objectives]
    varying = [c for c in axes.design if run.designs[c].nunique(dropna=False) > 1]
    extra = [c for c in DESIGN_COST_COLUMNS if c in front.columns and c not in objectives]
    columns = (*varying, *objectives, *extra)
    out = []
    counts = Counter(tuple(k) for k in run.designs[list(axes.groups)].itertuples(index=False))
    for key, idx in group_indices(front, axes.groups).items():
        group = front.iloc[idx]
        pick = np.unique(np.linspace(0, len(group) - 1, min(max_rows, len(group))).round())
        rows = tuple(
            {**{c: _plain(group.iloc[int(i)][c]) for c in columns}, "designs": 1} for i in pick
        )
        out.append(
            ParetoGroup(
                key={c: _plain(v) for c, v in zip(axes.groups, key, strict=True)},
                points=counts.get(tuple(key), len(run.designs)),
                pareto_points=len(group),
                distinct=len(group),
                columns=columns,
                rows=rows,
            )
        )
    return out


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------------------------
# optimize: Optuna over the hardware knobs, the run-time choice per condition exhaustive
# ----------------------------------------------------------------------------------------------


def _raw(value: Any) -> Any:
    """A resolved axis value as a sweep file writes it (NaN = 'auto')."""
    return "auto" if isinstance(value, float) and math.isnan(value) else value


def restrict(spec: SweepSpec, fixed: Mapping[str, Any]) -> SweepSpec:
    """``spec`` with the axes of ``fixed`` (scenario axes or knobs) at one value each."""
    update: dict[str, Any] = {}
    knobs = dict(spec.knobs)
    for name, value in fixed.items():
        if name in ("model", "platform", "dataset"):
            update[f"{name}s"] = [value]
        else:
            knobs[name] = _raw(value)
    return spec.model_copy(update={**update, "knobs": knobs})


def _axis_values(spec: SweepSpec, name: str) -> tuple[Any, ...]:
    if name in ("model", "platform", "dataset"):
        return tuple(getattr(spec, f"{name}s"))
    return resolve_axis(name, spec.knobs[name]) if name in spec.knobs else ()


def group_settings(spec: SweepSpec) -> list[dict[str, Any]]:
    """One ``{axis: value}`` per front (the product of the ``group_by`` axes' values)."""
    import itertools

    names = [n for n in spec.group_by if _axis_values(spec, n)]
    values = [_axis_values(spec, n) for n in names]
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def hardware_choices(spec: SweepSpec) -> dict[str, tuple[Any, ...]]:
    """Every hardware axis (the platform first) with its values: the optimize search space."""
    out: dict[str, tuple[Any, ...]] = {"platform": tuple(spec.platforms)}
    for name in section(spec).hardware:
        out[name] = _axis_values(spec, name) or (math.nan,)
    return out


@dataclass
class DesignTrials:
    """What a design search evaluated: each design once (cached by its hardware choice)."""

    designs: list[Any] = field(default_factory=list)
    chosen: list[Any] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    grid_points: int = 0

    def evaluate(self, spec: SweepSpec, pick: Mapping[str, Any]) -> Any:
        """The design row of ``pick`` (a hardware choice) in ``spec``'s group, or None if it
        cannot serve every condition; the run-time choice per condition is exhaustive."""
        run = run_design(restrict(spec, pick))
        self.grid_points += run.grid_points
        self.rejected.update(run.rejected)
        self.dropped.update(run.dropped)
        if run.designs.empty:
            return None
        self.designs.append(run.designs.drop(columns=[PARETO_COLUMN]))
        self.chosen.append(run.chosen)
        return run.designs.iloc[0]


#: A study stops after this many trials per design of its budget (TPE repeats suggestions; a
#: repeated design is not evaluated again, so the budget counts distinct designs).
MAX_TRIALS_PER_DESIGN = 20


def search_group(
    spec: SweepSpec, trials: int, seed: int, sampler: str, found: DesignTrials
) -> dict[str, Any]:
    """One Optuna study over ``spec``'s hardware choices (``spec``: one group) until ``trials``
    distinct designs (or the whole space) are evaluated; a repeated suggestion reuses its
    design. Returns the study's record."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    choices = hardware_choices(spec)
    labels = {n: [str(_raw(v)) for v in vs] for n, vs in choices.items()}
    make = optuna.samplers.TPESampler if sampler == "tpe" else optuna.samplers.RandomSampler
    directions = [o.direction for o in spec.objectives]
    study = optuna.create_study(directions=directions, sampler=make(seed=seed))
    cache: dict[tuple[str, ...], Any] = {}

    def objective(trial: optuna.Trial) -> list[float]:
        key = tuple(str(trial.suggest_categorical(n, labels[n])) for n in choices)
        if key not in cache:
            pick = {n: choices[n][labels[n].index(k)] for n, k in zip(choices, key, strict=True)}
            cache[key] = found.evaluate(spec, pick)
        row = cache[key]
        if row is None:
            raise optuna.TrialPruned()
        return [float(row[o.metric]) for o in spec.objectives]

    space = math.prod(len(v) for v in choices.values())
    budget, done = min(trials, space), 0
    while len(cache) < budget and done < MAX_TRIALS_PER_DESIGN * budget:
        study.optimize(objective, n_trials=1)
        done += 1
    return {"trials": done, "designs_evaluated": len(cache), "designs_in_space": space}


def optimize_design(
    spec: SweepSpec, *, trials: int | None = None, seed: int | None = None, sampler: str = ""
) -> tuple[DesignRun, list[dict[str, Any]]]:
    """``optimize`` on a ``[design]`` sweep: per group an Optuna study over the hardware knobs
    (``trials`` each, default the file's ``[optimize]``), each design's run-time setting per
    condition chosen exhaustively; the designs found with their fronts, and the studies."""
    import pandas as pd

    start = time.perf_counter()
    found = DesignTrials()
    studies = []
    for group in group_settings(spec) or [{}]:
        record = search_group(
            restrict(spec, group),
            trials or spec.optimize.trials,
            spec.seed if seed is None else seed,
            sampler or spec.optimize.sampler,
            found,
        )
        studies.append({"group": {k: _raw(v) for k, v in group.items()}, **record})
    axes = design_axes(spec)
    designs = pd.concat(found.designs, ignore_index=True) if found.designs else pd.DataFrame()
    if not designs.empty:
        designs = designs.sort_values(axes.design_keys, kind="stable").reset_index(drop=True)
    designs[PARETO_COLUMN] = pareto_column(designs, spec)
    chosen = pd.concat(found.chosen, ignore_index=True) if found.chosen else pd.DataFrame()
    run = DesignRun(
        spec=spec,
        grid_points=found.grid_points,
        designs=designs,
        chosen=chosen,
        rejected=found.rejected,
        dropped=found.dropped,
        timing_s={"total_s": time.perf_counter() - start},
    )
    return run, studies


def hypervolume_fractions(search: DesignRun, grid: DesignRun) -> dict[str, float]:
    """Per group, the hypervolume of the search's front as a fraction of the exhaustive one's
    (both normalized by the exhaustive front's ideal and nadir points, reference 1.1)."""
    from elmoe_dse.explore.pareto import HVScale, normalized_hypervolume

    spec = grid.spec
    axes = design_axes(spec)
    signs = [o.sign for o in spec.objectives]
    metrics = [o.metric for o in spec.objectives]
    out = {}
    found = group_indices(search.designs, axes.groups) if len(search.designs) else {}
    for key, idx in group_indices(grid.designs, axes.groups).items():
        ref = to_minimize(grid.designs.iloc[idx][metrics].to_numpy(dtype=float), signs)
        scale = HVScale.of_front(ref)
        mine = search.designs.iloc[found[key]] if key in found else search.designs.iloc[:0]
        pts = to_minimize(mine[metrics].to_numpy(dtype=float), signs)
        whole = normalized_hypervolume(ref, scale)
        out[", ".join(str(v) for v in key) or "all"] = (
            normalized_hypervolume(pts, scale) / whole if whole > 0 else math.nan
        )
    return out
