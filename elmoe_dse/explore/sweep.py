"""Run a sweep: every design point of the grid through the vectorized evaluator, then Pareto fronts.

For each categorical combination (model x platform x dataset x categorical knobs) the numeric knob
product is evaluated in chunks, one :func:`~elmoe_dse.evaluator.evaluate` call per chunk. A point is
kept, or dropped with the first reason that applies (counted by reason, never silently lost):

1. the combination is invalid for the evaluator (e.g. a policy that needs a fast tier on a
   platform without one): its message;
2. the evaluator marks it infeasible (it does not fit its memories): ``infeasible: <reason>``;
3. an objective is not a finite number at the point: ``objective <column> is not finite``;
4. it violates a constraint of the sweep file: ``violates <constraint>``.

Knob values are layered: :data:`~elmoe_dse.knobs.KNOB_INFO` defaults < the dataset profile
(``overlap_frac``) < the sweep file. Routing is the dataset profile's Zipf skew for the model.

Kept points form the results table (one row per point; ``knob.*``, ``metric.*``, ``meta.*``
columns) with ``meta.pareto`` marking the Pareto-optimal points of each ``group_by`` group.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.errors import KnobError
from elmoe_dse.explore.grid import CHUNK_POINTS, Combination, Grid, expand
from elmoe_dse.explore.pareto import pareto_mask, to_minimize
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.results import KNOB, META, METRIC, sidecar, spec_hash, write_json, write_table
from elmoe_dse.specs.sweep import SweepSpec

if TYPE_CHECKING:
    import pandas as pd

    from elmoe_dse.evaluator import DraftQuality
    from elmoe_dse.specs.dataset import ModelProfile
    from elmoe_dse.specs.model import ModelSpec
    from elmoe_dse.specs.platform import PlatformSpec

PARETO_COLUMN = "meta.pareto"
RESULTS_FILE = "results.parquet"
RUN_FILE = "run.json"
#: Metric columns of a component or tier a platform lacks are 0 (no such energy, no such bytes).
_ZERO_WHEN_ABSENT = ("metric.energy_", "metric.bytes_read_")

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Scenario:
    """The loaded specs of one model x platform x dataset, and the routing they imply."""

    model: ModelSpec
    platform: PlatformSpec
    dataset: str
    profile: ModelProfile
    p: np.ndarray
    quality: DraftQuality


@cache
def load_scenario(
    model_ref: str, platform_ref: str, dataset_ref: str, calibration: str = "none"
) -> Scenario:
    """Load (once per process) the specs of a combination; routing = the profile's Zipf skew.

    ``calibration`` (``shipped``, ``none`` or a file) is applied to the platform and dataset only
    where they are shipped specs named in the file; a user's own spec file is taken as written.
    """
    from elmoe_dse.evaluator import DraftQuality
    from elmoe_dse.explore.calibrate import calibrate_shipped, resolve_calibration
    from elmoe_dse.routing import expert_probabilities
    from elmoe_dse.specs.dataset import list_datasets, load_acceptance_params, load_dataset
    from elmoe_dse.specs.model import load_model
    from elmoe_dse.specs.platform import list_platforms, load_platform

    model = load_model(model_ref)
    platform, dataset, params = calibrate_shipped(
        resolve_calibration(calibration),
        load_platform(platform_ref),
        load_dataset(dataset_ref),
        load_acceptance_params(),
        platform_is_shipped=platform_ref.lower() in list_platforms(),
        dataset_is_shipped=dataset_ref.lower() in list_datasets(),
    )
    profile = dataset.for_model(model.id)
    p = expert_probabilities(
        model.num_experts, model.experts_per_token, "zipf", profile.zipf_exponent
    )
    quality = DraftQuality(profile, params)
    return Scenario(model, platform, dataset.name, profile, p, quality)


def scenario_id(axis: str, ref: str) -> str:
    """The id a results table records for a scenario reference (model id, platform/dataset name)."""
    from elmoe_dse.specs.dataset import load_dataset
    from elmoe_dse.specs.model import load_model
    from elmoe_dse.specs.platform import load_platform

    if axis == "model":
        return load_model(ref).id
    if axis == "platform":
        return load_platform(ref).name
    return load_dataset(ref).name


@dataclass(frozen=True)
class Block:
    """Evaluated points of one chunk: every result column and, per point, why it is dropped.

    ``reasons[i] == ""`` for a kept point. ``columns`` lacks metric columns when the whole
    combination is invalid (then every reason is that error).
    """

    columns: dict[str, np.ndarray]
    reasons: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return np.asarray(self.reasons == "")


def knob_values(
    scenario: Scenario, combo: Combination, numeric: Mapping[str, np.ndarray], n: int
) -> dict[str, Any]:
    """Knob values of ``n`` points: defaults < dataset profile < sweep axes (arrays of length n)."""
    values: dict[str, Any] = {
        name: getattr(Knobs(), name) for name in KNOB_INFO if not KNOB_INFO[name].choices
    }
    values["overlap_frac"] = scenario.profile.overlap_frac
    values.update(numeric)
    out: dict[str, Any] = {
        name: np.broadcast_to(np.asarray(v, dtype=float), (n,)) for name, v in values.items()
    }
    out.update({name: getattr(Knobs(), name) for name in KNOB_INFO if KNOB_INFO[name].choices})
    out.update(dict(combo.knobs))
    return out


def evaluate_block(spec: SweepSpec, combo: Combination, numeric: Mapping[str, np.ndarray]) -> Block:
    """Evaluate the points ``numeric`` (flat arrays, one per numeric axis) of ``combo``."""
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.results import step_columns

    n = len(next(iter(numeric.values()))) if numeric else 1
    sc = load_scenario(combo.model, combo.platform, combo.dataset, spec.calibration)
    values = knob_values(sc, combo, numeric, n)
    columns: dict[str, np.ndarray] = {f"{KNOB}{k}": _column(v, n) for k, v in values.items()}
    columns.update(
        {
            f"{META}model": _column(sc.model.id, n),
            f"{META}platform": _column(sc.platform.name, n),
            f"{META}dataset": _column(sc.dataset, n),
        }
    )
    try:
        step = evaluate(sc.model, sc.platform, Knobs(**values), sc.p, quality=sc.quality)
    except KnobError as err:
        return Block(columns, _column(str(err), n))
    columns.update({k: _column(v, n) for k, v in step_columns(step).items()})
    columns[f"{META}policy"] = _column(step.speculative.policy, n)
    columns[f"{META}draft"] = _column(step.speculative.draft, n)
    columns[f"{META}cache_policy"] = _column(step.cache.policy, n)
    infeasible = np.broadcast_to(step.reason_per_point(), (n,))
    return Block(columns, drop_reasons(spec, columns, infeasible))


def drop_reasons(
    spec: SweepSpec, columns: Mapping[str, np.ndarray], infeasible: np.ndarray
) -> np.ndarray:
    """Per point, the first reason it is dropped ("" if kept): feasibility (``infeasible``: the
    evaluator's explanation per point), objectives, constraints."""
    n = len(columns[f"{META}feasible"])
    reasons = np.full(n, "", dtype=object)
    # Assigned from the last rule to the first, so the first rule that applies wins.
    for constraint in reversed(spec.parsed_constraints()):
        value = np.asarray(columns[constraint.column], dtype=float)
        bad = ~(constraint.violation(value) <= 0.0)
        reasons[bad] = f"violates {constraint.text}"
    for objective in reversed(spec.objectives):
        bad = ~np.isfinite(np.asarray(columns[objective.metric], dtype=float))
        reasons[bad] = f"objective {objective.metric} is not finite"
    bad = ~np.asarray(columns[f"{META}feasible"], dtype=bool)
    for text in set(infeasible[bad].tolist()):
        reasons[bad & (infeasible == text)] = f"infeasible: {text}"
    return reasons


def _column(value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind in "USO":
        arr = arr.astype(object)
    return np.ascontiguousarray(np.broadcast_to(arr, (n,)))


# ----------------------------------------------------------------------------------------------
# Tables and Pareto flags
# ----------------------------------------------------------------------------------------------


def table(blocks: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One DataFrame from column blocks (consumed); strings become categoricals.

    A metric column a block lacks (an energy component or a memory tier its platform does not
    have) is 0 there; any other absent column is NaN. Blocks are emptied column by column, so peak
    memory is about one table, not two.
    """
    import pandas as pd

    names: list[str] = []
    for block in blocks:
        names.extend(c for c in block if c not in names)
    names = sorted(names, key=_column_order)
    sizes = [len(next(iter(block.values()))) for block in blocks]
    data: dict[str, Any] = {}
    for name in names:
        parts = []
        for block, n in zip(blocks, sizes, strict=True):
            if name in block:
                parts.append(block.pop(name))
            elif name.startswith(_ZERO_WHEN_ABSENT):
                parts.append(np.zeros(n))
            else:
                parts.append(np.full(n, np.nan))
        col = np.concatenate(parts)
        del parts
        data[name] = pd.Categorical(col) if col.dtype == object else col
    return pd.DataFrame(data, columns=names, copy=False)


def _column_order(name: str) -> tuple[int, str]:
    rank = {META: 0, KNOB: 1, METRIC: 2}
    prefix = name.split(".", 1)[0] + "."
    return rank.get(prefix, 3), name


def pareto_column(frame: pd.DataFrame, spec: SweepSpec) -> np.ndarray:
    """``meta.pareto``: Pareto-optimal within its ``group_by`` group, under the objectives."""
    flags = np.zeros(len(frame), dtype=bool)
    if frame.empty:
        return flags
    loss = to_minimize(
        frame[[o.metric for o in spec.objectives]].to_numpy(dtype=float),
        [o.sign for o in spec.objectives],
    )
    for idx in group_indices(frame, spec.group_columns()).values():
        flags[idx[pareto_mask(loss[idx])]] = True
    return flags


def group_indices(
    frame: pd.DataFrame, columns: tuple[str, ...]
) -> dict[tuple[Any, ...], np.ndarray]:
    """Row positions of each group (one group of every row when ``columns`` is empty)."""
    if not columns:
        return {(): np.arange(len(frame))}
    groups = frame.groupby(list(columns), sort=True, observed=True, dropna=False).indices
    return {(k if isinstance(k, tuple) else (k,)): np.asarray(v) for k, v in groups.items()}


# ----------------------------------------------------------------------------------------------
# Running a sweep
# ----------------------------------------------------------------------------------------------


@dataclass
class SweepResult:
    """The kept design points (with Pareto flags) and the run summary for the sidecar."""

    spec: SweepSpec
    frame: pd.DataFrame
    grid_points: int
    rejected: Counter[str] = field(default_factory=Counter)
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def summary(self) -> dict[str, Any]:
        kept = len(self.frame)
        return {
            "grid_points": self.grid_points,
            "kept_points": kept,
            "rejected_points": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "pareto_points": int(self.frame[PARETO_COLUMN].sum()) if kept else 0,
        }


def run_sweep(
    spec: SweepSpec, *, chunk_points: int = CHUNK_POINTS, progress: Progress | None = None
) -> SweepResult:
    """Evaluate every point of ``spec``'s grid; keep the valid ones and flag the Pareto fronts."""
    start = time.perf_counter()
    grid = expand(spec)
    blocks, rejected, eval_s = evaluate_grid(
        spec, grid, chunk_points=chunk_points, progress=progress
    )
    t_table = time.perf_counter()
    frame = table(blocks)
    if not frame.empty:
        frame[PARETO_COLUMN] = pareto_column(frame, spec)
    else:
        frame[PARETO_COLUMN] = np.zeros(0, dtype=bool)
    total = time.perf_counter() - start
    timing = {
        "total_s": total,
        "evaluate_s": eval_s,
        "table_and_pareto_s": time.perf_counter() - t_table,
        "points_per_s": grid.size / eval_s if eval_s > 0 else float("nan"),
    }
    return SweepResult(spec, frame, grid.size, rejected, timing)


def evaluate_grid(
    spec: SweepSpec,
    grid: Grid,
    *,
    chunk_points: int = CHUNK_POINTS,
    progress: Progress | None = None,
    keep: Sequence[str] | None = None,
) -> tuple[list[dict[str, np.ndarray]], Counter[str], float]:
    """Kept columns per chunk (only ``keep`` if given), rejected counts by reason, and the
    evaluation time (s)."""
    blocks: list[dict[str, np.ndarray]] = []
    rejected: Counter[str] = Counter()
    eval_s = 0.0
    for combo in grid.combinations:
        for _, numeric in grid.chunks(chunk_points):
            t0 = time.perf_counter()
            block = evaluate_block(spec, combo, numeric)
            eval_s += time.perf_counter() - t0
            kept = block.kept
            columns = block.columns
            if keep is not None:
                columns = {k: v for k, v in columns.items() if k in keep}
            if kept.all():
                blocks.append(columns)
            elif kept.any():
                blocks.append({k: v[kept] for k, v in columns.items()})
            if not kept.all():
                rejected.update(Counter(block.reasons[~kept].tolist()))
            if progress is not None:
                progress(len(kept))
    return blocks, rejected, eval_s


def spec_hashes(spec: SweepSpec) -> dict[str, dict[str, str]]:
    """Content hashes of every model, platform and dataset spec the sweep used."""
    from elmoe_dse.specs.dataset import load_dataset
    from elmoe_dse.specs.model import load_model
    from elmoe_dse.specs.platform import load_platform

    return {
        "models": {m: spec_hash(load_model(m).model_dump()) for m in spec.models},
        "platforms": {p: spec_hash(load_platform(p).model_dump()) for p in spec.platforms},
        "datasets": {d: spec_hash(load_dataset(d).model_dump()) for d in spec.datasets},
    }


def resolved_sweep(spec: SweepSpec) -> dict[str, Any]:
    """The sweep as run: the file's fields plus every axis expanded (auto shown as "auto")."""
    axes = {
        name: ["auto" if isinstance(v, float) and np.isnan(v) else v for v in axis.values]
        for name, axis in spec.axes().items()
    }
    return {**spec.model_dump(), "resolved_axes": axes, "sweep_hash": spec_hash(spec.model_dump())}


def run_record(spec: SweepSpec, command: str, **extra: Any) -> dict[str, Any]:
    """The sidecar common to sweep and optimize runs."""
    from elmoe_dse.explore.calibrate import resolve_calibration

    cal = resolve_calibration(spec.calibration)
    return sidecar(
        command=command,
        sweep=resolved_sweep(spec),
        calibration=None if cal is None else cal.model_dump(),
        spec_hashes=spec_hashes(spec),
        seed=spec.seed,
        **extra,
    )


def write_results(out_dir: Path, frame: pd.DataFrame, record: Mapping[str, Any]) -> list[Path]:
    """Write ``results.parquet`` and ``run.json`` atomically (the table first, then the record)."""
    from elmoe_dse.results import ensure_dir

    ensure_dir(out_dir)
    return [
        write_table(out_dir / RESULTS_FILE, frame),
        write_json(out_dir / RUN_FILE, dict(record)),
    ]


def save_sweep(result: SweepResult, out_dir: Path, *, sweep_file: str | None = None) -> list[Path]:
    """Write a sweep's table and sidecar to ``out_dir``."""
    record = run_record(
        result.spec,
        "sweep",
        sweep_file=sweep_file,
        timing=result.timing_s,
        points=result.summary,
        pareto=pareto_summary(result.frame, result.spec),
    )
    return write_results(out_dir, result.frame, record)


def pareto_summary(frame: pd.DataFrame, spec: SweepSpec) -> list[dict[str, Any]]:
    """Per group: its key, kept points and Pareto points."""
    if frame.empty:
        return []
    out = []
    flags = frame[PARETO_COLUMN].to_numpy()
    cols = spec.group_columns()
    for key, idx in group_indices(frame, cols).items():
        out.append(
            {
                "group": {c: _plain(v) for c, v in zip(cols, key, strict=True)},
                "points": int(idx.size),
                "pareto_points": int(flags[idx].sum()),
            }
        )
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_out_dir(out_dir: Path) -> Path:
    """Fail early (before any work) if ``out_dir`` cannot be created or written."""
    from elmoe_dse.results import ensure_dir

    return ensure_dir(out_dir)


# ----------------------------------------------------------------------------------------------
# The Pareto designs to show
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParetoGroup:
    """The Pareto designs of one group, for display: the group key and a sample of its front.

    ``rows`` are distinct objective vectors sorted by the first objective (best first), sampled
    evenly along the front when there are more than asked for; ``designs`` counts the Pareto
    designs that share a row's objective values (they differ only in knobs that do not matter
    there).
    """

    key: dict[str, Any]
    points: int
    pareto_points: int
    distinct: int
    columns: tuple[str, ...]
    rows: tuple[dict[str, Any], ...]


def varying_columns(spec: SweepSpec) -> tuple[str, ...]:
    """Columns of the axes that take more than one value and are not group keys."""
    from elmoe_dse.specs.sweep import SCENARIO_AXES, axis_column

    names = [n for n in SCENARIO_AXES if len(getattr(spec, f"{n}s")) > 1]
    names += [n for n, axis in spec.axes().items() if len(axis.values) > 1]
    return tuple(axis_column(n) for n in names if n not in spec.group_by)


def pareto_groups(frame: pd.DataFrame, spec: SweepSpec, *, max_rows: int = 8) -> list[ParetoGroup]:
    """Per group, a sample of at most ``max_rows`` distinct Pareto designs (see ParetoGroup)."""
    if frame.empty:
        return []
    objectives = [o.metric for o in spec.objectives]
    extra = [c.column for c in spec.parsed_constraints() if c.column not in objectives]
    varying = [c for c in varying_columns(spec) if c not in objectives]
    columns = (*varying, *objectives, *dict.fromkeys(extra))
    flags = frame[PARETO_COLUMN].to_numpy()
    out = []
    first = spec.objectives[0]
    for key, idx in group_indices(frame, spec.group_columns()).items():
        front = frame.iloc[idx[flags[idx]]]
        front = front.sort_values(
            first.metric, ascending=first.direction == "minimize", kind="stable"
        )
        counts = front.groupby(objectives, sort=False, observed=True).size()
        distinct = front.drop_duplicates(subset=objectives)
        take = distinct
        if len(distinct) > max_rows:
            pick = np.unique(
                np.linspace(0, len(distinct) - 1, max(max_rows, 1)).round().astype(int)
            )
            take = distinct.iloc[pick]
        rows = []
        for _, row in take.iterrows():
            record = {c: _plain(row[c]) for c in columns}
            record["designs"] = int(counts.loc[tuple(row[o] for o in objectives)])
            rows.append(record)
        out.append(
            ParetoGroup(
                key={c: _plain(v) for c, v in zip(spec.group_columns(), key, strict=True)},
                points=int(idx.size),
                pareto_points=int(flags[idx].sum()),
                distinct=len(distinct),
                columns=columns,
                rows=tuple(rows),
            )
        )
    return out
