"""Prior and posterior ensembles of the reproduction, and a 90 % band on every target.

- **Prior set** (:func:`paper_priors`): the prior of every free parameter of the specs the
  reproduction grid uses (:func:`elmoe_dse.calibration.prior_set`), keyed by calibration key.
- **Draws**: a seeded Latin hypercube in prior quantiles, mapped through each prior's ``ppf``
  (:func:`prior_draws`). Tied parameters (:func:`tied_source`) share a quantile. A posterior
  ensemble (:func:`posterior_draws`) pairs each posterior draw of the paper-informed parameters
  with an independent prior draw of every other parameter: the "cut" posterior, in which the
  paper's numbers never inform a baseline's parameters.
- **Evaluation**: each draw goes through the one path that builds calibrated specs
  (:func:`elmoe_dse.explore.reproduce.load_inputs`) and the reproduction's target rows, in
  worker processes (:func:`evaluate_draws`; the shipped specs are parsed once per process).
- **Bands** (:func:`band`): p5, p50, p95 of each target over an ensemble, and the share of prior
  draws within 10 % of the paper.
"""

from __future__ import annotations

import math
import multiprocessing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from elmoe_dse.calibration import Posterior, draw_calibration, prior_median, prior_set
from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    DATASET,
    DRAFT_LENGTH_TOKENS,
    ENERGY_PER_TOKEN_J,
    MODEL,
    SYSTEM,
    THROUGHPUT_TOK_PER_S,
    knob_column,
)
from elmoe_dse.errors import ElmoeError
from elmoe_dse.evaluator import ResidencyMemo
from elmoe_dse.explore.alternatives import AssumptionTable, assumption_table
from elmoe_dse.explore.draws import Draw, target_rows_draws
from elmoe_dse.explore.reproduce import (
    PAPER_DATASETS,
    PAPER_MODELS,
    PAPER_TARGETS,
    SPECULATIVE,
    SYSTEMS,
    DrawMemo,
    load_inputs,
    max_elastic_acceptance,
    system_runs,
    target_rows,
    target_values,
)
from elmoe_dse.specs._base import RangeSpec

#: Relative distance to the paper's value counted as "within" (P(within 10 % | prior)).
WITHIN_FRAC = 0.10
#: Quantiles of a band (a 90 % central interval and the median).
BAND_QUANTILES = (0.05, 0.50, 0.95)


@cache
def paper_priors(
    models: tuple[str, ...] = PAPER_MODELS, datasets: tuple[str, ...] = PAPER_DATASETS
) -> dict[str, RangeSpec]:
    """The prior of every free parameter of the reproduction grid's specs."""
    platforms = tuple(dict.fromkeys(platform for _, platform, _ in SYSTEMS))
    return prior_set(platforms, datasets, models)


def informed_keys(priors: Mapping[str, RangeSpec]) -> list[str]:
    """The parameters the paper's numbers may move (``paper_informed = true`` in their spec)."""
    return [key for key, rng in priors.items() if rng.paper_informed]


def _prior_id(rng: RangeSpec) -> tuple[Any, ...]:
    return (rng.dist, rng.min, rng.max, rng.center, rng.spread)


def ties(priors: Mapping[str, RangeSpec]) -> dict[str, str]:
    """Parameters that share a prior quantile with an earlier one (key -> source): the same
    platform field with the same prior on several platforms of the grid is one physical part (the
    systems share the xPU host and compute, its LPDDR, the HB stack, the xPU's compute energy), so
    it takes one draw. A paper-informed prior is never tied (ELMoE-3D's own logic die)."""
    first: dict[tuple[Any, ...], str] = {}
    out: dict[str, str] = {}
    for key, rng in priors.items():
        kind, _, rest = key.partition(".")
        if kind != "platform" or rng.paper_informed:
            continue
        ident = (rest.partition(".")[2], *_prior_id(rng))
        if ident in first:
            out[key] = first[ident]
        else:
            first[ident] = key
    return out


def tied_source(key: str, priors: Mapping[str, RangeSpec]) -> str | None:
    """The parameter ``key`` shares its prior quantile with, if any (:func:`ties`)."""
    return ties(priors).get(key)


