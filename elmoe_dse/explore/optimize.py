"""Optuna multi-objective search over a sweep file's space; resumable, shared between processes.

**Studies.** One study per ``group_by`` group of the sweep (by default one per batch size; with
``group_by = []`` one study searches everything, batch size included). Every other axis with more
than one value is a search dimension, with exactly the grid's values: a knob range or an evenly
spaced list becomes an ``IntDistribution``/``FloatDistribution`` with the grid's step, anything
else (names, "auto", uneven lists) a ``CategoricalDistribution``. Objectives keep their direction;
constraints go through ``trial.set_constraint`` (Optuna >= 5 deprecates the sampler's
``constraints_func``): ``feasible`` (0 if the combination is valid, the design fits its
memories and every objective is finite, else 1; the objectives of an invalid point are reported
as +-inf) and one value per sweep constraint (``value - limit`` for ``<=``), so a trial is
feasible when every value is <= 0, the rule the samplers use.

**Exactly N trials, resumable.** A study is done when it holds N ``COMPLETE`` trials. A worker
creates each trial already stamped with its owner (host, pid, process start time) in one storage
transaction, counts before every batch, and fails a trial it created beyond the budget (two
workers racing for the last slots), so no trial is counted twice and the final count is N. On
start and before every batch, ``RUNNING`` trials whose owner process is gone (``kill -9``) are
marked ``FAIL`` and not counted: immediately for owners on this host, after
:data:`STALE_AFTER_S` for owners elsewhere. Ctrl-C fails the running batch and stops. Running the
same command again therefore continues where the study stopped (a run in memory killed with
``kill -9`` loses at most its last :data:`CHECKPOINT_S` of trials).

**Batches.** A worker asks a batch of trials (``ask`` n times, each suggesting its point),
evaluates their points in one vectorized evaluator call per categorical combination (the sweep's
block evaluation; a combination the evaluator refuses as a whole is evaluated point by point, so
each outcome is its one-point evaluation's), then tells each trial its objectives and
constraints. A study starts with single trials and grows its batches (:func:`batch_size`) up to
``--batch``; TPE's constant liar spreads the trials of a batch apart.

**Storage.** Any Optuna RDB URL. The default is a SQLite file beside the results
(``<out>/study.db``); PostgreSQL (``postgresql+psycopg2://...``) lets processes on many machines
share a study. ``workers = K`` starts K local processes on the same storage, writing it directly.
A one-process run on the default file runs its studies in an Optuna ``InMemoryStorage`` loaded
from the file and copies the finished trials back at checkpoints (:class:`Mirror`), so SQLite is
off the per-trial path; a lock on the file makes other runs on it wait for the end of this one.

**What optuna-dashboard shows.** Each study names its objectives by their metric columns
(``set_metric_names``) and carries as user attributes the resolved sweep (JSON text), the tool
version, its group and, after each run, its complete / feasible / infeasible trial counts; each
trial carries its constraint values (``constraint: <name>``) and ``feasible``.

**Quality of the search.** Where the space is small enough to enumerate, the exhaustive grid of the
same file is evaluated too and, per group, the hypervolume of the study's feasible front is
reported as a fraction of the grid front's, both normalized by the grid front's ideal and nadir
points with the reference point at 1.1 (:mod:`elmoe_dse.explore.pareto`).
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

import numpy as np

from elmoe_dse.errors import ElmoeError
from elmoe_dse.explore.grid import Combination, expand, search_axes
from elmoe_dse.explore.pareto import (
    HVScale,
    hypervolume_history,
    normalized_hypervolume,
    pareto_mask,
    to_minimize,
)
from elmoe_dse.explore.storage import (
    StorageError,
    append_trials,
    default_storage,
    open_storage,
    owner_alive,
    owner_token,
    redact,
    run_lock,
)
from elmoe_dse.explore.sweep import (
    PARETO_COLUMN,
    Block,
    evaluate_block,
    evaluate_grid,
    group_indices,
    pareto_column,
    run_record,
    scenario_id,
    table,
    write_results,
)
from elmoe_dse.knobs import KNOB_INFO
from elmoe_dse.results import META, spec_hash
from elmoe_dse.specs.sweep import SCENARIO_AXES, SweepSpec, axis_column

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    from optuna.distributions import BaseDistribution

#: A RUNNING trial whose owner cannot be checked (another host, or no owner yet) is failed once
#: it has run this long; trials here take milliseconds.
STALE_AFTER_S = 300.0
#: Spaces up to this many grid points are also enumerated to score the search.
GRID_COMPARE_MAX_POINTS = 5_000_000
OWNER_ATTR = "elmoe_dse.worker"
SWEEP_HASH_ATTR = "elmoe_dse.sweep_hash"
#: Study user attributes that optuna-dashboard shows: the resolved sweep (JSON text), the tool
#: version that last ran the study, the study's group, and its trial counts after the last run.
SWEEP_ATTR = "elmoe_dse.sweep"
VERSION_ATTR = "elmoe_dse.version"
GROUP_ATTR = "elmoe_dse.group"
COUNTS_ATTR = "elmoe_dse.trials"
#: Trial user attributes: each constraint value (feasible when <= 0) under this prefix, and
#: whether every one holds.
CONSTRAINT_ATTR_PREFIX = "constraint: "
FEASIBLE_ATTR = "feasible"

Param = float | int | str


class OptimizeError(ElmoeError):
    """The study cannot be run: storage unreachable, a study from another sweep, a worker failed."""


class Interrupted(ElmoeError):
    """The run was interrupted (Ctrl-C); the study keeps its completed trials."""

    def __init__(self, done: int, total: int) -> None:
        self.done = done
        self.total = total
        super().__init__(
            f"interrupted after {done} of {total} trials; run the same command again to continue"
        )


# ----------------------------------------------------------------------------------------------
# The search space
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyPlan:
    """One study: its storage name, its group, the searched axes and the fixed ones."""

    name: str
    group: dict[str, Param]
    space: dict[str, tuple[Param, ...]]
    fixed: dict[str, Param]


def study_plans(spec: SweepSpec, prefix: str) -> list[StudyPlan]:
    """One plan per ``group_by`` group (every combination of the group axes' values)."""
    axes: dict[str, tuple[Param, ...]] = dict(search_axes(spec))
    group_axes = [axes[name] if name in axes else (_default(name),) for name in spec.group_by]
    space = {n: v for n, v in axes.items() if len(v) > 1 and n not in spec.group_by}
    fixed = {n: v[0] for n, v in axes.items() if len(v) == 1 and n not in spec.group_by}
    plans = []
    for values in itertools.product(*group_axes):
        group = dict(zip(spec.group_by, values, strict=True))
        label = ",".join(f"{k}={_label(v)}" for k, v in group.items())
        plans.append(StudyPlan(f"{prefix}[{label}]" if label else prefix, group, space, fixed))
    return plans


def _default(name: str) -> Param:
    from elmoe_dse.knobs import Knobs

    value: Param = getattr(Knobs(), name)
    return value


def _label(value: Param) -> str:
    if isinstance(value, float):
        return "auto" if math.isnan(value) else f"{value:g}"
    return str(value)


def _choice(value: Param) -> Param:
    """A grid value as an Optuna categorical choice: NaN -> "auto", whole floats -> int."""
    if isinstance(value, float):
        if math.isnan(value):
            return "auto"
        if value == round(value):
            return int(value)
    return value


def distribution(values: Sequence[Param]) -> BaseDistribution:
    """The Optuna distribution whose support is exactly ``values`` (see the module docstring)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    numeric = all(isinstance(v, float) and math.isfinite(v) for v in values)
    if numeric and len(values) >= 3:
        arr = np.sort(np.asarray(values, dtype=float))
        steps = np.diff(arr)
        step = float(steps[0])
        if step > 0 and np.allclose(steps, step, rtol=1e-9, atol=0.0):
            if np.all(arr == np.round(arr)) and step == round(step):
                return IntDistribution(int(arr[0]), int(arr[-1]), step=int(step))
            return FloatDistribution(float(arr[0]), float(arr[-1]), step=step)
    return CategoricalDistribution([_choice(v) for v in values])


def suggest(trial: optuna.Trial, name: str, values: Sequence[Param]) -> Param:
    """Suggest axis ``name``; return the grid value it stands for (floats snapped to the grid)."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    dist = distribution(values)
    if isinstance(dist, IntDistribution):
        return float(trial.suggest_int(name, dist.low, dist.high, step=dist.step))
    if isinstance(dist, FloatDistribution):
        x = trial.suggest_float(name, dist.low, dist.high, step=dist.step)
        grid = np.asarray(values, dtype=float)
        return float(grid[np.argmin(np.abs(grid - x))])
    assert isinstance(dist, CategoricalDistribution)
    choice = trial.suggest_categorical(name, list(dist.choices))
    return from_choice(choice, values)


def from_choice(choice: Any, values: Sequence[Param]) -> Param:
    """The grid value of an Optuna categorical choice (inverse of :func:`_choice`)."""
    for v in values:
        if _choice(v) == choice:
            return v
    raise ValueError(f"choice {choice!r} is not one of {values!r}")


def point_from_params(plan: StudyPlan, params: Mapping[str, Any]) -> dict[str, Param]:
    """Every axis value of a trial: group, fixed and searched (params as Optuna stored them)."""
    point: dict[str, Param] = {**plan.fixed, **plan.group}
    for name, values in plan.space.items():
        dist = distribution(values)
        raw = params[name]
        if hasattr(dist, "choices"):
            point[name] = from_choice(raw, values)
        else:
            grid = np.asarray(values, dtype=float)
            point[name] = float(grid[np.argmin(np.abs(grid - float(raw)))])
    return point


def split_point(
    points: Sequence[Mapping[str, Param]],
) -> list[tuple[Combination, dict[str, np.ndarray], list[int]]]:
    """Group design points by categorical combination: (combo, numeric arrays, row positions)."""
    groups: dict[Combination, list[int]] = {}
    for i, pt in enumerate(points):
        categorical = tuple(
            (n, str(v)) for n, v in pt.items() if n in KNOB_INFO and KNOB_INFO[n].choices
        )
        combo = Combination(
            str(pt["model"]), str(pt["platform"]), str(pt["dataset"]), tuple(sorted(categorical))
        )
        groups.setdefault(combo, []).append(i)
    out = []
    for combo, rows in groups.items():
        numeric_names = [n for n in points[rows[0]] if n in KNOB_INFO and not KNOB_INFO[n].choices]
        numeric = {
            n: np.asarray([float(points[i][n]) for i in rows], dtype=float) for n in numeric_names
        }
        out.append((combo, numeric, rows))
    return out


# ----------------------------------------------------------------------------------------------
# One trial
# ----------------------------------------------------------------------------------------------


def trial_outcome(
    spec: SweepSpec, block: Block, row: int = 0
) -> tuple[list[float], dict[str, float]]:
    """Objective values (natural directions) and constraint values of point ``row`` of a block."""
    values = []
    for o in spec.objectives:
        v = float(block.columns[o.metric][row]) if o.metric in block.columns else math.nan
        if not math.isfinite(v):
            v = math.inf if o.direction == "minimize" else -math.inf
        values.append(v)
    evaluated = f"{META}feasible" in block.columns
    feasible = evaluated and bool(block.columns[f"{META}feasible"][row])
    constraints = {"feasible": 0.0 if feasible else 1.0}
    for i, c in enumerate(spec.parsed_constraints()):
        v = float(c.violation(np.asarray(block.columns[c.column][row]))) if evaluated else math.nan
        constraints[f"c{i}: {c.text}"] = v if math.isfinite(v) else 1.0
    finite = all(math.isfinite(v) for v in values)
    constraints["objectives finite"] = 0.0 if finite else 1.0
    return values, constraints


Outcome = tuple[list[float], dict[str, float]]


def evaluate_points(spec: SweepSpec, points: Sequence[Mapping[str, Param]]) -> list[Outcome]:
    """Objectives and constraint values of each design point: one vectorized evaluator call per
    categorical combination among them (the sweep's block evaluation). A block the evaluator
    refuses as a whole (a ``KnobError``) is evaluated again point by point, so one bad point
    never marks the others of its batch invalid: each outcome is the one-point evaluation's."""
    out: list[Outcome | None] = [None] * len(points)
    for combo, numeric, rows in split_point(points):
        block = evaluate_block(spec, combo, numeric)
        if f"{META}feasible" not in block.columns and len(rows) > 1:
            for row in rows:
                ((one_combo, one, _),) = split_point([points[row]])
                out[row] = trial_outcome(spec, evaluate_block(spec, one_combo, one))
            continue
        for j, row in enumerate(rows):
            out[row] = trial_outcome(spec, block, j)
    assert all(o is not None for o in out)
    return [o for o in out if o is not None]


def trial_point(plan: StudyPlan, trial: optuna.Trial) -> dict[str, Param]:
    """Suggest every searched axis of ``plan`` on ``trial``: the design point it stands for."""
    point: dict[str, Param] = {**plan.fixed, **plan.group}
    for name, values in plan.space.items():
        point[name] = suggest(trial, name, values)
    return point


def run_trial(spec: SweepSpec, plan: StudyPlan, trial: optuna.Trial) -> Outcome:
    """Suggest a design point, evaluate it, and return its objectives and constraint values."""
    return evaluate_points(spec, [trial_point(plan, trial)])[0]


def run_batch(
    spec: SweepSpec, plan: StudyPlan, study: optuna.Study, trials: Sequence[optuna.Trial]
) -> None:
    """Suggest a point on each trial, evaluate them all at once, then tell each its outcome."""
    points = [trial_point(plan, trial) for trial in trials]
    for trial, (values, constraints) in zip(trials, evaluate_points(spec, points), strict=True):
        record_constraints(trial, constraints)
        study.tell(trial, values)


# ----------------------------------------------------------------------------------------------
# Storage, owners, budget
# ----------------------------------------------------------------------------------------------


def _open(url: str) -> optuna.storages.RDBStorage:
    """:func:`~elmoe_dse.explore.storage.open_storage`, failing as :class:`OptimizeError`."""
    try:
        return open_storage(url)
    except StorageError as err:
        raise OptimizeError(str(err)) from None


def is_dead(trial: optuna.trial.FrozenTrial, now: float) -> bool:
    """Whether a RUNNING trial has no live owner (see the module docstring)."""
    owner = trial.user_attrs.get(OWNER_ATTR)
    alive = owner_alive(owner) if isinstance(owner, str) else None
    if alive is not None:
        return not alive
    start = trial.datetime_start.timestamp() if trial.datetime_start else now
    return now - start > STALE_AFTER_S


def reap(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Fail RUNNING trials without a live owner; return the study's trials after that."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    now = time.time()
    changed = False
    for t in trials:
        if t.state == TrialState.RUNNING and is_dead(t, now):
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            changed = True
    return study.get_trials(deepcopy=False) if changed else trials


def counted(trials: Sequence[optuna.trial.FrozenTrial], *, before: int | None = None) -> int:
    """COMPLETE trials plus RUNNING ones (which will complete), optionally numbered < ``before``."""
    from optuna.trial import TrialState

    states = (TrialState.COMPLETE, TrialState.RUNNING)
    return sum(1 for t in trials if t.state in states and (before is None or t.number < before))


def complete_count(trials: Sequence[optuna.trial.FrozenTrial]) -> int:
    from optuna.trial import TrialState

    return sum(1 for t in trials if t.state == TrialState.COMPLETE)


# ----------------------------------------------------------------------------------------------
# Workers
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkerTask:
    """What one worker process runs: the space, the studies and the budget per study."""

    spec: SweepSpec
    storage: str
    plans: tuple[StudyPlan, ...]
    trials: int
    seed: int
    sampler: str
    worker: int
    parent_pid: int | None = None
    shared: bool = False
    batch: int = 1  # trials asked, evaluated at once, then told


def make_sampler(
    kind: str, seed: int, *, shared: bool, batch: int = 1, plan: StudyPlan | None = None
) -> optuna.samplers.BaseSampler:
    """The seeded sampler. TPE is multivariate (one joint density over all knobs: the default
    independent TPE proposes the same design again and again on these small discrete spaces, and
    misses joint optima such as a large pool only paying off with a long draft). Its constant
    liar (running trials count as bad, so parallel workers and the trials of one batch spread
    out instead of sampling the same region) when the study is shared or asks batches; alone
    and one trial at a time it is off (on an RDB it costs a storage read per parameter).

    Given the study's ``plan``, TPE runs inside :class:`~elmoe_dse.explore.front_sampler.
    GridFrontSampler`: no grid point is asked twice, and one trial in
    :data:`~elmoe_dse.explore.front_sampler.FRONT_EVERY` refines the current front (Pareto
    local search), after :data:`~elmoe_dse.explore.front_sampler.STARTUP_TRIALS` random ones."""
    import optuna

    from elmoe_dse.explore import front_sampler

    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    liar = shared or batch > 1
    startup = front_sampler.STARTUP_TRIALS
    tpe = optuna.samplers.TPESampler(
        seed=seed, multivariate=True, constant_liar=liar, n_startup_trials=startup
    )
    if plan is None:
        return tpe
    space = {n: distribution(v) for n, v in plan.space.items()}
    return front_sampler.GridFrontSampler(
        tpe,
        space,
        seed=seed,
        every=front_sampler.FRONT_EVERY,
        startup=startup,
        feasible_attr=FEASIBLE_ATTR,
    )


def derived_seed(seed: int, worker: int, existing: int, study: str) -> int:
    """A seed per (run seed, worker, trials already in the study, study): a resumed or parallel
    run does not replay the random start of an earlier one; the same history gives the same seed."""
    salt = int(spec_hash({"study": study})[:8], 16)
    return int(np.random.SeedSequence([seed, worker, existing, salt]).generate_state(1)[0])


def run_worker(task: WorkerTask, tick: Tick | None = None) -> int:
    """Run trials on every study of ``task`` (on its RDB storage) until each holds
    ``task.trials`` COMPLETE ones."""
    quiet_optuna()
    return run_plans(task, _open(task.storage), tick)


Tick = Callable[[int], None]
#: ``checkpoint(plan)`` after each batch of a study run in memory (see :class:`Mirror`).
Checkpoint = Callable[["StudyPlan"], None]


def run_plans(
    task: WorkerTask,
    storage: optuna.storages.BaseStorage,
    tick: Tick | None = None,
    checkpoint: Checkpoint | None = None,
) -> int:
    """Run trials on every study of ``task`` in ``storage``; return how many completed."""
    import optuna
    from optuna.trial import TrialState

    token = owner_token()
    done = 0
    for plan in task.plans:
        probe = optuna.load_study(study_name=plan.name, storage=storage)
        existing = len(reap(probe))
        seed = derived_seed(task.seed, task.worker, existing, plan.name)
        sampler = make_sampler(task.sampler, seed, shared=task.shared, batch=task.batch, plan=plan)
        study = optuna.load_study(study_name=plan.name, storage=storage, sampler=sampler)
        while True:
            if task.parent_pid is not None and os.getppid() != task.parent_pid:
                return done  # the parent is gone (killed): stop rather than run on unattended
            have = counted(reap(study))
            left = task.trials - have
            if left <= 0:
                break
            asked = min(left, batch_size(task.batch, have))
            trials = ask_batch(study, token, asked, task.trials)
            try:
                if trials:
                    run_batch(task.spec, plan, study, trials)
            except BaseException:
                for trial in trials:
                    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            finally:
                if checkpoint is not None:
                    checkpoint(plan)
            done += len(trials)
            if tick is not None and trials:
                tick(len(trials))
            if len(trials) < asked:
                break  # lost the race for the last slots to another worker
    return done


#: A study asks one trial at a time until it holds this many trials per trial of a batch: the
#: batch grows as the sampler's model of the front firms up (see :func:`batch_size`).
RAMP = 8


def batch_size(most: int, have: int) -> int:
    """Trials to ask next in a study holding ``have`` trials: ``have // RAMP``, 1 to ``most``.

    The trials of a batch are sampled from the same completed trials, so they are less informed
    than trials asked one by one; early on, when every result moves the sampler most, batches
    are small. On sweeps/paper.toml (300 trials, seed 0, the 20 studies' hypervolume fraction of
    the grid's) this ramp to 16 gave median 0.985 / worst 0.884 against 0.986 / 0.878 one trial
    at a time; ``make bench`` prints it over 3 seeds."""
    return max(1, min(most, have // RAMP))


def ask_batch(study: optuna.Study, token: str, n: int, budget: int) -> list[optuna.Trial]:
    """Create ``n`` RUNNING trials stamped with their owner, each in one storage transaction;
    fail those beyond the budget (other workers took the slots first) and return the rest."""
    import optuna
    from optuna.trial import TrialState, create_trial

    storage = study._storage
    study_id = study._study_id
    template = create_trial(state=TrialState.RUNNING, user_attrs={OWNER_ATTR: token})
    trials = [
        optuna.Trial(study, storage.create_new_trial(study_id, template_trial=template))
        for _ in range(n)
    ]
    everything = study.get_trials(deepcopy=False)
    for i, trial in enumerate(trials):
        if counted(everything, before=trial.number) >= budget:
            for lost in trials[i:]:
                study.tell(lost, state=TrialState.FAIL)
            return trials[:i]
    return trials


def record_constraints(trial: optuna.Trial, constraints: Mapping[str, float]) -> None:
    """Give Optuna the constraint values (``set_constraint``, which the samplers read) and keep
    them as user attributes too (``constraint: <name>`` and ``feasible``), which optuna-dashboard
    lists beside each trial."""
    for key, value in constraints.items():
        trial.set_constraint(key, value)
        trial.set_user_attr(f"{CONSTRAINT_ATTR_PREFIX}{key}", float(value))
    trial.set_user_attr(FEASIBLE_ATTR, all(v <= 0.0 for v in constraints.values()))


def quiet_optuna() -> None:
    """Optuna logs every trial at INFO; keep warnings only."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)


#: How a worker process is started: a fresh interpreter that reads its pickled task from stdin
#: (independent of the parent's ``__main__``, unlike multiprocessing's spawn).
WORKER_COMMAND = ("-c", "from elmoe_dse.explore.optimize import worker_main; worker_main()")


def worker_main() -> None:
    """Entry point of a worker process: run the pickled :class:`WorkerTask` read from stdin;
    report a failure as one line on stderr and exit 1; exit quietly on Ctrl-C."""
    import pickle
    import signal
    import sys

    def interrupt_once(signum: int, frame: Any) -> None:
        # The terminal's Ctrl-C and the parent's forwarded SIGINT may both arrive: the first
        # stops the worker, the second must not abort failing the running trial.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, interrupt_once)
    task = pickle.loads(sys.stdin.buffer.read())
    try:
        run_worker(task)
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    except Exception as err:  # the parent raises it as one line
        sys.stderr.write(f"worker {task.worker}: {type(err).__name__}: {err}\n")
        raise SystemExit(1) from None


# ----------------------------------------------------------------------------------------------
# A run
# ----------------------------------------------------------------------------------------------


@dataclass
class OptimizeResult:
    """Completed trials of every study as a results table, with hypervolume records."""

    spec: SweepSpec
    frame: pd.DataFrame
    studies: list[StudyRecord]
    storage: str
    trials_requested: int
    rejected: Counter[str] = field(default_factory=Counter)
    timing_s: dict[str, float] = field(default_factory=dict)

    @property
    def storage_display(self) -> str:
        """The storage URL without its password."""
        return redact(self.storage)

    @property
    def summary(self) -> dict[str, Any]:
        trials = sum(s["complete_trials"] for s in self.studies)
        kept = len(self.frame)
        return {
            "studies": len(self.studies),
            "trials_per_study": self.trials_requested,
            "complete_trials": trials,
            "kept_points": kept,
            "rejected_points": sum(self.rejected.values()),
            "rejected_by_reason": dict(self.rejected.most_common()),
            "pareto_points": int(self.frame[PARETO_COLUMN].sum()) if kept else 0,
        }


Progress = Callable[[int, int], None]


def prepare_studies(
    spec: SweepSpec, storage_url: str, plans: Sequence[StudyPlan]
) -> optuna.storages.RDBStorage:
    """Create the studies (or check that existing ones come from the same sweep)."""
    import optuna

    quiet_optuna()
    storage = _open(storage_url)
    digest = sweep_digest(spec)
    directions = [o.direction for o in spec.objectives]
    for plan in plans:
        try:
            study = optuna.create_study(
                storage=storage, study_name=plan.name, directions=directions, load_if_exists=True
            )
        except Exception as err:
            raise OptimizeError(f"study '{plan.name}' in {redact(storage_url)}: {err}") from None
        found = study.user_attrs.get(SWEEP_HASH_ATTR)
        if found is None:
            study.set_user_attr(SWEEP_HASH_ATTR, digest)
        elif found != digest:
            raise OptimizeError(
                f"study '{plan.name}' in {redact(storage_url)} was made from a different sweep "
                "(space, objectives or constraints changed); give a new --study NAME, or remove "
                "the storage to start over"
            )
        describe_study(study, spec, plan)
    return storage


def describe_study(study: optuna.Study, spec: SweepSpec, plan: StudyPlan) -> None:
    """What optuna-dashboard shows of a study: the objectives' metric names, and as user
    attributes the resolved sweep (JSON), the tool version and the group."""
    import json

    from elmoe_dse import __version__
    from elmoe_dse.explore.sweep import resolved_sweep

    names = [o.metric for o in spec.objectives]
    if study.metric_names != names:
        study.set_metric_names(names)
    sweep = json.dumps(resolved_sweep(spec), sort_keys=True, default=str)
    attrs = {
        SWEEP_ATTR: sweep,
        VERSION_ATTR: f"elmoe-dse {__version__}",
        GROUP_ATTR: {axis_column(k): v for k, v in plan.group.items()},
    }
    for key, value in attrs.items():
        if study.user_attrs.get(key) != value:
            study.set_user_attr(key, value)


def record_counts(storage: optuna.storages.RDBStorage, studies: Sequence[StudyRecord]) -> None:
    """Each study's trial counts after the run as its user attribute :data:`COUNTS_ATTR`
    (complete, feasible, infeasible), so optuna-dashboard shows how many trials were infeasible."""
    import optuna

    for record in studies:
        study = optuna.load_study(study_name=record["study"], storage=storage)
        complete = record["complete_trials"]
        feasible = record["feasible_trials"]
        study.set_user_attr(
            COUNTS_ATTR,
            {"complete": complete, "feasible": feasible, "infeasible": complete - feasible},
        )


def sweep_digest(spec: SweepSpec) -> str:
    """Hash of what a study depends on: space, objectives, constraints, grouping (not trials)."""
    data = spec.model_dump(exclude={"name", "description", "optimize", "seed"})
    return spec_hash(data)


@dataclass(frozen=True)
class OptimizeOptions:
    """A run's settings after the caller's values override the sweep file's (resolved once)."""

    out_dir: Path  # output folder; the default SQLite storage lives there
    storage: str  # the Optuna RDB URL
    default_storage: bool  # the storage is the default SQLite file in out_dir
    study: str  # study-name prefix; one study per group
    trials: int  # COMPLETE trials per study
    workers: int  # local worker processes sharing the storage
    seed: int
    sampler: str  # "tpe" or "random"
    batch: int = 1  # trials asked, evaluated in one call, then told (see BATCH)


SAMPLERS = ("tpe", "random")
#: Most trials asked per batch by default (:func:`batch_size` ramps up to it).
BATCH = 16


def resolve_options(
    spec: SweepSpec,
    *,
    out_dir: Path,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    seed: int | None = None,
    sampler: str | None = None,
    batch: int | None = None,
) -> OptimizeOptions:
    """Each value given here (a CLI flag) over the sweep file's; None takes the file's.

    Args:
        spec: the sweep (its ``[optimize] trials``, ``sampler``, ``seed`` and ``name``).
        out_dir: output folder; the default SQLite storage lives there.
        trials: COMPLETE trials per study (default: the file's ``[optimize] trials``).
        storage: an Optuna RDB URL (default: ``sqlite:///<out_dir>/study.db``).
        study: study-name prefix (default: the sweep's name); one study per group.
        workers: local worker processes sharing the storage.
        seed: sampler seed (default: the file's ``seed``).
        sampler: ``tpe`` or ``random`` (default: the file's).
        batch: trials asked before their evaluation in one call (default :data:`BATCH`).

    Raises:
        OptimizeError: fewer than 1 trial, worker or trial per batch, an unknown sampler.
    """
    n = trials if trials is not None else spec.optimize.trials
    if n < 1:
        raise OptimizeError(f"--trials {n}: give at least 1")
    if workers < 1:
        raise OptimizeError(f"--workers {workers}: give at least 1")
    if sampler is not None and sampler not in SAMPLERS:
        raise OptimizeError(f"--sampler {sampler}: use tpe or random")
    if batch is not None and batch < 1:
        raise OptimizeError(f"--batch {batch}: give at least 1")
    return OptimizeOptions(
        out_dir=out_dir,
        storage=storage or default_storage(out_dir),
        default_storage=storage is None,
        study=study or str(spec.name),
        trials=n,
        workers=workers,
        seed=spec.seed if seed is None else seed,
        sampler=sampler or spec.optimize.sampler,
        batch=BATCH if batch is None else batch,
    )


def run_optimize(
    spec: SweepSpec,
    *,
    out_dir: Path,
    trials: int | None = None,
    storage: str | None = None,
    study: str | None = None,
    workers: int = 1,
    seed: int | None = None,
    sampler: str | None = None,
    batch: int | None = None,
    compare_grid: bool | None = None,
    progress: Progress | None = None,
) -> OptimizeResult:
    """:func:`run_studies` with the options of :func:`resolve_options` (same arguments)."""
    options = resolve_options(
        spec,
        out_dir=out_dir,
        trials=trials,
        storage=storage,
        study=study,
        workers=workers,
        seed=seed,
        sampler=sampler,
        batch=batch,
    )
    return run_studies(spec, options, compare_grid=compare_grid, progress=progress)


def run_studies(
    spec: SweepSpec,
    options: OptimizeOptions,
    *,
    compare_grid: bool | None = None,
    progress: Progress | None = None,
) -> OptimizeResult:
    """Run (or resume) the studies of ``spec`` to ``options.trials`` COMPLETE trials each, then
    tabulate.

    Args:
        spec: the sweep (space, objectives, constraints, grouping).
        options: from :func:`resolve_options`.
        compare_grid: score against the exhaustive grid (default: if it has at most
            :data:`GRID_COMPARE_MAX_POINTS` points).
        progress: ``progress(done, total)`` called as trials complete.

    Raises:
        Interrupted: on Ctrl-C (the study keeps every completed trial).
        OptimizeError: storage or worker failures.
    """
    start = time.perf_counter()
    if options.default_storage:
        from elmoe_dse.results import ensure_dir

        ensure_dir(options.out_dir)
    plans = study_plans(spec, options.study)
    rdb = prepare_studies(spec, options.storage, plans)
    task = WorkerTask(
        spec=spec,
        storage=options.storage,
        plans=tuple(plans),
        trials=options.trials,
        seed=options.seed,
        sampler=options.sampler,
        worker=0,
        batch=options.batch,
    )
    in_memory = options.default_storage and options.workers == 1
    with run_lock(options.storage, exclusive=in_memory):
        t_search, cpu_search = time.perf_counter(), time.process_time()
        mirror = Mirror.load(rdb, plans) if in_memory else None
        try:
            search(task, options.workers, rdb, progress, mirror=mirror)
            search_s = time.perf_counter() - t_search
            search_cpu_s = time.process_time() - cpu_search  # this process's: not its workers
            trials_at = mirror.memory if mirror is not None else rdb
            result = tabulate(spec, trials_at, plans, options.storage, task.trials, compare_grid)
            record_counts(rdb, result.studies)
        except KeyboardInterrupt:
            raise Interrupted(_complete_total(rdb, plans), task.trials * len(plans)) from None
    result.timing_s = {
        "search_s": search_s,
        "search_cpu_s": search_cpu_s,
        "total_s": time.perf_counter() - start,
        **({"sqlite_copy_s": mirror.flush_s} if mirror is not None else {}),
        **result.timing_s,
    }
    return result


def search(
    task: WorkerTask,
    workers: int,
    storage: optuna.storages.RDBStorage,
    progress: Progress | None,
    *,
    mirror: Mirror | None = None,
) -> None:
    """Run the task's trials here (one worker; in ``mirror``'s memory if given) or in
    ``workers`` processes, then settle."""
    plans = task.plans
    total = task.trials * len(plans)
    done = [_complete_total(storage, plans)]

    def tick(n: int) -> None:
        done[0] += n
        if progress is not None:
            progress(min(done[0], total), total)

    if progress is not None:
        progress(min(done[0], total), total)
    if mirror is not None:
        try:
            run_plans(task, mirror.memory, tick, mirror.checkpoint)
        finally:
            mirror.flush()  # on Ctrl-C too: the file keeps every finished trial
        return
    if workers == 1:
        run_worker(task, tick)
    else:
        run_processes(task, workers, storage, plans, progress)
    settle(task, storage, plans, tick)


#: A study run in memory is copied to its SQLite file at least this often (seconds): a killed
#: run loses at most this much work.
CHECKPOINT_S = 1.0


@dataclass
class Mirror:
    """The studies of a one-process run on the default SQLite file, held in an Optuna
    ``InMemoryStorage`` so that SQLite is off the per-trial path: loaded from the file at the
    start (after failing its dead RUNNING trials), and each study's finished trials the file
    lacks appended to it (in trial-number order, so numbers match) at most every
    :data:`CHECKPOINT_S` after a batch, and at the end or on Ctrl-C."""

    rdb: optuna.storages.RDBStorage
    memory: optuna.storages.BaseStorage
    dirty: set[str] = field(default_factory=set)
    last: float = field(default_factory=time.monotonic)
    flush_s: float = 0.0

    @classmethod
    def load(cls, rdb: optuna.storages.RDBStorage, plans: Sequence[StudyPlan]) -> Mirror:
        import optuna

        memory = optuna.storages.InMemoryStorage()
        for plan in plans:
            reap(optuna.load_study(study_name=plan.name, storage=rdb))
            optuna.copy_study(from_study_name=plan.name, from_storage=rdb, to_storage=memory)
        return cls(rdb, memory)

    def checkpoint(self, plan: StudyPlan) -> None:
        self.dirty.add(plan.name)
        if time.monotonic() - self.last >= CHECKPOINT_S:
            self.flush()

    def flush(self) -> None:
        """Append to the file each dirty study's finished trials that it lacks."""
        t0 = time.perf_counter()
        for name in sorted(self.dirty):
            mem_id = self.memory.get_study_id_from_name(name)
            trials = self.memory.get_all_trials(mem_id, deepcopy=False)
            append_trials(self.rdb, self.rdb.get_study_id_from_name(name), trials)
        self.dirty.clear()
        self.last = time.monotonic()
        self.flush_s += time.perf_counter() - t0


def settle(
    task: WorkerTask,
    storage: optuna.storages.RDBStorage,
    plans: Sequence[StudyPlan],
    tick: Tick | None = None,
) -> None:
    """Until every study holds its N COMPLETE trials: wait for trials that other live processes
    are running, or run the missing ones here (a worker was killed, or another process's trial
    went stale)."""
    import optuna
    from optuna.trial import TrialState

    while True:
        missing = running = False
        for plan in plans:
            trials = reap(optuna.load_study(study_name=plan.name, storage=storage))
            if complete_count(trials) < task.trials:
                missing = True
                running |= any(t.state == TrialState.RUNNING for t in trials)
        if not missing:
            return
        if running:
            time.sleep(0.5)
        else:
            run_worker(task, tick)


def _complete_total(storage: optuna.storages.BaseStorage, plans: Sequence[StudyPlan]) -> int:
    import optuna

    return sum(
        complete_count(
            optuna.load_study(study_name=p.name, storage=storage).get_trials(deepcopy=False)
        )
        for p in plans
    )


def run_processes(
    task: WorkerTask,
    workers: int,
    storage: optuna.storages.RDBStorage,
    plans: Sequence[StudyPlan],
    progress: Progress | None,
) -> None:
    """Run ``workers`` worker processes on the same storage; poll it for progress.

    On Ctrl-C the workers (which get the terminal's SIGINT too, or ours) fail their running
    trial and stop; a worker whose parent dies stops after its current trial.
    """
    import pickle
    import signal
    import subprocess
    import sys
    import tempfile
    from contextlib import ExitStack
    from dataclasses import replace

    procs: list[tuple[subprocess.Popen[bytes], Any]] = []
    total = task.trials * len(plans)
    messages: list[str] = []
    with ExitStack() as stack:
        try:
            for i in range(workers):
                err = stack.enter_context(tempfile.TemporaryFile())
                proc = subprocess.Popen(
                    [sys.executable, *WORKER_COMMAND], stdin=subprocess.PIPE, stderr=err
                )
                procs.append((proc, err))
                payload = replace(task, worker=i, parent_pid=os.getpid(), shared=True, batch=1)
                assert proc.stdin is not None
                proc.stdin.write(pickle.dumps(payload))
                proc.stdin.close()
            while any(p.poll() is None for p, _ in procs):
                if progress is not None:
                    progress(min(_complete_total(storage, plans), total), total)
                time.sleep(0.25)
        except KeyboardInterrupt:
            for p, _ in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGINT)
            for p, _ in procs:
                try:
                    p.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    p.kill()
            raise
        for p, err in procs:
            err.seek(0)
            text = err.read().decode(errors="replace").strip()
            # exit 1: an error the worker reported. A worker killed by a signal is not an
            # error: its trial is failed on the next count and settle() runs what is missing.
            if p.returncode not in (0, 130) and p.returncode > 0:
                messages.append(text.splitlines()[-1] if text else f"exit code {p.returncode}")
    if messages:
        raise OptimizeError(f"a worker process failed: {messages[0]}")
    if progress is not None:
        progress(min(_complete_total(storage, plans), total), total)


# ----------------------------------------------------------------------------------------------
# Tables and hypervolume
# ----------------------------------------------------------------------------------------------


class StudyRecord(TypedDict):
    """One study's line in ``run.json`` ``studies`` (and :attr:`OptimizeResult.studies`).

    The keys are read back by ``elmoe-dse plot`` (``plots/optimize.py``, ``plots/figures.py``),
    the report (``report.py``) and the CLI table; keep them stable. The hypervolume keys are
    present once the study has a feasible trial or the grid front is known; the ``grid_*`` keys
    and ``hypervolume_fraction_of_grid`` only when the grid was enumerated.
    """

    study: str  # the storage name of the study
    group: dict[str, Param]  # the group's axis values, by results column
    complete_trials: int
    feasible_trials: int  # COMPLETE trials kept in the table
    distinct_points: NotRequired[int]  # distinct design points among the COMPLETE trials
    space_points: NotRequired[int]  # design points of the study's searched space
    normalization: NotRequired[str]  # "grid front" or "study front": what scales the volume
    hypervolume: NotRequired[float]  # of the feasible front after the last trial
    hypervolume_history: NotRequired[list[float]]  # after each trial, in trial order
    trial_numbers: NotRequired[list[int]]  # the Optuna numbers of those trials
    scale: NotRequired[dict[str, Any]]  # HVScale: ideal, nadir, margin
    grid_pareto_points: NotRequired[int]
    grid_hypervolume: NotRequired[float]  # of the grid's front, same scale
    hypervolume_fraction_of_grid: NotRequired[float]  # hypervolume / grid_hypervolume


@dataclass(frozen=True)
class StudyTrials:
    """A study's COMPLETE trials re-evaluated: loss values (minimized) and which were kept."""

    plan: StudyPlan
    trial_numbers: list[int]
    loss: np.ndarray  # (trials, objectives); NaN where not kept
    kept: np.ndarray  # (trials,) bool
    distinct: int = 0  # distinct design points among the trials (a sampler repeats itself)


def complete_trials(
    storage: optuna.storages.BaseStorage, plan: StudyPlan
) -> list[optuna.trial.FrozenTrial]:
    """The study's COMPLETE trials in trial-number order."""
    import optuna
    from optuna.trial import TrialState

    study = optuna.load_study(study_name=plan.name, storage=storage)
    trials = study.get_trials(deepcopy=False)
    return sorted((t for t in trials if t.state == TrialState.COMPLETE), key=lambda t: t.number)


def evaluate_trials(
    spec: SweepSpec,
    plan: StudyPlan,
    trials: Sequence[optuna.trial.FrozenTrial],
    rejected: Counter[str],
) -> tuple[list[dict[str, np.ndarray]], StudyTrials]:
    """Re-evaluate trials (vectorized per categorical combination): table blocks of the kept
    points (with study and trial number) and their loss values; rejections counted."""
    points = [point_from_params(plan, t.params) for t in trials]
    numbers = np.asarray([t.number for t in trials], dtype=np.int64)
    loss = np.full((len(points), len(spec.objectives)), np.nan)
    kept_all = np.zeros(len(points), dtype=bool)
    blocks = []
    for combo, numeric, rows in split_point(points):
        block = evaluate_block(spec, combo, numeric)
        kept = block.kept
        rows_arr = np.asarray(rows)
        if kept.any():
            cols = {k: v[kept] for k, v in block.columns.items()}
            cols[f"{META}study"] = np.full(int(kept.sum()), plan.name, dtype=object)
            cols[f"{META}trial_number"] = numbers[rows_arr[kept]]
            blocks.append(cols)
            loss[rows_arr[kept]] = to_minimize(
                np.column_stack([cols[o.metric] for o in spec.objectives]),
                [o.sign for o in spec.objectives],
            )
            kept_all[rows_arr[kept]] = True
        rejected.update(Counter(block.reasons[~kept].tolist()))
    distinct = len({tuple(sorted(t.params.items())) for t in trials})
    return blocks, StudyTrials(plan, [int(x) for x in numbers], loss, kept_all, distinct)


def flagged_table(blocks: list[dict[str, np.ndarray]], spec: SweepSpec) -> pd.DataFrame:
    """The results table with its Pareto column."""
    frame = table(blocks)
    if frame.empty:
        frame[PARETO_COLUMN] = np.zeros(0, dtype=bool)
    else:
        frame[PARETO_COLUMN] = pareto_column(frame, spec)
    return frame


def normalization(
    grid_front: np.ndarray | None, feasible: np.ndarray
) -> tuple[HVScale, str] | None:
    """The hypervolume scale and its name: the grid's front if known, else the study's own."""
    if grid_front is not None and len(grid_front):
        return HVScale.of_front(grid_front), "grid front"
    if len(feasible):
        return HVScale.of_front(feasible), "study front"
    return None


def study_record(
    study: StudyTrials, grid_front: np.ndarray | None
) -> tuple[StudyRecord, np.ndarray | None]:
    """The study's record and its hypervolume after each trial (None without a scale)."""
    plan, kept = study.plan, study.kept
    record: StudyRecord = {
        "study": plan.name,
        "group": {axis_column(k): v for k, v in plan.group.items()},
        "complete_trials": len(study.trial_numbers),
        "feasible_trials": int(kept.sum()),
        "distinct_points": study.distinct,
        "space_points": math.prod(len(v) for v in plan.space.values()),
    }
    scaled = normalization(grid_front, study.loss[kept])
    if scaled is None:
        return record, None
    scale, record["normalization"] = scaled
    history = hypervolume_history(np.where(kept[:, None], study.loss, np.nan), scale)
    record["hypervolume"] = float(history[-1]) if len(history) else 0.0
    record["hypervolume_history"] = [float(h) for h in history]
    record["trial_numbers"] = study.trial_numbers
    record["scale"] = {"ideal": scale.ideal, "nadir": scale.nadir, "margin": scale.margin}
    if grid_front is not None and len(grid_front):
        grid_hv = normalized_hypervolume(grid_front, scale)
        record["grid_pareto_points"] = len(grid_front)
        record["grid_hypervolume"] = grid_hv
        record["hypervolume_fraction_of_grid"] = (
            record["hypervolume"] / grid_hv if grid_hv > 0 else math.nan
        )
    return record, history


def _plan_grid_key(plan: StudyPlan) -> tuple[Any, ...]:
    """The key of the plan's group in :func:`grid_reference`."""
    key = tuple(
        scenario_id(name, str(v)) if name in SCENARIO_AXES else v for name, v in plan.group.items()
    )
    return _group_key(key)


def tabulate(
    spec: SweepSpec,
    storage: optuna.storages.BaseStorage,
    plans: Sequence[StudyPlan],
    url: str,
    trials: int,
    compare_grid: bool | None,
) -> OptimizeResult:
    """Re-evaluate every COMPLETE trial (vectorized), flag Pareto fronts, score hypervolume."""
    t0 = time.perf_counter()
    blocks: list[dict[str, np.ndarray]] = []
    rejected: Counter[str] = Counter()
    per_study: list[StudyTrials] = []
    for plan in plans:
        study_blocks, study = evaluate_trials(spec, plan, complete_trials(storage, plan), rejected)
        blocks += study_blocks
        per_study.append(study)
    frame = flagged_table(blocks, spec)
    table_s = time.perf_counter() - t0

    t1 = time.perf_counter()
    grid_fronts = grid_reference(spec, compare_grid)
    studies = []
    hv_by_trial: dict[tuple[str, int], float] = {}
    for study in per_study:
        grid_front = (
            grid_fronts.get(_plan_grid_key(study.plan)) if grid_fronts is not None else None
        )
        record, history = study_record(study, grid_front)
        if history is not None:
            names = ((study.plan.name, n) for n in study.trial_numbers)
            hv_by_trial.update(zip(names, history, strict=True))
        studies.append(record)
    if not frame.empty:
        frame[f"{META}study_hypervolume"] = [
            hv_by_trial.get((s, int(n)), math.nan)
            for s, n in zip(frame[f"{META}study"], frame[f"{META}trial_number"], strict=True)
        ]
    timing = {"tabulate_s": table_s, "hypervolume_s": time.perf_counter() - t1}
    return OptimizeResult(spec, frame, studies, url, trials, rejected, timing)


def _group_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_label(v) if isinstance(v, float | int) else str(v) for v in key)


def grid_reference(
    spec: SweepSpec, compare: bool | None
) -> dict[tuple[Any, ...], np.ndarray] | None:
    """Per group, the loss values of the exhaustive grid's Pareto front (None if not compared)."""
    grid = expand(spec)
    if compare is False or (compare is None and grid.size > GRID_COMPARE_MAX_POINTS):
        return None
    objectives = [o.metric for o in spec.objectives]
    keep = [*spec.group_columns(), *objectives]
    blocks, _, _ = evaluate_grid(spec, grid, keep=keep)
    frame = table(blocks)
    out: dict[tuple[Any, ...], np.ndarray] = {}
    if frame.empty:
        return out
    loss = to_minimize(frame[objectives].to_numpy(dtype=float), [o.sign for o in spec.objectives])
    for key, idx in group_indices(frame, spec.group_columns()).items():
        pts = loss[idx]
        out[_group_key(key)] = np.unique(pts[pareto_mask(pts)], axis=0)
    return out


def hv_fraction(result: OptimizeResult) -> float:
    """Mean over studies of the hypervolume fraction of the grid (NaN if not compared)."""
    fractions = [
        s["hypervolume_fraction_of_grid"]
        for s in result.studies
        if "hypervolume_fraction_of_grid" in s
    ]
    return float(np.mean(fractions)) if fractions else math.nan


def enumerable_note(studies: Sequence[StudyRecord], trials: int) -> str | None:
    """A line when some study's space has no more design points than the trial budget: a sweep
    enumerates it exactly (and the sampler, which never repeats a point, exhausts it)."""
    small = [s["space_points"] for s in studies if s.get("space_points", math.inf) <= trials]
    if not small:
        return None
    which = "each study's" if len(small) == len(studies) else f"{len(small)} studies'"
    return (
        f"{which} space has at most {max(small):,} design points, no more than the "
        f"{trials:,} trials asked: `elmoe-dse sweep` enumerates it exactly"
    )


def save_optimize(
    result: OptimizeResult, out_dir: Path, *, sweep_file: str | None = None
) -> list[Path]:
    """Write the table and the sidecar (with the studies' hypervolume records)."""
    from elmoe_dse.explore.sweep import pareto_summary

    record = run_record(
        result.spec,
        "optimize",
        sweep_file=sweep_file,
        storage=redact(result.storage),
        timing=result.timing_s,
        points=result.summary,
        hypervolume_fraction_of_grid=hv_fraction(result),
        studies=result.studies,
        sweep_suggested=enumerable_note(result.studies, result.trials_requested),
        pareto=pareto_summary(result.frame, result.spec),
    )
    return write_results(out_dir, result.frame, record)
