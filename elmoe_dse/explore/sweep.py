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

Two ways to run, one output: :func:`run_sweep` builds the table in memory (small sweeps, tests);
:func:`stream_sweep` (the CLI) keeps memory bounded by the chunk size and the Pareto fronts
whatever the grid size. The kept rows of every chunk are encoded where the chunk is evaluated (an
LZ4-compressed Arrow batch, strings as codes) with the chunk's per-group Pareto candidates; the
writing process only merges: it holds the compressed chunks in memory up to a budget and appends
the rest to a temporary file beside the output, and keeps, per group, only the running Pareto
candidates (a point dominated among the rows seen so far is dominated in the whole table, so
pruning after every chunk is exact). ``results.parquet`` is then encoded once, with the final
categories and ``meta.pareto`` from the final candidates.
"""

from __future__ import annotations

import bisect
import math
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import PARETO as PARETO_COLUMN
from elmoe_dse.columns import THROUGHPUT_TOK_PER_S
from elmoe_dse.errors import KnobError
from elmoe_dse.explore.figure_columns import FASTEST_KEYS
from elmoe_dse.explore.grid import (
    BOX_POINTS,
    CHUNK_POINTS,
    Box,
    Combination,
    Grid,
    GridSlice,
    box_chunks,
    box_mesh,
    copy_points,
    expand,
    grid_boxes,
    numeric_slice,
)
from elmoe_dse.explore.pareto import pareto_mask, to_minimize
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.results import (
    KNOB,
    META,
    METRIC,
    RESULTS_FILE,
    RUN_FILE,
    atomic_write,
    check_targets,
    ensure_dir,
    in_stage,
    sidecar,
    spec_hash,
    staged_run,
    temp_prefix,
    write_json,
    write_table,
)
from elmoe_dse.scenario import Scenario, load_scenario
from elmoe_dse.specs.sweep import Axis, SweepSpec

if TYPE_CHECKING:
    import pandas as pd

    from elmoe_dse.evaluator import ResidencyMemo


#: Metric columns of a component or tier a platform lacks are 0 (no such energy, no such bytes).
_ZERO_WHEN_ABSENT = ("metric.energy_", "metric.bytes_read_")

Progress = Callable[[int], None]


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
    """Knob values of ``n`` points: defaults < dataset profile < sweep axes (arrays of length n),
    numeric knobs first (:meth:`~elmoe_dse.scenario.Scenario.knob_values` layers them)."""
    values = scenario.knob_values(**numeric, **dict(combo.knobs))
    out: dict[str, Any] = {
        name: np.broadcast_to(np.asarray(values[name], dtype=float), (n,))
        for name in KNOB_INFO
        if not KNOB_INFO[name].choices
    }
    out.update({name: values[name] for name in KNOB_INFO if KNOB_INFO[name].choices})
    return out


def evaluate_block(spec: SweepSpec, combo: Combination, numeric: Mapping[str, np.ndarray]) -> Block:
    """Evaluate the points ``numeric`` (flat arrays, one per numeric axis) of ``combo``.

    A slice of the grid (:class:`~elmoe_dse.explore.grid.GridSlice`) is costed as open-mesh
    boxes (:func:`~elmoe_dse.explore.grid.grid_boxes`), each knob on its own axis, and
    flattened to its points at the end: the same numbers, far fewer full-length passes. Its
    columns may be read-only views (a constant broadcast, a box's own array)."""
    n = len(next(iter(numeric.values()))) if numeric else 1
    sc = load_scenario(combo.model, combo.platform, combo.dataset, spec.calibration)
    values = knob_values(sc, combo, numeric, n)
    mesh = isinstance(numeric, GridSlice) and bool(numeric.axes)
    col = _view if mesh else _column
    columns: dict[str, np.ndarray] = {f"{KNOB}{k}": col(v, n) for k, v in values.items()}
    columns.update(
        {
            f"{META}model": col(sc.model.id, n),
            f"{META}platform": col(sc.platform.name, n),
            f"{META}dataset": col(sc.dataset, n),
        }
    )
    try:
        if mesh:
            assert isinstance(numeric, GridSlice)
            try:
                metric, infeasible = _mesh_columns(sc, combo, numeric)
            except KnobError:  # the flat path: the error of the slice's own points
                metric, infeasible = _point_columns(sc, values, n)
        else:
            metric, infeasible = _point_columns(sc, values, n)
    except KnobError as err:
        return Block(columns, _column(str(err), n))
    columns.update(metric)
    return Block(columns, drop_reasons(spec, columns, infeasible))


def _view(value: Any, n: int) -> np.ndarray:
    """:func:`_column` as a read-only view where it can be (a constant is not repeated)."""
    arr = np.asarray(value)
    if arr.dtype.kind in "US":
        arr = arr.astype(object)
    return np.broadcast_to(arr, (n,))


def _point_columns(
    sc: Scenario, values: dict[str, Any], n: int
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The evaluator's result columns of ``n`` points of knob ``values`` and, per point, the
    infeasibility explanation ('' where feasible)."""
    flat = _grid_columns(sc, values)
    return {k: _column(v, n) for k, v in flat[0].items()}, np.broadcast_to(flat[1], (n,))


def _mesh_columns(
    sc: Scenario, combo: Combination, piece: GridSlice
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """:func:`_point_columns` of a grid slice: the grid's boxes it overlaps
    (:func:`~elmoe_dse.explore.grid.grid_boxes`, each costed once as an open mesh while
    consecutive chunks need it, :func:`_box_columns`), their share copied into the slice's
    columns (or viewed, where one box's own array holds them)."""
    shape = tuple(len(a.values) for a in piece.axes)
    cover = grid_boxes(shape)
    j = bisect.bisect_right([first for _, first in cover], piece.start) - 1
    parts = []
    for box, first in cover[j:]:
        if first >= piece.stop:
            break
        box_shape = tuple(hi - lo for lo, hi in box)
        lo, hi = max(piece.start - first, 0), min(piece.stop - first, math.prod(box_shape))
        parts.append((_box_columns(sc, combo, piece.axes, box), box_shape, lo, hi))
    out = _one_box(*parts[0]) if len(parts) == 1 else _joined(parts, piece.stop - piece.start)
    reasons = out.pop(_REASONS)
    return out, reasons


def _one_box(
    cols: dict[str, np.ndarray], shape: tuple[int, ...], lo: int, hi: int
) -> dict[str, np.ndarray]:
    """Points ``lo`` to ``hi`` of one box's columns: a read-only view of an array of the box's
    shape, a copy of the others (:func:`~elmoe_dse.explore.grid.copy_points`)."""
    out = {}
    for key, arr in cols.items():
        if arr.shape == shape and arr.flags.c_contiguous:
            view = arr.reshape(-1)[lo:hi]
            view.flags.writeable = False
        else:
            view = np.empty(hi - lo, arr.dtype)
            copy_points(view, arr, shape, lo, hi)
        out[key] = view
    return out


def _joined(
    parts: list[tuple[dict[str, np.ndarray], tuple[int, ...], int, int]], n: int
) -> dict[str, np.ndarray]:
    """The columns of ``n`` points from consecutive boxes' shares (``parts``: columns, box
    shape, first and last point), promoted as :func:`numpy.concatenate` would."""
    out: dict[str, np.ndarray] = {}
    pos = 0
    for cols, shape, lo, hi in parts:
        for key, arr in cols.items():
            column = out.get(key)
            if column is None:
                column = out[key] = np.empty(n, arr.dtype)
            elif column.dtype != arr.dtype:
                grown = np.empty(n, np.result_type(column.dtype, arr.dtype))
                grown[:pos] = column[:pos]
                column = out[key] = grown
            copy_points(column[pos : pos + hi - lo], arr, shape, lo, hi)
        pos += hi - lo
    return out


_REASONS = "\0reasons"
#: The last box costed by this process (:func:`_box_columns`): the next chunks it covers reuse it.
_BOX_MEMO: dict[tuple[Any, ...], tuple[Any, ...]] = {}


def _box_columns(
    sc: Scenario, combo: Combination, axes: tuple[Axis, ...], box: Box
) -> dict[str, np.ndarray]:
    """Result columns (each broadcastable to ``box``'s shape; strings as objects) and, under
    :data:`_REASONS`, the per-point infeasibility of one box of the grid of ``axes``; kept
    for the next call on the same box (a KnobError too)."""
    key = (id(sc), combo, tuple((a.name, np.asarray(a.values, float).tobytes()) for a in axes), box)
    hit = _BOX_MEMO.get(key)
    if hit is None:
        layered = sc.knob_values(**box_mesh(axes, box), **dict(combo.knobs))
        values = {
            name: layered[name] if KNOB_INFO[name].choices else np.asarray(layered[name], float)
            for name in KNOB_INFO
        }
        try:
            cols, reasons = _grid_columns(sc, values)
        except KnobError as err:
            result: dict[str, np.ndarray] | KnobError = err
        else:
            cols[_REASONS] = reasons
            result = {k: _as_objects(np.asarray(v)) for k, v in cols.items()}
        _BOX_MEMO.clear()
        hit = _BOX_MEMO[key] = (sc, result)  # sc kept alive: its id is not reused
    if isinstance(hit[1], KnobError):
        raise hit[1]
    return hit[1]


def _as_objects(arr: np.ndarray) -> np.ndarray:
    return arr.astype(object) if arr.dtype.kind in "US" else arr


#: Residencies solved by this process's recent blocks (:func:`~elmoe_dse.evaluator.memo_residency`,
#: keyed by every input they read): the combinations that differ only in knobs the pool does not
#: see (``rounding``, ``policy`` with the same pool) share them. Cleared when full.
_RESIDENCY_MEMO: ResidencyMemo = {}
RESIDENCY_MEMO_SIZE = 64


def _grid_columns(sc: Scenario, values: dict[str, Any]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Result columns (broadcastable to the knobs' shape) and per-point infeasibility of one
    evaluator call over knob ``values``."""
    from elmoe_dse.costs import cost_columns
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.platforms import PlatformKnobs
    from elmoe_dse.results import step_columns

    knobs = Knobs(**values)
    if len(_RESIDENCY_MEMO) >= RESIDENCY_MEMO_SIZE:
        _RESIDENCY_MEMO.clear()
    step = evaluate(
        sc.model, sc.platform, knobs, sc.p, quality=sc.quality, residency_memo=_RESIDENCY_MEMO
    )
    columns = dict(step_columns(step))
    columns.update(cost_columns(sc.platform, PlatformKnobs.of(knobs)))
    columns[f"{META}policy"] = np.asarray(step.speculative.policy)
    columns[f"{META}draft"] = np.asarray(step.speculative.draft)
    columns[f"{META}cache_policy"] = np.asarray(step.cache.policy)
    columns[f"{META}inactive_knobs"] = step.inactive_knobs(knobs, sc.platform)
    return columns, step.reason_per_point()


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
    texts = set(infeasible[bad].tolist())
    if len(texts) == 1:  # one rule for every infeasible point: no comparison of the texts
        reasons[bad] = f"infeasible: {texts.pop()}"
    for text in texts:
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

#: A group's key: the values of its ``group_by`` columns as plain Python values, NaN as None.
GroupKey = tuple[Any, ...]


@dataclass(kw_only=True)
class SweepRun:
    """A finished sweep: kept points per group, rejected points by reason, the Pareto-optimal rows
    (every column, table order) and timing. All a summary, a sidecar or a display needs."""

    spec: SweepSpec
    grid_points: int
    front: pd.DataFrame
    group_points: dict[GroupKey, int]
    rejected: Counter[str] = field(default_factory=Counter)
    timing_s: dict[str, float] = field(default_factory=dict)
    #: The rows that decide the figure tables (``meta.*``, ``knob.*`` and throughput columns;
    #: :meth:`RunningFronts.fastest_rows`), if the run kept them.
    fastest: pd.DataFrame | None = None

    @property
    def summary(self) -> dict[str, Any]:
        return {
            "grid_points": self.grid_points,
            "kept_points": sum(self.group_points.values()),
            "rejected_points": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "pareto_points": len(self.front),
        }

    def pareto_summary(self) -> list[dict[str, Any]]:
        """Per group: its key, kept points and Pareto points (the sidecar's ``pareto``)."""
        return front_summary(self.front, self.group_points, self.spec)

    def groups(self, *, max_rows: int = 8, max_groups: int | None = None) -> list[ParetoGroup]:
        """Per group (the first ``max_groups`` by key), a sample of at most ``max_rows``
        distinct Pareto designs."""
        return front_groups(
            self.front, self.group_points, self.spec, max_rows=max_rows, max_groups=max_groups
        )


@dataclass(kw_only=True)
class SweepResult(SweepRun):
    """A sweep run in memory: also every kept row (with Pareto flags) in ``frame``."""

    frame: pd.DataFrame


def run_sweep(
    spec: SweepSpec, *, chunk_points: int = CHUNK_POINTS, progress: Progress | None = None
) -> SweepResult:
    """Evaluate every point of ``spec``'s grid in memory; keep the valid ones and flag the Pareto
    fronts. Memory grows with the grid: use :func:`stream_sweep` for large grids."""
    start = time.perf_counter()
    grid = expand(spec)
    blocks, rejected, eval_s = evaluate_grid(
        spec, grid, chunk_points=chunk_points, progress=progress
    )
    t_table = time.perf_counter()
    frame = table(blocks)
    frame[PARETO_COLUMN] = pareto_column(frame, spec)
    front, points = split_front(frame, spec)
    total = time.perf_counter() - start
    timing = {
        "total_s": total,
        "evaluate_s": eval_s,
        "table_and_pareto_s": time.perf_counter() - t_table,
        "points_per_s": grid.size / eval_s if eval_s > 0 else float("nan"),
    }
    return SweepResult(
        spec=spec,
        grid_points=grid.size,
        front=front,
        group_points=points,
        rejected=rejected,
        timing_s=timing,
        frame=frame,
    )


@dataclass
class Tally:
    """What evaluating a grid counts besides the kept rows: rejected points and evaluator time."""

    rejected: Counter[str] = field(default_factory=Counter)
    evaluate_s: float = 0.0


def kept_blocks(
    spec: SweepSpec,
    grid: Grid,
    tally: Tally,
    *,
    chunk_points: int = CHUNK_POINTS,
    progress: Progress | None = None,
    keep: Sequence[str] | None = None,
) -> Iterator[dict[str, np.ndarray]]:
    """The kept columns (only ``keep`` if given) of each chunk with a kept point, in grid order;
    rejected points and evaluation time go to ``tally``."""
    for combo in grid.combinations:
        for _, numeric in grid.chunks(chunk_points):
            t0 = time.perf_counter()
            block = evaluate_block(spec, combo, numeric)
            tally.evaluate_s += time.perf_counter() - t0
            columns, rejected = kept_columns(block, keep)
            tally.rejected.update(rejected)
            if progress is not None:
                progress(len(block.reasons))
            if columns is not None:
                yield columns


def kept_columns(
    block: Block, keep: Sequence[str] | None = None
) -> tuple[dict[str, np.ndarray] | None, Counter[str]]:
    """The kept rows of ``block`` (only the columns ``keep`` if given; None if no point is kept)
    and its dropped points counted by reason."""
    kept = block.kept
    columns = block.columns
    if keep is not None:
        columns = {k: v for k, v in columns.items() if k in keep}
    if kept.all():
        return columns, Counter()
    rejected = Counter(block.reasons[~kept].tolist())
    if not kept.any():
        return None, rejected
    rows = np.flatnonzero(kept)
    return {k: _take(v, rows) for k, v in columns.items()}, rejected


def _take(column: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``column[rows]``; a constant broadcast (stride 0) stays one (a read-only view)."""
    if column.ndim == 1 and column.strides == (0,):
        return np.broadcast_to(column[:1], (len(rows),))
    return column[rows]


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
    tally = Tally()
    blocks = list(
        kept_blocks(spec, grid, tally, chunk_points=chunk_points, progress=progress, keep=keep)
    )
    return blocks, tally.rejected, tally.evaluate_s


# ----------------------------------------------------------------------------------------------
# Streaming a sweep to disk: memory bounded by the chunk and the fronts, not by the grid
# ----------------------------------------------------------------------------------------------

#: Rows per row group of a streamed ``results.parquet``: bounds the memory of the writing pass.
ROW_GROUP_ROWS = 1 << 17


@dataclass(frozen=True)
class WorkUnit:
    """One deterministic piece of a sweep: flat points ``start`` to ``stop`` (excluded) of the
    numeric knob product of ``combo``. A sweep's units (:func:`work_units`) depend on the grid
    and the chunk size only, never on how many processes run them, and each carries all its
    evaluation needs besides the sweep itself, so it can run in any process or on any machine."""

    combo: Combination
    start: int
    stop: int


def work_units(
    grid: Grid, chunk_points: int = CHUNK_POINTS, box_points: int = BOX_POINTS
) -> list[WorkUnit]:
    """The work units of ``grid`` in grid order: each combination's numeric product in chunks of
    at most ``chunk_points`` points that do not cross a grid box of at most ``box_points``
    (:func:`~elmoe_dse.explore.grid.chunk_bounds`; the chunks
    :meth:`~elmoe_dse.explore.grid.Grid.chunks` gives)."""
    return [u for batch in work_batches(grid, chunk_points, box_points) for u in batch]


def work_batches(
    grid: Grid, chunk_points: int = CHUNK_POINTS, box_points: int = BOX_POINTS
) -> list[tuple[WorkUnit, ...]]:
    """:func:`work_units` in grid order, one batch per combination and grid box
    (:func:`~elmoe_dse.explore.grid.box_chunks`; a unit never crosses a box): a process that
    runs a batch (:func:`run_batch`) costs its box once for all its units, and no box is costed
    by two processes."""
    boxes = box_chunks(grid.shape, chunk_points, box_points)
    return [
        tuple(WorkUnit(combo, start, stop) for start, stop in box)
        for combo in grid.combinations
        for box in boxes
    ]


@dataclass(frozen=True)
class UnitResult:
    """What evaluating a work unit hands to the process that writes the table: its kept rows
    ready to spool (None if none is kept), each group's Pareto candidates among them (row
    positions within the unit), dropped points by reason, its point count and evaluator time.
    Picklable (an Arrow table, numpy arrays, plain keys), so it may come from another process."""

    points: int
    rejected: Counter[str]
    evaluate_s: float
    rows: SpoolBlock | None
    candidates: list[Candidates]
    fastest: list[Fastest] = field(default_factory=list)
    #: The candidate and fastest rows and the first row again (every column), so the writing
    #: process has the front and the figure tables' rows before it writes the table, and
    #: their positions.
    picked: SpoolBlock | None = None
    picked_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def run_unit(spec: SweepSpec, axes: tuple[Axis, ...], unit: WorkUnit) -> UnitResult:
    """Evaluate one work unit of ``spec`` (``axes``: the grid's numeric axes) with
    :func:`evaluate_block`, so every result column it gives reaches the table."""
    numeric = numeric_slice(axes, unit.start, unit.stop)
    t0 = time.perf_counter()
    block = evaluate_block(spec, unit.combo, numeric)
    evaluate_s = time.perf_counter() - t0
    columns, rejected = kept_columns(block)
    if columns is None:
        return UnitResult(len(block.reasons), rejected, evaluate_s, None, [])
    candidates, fastest = block_candidates(spec, columns), block_fastest(columns)
    # The block's first row too: the table's first row is among them.
    firsts = np.array([0, *(f[2] for f in fastest)], dtype=np.int64)
    picked = np.unique(np.concatenate([firsts, *(c[3] for c in candidates)]))
    return UnitResult(
        len(block.reasons),
        rejected,
        evaluate_s,
        spool_block(columns),
        candidates,
        fastest,
        spool_block({k: v[picked] for k, v in columns.items()}),
        picked,
    )


def run_batch(
    spec: SweepSpec, axes: tuple[Axis, ...], units: tuple[WorkUnit, ...]
) -> list[UnitResult]:
    """:func:`run_unit` of each unit of a batch (:func:`work_batches`), in order."""
    return [run_unit(spec, axes, unit) for unit in units]


#: Runs a sweep's work units (:func:`work_units`) and yields their results in grid order.
Runner = Callable[[SweepSpec, Grid, int], Iterator[UnitResult]]


def in_process(spec: SweepSpec, grid: Grid, chunk_points: int) -> Iterator[UnitResult]:
    """The default :data:`Runner`: every work unit in this process, one after the other."""
    for unit in work_units(grid, chunk_points):
        yield run_unit(spec, grid.numeric, unit)


#: Work done while ``results.parquet`` is written (the CLI: the figure tables), given the run
#: (timing not yet known) and its ``run.json`` record.
Alongside = Callable[["SweepRun", Mapping[str, Any]], object]


def stream_sweep(
    spec: SweepSpec,
    out_dir: Path,
    *,
    sweep_file: str | None = None,
    chunk_points: int = CHUNK_POINTS,
    progress: Progress | None = None,
    runner: Runner = in_process,
    alongside: Alongside | None = None,
) -> tuple[SweepRun, list[Path]]:
    """Evaluate every point of ``spec``'s grid and write ``results.parquet`` and ``run.json`` to
    ``out_dir``, holding in memory a few work units, one row group and the running Pareto
    candidates.

    The table is the one :func:`run_sweep` followed by :func:`save_sweep` writes (same columns,
    dtypes, categories, row order and flags). ``runner`` evaluates the work units (of
    ``chunk_points`` points) here or in other processes (:mod:`elmoe_dse.explore.scale`); their
    results are merged in grid order, so the table does not depend on it. Kept rows are held
    compressed in memory up to :data:`SPOOL_MEMORY_BYTES`, the rest in a temporary file beside
    the output, removed whatever happens; both outputs are written to temporary names and
    renamed. The front is known before the table is written (the blocks send their candidate
    rows), so the table is encoded in a thread while this one builds the record and runs
    ``alongside``. Timing: ``evaluate_s`` in the evaluator (summed over the processes),
    ``table_and_pareto_s`` this process's time besides waiting for unit results (merging
    fronts, spooling, writing the table, ``alongside``), ``total_s`` the wall time. Unless
    ``out_dir`` is a run's stage, the two files are staged and committed together
    (:func:`~elmoe_dse.results.staged_run`).
    """
    if not in_stage(out_dir):
        with staged_run(out_dir) as stage:
            run, _ = stream_sweep(
                spec,
                stage.folder,
                sweep_file=sweep_file,
                chunk_points=chunk_points,
                progress=progress,
                runner=runner,
                alongside=alongside,
            )
        return run, stage.written
    start = time.perf_counter()
    grid = expand(spec)
    ensure_dir(out_dir)
    tally = Tally()
    fronts = RunningFronts(spec)
    records: list[dict[str, Any]] = []

    def finish(front: pd.DataFrame, fastest: pd.DataFrame | None) -> SweepRun:
        run = SweepRun(
            spec=spec,
            grid_points=grid.size,
            front=front,
            group_points=dict(fronts.points),
            rejected=tally.rejected,
            fastest=fastest,
        )
        records.append(_sweep_record(run, sweep_file))  # its timing is filled in below
        if alongside is not None:
            alongside(run, records[0])
        return run

    results = out_dir / RESULTS_FILE
    with Spool(out_dir) as spool:
        waited = merge_units(runner(spec, grid, chunk_points), fronts, spool, tally, progress)
        run = write_while(results, spool, fronts, finish)
    total = time.perf_counter() - start
    run.timing_s.update(
        total_s=total,
        evaluate_s=tally.evaluate_s,
        table_and_pareto_s=total - waited,
        points_per_s=grid.size / tally.evaluate_s if tally.evaluate_s > 0 else float("nan"),
    )
    record = {**records[0], "timing": run.timing_s}
    return run, [results, write_json(out_dir / RUN_FILE, record)]


def write_while(
    path: Path,
    spool: Spool,
    fronts: RunningFronts,
    then: Callable[[pd.DataFrame, pd.DataFrame | None], SweepRun],
) -> SweepRun:
    """Write the spooled rows, flagged by the final ``fronts``, to ``path`` (:func:`write_flagged`)
    in a thread, while this one runs ``then(front, fastest)`` (the Pareto-optimal rows and the
    figure tables' rows, :func:`picked_rows`; ``fastest`` None when no row is kept); return
    what ``then`` returns once the table is written. An error in either is raised here, after
    the thread has ended."""
    import threading

    if not spool.rows:
        front = table([])
        front[PARETO_COLUMN] = np.zeros(0, dtype=bool)
        write_table(path, front)
        return then(front, None)
    final = FinalSchema.of(spool)
    optimal = fronts.optimal_rows()
    failed: list[BaseException] = []

    def write() -> None:
        try:
            write_flagged(path, spool, optimal, final)
        except BaseException as err:  # raised in the caller's thread below
            failed.append(err)

    # The table is the longest part left: it starts first, the picked rows are taken meanwhile.
    thread = threading.Thread(target=write, name=f"write {path.name}")
    thread.start()
    try:
        run = then(*picked_rows(fronts, final))
    finally:
        thread.join()
    if failed:
        raise failed[0]
    return run


def merge_units(
    units: Iterator[UnitResult],
    fronts: RunningFronts,
    spool: Spool,
    tally: Tally,
    progress: Progress | None,
) -> float:
    """Merge work unit results (in grid order) into the fronts, the spool and the tally; return
    the seconds spent waiting for them."""
    waited = 0.0
    while True:
        t0 = time.perf_counter()
        unit = next(units, None)
        waited += time.perf_counter() - t0
        if unit is None:
            return waited
        tally.rejected.update(unit.rejected)
        tally.evaluate_s += unit.evaluate_s
        if progress is not None:
            progress(unit.points)
        if unit.rows is not None:
            fronts.merge(unit.candidates, first_row=spool.rows)
            fronts.merge_fastest(unit.fastest, first_row=spool.rows)
            if unit.picked is not None:
                fronts.picked.append((spool.rows + unit.picked_rows, unit.picked))
            spool.write(unit.rows)


@dataclass
class RunningFronts:
    """Per ``group_by`` group: the kept points counted so far and the Pareto candidates among
    them (loss values and global row positions).

    Each block's points are merged with the group's candidates and pruned by
    :func:`~elmoe_dse.explore.pareto.pareto_mask`. A point dominated among the rows seen so far is
    dominated in the whole table, and a point that survives every merge is dominated by no row at
    all, so after the last block the candidates are exactly each group's front.
    """

    spec: SweepSpec
    points: Counter[GroupKey] = field(default_factory=Counter)
    loss: dict[GroupKey, np.ndarray] = field(default_factory=dict)
    rows: dict[GroupKey, np.ndarray] = field(default_factory=dict)
    #: Per :data:`~elmoe_dse.explore.figure_columns.FASTEST_KEYS` group, the largest throughput
    #: seen so far and the row that first has it (:func:`block_fastest`).
    fastest: dict[GroupKey, tuple[float, int]] = field(default_factory=dict)
    #: Per block, its candidate and fastest rows (row positions in the table, the rows).
    picked: list[tuple[np.ndarray, SpoolBlock]] = field(default_factory=list)

    def add(self, columns: Mapping[str, np.ndarray], *, first_row: int) -> None:
        """Merge a block of kept rows whose first row is row ``first_row`` of the table."""
        self.merge(block_candidates(self.spec, columns), first_row=first_row)

    def merge(self, candidates: Sequence[Candidates], *, first_row: int) -> None:
        """Merge a block's :func:`block_candidates`; its first row is row ``first_row``."""
        for key, points, pts, idx in candidates:
            self.points[key] += points
            rows = first_row + idx
            if key in self.loss:
                pts = np.concatenate([self.loss[key], pts])
                rows = np.concatenate([self.rows[key], rows])
                keep = pareto_mask(pts)
                pts, rows = pts[keep], rows[keep]
            self.loss[key], self.rows[key] = pts, rows

    def merge_fastest(self, fastest: Sequence[Fastest], *, first_row: int) -> None:
        """Merge a block's :func:`block_fastest`; its first row is row ``first_row``. Blocks
        come in table order, so a tie keeps the earlier row."""
        for key, value, row in fastest:
            best = self.fastest.get(key)
            if best is None or value > best[0]:
                self.fastest[key] = (value, first_row + row)

    def fastest_rows(self) -> np.ndarray:
        """The rows a sweep's figure tables use, ascending: the table's first row and each
        :data:`~elmoe_dse.explore.figure_columns.FASTEST_KEYS` group's first fastest row."""
        if not self.points:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.array([0, *(row for _, row in self.fastest.values())], dtype=np.int64))

    def optimal_rows(self) -> np.ndarray:
        """Row positions of every group's Pareto-optimal points, ascending."""
        if not self.rows:
            return np.zeros(0, dtype=np.int64)
        return np.sort(np.concatenate(list(self.rows.values())))


#: One group's share of a block: key, kept points, the loss values and row positions (within the
#: block, ascending) of the points no other point of the block dominates.
Candidates = tuple[GroupKey, int, np.ndarray, np.ndarray]


def block_candidates(spec: SweepSpec, columns: Mapping[str, np.ndarray]) -> list[Candidates]:
    """Per ``group_by`` group of a block of kept rows, its Pareto candidates (see
    :data:`Candidates`): merging them instead of the whole block gives the same fronts, as a
    point dominated within the block is dominated in the table."""
    objectives = spec.objectives
    loss = to_minimize(
        np.column_stack([np.asarray(columns[o.metric], dtype=float) for o in objectives]),
        [o.sign for o in objectives],
    )
    out = []
    for key, idx in block_groups(columns, spec.group_columns()):
        keep = pareto_mask(loss[idx])
        out.append((key, int(idx.size), loss[idx][keep], idx[keep]))
    return out


#: One group's fastest row in a block: its :data:`~elmoe_dse.explore.figure_columns.FASTEST_KEYS`
#: key, its throughput and its position in the block (the first of equals; NaN never wins).
Fastest = tuple[GroupKey, float, int]


def block_fastest(columns: Mapping[str, np.ndarray]) -> list[Fastest]:
    """Per :data:`~elmoe_dse.explore.figure_columns.FASTEST_KEYS` group of a block of kept rows
    with a throughput that is not NaN, its fastest row (see :data:`Fastest`)."""
    if THROUGHPUT_TOK_PER_S not in columns:
        return []
    values = np.asarray(columns[THROUGHPUT_TOK_PER_S], dtype=float)
    out = []
    for key, idx in block_groups(columns, tuple(k for k in FASTEST_KEYS if k in columns)):
        v = values[idx]
        if not np.isnan(v).all():
            best = int(np.nanargmax(v))
            out.append((key, float(v[best]), int(idx[best])))
    return out


def block_groups(
    columns: Mapping[str, np.ndarray], names: tuple[str, ...]
) -> list[tuple[GroupKey, np.ndarray]]:
    """(key, row positions) of each group of a block of columns (one group when ``names`` is
    empty; NaN values form a group); keys compare equal across blocks (:func:`group_key`)."""
    import pandas as pd

    n = len(next(iter(columns.values())))
    codes = np.zeros(n, dtype=np.int64)
    levels: list[tuple[np.ndarray, Any]] = []
    for name in names:
        values = columns[name]
        if _one_string(values):  # (codes stay dense: nothing to recombine)
            levels.append((np.zeros(n, dtype=np.int64), [values[0]]))
            continue
        level_codes, uniques = pd.factorize(values, use_na_sentinel=False)
        codes = np.unique(codes * len(uniques) + level_codes, return_inverse=True)[1]
        levels.append((level_codes, uniques))
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.diff(codes[order], prepend=-1))
    return [
        (group_key([uniques[c[idx[0]]] for c, uniques in levels]), idx)
        for idx in np.split(order, starts[1:])
    ]


def _one_string(values: np.ndarray) -> bool:
    """Whether an object column holds the same string object in every row (a combination's
    model, dataset or categorical knob, broadcast or repeated): its codes are zeros, no need
    to hash it. Compares the references, so equal strings that are distinct objects answer
    False (and the column is factorized as usual)."""
    if values.dtype != object or not len(values) or not isinstance(values[0], str):
        return False
    if values.ndim == 1 and values.strides == (0,):  # a broadcast constant (:func:`_view`)
        return True
    if not values.flags.c_contiguous:
        return False
    refs = np.frombuffer(memoryview(values).cast("B"), dtype=np.intp)  # type: ignore[arg-type]
    return bool((refs == refs[0]).all())


def group_key(values: Sequence[Any]) -> GroupKey:
    """A group key as plain Python values with NaN as None, so equal keys compare equal."""
    plain = [_plain(v) for v in values]
    return tuple(None if isinstance(v, float) and math.isnan(v) else v for v in plain)


class Spool:
    """Kept rows, block by block (each encoded where it was evaluated: :func:`spool_block`),
    held in memory up to ``memory_bytes`` of compressed blocks and appended beyond that to one
    temporary file in ``folder`` (removed on exit). Records what the final table needs: each
    column's dtypes, whether some block lacks it, and the distinct values of its string
    columns."""

    def __init__(self, folder: Path, memory_bytes: int | None = None) -> None:
        self.folder = folder
        self.memory_bytes = SPOOL_MEMORY_BYTES if memory_bytes is None else memory_bytes
        self.files: list[Path] = []
        self.rows = 0
        self.dtypes: dict[str, set[np.dtype[Any]]] = {}
        self.strings: dict[str, set[Any]] = {}
        self.layouts: list[tuple[str, ...]] = []
        #: Per block: its IPC stream (in memory) or (offset, size) in the file, and its strings.
        self._blocks: list[tuple[Any, dict[str, list[Any]]]] = []
        self._held = 0
        self._file: Any = None
        self._size = 0

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()
        for path in self.files:
            path.unlink(missing_ok=True)

    def write(self, rows: SpoolBlock) -> None:
        """Append a block of kept rows (:func:`spool_block`)."""
        data = memoryview(rows.ipc)
        if self._held + data.nbytes <= self.memory_bytes:
            self._held += data.nbytes
            self._blocks.append((rows.ipc, rows.strings))
        else:
            self._spill_file().write(data)
            self._blocks.append(((self._size, data.nbytes), rows.strings))
            self._size += data.nbytes
        layout = tuple(name for name, _ in rows.dtypes)
        if not self.layouts or self.layouts[-1] != layout:
            self.layouts.append(layout)
        for name, dtype in rows.dtypes:
            self.dtypes.setdefault(name, set()).add(dtype)
        for name, values in rows.strings.items():
            self.strings.setdefault(name, set()).update(values)
        self.rows += rows.rows

    def _spill_file(self) -> Any:
        if self._file is None:
            fd, name = tempfile.mkstemp(
                prefix=temp_prefix(RESULTS_FILE), suffix=".spool", dir=self.folder
            )
            self.files.append(Path(name))
            self._file = os.fdopen(fd, "w+b")
        return self._file

    def read(self) -> Iterator[tuple[Any, dict[str, list[Any]]]]:
        """The spooled blocks in order, once: each as an Arrow record batch (string columns as
        codes) and, per string column, the values its codes index. A block held in memory is
        let go once read, so the memory it held serves the writing."""
        import pyarrow as pa

        if self._file is not None:
            self._file.flush()
        blocks, self._blocks, self._held = self._blocks, [], 0
        blocks.reverse()  # popped from the end: in order, each dropped once read
        while blocks:
            where, strings = blocks.pop()
            if isinstance(where, tuple):
                self._file.seek(where[0])
                where = pa.py_buffer(self._file.read(where[1]))
            with pa.ipc.open_stream(where) as reader:
                batch = reader.read_next_batch()
            del where
            yield batch, strings

    def final_dtypes(self) -> dict[str, Any]:
        """Each column's dtype in the table, in table order: as :func:`table` gives it (numpy's
        promotion over the blocks, float where a block lacks the column; strings categorical)."""
        import pandas as pd

        out: dict[str, Any] = {}
        for name in sorted(self.dtypes, key=_column_order):
            absent = any(name not in layout for layout in self.layouts)
            dtype = np.result_type(*self.dtypes[name], *([np.float64] if absent else []))
            if dtype.kind == "O":
                values = [*self.strings.get(name, ()), *([None] if absent else [])]
                out[name] = pd.CategoricalDtype(
                    pd.Categorical(np.array(values, dtype=object)).categories
                )
            else:
                out[name] = dtype
        return out


#: Bytes of compressed blocks a streamed sweep holds in memory; later blocks go to a temporary
#: file beside the output (read back once, when the table is written). 32 MiB: the table is
#: encoded while the figure tables are computed, and both fit in the 0.5 GB of a 10 M point
#: sweep (:data:`elmoe_dse.bench.TARGET_SWEEP_PEAK_BYTES`) with room to spare.
SPOOL_MEMORY_BYTES = 32 << 20


@dataclass(frozen=True)
class SpoolBlock:
    """A block of kept rows as the :class:`Spool` takes it: one Arrow record batch in an
    LZ4-compressed IPC stream (a buffer), its row count, each column's numpy dtype (block order)
    and, per string column, its distinct values: the batch holds the column as their codes
    (``pandas.factorize``: -1 for a missing value)."""

    ipc: Any
    rows: int
    dtypes: tuple[tuple[str, np.dtype[Any]], ...]
    strings: dict[str, list[Any]]


def spool_block(columns: Mapping[str, np.ndarray]) -> SpoolBlock:
    """A block of kept rows (equal-length columns) converted for the :class:`Spool`."""
    import pandas as pd
    import pyarrow as pa

    arrays, strings = [], {}
    for name, v in columns.items():
        if _one_string(v):
            strings[name] = [v[0]]
            arrays.append(pa.array(np.zeros(len(v), dtype=np.int32)))
        elif v.dtype == object:
            codes, uniques = pd.factorize(v)
            strings[name] = uniques.tolist()
            arrays.append(pa.array(codes.astype(np.int32, copy=False)))
        else:
            arrays.append(pa.array(v))
    batch = pa.RecordBatch.from_arrays(arrays, names=list(columns))
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="lz4")
    with pa.ipc.new_stream(sink, batch.schema, options=options) as writer:
        writer.write_batch(batch)
    dtypes = tuple((name, v.dtype) for name, v in columns.items())
    return SpoolBlock(sink.getvalue(), batch.num_rows, dtypes, strings)


@dataclass(frozen=True)
class FinalSchema:
    """The written table's Arrow schema (with the pandas metadata of the in-memory table), an
    empty table of it, and per categorical column its dictionary and each value's position."""

    schema: Any
    empty: Any
    categories: dict[str, tuple[Any, dict[Any, int]]]

    @classmethod
    def of(cls, spool: Spool) -> FinalSchema:
        import pandas as pd
        import pyarrow as pa

        dtypes = spool.final_dtypes()
        head = pd.DataFrame(
            {name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()}
            | {PARETO_COLUMN: np.zeros(0, dtype=bool)}
        )
        schema = pa.Schema.from_pandas(head, preserve_index=False)
        categories = {
            name: (
                pa.array(list(dtype.categories), schema.field(name).type.value_type),
                {v: i for i, v in enumerate(dtype.categories)},
            )
            for name, dtype in dtypes.items()
            if isinstance(dtype, pd.CategoricalDtype)
        }
        empty = pa.Table.from_pandas(head, schema=schema, preserve_index=False)
        return cls(schema, empty, categories)

    def batch(self, batch: Any, strings: Mapping[str, list[Any]], flags: np.ndarray) -> Any:
        """A spooled record ``batch`` (its string columns' values: ``strings``) in the final
        schema, with ``meta.pareto`` = ``flags``."""
        import pyarrow as pa

        arrays = [
            _final_column(field, batch, strings, self.categories.get(field.name))
            for field in self.schema
            if field.name != PARETO_COLUMN
        ]
        return pa.RecordBatch.from_arrays([*arrays, pa.array(flags)], schema=self.schema)


def write_flagged(path: Path, spool: Spool, optimal: np.ndarray, final: FinalSchema) -> None:
    """Write the spooled rows plus ``meta.pareto`` (True at row positions ``optimal``) to
    ``path`` atomically, in row groups of :data:`ROW_GROUP_ROWS` rows, in the schema
    ``final``: each block converted in Arrow and encoded once."""
    import pyarrow.parquet as pq

    def write(tmp: Path) -> None:
        first = 0
        pending: list[Any] = []
        with pq.ParquetWriter(tmp, final.schema) as writer:
            for batch, strings in spool.read():
                n = batch.num_rows
                flags = np.zeros(n, dtype=bool)
                lo, hi = np.searchsorted(optimal, [first, first + n])
                flags[optimal[lo:hi] - first] = True
                block = final.batch(batch, strings, flags)
                pending = _write_row_groups(writer, [*pending, block], final=False)
                first += n
            _write_row_groups(writer, pending, final=True)

    atomic_write(path, write)


def picked_rows(fronts: RunningFronts, final: FinalSchema) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The Pareto-optimal rows and the rows that decide the figure tables (``meta.*``,
    ``knob.*`` and throughput columns; :meth:`RunningFronts.fastest_rows`), both in table order
    and in the final schema, from the candidate rows the blocks sent (:attr:`UnitResult.picked`)."""
    import pyarrow as pa

    optimal, fastest = fronts.optimal_rows(), fronts.fastest_rows()
    wanted = np.union1d(optimal, fastest)
    tables = [final.empty]
    rows: list[np.ndarray] = []
    for where, block in fronts.picked:
        take = np.flatnonzero(_among(where, wanted))
        if take.size:
            batch = pa.ipc.open_stream(block.ipc).read_next_batch().take(pa.array(take))
            flags = _among(where[take], optimal)
            tables.append(pa.Table.from_batches([final.batch(batch, block.strings, flags)]))
            rows.append(where[take])
    taken = pa.concat_tables(tables)
    where = np.concatenate([np.zeros(0, dtype=np.int64), *rows])
    front = taken.filter(pa.array(_among(where, optimal))).to_pandas()
    picked = taken.filter(pa.array(_among(where, fastest)))
    names = [n for n in picked.column_names if n.startswith((META, KNOB))]
    names += [n for n in picked.column_names if n == THROUGHPUT_TOK_PER_S]
    return front, picked.select(names).to_pandas()


def _among(values: np.ndarray, ascending: np.ndarray) -> np.ndarray:
    """Per value, whether it is in the sorted array ``ascending`` (``np.isin`` without hashing
    ``ascending`` again on every call)."""
    at = np.searchsorted(ascending, values)
    found = at < len(ascending)
    found[found] = ascending[at[found]] == values[found]
    return found


def _write_row_groups(writer: Any, batches: list[Any], *, final: bool) -> list[Any]:
    """Write the whole row groups of :data:`ROW_GROUP_ROWS` rows in ``batches`` (and, if
    ``final``, the rest); return the rows left over."""
    import pyarrow as pa

    rows = sum(b.num_rows for b in batches)
    whole = rows if final else rows - rows % ROW_GROUP_ROWS
    if not whole:
        return batches
    table = pa.Table.from_batches(batches)
    writer.write_table(table.slice(0, whole), row_group_size=ROW_GROUP_ROWS)
    return table.slice(whole).to_batches() if whole < rows else []


def _final_column(field: Any, batch: Any, strings: Mapping[str, list[Any]], categories: Any) -> Any:
    """Column ``field`` of the final schema from a spooled record ``batch`` (its string
    columns' values: ``strings``); ``categories``: the column's categories and their positions
    if it is categorical."""
    import pyarrow as pa

    n = batch.num_rows
    index = batch.schema.get_field_index(field.name)
    if categories is not None:
        dictionary, position = categories
        if index < 0:
            return pa.DictionaryArray.from_arrays(pa.nulls(n, field.type.index_type), dictionary)
        codes = batch.column(index).to_numpy()
        values = strings[field.name]
        recode = np.array([position[v] for v in values] + [0], dtype=np.int64)
        missing = codes < 0
        indices = pa.array(
            recode[codes], mask=missing if missing.any() else None, type=field.type.index_type
        )
        return pa.DictionaryArray.from_arrays(indices, dictionary)
    if index < 0:
        zero = field.name.startswith(_ZERO_WHEN_ABSENT)
        return pa.array(np.zeros(n) if zero else np.full(n, np.nan)).cast(field.type)
    column = batch.column(index)
    return column if column.type == field.type else column.cast(field.type)


# ----------------------------------------------------------------------------------------------
# Sidecar and outputs
# ----------------------------------------------------------------------------------------------


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


def input_record(axis: str, ref: str) -> dict[str, Any]:
    """What a model, platform or dataset reference resolved to: ``shipped:NAME`` or the file's
    absolute path, with the sha256 of the file read (``run.json``'s ``inputs``)."""
    from elmoe_dse.results import SHIPPED_PREFIX, file_sha256, shipped_file
    from elmoe_dse.specs.dataset import list_datasets
    from elmoe_dse.specs.model import list_models
    from elmoe_dse.specs.platform import list_platforms

    shipped = {"model": list_models, "platform": list_platforms, "dataset": list_datasets}[axis]()
    key = ref.strip().lower()
    if key in shipped and not Path(ref).is_file():
        resolved, path = f"{SHIPPED_PREFIX}{key}", shipped_file(axis, key)
    else:
        path = Path(ref).resolve()
        if path.is_dir():
            path = path / "config.json"
        resolved = str(path)
    return {"id": scenario_id(axis, ref), "resolved": resolved, "sha256": file_sha256(path)}


def spec_inputs(spec: SweepSpec) -> dict[str, dict[str, dict[str, Any]]]:
    """Per axis (models, platforms, datasets) and reference: :func:`input_record`."""
    return {
        f"{axis}s": {ref: input_record(axis, ref) for ref in getattr(spec, f"{axis}s")}
        for axis in ("model", "platform", "dataset")
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
    from elmoe_dse.calibration import resolve_calibration

    cal = resolve_calibration(spec.calibration)
    return sidecar(
        command=command,
        sweep=resolved_sweep(spec),
        calibration=None if cal is None else cal.model_dump(),
        spec_hashes=spec_hashes(spec),
        inputs=spec_inputs(spec),
        seed=spec.seed,
        **extra,
    )


def write_results(out_dir: Path, frame: pd.DataFrame, record: Mapping[str, Any]) -> list[Path]:
    """Write ``results.parquet`` and ``run.json`` as one run: straight into ``out_dir`` if it is
    a run's stage (:func:`~elmoe_dse.results.staged_run`), else staged and committed together."""
    if not in_stage(out_dir):
        with staged_run(out_dir) as stage:
            write_results(stage.folder, frame, record)
        return stage.written
    ensure_dir(out_dir)
    return [
        write_table(out_dir / RESULTS_FILE, frame),
        write_json(out_dir / RUN_FILE, dict(record)),
    ]


def save_sweep(result: SweepResult, out_dir: Path, *, sweep_file: str | None = None) -> list[Path]:
    """Write a sweep run in memory (its table and sidecar) to ``out_dir``."""
    return write_results(out_dir, result.frame, _sweep_record(result, sweep_file))


def _sweep_record(run: SweepRun, sweep_file: str | None) -> dict[str, Any]:
    return run_record(
        run.spec,
        "sweep",
        sweep_file=sweep_file,
        timing=run.timing_s,
        points=run.summary,
        pareto=run.pareto_summary(),
    )


def split_front(frame: pd.DataFrame, spec: SweepSpec) -> tuple[pd.DataFrame, dict[GroupKey, int]]:
    """The Pareto-optimal rows of a flagged table and its kept points per group."""
    if frame.empty:
        return frame, {}
    points = {
        group_key(key): int(idx.size)
        for key, idx in group_indices(frame, spec.group_columns()).items()
    }
    return frame[frame[PARETO_COLUMN].to_numpy()], points


def pareto_summary(frame: pd.DataFrame, spec: SweepSpec) -> list[dict[str, Any]]:
    """Per group of a flagged table: its key, kept points and Pareto points."""
    return front_summary(*split_front(frame, spec), spec)


def front_summary(
    front: pd.DataFrame, points: Mapping[GroupKey, int], spec: SweepSpec
) -> list[dict[str, Any]]:
    """Per group (sorted by key): its key, kept points (``points``) and Pareto points
    (the rows of ``front``; every group with a kept point has one, as objectives are finite)."""
    if front.empty:
        return []
    cols = spec.group_columns()
    return [
        {
            "group": {c: _plain(v) for c, v in zip(cols, key, strict=True)},
            "points": points[group_key(key)],
            "pareto_points": int(idx.size),
        }
        for key, idx in group_indices(front, cols).items()
    ]


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_out_dir(out_dir: Path) -> Path:
    """Fail early (before any work) if ``out_dir`` cannot be created or written, or a file of
    the run cannot take its place there."""
    ensure_dir(out_dir)
    check_targets(out_dir, (RESULTS_FILE, RUN_FILE))
    return out_dir


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
    """Per group of a flagged table, a sample of at most ``max_rows`` distinct Pareto designs."""
    return front_groups(*split_front(frame, spec), spec, max_rows=max_rows)


def front_groups(
    front: pd.DataFrame,
    points: Mapping[GroupKey, int],
    spec: SweepSpec,
    *,
    max_rows: int = 8,
    max_groups: int | None = None,
) -> list[ParetoGroup]:
    """Per group of the Pareto-optimal rows ``front`` (``points``: kept points per group; only
    the first ``max_groups`` groups by key if given), a sample of at most ``max_rows`` distinct
    Pareto designs (see ParetoGroup)."""
    if front.empty:
        return []
    objectives = [o.metric for o in spec.objectives]
    extra = [c.column for c in spec.parsed_constraints() if c.column not in objectives]
    varying = [c for c in varying_columns(spec) if c not in objectives]
    columns = (*varying, *objectives, *dict.fromkeys(extra))
    out = []
    first = spec.objectives[0]
    front = front[list(dict.fromkeys((*spec.group_columns(), *columns)))]  # the columns shown
    groups = list(group_indices(front, spec.group_columns()).items())
    for key, idx in groups if max_groups is None else groups[:max_groups]:
        group = front.iloc[idx].sort_values(
            first.metric, ascending=first.direction == "minimize", kind="stable"
        )
        counts = group.groupby(objectives, sort=False, observed=True).size()
        distinct = group.drop_duplicates(subset=objectives)
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
                points=points[group_key(key)],
                pareto_points=int(idx.size),
                distinct=len(distinct),
                columns=columns,
                rows=tuple(rows),
            )
        )
    return out