def latin_hypercube(n: int, dims: int, seed: int) -> np.ndarray:
    """``n`` points in [0, 1)^dims, one per stratum of each axis (seeded)."""
    rng = np.random.default_rng(seed)
    u = (rng.random((n, dims)) + np.arange(n)[:, None]) / max(n, 1)
    for j in range(dims):
        u[:, j] = u[rng.permutation(n), j]
    return u


def values_at(
    u: Mapping[str, float],
    priors: Mapping[str, RangeSpec],
    keys: list[str],
    tie: Mapping[str, str] | None = None,
) -> dict[str, float]:
    """Parameter values at prior quantiles ``u`` (a tied key takes its source's quantile)."""
    tie = ties(priors) if tie is None else tie
    return {k: float(priors[k].ppf(u.get(tie.get(k, k), 0.5))) for k in keys}


def prior_draws(
    priors: Mapping[str, RangeSpec], n: int, seed: int, keys: list[str] | None = None
) -> list[dict[str, float]]:
    """``n`` seeded Latin-hypercube prior draws of ``keys`` (default: every parameter)."""
    keys = list(priors) if keys is None else keys
    tie = ties(priors)
    free = [k for k in keys if tie.get(k) not in keys]
    u = latin_hypercube(n, len(free), seed)
    return [values_at(dict(zip(free, row, strict=True)), priors, keys, tie) for row in u]


def posterior_draws(
    post: Posterior,
    priors: Mapping[str, RangeSpec],
    n: int,
    seed: int,
    base: list[dict[str, float]] | None = None,
) -> list[dict[str, float]]:
    """``n`` draws of the cut posterior: evenly spaced posterior draws of the paper-informed
    parameters, each paired with an independent prior draw (seed ``seed``) of every other, or
    with the other parameters of ``base``'s draws (common random numbers with a prior ensemble:
    the informed values are drawn independently of them, so each pair is still a draw)."""
    others = [k for k in priors if k not in post.informed]
    if base is None:
        base = prior_draws(priors, n, seed, others)
    else:
        base = [{k: b[k] for k in others} for b in base[:n]]
    if not post.draws:
        return base
    picks = np.linspace(0, len(post.draws) - 1, n).round().astype(int)
    return [{**b, **post.values(int(i))} for b, i in zip(base, picks, strict=True)]


def median_values(priors: Mapping[str, RangeSpec], post: Posterior | None) -> dict[str, float]:
    """The posterior median draw: informed parameters at the file's median draw, the rest at
    their prior medians."""
    values = {k: prior_median(r) for k, r in priors.items()}
    if post is not None:
        values.update(post.values(post.median_draw))
    return values


@dataclass(frozen=True)
class Task:
    """One draw to evaluate under an assumption choice: every system, or only ``systems`` (then
    the outcome holds their rows only, to be combined with another outcome's,
    :func:`combine`); ``keep_rows`` keeps the rows of a full evaluation for that."""

    values: dict[str, float]
    choice: dict[str, str]
    models: tuple[str, ...] = PAPER_MODELS
    datasets: tuple[str, ...] = PAPER_DATASETS
    systems: tuple[str, ...] | None = None
    keep_rows: bool = False
    #: Tasks of one group (one draw and what is derived from it) run in one process, sharing a
    #: memo of its evaluations (:class:`~elmoe_dse.explore.reproduce.DrawMemo`).
    group: int | None = None


@dataclass(frozen=True)
class Outcome:
    """The targets of one draw (NaN where the draw is infeasible), the highest Elastic-SD
    per-token acceptance of its cells, and (when asked) its per-system rows."""

    targets: dict[str, float]
    max_acceptance_frac: float
    rows: tuple[dict[str, Any], ...] = ()


_TABLE: list[AssumptionTable] = []
_ROW_KEYS = (
    MODEL,
    DATASET,
    knob_column("batch_size"),
    SYSTEM,
    THROUGHPUT_TOK_PER_S,
    ENERGY_PER_TOKEN_J,
    ACCEPTANCE_FRAC,
    DRAFT_LENGTH_TOKENS,
)


def _table() -> AssumptionTable:
    if not _TABLE:
        _TABLE.append(assumption_table())
    return _TABLE[0]


