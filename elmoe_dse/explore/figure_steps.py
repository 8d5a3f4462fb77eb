"""Figure tables read off evaluated steps: rooflines and knob sensitivities
(:mod:`elmoe_dse.explore.figure_tables` writes them).

- **Roofline**: for each operator of each pass of a step, its intensity = ops / bytes moved
  (reads and writes, every tier) and attained rate = ops / time, where it ran and what bound it;
  the roofs are read back from the same records, so they are exactly the numbers the model used:
  a compute peak = ops per instance / compute time term, a tier's bandwidth = bytes per instance
  / that tier's time term (docs/model.md §7). Operators of passes that did not run (a draft pass
  repeated 0 times) are left out.
- **Acceptance** (Elastic-SD on an ELMoE-3D platform): acceptance alpha and tokens per step over
  draft bits x pool sizes, with whether the pool fits in HB at that draft width (docs/model.md §6).
- **Hit rate vs HB capacity**: HB-xPU's full-precision LRU cache, ELMoE-3D's bit-nested hot set
  and a random pool of the same slots (ablation).
- **Time per token vs draft length**: Elastic-SD over batch x draft length 0..8.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    BOUND,
    CACHE_POLICY,
    DATASET,
    DRAFT_LENGTH_TOKENS,
    FEASIBLE,
    HIT_RATE_FRAC,
    LATENCY_PER_TOKEN_S,
    MODEL,
    PLATFORM,
    POLICY,
    SYSTEM,
    THROUGHPUT_TOK_PER_S,
    TOKENS_PER_STEP,
    knob_column,
)
from elmoe_dse.explore.figure_columns import (
    ATTAINED_OPS_PER_S,
    INTENSITY_OPS_PER_BYTE,
    LINE,
    OPERATOR,
    PANEL,
    PASS,
    PRECISION,
    ROOF_KIND,
    ROOF_NAME,
    ROOF_PER_S,
    TIME_SHARE_FRAC,
    UNIT,
)
from elmoe_dse.results import (
    FIGURE_ACCEPTANCE_FILE,
    FIGURE_DRAFT_LENGTH_FILE,
    FIGURE_HIT_RATE_FILE,
    FIGURE_ROOFLINE_POINTS_FILE,
    FIGURE_ROOFLINE_ROOFS_FILE,
)

if TYPE_CHECKING:
    import pandas as pd

    from elmoe_dse.calibration import Calibration
    from elmoe_dse.evaluator import StepCost
    from elmoe_dse.knobs import Knobs
    from elmoe_dse.scenario import Scenario

#: Significant digits roofs are rounded to before duplicates are merged.
ROOF_DIGITS = 6
#: Platforms (and policies) added to a sweep's roofline for reference.
ROOFLINE_EXTRA = (("xpu", "ar"),)
DRAFT_BITS = (2, 3, 4, 5, 6, 7, 8)
POOL_STEPS = 9
CAPACITIES_GB = (1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0)
DRAFT_GAMMAS = tuple(range(0, 9))
#: Draft length of the acceptance heat maps (the knob's default).
HEATMAP_GAMMA = 4.0
ROUNDING = "lsb-augmented"
#: Models in the per-model sensitivity figures (the first ones of the run).
MAX_MODELS = 4
#: Batch sizes in the draft-length figure.
MAX_BATCHES = 5
#: (label, platform, policy, cache policy) of the hit-rate lines; ``None`` = the ELMoE-3D
#: platform of the run.
CACHES = (
    ("HB-xPU, LRU full precision", "hb-xpu", "ar-cache", "lru"),
    ("ELMoE-3D, hot set of MSB slices", None, "ar-cache", "hot"),
    ("ELMoE-3D slots, random pool", None, "ar-cache", "random"),
)


BATCH_SIZE_COLUMN = knob_column("batch_size")
CONTEXT_LEN_COLUMN = knob_column("context_len")
#: A deferred computation of figure tables (file name -> table).
Build = Callable[[], dict[str, "pd.DataFrame"]]


@dataclass
class Specs:
    """The specs of a run: its references by the id its table records, and its calibration."""

    calibration: Calibration | None
    refs: dict[tuple[str, str], str] = field(default_factory=dict)
    scenarios: dict[tuple[str, str, str], Scenario] = field(default_factory=dict)
    #: Calibrated specs by reference, resolved once each (a figure table uses every model x
    #: platform x dataset of its systems; calibrating each pair again costs ~20 ms).
    loaded: dict[tuple[str, str], Any] = field(default_factory=dict)

    def ref(self, axis: str, name: str) -> str:
        """The reference the run loaded ``name`` by (a path for a user's file), else the name."""
        return self.refs.get((axis, name), name)

    def scenario(self, model: str, platform: str, dataset: str) -> Scenario:
        """Specs of one model x platform x dataset, calibrated as the run was: the scenario
        :func:`~elmoe_dse.scenario.build_scenario` gives (a platform's calibration depends on
        the platform only, a dataset's on the dataset only)."""
        from elmoe_dse.scenario import Inputs

        key = (model, platform, dataset)
        if key not in self.scenarios:
            refs = (self.ref("platform", platform), self.ref("dataset", dataset))
            plat, dset = self._resolved("platform", refs[0]), self._resolved("dataset", refs[1])
            inputs = Inputs(plat.platforms, dset.datasets, dset.params, plat.notes)
            self.scenarios[key] = inputs.scenario(self._model(model), *refs)
        return self.scenarios[key]

    def _model(self, name: str) -> Any:
        from elmoe_dse.specs.model import load_model

        if ("model", name) not in self.loaded:
            self.loaded[("model", name)] = load_model(self.ref("model", name))
        return self.loaded[("model", name)]

    def _resolved(self, axis: str, ref: str) -> Any:
        """:func:`~elmoe_dse.scenario.resolve_inputs` of one platform or one dataset reference."""
        from elmoe_dse.scenario import resolve_inputs

        if (axis, ref) not in self.loaded:
            plats, dsets = ([ref], []) if axis == "platform" else ([], [ref])
            self.loaded[(axis, ref)] = resolve_inputs(plats, dsets, self.calibration)
        return self.loaded[(axis, ref)]


def evaluate_at(sc: Scenario, knobs: Knobs) -> StepCost:
    """The evaluator on a scenario's model, platform, routing and draft quality."""
    from elmoe_dse.evaluator import evaluate

    return evaluate(sc.model, sc.platform, knobs, sc.p, quality=sc.quality)


def best_row(frame: pd.DataFrame, column: str) -> pd.Series:
    """The row with the largest finite value of ``column`` (first on ties)."""
    return frame.iloc[int(np.nanargmax(frame[column].to_numpy(dtype=float)))]


@dataclass(frozen=True)
class Context:
    """Models (paper order first), the dataset, the ELMoE-3D platform, the batch sizes and the
    context length of the sensitivity figures, and how the specs relate to the run."""

    models: tuple[str, ...]
    dataset: str
    elmoe_platform: str
    batches: tuple[float, ...]
    context_len: float
    origin: str

    @property
    def ends(self) -> list[float]:
        """The smallest and the largest batch size (one if the run has one)."""
        return [self.batches[0], self.batches[-1]] if len(self.batches) > 1 else list(self.batches)


def _round(x: float) -> float:
    return float(f"{x:.{ROOF_DIGITS}g}")


def _f(x: Any) -> float:
    return float(np.asarray(x))


def _op_roofs(op: Any, roofs: dict[tuple[str, str, str], float]) -> None:
    """Add the compute peak and the tier bandwidths one operator's time terms imply."""
    unit = str(np.asarray(op.unit).item())
    terms = {k: _f(v) for k, v in op.terms_s.items()}
    if terms.get("compute", 0.0) > 0:
        roofs[(unit, "compute", op.precision)] = _round(_f(op.ops) / op.layers / terms["compute"])
    for tier in set(op.bytes_read) | set(op.bytes_written):
        nbytes = _f(op.bytes_read.get(tier, 0.0)) + _f(op.bytes_written.get(tier, 0.0))
        if nbytes > 0 and terms.get(tier, 0.0) > 0:
            roofs[(unit, "memory", tier)] = _round(nbytes / op.layers / terms[tier])


def roofline_rows(
    steps: Sequence[tuple[float, StepCost]], **keys: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Operator points and roofs of ``steps`` ((batch size, 0-d step cost) pairs), each row
    carrying ``keys`` (panel, platform ...)."""
    roofs: dict[tuple[str, str, str], float] = {}
    points: list[dict[str, Any]] = []
    for batch, step in steps:
        total = _f(step.time_per_step_s)
        for ps in step.passes:
            repeats = _f(ps.repeats)
            if repeats <= 0:
                continue
            for op in ps.operators:
                ops, time_s = _f(op.ops), _f(op.time_s)
                moved = sum(_f(v) for v in op.bytes_read.values()) + sum(
                    _f(v) for v in op.bytes_written.values()
                )
                if ops <= 0 or moved <= 0 or time_s <= 0:
                    continue
                _op_roofs(op, roofs)
                points.append(
                    {
                        **keys,
                        OPERATOR: op.name,
                        PASS: ps.kind,
                        BATCH_SIZE_COLUMN: float(batch),
                        UNIT: str(np.asarray(op.unit).item()),
                        PRECISION: op.precision,
                        INTENSITY_OPS_PER_BYTE: ops / moved,
                        ATTAINED_OPS_PER_S: ops / time_s,
                        BOUND: str(np.asarray(op.bound_label()).item()),
                        TIME_SHARE_FRAC: time_s * repeats / total,
                    }
                )
    roof_rows = [
        {**keys, UNIT: u, ROOF_KIND: k, ROOF_NAME: n, ROOF_PER_S: v}
        for (u, k, n), v in roofs.items()
    ]
    return points, roof_rows


def _roofline_frames(
    panels: Sequence[tuple[str, list[tuple[float, StepCost]]]], model: str, dataset: str
) -> dict[str, pd.DataFrame]:
    import pandas as pd

    points: list[dict[str, Any]] = []
    roofs: list[dict[str, Any]] = []
    for i, (platform, steps) in enumerate(panels):
        p, r = roofline_rows(
            steps, **{PANEL: i, PLATFORM: platform, MODEL: model, DATASET: dataset}
        )
        points += p
        roofs += r
    return {
        FIGURE_ROOFLINE_POINTS_FILE: pd.DataFrame(points),
        FIGURE_ROOFLINE_ROOFS_FILE: pd.DataFrame(roofs),
    }


def knobs_from_row(row: pd.Series) -> Knobs:
    """The knobs of a results row (``knob.*`` columns; NaN = auto)."""
    from elmoe_dse.knobs import KNOB_INFO, Knobs

    values: dict[str, Any] = {}
    for name, info in KNOB_INFO.items():
        col = knob_column(name)
        if col in row:
            values[name] = str(row[col]) if info.choices else float(row[col])
    return Knobs(**values)


def sweep_roofline_tables(specs: Specs, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One panel per platform of a sweep: its fastest design at the smallest and the largest
    batch size (knobs from the table), for the model and dataset of the fastest design overall;
    plus :data:`ROOFLINE_EXTRA` at the same workload for reference."""
    batches = sorted(float(b) for b in frame[BATCH_SIZE_COLUMN].unique())
    ends = [batches[0], batches[-1]] if len(batches) > 1 else batches
    best = best_row(frame, THROUGHPUT_TOK_PER_S)
    model, dataset = str(best[MODEL]), str(best[DATASET])
    context = float(np.asarray(best[CONTEXT_LEN_COLUMN])) if CONTEXT_LEN_COLUMN in best else 1024.0
    wl = frame[(frame[MODEL] == model) & (frame[DATASET] == dataset)]
    panels: list[tuple[str, list[tuple[float, StepCost]]]] = []
    for platform, rows in wl.groupby(PLATFORM, sort=True, observed=True):
        sc = specs.scenario(model, str(platform), dataset)
        steps = []
        for b in ends:
            at = rows[rows[BATCH_SIZE_COLUMN] == b]
            if not at.empty:
                fastest = best_row(at, THROUGHPUT_TOK_PER_S)
                steps.append((b, evaluate_at(sc, knobs_from_row(fastest))))
        panels.append((str(platform), steps))
    names = {p for p, _ in panels}
    for platform, policy in ROOFLINE_EXTRA:
        if platform not in names:
            sc = specs.scenario(model, platform, dataset)
            knobs = [
                sc.knobs(policy=policy, batch_size=b, context_len=context, draft_length=0.0)
                for b in ends
            ]
            panels.append(
                (platform, [(b, evaluate_at(sc, k)) for b, k in zip(ends, knobs, strict=True)])
            )
    return _roofline_frames(panels, model, dataset)


def system_order(systems: Sequence[str]) -> list[str]:
    """Systems not of ``reproduce`` sorted, then ``reproduce``'s in its order."""
    from elmoe_dse.explore.reproduce import SYSTEMS

    known = [s for s, _, _ in SYSTEMS]
    present = set(systems)
    return sorted(present - set(known)) + [s for s in known if s in present]


def reproduce_roofline_tables(
    specs: Specs, systems: pd.DataFrame, ctx: Context
) -> dict[str, pd.DataFrame]:
    """One panel per platform of a reproduce table (its main system there: ELMoE-3D on its own
    hardware), for the first model on the context's dataset, at the draft length each ran at."""
    model = ctx.models[0]
    sel = systems[(systems[MODEL] == model) & (systems[DATASET] == ctx.dataset)]
    panels: list[tuple[str, list[tuple[float, StepCost]]]] = []
    for system in system_order(list(sel[SYSTEM].unique())):
        rows = sel[sel[SYSTEM] == system]
        platform = str(rows[PLATFORM].iloc[0])
        if platform in {p for p, _ in panels}:
            continue
        sc = specs.scenario(model, platform, ctx.dataset)
        steps = []
        for b in ctx.ends:
            row = rows[rows[BATCH_SIZE_COLUMN] == b]
            if not row.empty:
                knobs = sc.knobs(
                    policy=str(rows[POLICY].iloc[0]),
                    batch_size=float(b),
                    context_len=ctx.context_len,
                    draft_length=float(row[DRAFT_LENGTH_TOKENS].iloc[0]),
                )
                steps.append((float(b), evaluate_at(sc, knobs)))
        panels.append((platform, steps))
    return _roofline_frames(panels, model, ctx.dataset)


# ----------------------------------------------------------------------------------------------
# Knob sensitivities
# ----------------------------------------------------------------------------------------------


def pool_axis(largest: float, num_experts: int, steps: int = POOL_STEPS) -> tuple[float, ...]:
    """About ``steps`` whole pool sizes from 0 to a step beyond ``largest`` (the most experts
    that fit at any draft width), at most E."""
    top = min(float(num_experts), largest * steps / (steps - 1.5))
    return tuple(float(v) for v in np.unique(np.round(np.linspace(0, top, steps))))


def _grid_rows(step: StepCost, axes: Mapping[str, Sequence[float]], **keys: Any) -> Any:
    """One row per point of a 2-d step (``axes``: two knob columns and their values)."""
    import pandas as pd

    (c0, v0), (c1, v1) = axes.items()
    shape = (len(v0), len(v1))
    a, b = np.meshgrid(np.asarray(v0, dtype=float), np.asarray(v1, dtype=float), indexing="ij")
    return pd.DataFrame({**keys, c0: a.ravel(), c1: b.ravel()}), shape


def acceptance_table(specs: Specs, ctx: Context) -> pd.DataFrame:
    """Elastic-SD over draft bits x pool sizes (up to a step beyond the most that fit), for the
    first model on the ELMoE-3D platform at the largest batch size."""
    model, batch = ctx.models[0], ctx.batches[-1]
    sc = specs.scenario(model, ctx.elmoe_platform, ctx.dataset)
    bits = tuple(float(b) for b in DRAFT_BITS)
    common: dict[str, Any] = {
        "policy": "elastic-sd",
        "batch_size": batch,
        "draft_length": HEATMAP_GAMMA,
        "rounding": ROUNDING,
    }
    fits = evaluate_at(sc, sc.knobs(**common, draft_bits=np.asarray(bits)))
    slots = np.asarray(fits.cache.pool_experts_per_layer, dtype=float)
    pools = pool_axis(float(slots.max()), sc.model.num_experts)
    step = evaluate_at(
        sc,
        sc.knobs(
            **common, draft_bits=np.asarray(bits)[:, None], pool_experts=np.asarray(pools)[None, :]
        ),
    )
    keys = {MODEL: model, PLATFORM: ctx.elmoe_platform, DATASET: ctx.dataset}
    keys.update({knob_column(k): v for k, v in common.items()})
    axes = {knob_column("draft_bits"): bits, knob_column("pool_experts"): pools}
    frame, shape = _grid_rows(step, axes, **keys)
    frame[ACCEPTANCE_FRAC] = np.broadcast_to(step.speculative.acceptance_frac, shape).ravel()
    frame[TOKENS_PER_STEP] = np.broadcast_to(step.tokens_per_step, shape).ravel()
    frame[FEASIBLE] = np.broadcast_to(step.feasible, shape).ravel().astype(bool)
    return frame


def hit_rate_table(specs: Specs, ctx: Context, *, batch_size: float = 1.0) -> pd.DataFrame:
    """Each of :data:`CACHES` over :data:`CAPACITIES_GB`, for the run's first models."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for model in ctx.models[:MAX_MODELS]:
        for label, named, policy, cache in CACHES:
            platform = named or ctx.elmoe_platform
            sc = specs.scenario(model, platform, ctx.dataset)
            knobs = sc.knobs(
                policy=policy,
                cache_policy=cache,
                batch_size=batch_size,
                hb_capacity_gb=np.asarray(CAPACITIES_GB),
            )
            hits = np.broadcast_to(
                evaluate_at(sc, knobs).cache.hit_rate_frac, (len(CAPACITIES_GB),)
            )
            for capacity, hit in zip(CAPACITIES_GB, hits, strict=True):
                rows.append(
                    {
                        MODEL: model,
                        DATASET: ctx.dataset,
                        LINE: label,
                        PLATFORM: platform,
                        POLICY: policy,
                        CACHE_POLICY: cache,
                        knob_column("batch_size"): batch_size,
                        knob_column("hb_capacity_gb"): capacity,
                        HIT_RATE_FRAC: float(hit),
                    }
                )
    return pd.DataFrame(rows)


def draft_length_batches(batches: Sequence[float]) -> list[float]:
    """At most :data:`MAX_BATCHES` batch sizes, evenly spread, both ends included."""
    out = list(batches)
    if len(out) > MAX_BATCHES:
        idx = np.unique(np.round(np.linspace(0, len(out) - 1, MAX_BATCHES)).astype(int))
        out = [out[i] for i in idx]
    return out


def draft_length_table(specs: Specs, ctx: Context) -> pd.DataFrame:
    """Elastic-SD latency per token over batch x draft length 0..8, for the run's first models
    on the ELMoE-3D platform."""
    import pandas as pd

    b = tuple(float(x) for x in draft_length_batches(ctx.batches))
    g = tuple(float(x) for x in DRAFT_GAMMAS)
    frames = []
    for model in ctx.models[:MAX_MODELS]:
        sc = specs.scenario(model, ctx.elmoe_platform, ctx.dataset)
        knobs = sc.knobs(
            policy="elastic-sd",
            rounding=ROUNDING,
            batch_size=np.asarray(b)[:, None],
            draft_length=np.asarray(g)[None, :],
        )
        step = evaluate_at(sc, knobs)
        keys = {MODEL: model, PLATFORM: ctx.elmoe_platform, DATASET: ctx.dataset}
        keys[knob_column("rounding")] = ROUNDING
        frame, shape = _grid_rows(
            step, {BATCH_SIZE_COLUMN: b, knob_column("draft_length"): g}, **keys
        )
        frame[LATENCY_PER_TOKEN_S] = np.broadcast_to(step.latency_per_token_s, shape).ravel()
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def sensitivity_builds(specs: Specs, ctx: Context) -> dict[str, Build]:
    """The three sensitivity tables, each as a deferred computation."""
    return {
        "acceptance": lambda: {FIGURE_ACCEPTANCE_FILE: acceptance_table(specs, ctx)},
        "hit_rate": lambda: {FIGURE_HIT_RATE_FILE: hit_rate_table(specs, ctx)},
        "draft_length": lambda: {FIGURE_DRAFT_LENGTH_FILE: draft_length_table(specs, ctx)},
    }
