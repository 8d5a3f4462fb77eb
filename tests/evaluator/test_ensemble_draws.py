"""S parameter draws evaluated at once (a leading sample axis) equal each draw evaluated alone,
bit for bit: the evaluator entry point, the routing solves on an (S, E) routing matrix, and the
reproduction's stacked tasks."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from elmoe_dse import locality
from elmoe_dse.errors import KnobError
from elmoe_dse.evaluator import evaluate
from elmoe_dse.evaluator.ensemble import draw_slice, evaluate_draws, stack_draws
from elmoe_dse.explore.alternatives import defaults, one_at_a_time
from elmoe_dse.explore.ensemble import (
    Task,
    _draw_inputs,
    _table,
    evaluate_stack,
    evaluate_task,
    paper_priors,
    prior_draws,
)
from elmoe_dse.explore.reproduce import DrawMemo, paper_model, run_settings, system_runs
from elmoe_dse.routing import expert_probabilities, probability_levels

SEED = 20260417
MODELS = ("qwen3-30b-a3b", "gpt-oss-20b")
DATASETS = ("mt-bench", "humaneval")


def _draw_values(n: int, *grid: tuple[str, ...]) -> list[dict[str, float]]:
    """``n`` prior draws (of the ``grid`` models and datasets' priors), the last with the
    steepest routing the priors allow (its top experts capped at p = 1, so its routing has
    fewer probability levels than the others')."""
    priors = paper_priors(*grid)
    values = prior_draws(priors, n, SEED)
    for key, rng in priors.items():
        if key.endswith(".zipf_exponent"):
            values[-1][key] = float(rng.max)
    return values


@pytest.fixture(scope="module")
def draws() -> list[tuple[Any, Any, Any]]:
    table = _table()
    choice = defaults(table)
    out = []
    for i, v in enumerate(_draw_values(4)):
        cal, inputs = _draw_inputs(Task(v, choice), (i,), None)
        out.append((cal, inputs, system_runs(inputs, choice, table, cal)))
    return out


def _leaves(obj: Any, path: str = "") -> dict[str, np.ndarray]:
    """Every array of a step cost by its dotted path."""
    if isinstance(obj, np.ndarray):
        return {path: obj}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, np.ndarray] = {}
        for f in dataclasses.fields(obj):
            out |= _leaves(getattr(obj, f.name), f"{path}.{f.name}")
        return out
    if isinstance(obj, dict):
        return {k: v for key, x in obj.items() for k, v in _leaves(x, f"{path}.{key}").items()}
    if isinstance(obj, tuple):
        return {k: v for i, x in enumerate(obj) for k, v in _leaves(x, f"{path}[{i}]").items()}
    return {}


@pytest.mark.parametrize("model_id", MODELS)
@pytest.mark.parametrize("dataset", DATASETS)
def test_stacked_draws_equal_each_draw_alone(
    draws: list[tuple[Any, Any, Any]], model_id: str, dataset: str
) -> None:
    """Every system (AR, near-memory, the LRU cache of hb-xpu, ELMoE-3D's mode switch,
    Elastic-SD, EAGLE-SD), every array of the step cost, bit for bit."""
    model = paper_model(model_id)
    levels = set()
    for j in range(len(draws[0][2])):
        runs = [d[2][j] for d in draws]
        scs = [
            inp.scenario(model, r.platform_ref, dataset)
            for (_, inp, _), r in zip(draws, runs, strict=True)
        ]
        levels |= {probability_levels(sc.p)[0].size for sc in scs}
        _, _, settings = run_settings(runs[0])
        knobs = [sc.knobs(**settings) for sc in scs]
        stacked = evaluate_draws(
            model,
            [r.platform for r in runs],
            knobs,
            [sc.p for sc in scs],
            [sc.quality for sc in scs],
        )
        assert np.shape(stacked.throughput_tok_per_s)[0] == len(draws)
        for s, (sc, run, k) in enumerate(zip(scs, runs, knobs, strict=True)):
            alone = _leaves(evaluate(model, run.platform, k, sc.p, quality=sc.quality))
            mine = _leaves(draw_slice(stacked, s))
            assert alone.keys() == mine.keys()
            for name, a in alone.items():
                b = mine[name]
                nan = a.dtype.kind == "f"
                assert np.array_equal(np.broadcast_to(a, b.shape), b, equal_nan=nan), (
                    f"{run.system} draw {s} {name}"
                )
    if model_id == "qwen3-30b-a3b":  # 128 experts: the steep draw caps its top experts
        assert len(levels) > 1  # so the draws' routings differ in their number of levels


def test_locality_solves_on_a_routing_matrix() -> None:
    """correlated_unique, the LRU and the window pool on (S, E) routings equal row by row."""
    exps = (0.0, 0.4, 1.0, 2.5)  # 2.5: capped top experts, fewer levels
    p = np.stack([expert_probabilities(64, 6, "zipf", a) for a in exps])
    rng = np.random.default_rng(3)
    rho = rng.uniform(0.0, 0.6, (len(exps), 1, 1))
    b = np.array([1.0, 4.0, 16.0])[None, :, None]
    t = np.array([1.0, 5.0])[None, None, :]
    c = np.broadcast_to(np.array([0.0, 9.0, 30.0])[None, :, None], (len(exps), 3, 2))
    u = locality.correlated_unique(p, rho, b, t)
    lru = locality.lru_resident_frac(p, rho, b, c, t)
    pool = locality.window_pool(p, rho, b, 8.0, c, t)
    assert u.shape == lru[0].shape == pool.hit_frac.shape == (len(exps), 3, 2)
    for s in range(len(exps)):
        assert np.array_equal(u[s], locality.correlated_unique(p[s], rho[s], b[0], t[0]))
        one = locality.lru_resident_frac(p[s], rho[s], b[0], c[s], t[0])
        assert np.array_equal(lru[0][s], one[0]) and np.array_equal(lru[1][s], one[1])
        alone = locality.window_pool(p[s], rho[s], b[0], 8.0, c[s], t[0])
        for name in ("hit_frac", "resident_unique_frac", "refresh_experts"):
            assert np.array_equal(getattr(pool, name)[s], getattr(alone, name))


def test_routing_matrix_needs_a_sample_axis() -> None:
    p = np.stack([expert_probabilities(16, 2, "zipf", a) for a in (0.3, 0.9)])
    with pytest.raises(KnobError, match="sample axis"):
        locality.correlated_unique(p, np.zeros((3, 1)), 1.0, 1.0)


def test_draws_that_differ_in_a_name_cannot_stack() -> None:
    @dataclasses.dataclass(frozen=True)
    class Part:
        name: str
        value: float

    stacked = stack_draws([Part("a", 1.0), Part("a", 2.0)], 2)
    assert stacked.name == "a" and stacked.value.shape == (2, 1, 1)
    with pytest.raises(KnobError, match="not a number"):
        stack_draws([Part("a", 1.0), Part("b", 1.0)], 2)


def test_stacked_tasks_give_the_outcomes_of_tasks_alone() -> None:
    """Reproduction tasks of several draws (every system; a systems subset; an assumption
    alternative reusing the draw's mode-switching run from its memo) evaluated as stacks equal
    the tasks one by one, rows and targets."""
    table = _table()
    choice = defaults(table)
    alts = one_at_a_time(table)
    later = next(c for c in alts if c["mode_threshold"] == "8")  # ELMoE-3D's run from the memo
    no_hb = next(c for c in alts if c["hb_role"] == "none")
    values = _draw_values(3, MODELS[:1], DATASETS)
    kinds = [
        {"choice": choice, "keep_rows": True},
        {"choice": choice, "systems": ("elmoe3d", "elastic-sd", "hb-xpu")},
        {"choice": later, "keep_rows": True},
        {"choice": no_hb, "systems": ("elmoe3d", "elastic-sd", "eagle-sd")},
    ]
    alone_memos = [DrawMemo() for _ in values]
    stack_memos = [DrawMemo() for _ in values]
    for kind in kinds:
        tasks = [Task(v, models=MODELS[:1], datasets=DATASETS, **kind) for v in values]
        alone = [evaluate_task(t, m) for t, m in zip(tasks, alone_memos, strict=True)]
        stacked = evaluate_stack(tasks, stack_memos, {})
        for a, b in zip(alone, stacked, strict=True):
            assert len(a.rows) == len(b.rows) > 0 or not kind.get("keep_rows")
            for x, y in zip(a.rows, b.rows, strict=True):
                assert _same(x, y)
            assert _same(a.targets, b.targets)
            assert _same({"acc": a.max_acceptance_frac}, {"acc": b.max_acceptance_frac})


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal values (NaN equal to NaN), the same keys."""
    return a.keys() == b.keys() and all(
        a[k] == b[k] or (isinstance(a[k], float) and np.isnan(a[k]) and np.isnan(b[k])) for k in a
    )