def _failed() -> Outcome:
    return Outcome(dict.fromkeys(PAPER_TARGETS, math.nan), math.nan)


def _draw_inputs(task: Task, key: tuple[Any, ...], memo: DrawMemo | None) -> tuple[Any, Any]:
    """(calibration, inputs) of a task's draw, built once per draw and datasets in ``memo``."""
    at = (*key, task.models, task.datasets)
    if memo is not None and at in memo.inputs:
        return memo.inputs[at]
    cal = draw_calibration(task.values, paper_priors(task.models, task.datasets), "ensemble draw")
    built = (cal, load_inputs(cal, task.datasets))
    if memo is not None:
        memo.inputs[at] = built
    return built


def _task_key(task: Task) -> tuple[Any, ...]:
    return (hash(tuple(sorted(task.values.items()))),)


def _task_draw(task: Task, memo: DrawMemo | None) -> Draw:
    """A task's draw: its calibrated specs and the runs of its systems (ElmoeError if the
    draw's values cannot be applied)."""
    key = _task_key(task)
    cal, inputs = _draw_inputs(task, key, memo)
    runs = system_runs(inputs, task.choice, _table(), cal)
    if task.systems is not None:
        runs = tuple(r for r in runs if r.system in task.systems)
    return Draw(inputs, runs, memo, key)


def _outcome(task: Task, rows: list[dict[str, Any]]) -> Outcome:
    slim = tuple({k: r[k] for k in _ROW_KEYS} for r in rows)
    if task.systems is not None:
        return Outcome(dict.fromkeys(PAPER_TARGETS, math.nan), math.nan, slim)
    return Outcome(
        target_values(rows), max_elastic_acceptance(rows), slim if task.keep_rows else ()
    )


def evaluate_task(task: Task, memo: DrawMemo | None = None) -> Outcome:
    """The targets of one draw (the reproduction's target rows; an infeasible draw gives NaN);
    ``memo`` shares the draw's specs and evaluations with other tasks of the same draw."""
    try:
        d = _task_draw(task, memo)
        rows = target_rows(d.inputs, d.runs, task.models, task.datasets, memo, d.key)
    except ElmoeError:
        return _failed()
    return _outcome(task, rows)


def evaluate_stack(
    tasks: list[Task], memos: list[DrawMemo], residency: ResidencyMemo | None = None
) -> list[Outcome]:
    """:func:`evaluate_task` of tasks that differ only in their draw (the same choice, systems,
    models and datasets), each with its draw's memo, evaluated together
    (:func:`~elmoe_dse.explore.draws.target_rows_draws`: one evaluator call per system and
    cell for all draws). The same outcomes as one by one; a draw whose values fail gives NaN,
    and a stack whose evaluation fails is evaluated draw by draw."""
    out: list[Outcome] = [_failed()] * len(tasks)
    ok: list[int] = []
    draws: list[Draw] = []
    for i, (task, memo) in enumerate(zip(tasks, memos, strict=True)):
        try:
            draws.append(_task_draw(task, memo))
            ok.append(i)
        except ElmoeError:
            pass
    if not draws:
        return out
    first = tasks[0]
    try:
        rows = target_rows_draws(draws, first.models, first.datasets, residency)
    except ElmoeError:
        return [evaluate_task(t, m) for t, m in zip(tasks, memos, strict=True)]
    for i, r in zip(ok, rows, strict=True):
        out[i] = _outcome(tasks[i], r)
    return out


def combine(
    full: Outcome, part: Outcome, systems: tuple[str, ...], keep_rows: bool = False
) -> Outcome:
    """The outcome of a full evaluation with ``systems``' rows replaced by ``part``'s."""
    if not full.rows or not part.rows:
        return _failed()
    rows = [r for r in full.rows if r[SYSTEM] not in systems] + list(part.rows)
    return Outcome(
        target_values(rows), max_elastic_acceptance(rows), tuple(rows) if keep_rows else ()
    )


#: Dataset-profile fields that only a speculating system reads (its draft's acceptance).
SD_ONLY_FIELDS = ("alpha_max", "eagle_acceptance_frac", "slm_acceptance_frac")


def informed_systems(keys: Iterable[str]) -> tuple[str, ...]:
    """The systems of the grid whose rows calibration ``keys`` can change: those on a platform a
    ``platform.NAME.*`` key names, the speculating ones for ``acceptance.*`` keys and the
    dataset fields :data:`SD_ONLY_FIELDS`, and every system for any other key."""
    from elmoe_dse.calibration import split_key

    out: set[str] = set()
    for key in keys:
        kind, name, path = split_key(key)
        if kind == "platform":
            out |= {s for s, platform, _ in SYSTEMS if platform == name}
        elif kind == "acceptance" or path.split(".")[-1] in SD_ONLY_FIELDS:
            out |= set(SPECULATIVE)
        else:
            out |= {s for s, _, _ in SYSTEMS}
    return tuple(s for s, _, _ in SYSTEMS if s in out)


def changed_systems(
    choice: Mapping[str, str], base: Mapping[str, str], table: AssumptionTable
) -> tuple[str, ...]:
    """The systems whose overrides differ between two choices."""
    return tuple(s for s, _, _ in SYSTEMS if table.overrides(choice, s) != table.overrides(base, s))


def _stack_key(task: Task) -> tuple[Any, ...]:
    """What the tasks of one stack share: everything but the draw."""
    return (tuple(sorted(task.choice.items())), task.systems, task.models, task.datasets)


def _evaluate_share(jobs: list[tuple[Any, Task]]) -> list[Outcome]:
    """Outcomes of (group, task) pairs in one process: one memo per group (a draw and what is
    derived from it), tasks that differ only in their draw evaluated as one stack
    (:func:`evaluate_stack`), stacks in the order of their first task."""
    memos: dict[Any, DrawMemo] = {}
    stacks: dict[tuple[Any, ...], list[int]] = {}
    for i, (_, task) in enumerate(jobs):
        stacks.setdefault(_stack_key(task), []).append(i)
    residency: ResidencyMemo = {}
    out: list[Outcome] = [_failed()] * len(jobs)
    for idx in stacks.values():
        memo = [memos.setdefault(jobs[i][0], DrawMemo()) for i in idx]
        outcomes = evaluate_stack([jobs[i][1] for i in idx], memo, residency)
        for i, o in zip(idx, outcomes, strict=True):
            out[i] = o
    return out


def evaluate_draws(
    tasks: list[Task], processes: int = 2, meanwhile: Callable[[], None] | None = None
) -> list[Outcome]:
    """Evaluate ``tasks`` in ``processes`` worker processes (forked, so the parsed specs are
    shared), in order; ``processes <= 1`` evaluates in this process. Tasks of one ``group`` run
    in one process (each task without a group is a group of its own), the groups dealt to the
    processes in turn; in a process, the tasks that differ only in their draw are evaluated
    together (:func:`evaluate_stack`). ``meanwhile`` runs in this process while the workers
    evaluate (before them without workers)."""
    groups: dict[Any, list[int]] = {}
    for i, t in enumerate(tasks):
        groups.setdefault(("g", t.group) if t.group is not None else ("t", i), []).append(i)
    shares = max(1, min(processes, len(groups)))
    order = [list(groups)[k::shares] for k in range(shares)]
    idx = [[i for g in share for i in groups[g]] for share in order]
    jobs = [[(g, tasks[i]) for g in share for i in groups[g]] for share in order]
    if shares <= 1:
        if meanwhile is not None:
            meanwhile()
        results = [_evaluate_share(job) for job in jobs]
    else:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(shares) as pool:
            pending = pool.map_async(_evaluate_share, jobs, chunksize=1)
            if meanwhile is not None:
                meanwhile()
            results = pending.get()
    out: list[Outcome | None] = [None] * len(tasks)
    for share_idx, res in zip(idx, results, strict=True):
        for i, o in zip(share_idx, res, strict=True):
            out[i] = o
    return [o for o in out if o is not None]


def band(values: np.ndarray, paper: float | None = None) -> dict[str, Any]:
    """p5, p50 and p95 over the finite values (``n``: how many), and with ``paper`` the share of
    all draws within :data:`WITHIN_FRAC` of it (an infeasible draw counts as outside)."""
    arr = np.asarray(values, dtype=float)
    ok = arr[np.isfinite(arr)]
    q = np.quantile(ok, BAND_QUANTILES) if ok.size else np.full(3, math.nan)
    out: dict[str, Any] = {"p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])}
    out["n"] = int(ok.size)
    if paper is not None:
        within = np.abs(ok / paper - 1.0) <= WITHIN_FRAC
        out["p_within_10pct"] = float(within.sum() / max(arr.size, 1))
    return out


def target_bands(outcomes: list[Outcome]) -> dict[str, dict[str, Any]]:
    """Per target, the band over ``outcomes`` with the share within 10 % of the paper."""
    return {
        name: band(np.asarray([o.targets[name] for o in outcomes]), paper)
        for name, paper in PAPER_TARGETS.items()
    }


def tension(post: Posterior, priors: Mapping[str, RangeSpec]) -> list[dict[str, Any]]:
    """The sampled dimensions of a posterior, furthest from the prior first: per dimension (a
    parameter, or a group of parameters moved together) its first member's prior median,
    posterior band, and the z-score of the posterior median under the prior
    (:meth:`RangeSpec.z_score`)."""
    from fnmatch import fnmatchcase

    draws = np.asarray(post.draws, dtype=float).reshape(len(post.draws), len(post.informed))
    rows = []
    for group in post.groups or post.informed:
        members = [j for j, k in enumerate(post.informed) if fnmatchcase(k, group)]
        key = post.informed[members[0]]
        col = draws[:, members[0]]
        q = np.quantile(col, BAND_QUANTILES) if col.size else np.full(3, math.nan)
        rows.append(
            {
                "parameter": group,
                "members": len(members),
                "shown": key,
                "prior_p50": prior_median(priors[key]),
                "posterior": {"p5": float(q[0]), "p50": float(q[1]), "p95": float(q[2])},
                "z": float(priors[key].z_score(q[1])),
            }
        )
    return sorted(rows, key=lambda r: -abs(r["z"]))


@dataclass(frozen=True)
class BandSettings:
    """Draw counts of ``reproduce``'s bands: ``draws`` per band under the selected assumptions,
    ``alt_draws`` per band under each other alternative; seeded.

    Cost (:func:`ensemble_bands` shares work): a prior draw is one full evaluation of the 8
    systems on 16 cells; a posterior draw re-evaluates only the ELMoE-3D platform's systems, an
    alternative only the systems it changes. The tasks of one draw run in one process and share
    a :class:`~elmoe_dse.explore.reproduce.DrawMemo`: the draw's specs, ELMoE-3D's
    mode-switching run (evaluated once for AR and speculation: every batch threshold B* is a
    selection, and Elastic-SD is its speculating half) and the residency of every routing
    process (the same for every parameter that does not move routing, reuse, pool or window).
    The draws are dealt to the worker processes in turn, and in a process the tasks that differ
    only in their draw are one stack (:func:`evaluate_stack`): one evaluator call per system and
    cell for all of them (:mod:`elmoe_dse.evaluator.ensemble`, the draws' constants and routings
    on a leading sample axis, each draw's routing solved on its own levels), bit for bit the
    numbers of the draws one by one. 40 + 40 main draws and 10 per alternative take about 20 s
    of CPU, about 12 s on two idle cores (``make bench`` prints the time)."""

    draws: int = 40
    alt_draws: int = 10
    seed: int = 20260417
    processes: int = 2


def _variants(
    choice: dict[str, str], table: AssumptionTable, s: BandSettings
) -> list[tuple[str, dict[str, str], int]]:
    from elmoe_dse.explore.alternatives import defaults, label, one_at_a_time

    seen = {label(choice, table)}
    out = [(label(choice, table), choice, s.draws)]
    for c in [defaults(table), *one_at_a_time(table)]:
        if label(c, table) not in seen:
            seen.add(label(c, table))
            out.append((label(c, table), c, s.alt_draws))
    return out


def _summary(prior: list[Outcome], post: list[Outcome] | None) -> dict[str, dict[str, Any]]:
    pb = target_bands(prior)
    qb = target_bands(post) if post is not None else None
    out: dict[str, dict[str, Any]] = {}
    for name, paper in PAPER_TARGETS.items():
        p = {k: v for k, v in pb[name].items() if k != "p_within_10pct"}
        entry: dict[str, Any] = {"paper": paper, "prior": p, "posterior": None}
        entry["p_within_10pct_prior"] = pb[name]["p_within_10pct"]
        if qb is not None:
            entry["posterior"] = qb[name]
        out[name] = entry
    return out


def _above(outcomes: list[Outcome], limit: float) -> float:
    acc = np.asarray([o.max_acceptance_frac for o in outcomes], dtype=float)
    return float(np.mean(acc > limit)) if acc.size else math.nan


def _posterior_of(ens: Any, lab: str) -> tuple[Posterior | None, str | None]:
    if ens is None:
        return None, None
    if lab in ens.posteriors:
        return ens.posteriors[lab], lab
    return ens.posteriors.get("default"), "default" if "default" in ens.posteriors else None


def _merged(parts: list[tuple[Outcome, Iterable[str]]]) -> Outcome:
    """The outcome whose rows are, system by system, those of several outcomes (each part:
    an outcome and the systems taken from it); failed if a part it needs rows from failed."""
    rows: list[dict[str, Any]] = []
    for outcome, systems in parts:
        want = set(systems)
        if want and not outcome.rows:
            return _failed()
        rows += [r for r in outcome.rows if r[SYSTEM] in want]
    return Outcome(target_values(rows), max_elastic_acceptance(rows), tuple(rows))


_NOTHING = Outcome({}, math.nan)
_EVERY = tuple(system for system, _, _ in SYSTEMS)


def _but(*groups: Iterable[str]) -> tuple[str, ...]:
    """The systems in none of ``groups``."""
    drop = {s for g in groups for s in g}
    return tuple(s for s in _EVERY if s not in drop)


def _both(a: Iterable[str], b: Iterable[str]) -> tuple[str, ...]:
    keep = set(b)
    return tuple(s for s in a if s in keep)


@dataclass(frozen=True)
class _Alt:
    """One other alternative of the bands: which systems it changes (``changed``), which of
    those the posterior's informed parameters also change (``need``: re-evaluated on the
    posterior draws; every other row of a posterior draw is shared with its prior draw), and
    where its tasks sit in the task list."""

    label: str
    choice: dict[str, str]
    changed: tuple[str, ...]
    need: tuple[str, ...]
    at: int
    n_prior: int
    n_post: int


def _plan(
    variants: list[tuple[str, dict[str, str], int]],
    table: AssumptionTable,
    values: list[dict[str, float]],
    post_values: list[dict[str, float]],
    informed: tuple[str, ...],
    at: int,
) -> tuple[list[_Alt], list[Task]]:
    """The tasks of the other alternatives, on the first of the main draws (common random
    numbers): only the systems each changes, and on the posterior draws only those the
    informed parameters change too."""
    plan: list[_Alt] = []
    tasks: list[Task] = []
    choice = variants[0][1]
    for lab, c, n in variants[1:]:
        changed = changed_systems(c, choice, table)
        need = _both(changed, informed) if post_values else ()
        pt = [Task(v, c, systems=changed, group=i) for i, v in enumerate(values[:n])]
        qt = [Task(v, c, systems=need, group=i) for i, v in enumerate(post_values[:n])]
        pt, qt = (pt if changed else []), (qt if need else [])
        plan.append(_Alt(lab, c, changed, need, at + len(tasks), len(pt), len(qt)))
        tasks += pt + qt
    return plan, tasks


def _alt_outcomes(
    a: _Alt,
    outcomes: list[Outcome],
    main: tuple[list[Outcome], list[Outcome]],
    informed: tuple[str, ...],
    n: int,
) -> tuple[list[Outcome], list[Outcome]]:
    """(prior, posterior) outcomes of an alternative on the first ``n`` main draws, from the
    main outcomes ``(prior, posterior)`` and the alternative's re-evaluated rows."""
    pr, po = main
    pa = outcomes[a.at : a.at + a.n_prior] or [_NOTHING] * n
    qa = outcomes[a.at + a.n_prior : a.at + a.n_prior + a.n_post] or [_NOTHING] * n
    prior = [
        _merged([(f, _but(a.changed)), (x, a.changed)]) for f, x in zip(pr[:n], pa, strict=True)
    ]
    post = [
        _merged(
            [
                (f, _but(a.changed, informed)),
                (x, _both(a.changed, _but(informed))),
                (g, _both(informed, _but(a.changed))),
                (y, a.need),
            ]
        )
        for f, x, g, y in zip(pr[:n], pa, po[:n], qa, strict=False)
    ]
    return prior, post


def ensemble_bands(
    ens: Any,
    choice: dict[str, str],
    table: AssumptionTable,
    s: BandSettings,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The bands of ``reproduce``: per target the paper's value, the prior predictive band, the
    cut-posterior band (the ensemble's posterior of the same assumption label, else its
    ``default``) and P(within 10 % | prior), under ``choice`` (``s.draws`` each) and under each
    other alternative (``s.alt_draws`` each, on the first of the same draws); and the tension
    table. ``ens``: an :class:`~elmoe_dse.calibration.Ensemble` or ``None``; ``meanwhile``
    runs in this process while the worker processes evaluate the draws.

    Work is shared where the draws are the same: posterior draw i takes prior draw i's values
    of every parameter the paper does not inform (:func:`posterior_draws` with ``base``), so
    only the systems the informed parameters change (:func:`informed_systems`) are evaluated
    on it; an alternative re-evaluates only the systems it changes, and on a posterior draw
    only those the informed parameters change too."""
    priors = paper_priors()
    variants = _variants(choice, table, s)
    post, source = _posterior_of(ens, variants[0][0])
    values = prior_draws(priors, s.draws, s.seed)
    informed = informed_systems(post.informed) if post is not None else ()
    post_values = [] if post is None else posterior_draws(post, priors, s.draws, 0, values)
    tasks = [Task(v, choice, keep_rows=True, group=i) for i, v in enumerate(values)]
    tasks += [Task(v, choice, systems=informed, group=i) for i, v in enumerate(post_values)]
    plan, more = _plan(variants, table, values, post_values, informed, len(tasks))
    outcomes = evaluate_draws(tasks + more, s.processes, meanwhile)
    pr = outcomes[: len(values)]
    parts = outcomes[len(values) : len(values) + len(post_values)]
    po = [_merged([(f, _but(informed)), (g, informed)]) for f, g in zip(pr, parts, strict=True)]
    redo = [i for i, o in enumerate(po) if not o.rows]  # its prior draw failed: evaluate it all
    again = evaluate_draws([Task(post_values[i], choice, keep_rows=True) for i in redo], 1)
    for i, o in zip(redo, again, strict=True):
        po[i] = o
    out: dict[str, Any] = {"settings": s.__dict__, "selected": variants[0][0]}
    out["alternatives"] = {variants[0][0]: _alt_entry(choice, source, pr, po if post else None)}
    for a, (_, _, n) in zip(plan, variants[1:], strict=True):
        a_prior, a_post = _alt_outcomes(a, outcomes, (pr, po), informed, n)
        alt_post, alt_source = _posterior_of(ens, a.label)
        if alt_post is not post:  # a posterior of its own: not on the selected draws' values
            a_post = _own_posterior(alt_post, priors, a.choice, n, s)
        entry = _alt_entry(a.choice, alt_source, a_prior, a_post if post else None)
        out["alternatives"][a.label] = entry
    out["tension"] = [] if post is None else tension(post, priors)
    return out


def _own_posterior(
    post: Posterior | None,
    priors: Mapping[str, RangeSpec],
    c: dict[str, str],
    n: int,
    s: BandSettings,
) -> list[Outcome]:
    if post is None:
        return []
    draws = posterior_draws(post, priors, n, s.seed + 1)
    return evaluate_draws([Task(v, c) for v in draws], s.processes)


def _alt_entry(
    c: dict[str, str], source: str | None, prior: list[Outcome], post: list[Outcome] | None
) -> dict[str, Any]:
    return {
        "assumptions": c,
        "posterior_from": source,
        "targets": _summary(prior, post),
        "share_acceptance_above_0_91": {
            "prior": _above(prior, 0.91),
            "posterior": _above(post or [], 0.91),
        },
    }


def bands_table(bands: dict[str, Any]) -> list[dict[str, Any]]:
    """The bands as tidy rows (alternative, target, kind, p5, p50, p95, n, p_within_10pct):
    the seeded ensemble summary the CI regression locks."""
    rows = []
    for lab, alt in bands["alternatives"].items():
        for name, t in alt["targets"].items():
            for kind in ("prior", "posterior"):
                b = t[kind]
                if b is None:
                    continue
                within = t["p_within_10pct_prior"] if kind == "prior" else b["p_within_10pct"]
                rows.append(
                    {
                        "alternative": lab,
                        "target": name,
                        "kind": kind,
                        "p5": b["p5"],
                        "p50": b["p50"],
                        "p95": b["p95"],
                        "n": b["n"],
                        "p_within_10pct": within,
                    }
                )
    return rows


#: The metrics of one design point that ``explain --bands`` gives a band on.
POINT_METRICS = (
    "throughput_tok_per_s",
    "energy_per_token_j",
    "time_per_step_s",
    "latency_per_token_s",
)


def point_priors(model_id: str, platform: str, dataset: str) -> dict[str, RangeSpec]:
    """The paper grid's priors and those of one point's shipped platform and dataset."""
    from elmoe_dse.specs.dataset import list_datasets
    from elmoe_dse.specs.platform import list_platforms

    plats = (platform,) if platform.strip().lower() in list_platforms() else ()
    dsets = (dataset,) if dataset.strip().lower() in list_datasets() else ()
    return {**paper_priors(), **prior_set(plats, dsets, (model_id,))}


def point_bands(
    point: Mapping[str, Any], post: Posterior | None, n: int, seed: int
) -> dict[str, dict[str, Any]]:
    """Bands of :data:`POINT_METRICS` (and the acceptance and hit rate) at one design point over
    ``n`` draws of the cut posterior (``post`` None: the prior). ``point`` holds ``model``,
    ``platform``, ``dataset``, ``knobs`` (knob values) and ``sets`` (``--set`` pairs)."""
    from elmoe_dse.overrides import apply_overrides
    from elmoe_dse.scenario import build_scenario
    from elmoe_dse.specs.model import load_model

    model_id = load_model(point["model"]).id
    priors = point_priors(model_id, point["platform"], point["dataset"])
    draws = prior_draws(priors, n, seed) if post is None else posterior_draws(post, priors, n, seed)
    runs = []
    for v in draws:
        cal = draw_calibration(v, priors, "ensemble draw")
        sc = build_scenario(point["model"], point["platform"], point["dataset"], cal)
        m, spec, knobs = apply_overrides(
            sc.model, sc.platform, sc.knobs(**point["knobs"]), list(point["sets"])
        )
        runs.append((m, spec, knobs, sc.p, sc.quality))
    values: dict[str, list[float]] = {m: [] for m in (*POINT_METRICS, "acceptance", "hit_rate")}
    for step in _point_steps(runs):
        ok = bool(step.feasible)
        for name in POINT_METRICS:
            values[name].append(float(getattr(step, name)) if ok else math.nan)
        values["acceptance"].append(float(step.speculative.acceptance_frac) if ok else math.nan)
        values["hit_rate"].append(float(step.cache.hit_rate_frac) if ok else math.nan)
    return {name: band(np.asarray(v)) for name, v in values.items()}


def _point_steps(runs: list[tuple[Any, ...]]) -> list[Any]:
    """Each draw's :class:`StepCost` of ``runs`` (model, spec, knobs, routing, quality per
    draw): one stacked evaluation of all draws (bit for bit each draw's own) when they share
    the model, else, or if the stack raises, one evaluation per draw (whose error is the
    user's)."""
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.evaluator.ensemble import draw_slice
    from elmoe_dse.evaluator.ensemble import evaluate_draws as evaluate_stack

    models, specs, knobs, probs, qualities = (list(col) for col in zip(*runs, strict=True))
    if all(m == models[0] for m in models):
        try:
            step = evaluate_stack(models[0], specs, knobs, probs, qualities)
        except ElmoeError:
            pass
        else:
            return [draw_slice(step, s) for s in range(len(runs))]
    return [evaluate(*run[:4], quality=run[4]) for run in runs]
