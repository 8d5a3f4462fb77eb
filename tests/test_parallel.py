"""Parallel layouts: the link model, the busiest expert group against a sampler, capacity per
device, and the evaluator on more than one device."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from elmoe_dse import parallel
from elmoe_dse.errors import KnobError
from elmoe_dse.explore.collectives import fit_allreduce_table, ring_bytes
from elmoe_dse.knobs import Knobs
from elmoe_dse.routing import sample_routing_trace, unique_experts
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import load_platform
from tests.conftest import evaluate_mt_bench, uniform, zipf


def knobs(**kw: object) -> Knobs:
    return Knobs(**kw)  # type: ignore[arg-type]


def test_allreduce_is_free_on_one_device_and_ring_on_n() -> None:
    t = parallel.allreduce_time_s(np.array([1e6, 1e6]), np.array([1, 4]), 5e-6, 0.5, 100e9)
    assert t[0] == 0.0
    assert t[1] == pytest.approx(5e-6 + 2 * 3 / 4 * 1e6 / 50e9)


def test_fit_recovers_the_constants_of_a_synthetic_table() -> None:
    sizes = np.array([2**i for i in range(7, 22)] * 3)
    gpus = np.repeat([2, 4, 8], 15)
    latency_ms = (4e-6 + ring_bytes(sizes, gpus) / (0.3 * 300e9)) * 1e3
    table = pd.DataFrame(
        {"backend": "vllm_graph", "message_size": sizes, "num_gpus": gpus, "latency": latency_ms}
    )
    fit = fit_allreduce_table(table, 300e9)
    assert fit.t0_s == pytest.approx(4e-6, rel=1e-6)
    assert fit.eta_frac == pytest.approx(0.3, rel=1e-6)
    assert fit.worst_abs_frac < 1e-6


def _sampled_max_group(p: np.ndarray, tokens: int, ep: int, trials: int = 400) -> tuple:
    """Monte-Carlo mean of (unique, busiest group's distinct experts, busiest group's pairs)
    under rank round-robin placement (expert rank r on group r mod ep)."""
    rng = np.random.default_rng(7)
    uniq, most, pairs = [], [], []
    for _ in range(trials):
        trace = sample_routing_trace(p, tokens, rng)
        touched = np.unique(trace)
        uniq.append(touched.size)
        most.append(np.bincount(touched % ep, minlength=ep).max())
        pairs.append(np.bincount(trace.ravel() % ep, minlength=ep).max())
    return float(np.mean(uniq)), float(np.mean(most)), float(np.mean(pairs))


@pytest.mark.parametrize("skew", [0.0, 1.2])
@pytest.mark.parametrize(("tokens", "ep"), [(4, 4), (16, 8), (64, 2)])
def test_busiest_group_matches_a_sampler(skew: float, tokens: int, ep: int) -> None:
    model = load_model("qwen3-30b-a3b")
    p = zipf(model, skew) if skew else uniform(model)
    u_mc, most_mc, pairs_mc = _sampled_max_group(p, tokens, ep)
    u = float(unique_experts(p, tokens))
    assert u == pytest.approx(u_mc, rel=0.02)
    assert parallel.max_group_unique(p, u, ep) == pytest.approx(most_mc, rel=0.05)
    assert parallel.max_group_tokens(p, tokens, ep) == pytest.approx(pairs_mc, rel=0.1)
    # the busiest group is above the mean group, more so when routing is skewed
    assert parallel.max_group_unique(p, u, ep) > u / ep


def test_skew_loads_the_busiest_group_with_more_tokens() -> None:
    # round-robin by rank puts the hottest expert of every stride on group 0: under skew it
    # gets more token-expert pairs than the mean group, and more than under uniform routing
    model = load_model("qwen3-30b-a3b")
    flat = parallel.token_imbalance(uniform(model), 16.0, 8)
    skewed = parallel.token_imbalance(zipf(model, 1.2), 16.0, 8)
    assert 1.0 < flat < skewed


def test_mixtral_bf16_needs_two_a100s() -> None:
    model, spec = load_model("mixtral-8x7b"), load_platform("a100-80g")
    p = uniform(model)
    one = evaluate_mt_bench(model, spec, knobs(weight_format="bf16"), p)
    assert not one.feasible
    assert "93.3 GB" in one.reason and "80 GB" in one.reason
    two = evaluate_mt_bench(model, spec, knobs(weight_format="bf16", tp=2), p)
    assert two.feasible
    names = {op.name for op in two.passes[-1].operators}
    assert {"allreduce_attention", "allreduce_moe"} <= names


def test_tensor_parallel_halves_the_bytes_and_adds_the_all_reduces() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform("h100")
    p = uniform(model)
    one = evaluate_mt_bench(model, spec, knobs(), p).passes[-1]
    two = evaluate_mt_bench(model, spec, knobs(tp=2), p).passes[-1]
    assert two.bytes_by_tier["hbm"] == pytest.approx(one.bytes_by_tier["hbm"] / 2, rel=0.01)
    comm = sum(float(op.time_s) for op in two.operators if str(op.unit) == "link")
    link = spec.device_link
    assert link is not None
    floor = 2 * model.num_layers * link.value("allreduce_t0_s")
    assert floor < comm < 2 * floor


def test_expert_parallel_stacks_pool_their_hb() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform("elmoe3d-8g")
    p = uniform(model)
    one = evaluate_mt_bench(model, spec, knobs(batch_size=4), p)
    two = evaluate_mt_bench(model, spec, knobs(batch_size=4, ep=2, dp_attention=2), p)
    assert two.cache.pool_experts_per_layer > one.cache.pool_experts_per_layer
    names = {op.name for op in two.passes[-1].operators}
    assert {"dispatch", "combine"} <= names


def test_layout_errors_are_one_line() -> None:
    model = load_model("qwen3-30b-a3b")
    p = uniform(model)
    with pytest.raises(KnobError, match="divide"):
        evaluate_mt_bench(model, load_platform("h100"), knobs(tp=4, ep=3), p)
    with pytest.raises(KnobError, match="device_link"):
        evaluate_mt_bench(model, load_platform("xpu"), knobs(tp=2), p)


def test_gpt_fast_mixtral_bf16_tp2_within_twenty_percent() -> None:
    # issue 16 done-when: +14.5 % (10.34 ms measured, 11.85 ms predicted; +31 % before the
    # fused-MoE refit). Nothing is fitted on the multi-GPU points, so this is a prediction.
    from elmoe_dse.explore.validate_multi import load_multi_points, multi_validation_table

    table = multi_validation_table(load_multi_points()).set_index("id")
    err = table.loc["mixtral-a100-80g-gptfast-bf16-tp2-b1", "error_frac"]
    assert 0.0 < err < 0.20


def test_gpt_fast_tensor_parallel_speedups_within_fifteen_percent() -> None:
    from elmoe_dse.explore.validate_multi import load_multi_points, multi_validation_table

    table = multi_validation_table(load_multi_points())
    assert len(table) == 7
    # worst -13 % at TP8 (docs/parallel.md: the A100 kernel gap is fitted on vLLM points, whose
    # 13 kernels per layer gpt-fast fuses into fewer); -2 % before the fused-MoE refit
    assert table["speedup_error_frac"].abs().max() < 0.15


def test_one_device_points_of_a_layout_grid_equal_the_single_device_model() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform("elmoe3d-8g")
    p = uniform(model)
    alone = evaluate_mt_bench(model, spec, knobs(batch_size=4), p)
    grid = evaluate_mt_bench(model, spec, knobs(batch_size=4, ep=np.array([1, 2])), p)
    assert grid.time_per_step_s[0] == pytest.approx(float(alone.time_per_step_s), rel=1e-12)
    assert grid.energy_per_token_j[0] == pytest.approx(float(alone.energy_per_token_j), rel=1e-12)
    assert grid.time_per_step_s[1] < grid.time_per_step_s[0]


def test_device_link_time_is_a_results_column_zero_on_one_device() -> None:
    from elmoe_dse.columns import DEVICE_LINK_TIME_PER_STEP_S
    from elmoe_dse.results import step_columns

    model, spec = load_model("qwen3-30b-a3b"), load_platform("elmoe3d-8g")
    p = uniform(model)
    one = step_columns(evaluate_mt_bench(model, spec, knobs(batch_size=4), p))
    assert float(one[DEVICE_LINK_TIME_PER_STEP_S]) == 0.0
    step = evaluate_mt_bench(model, spec, knobs(batch_size=4, tp=2), p)
    two = float(step_columns(step)[DEVICE_LINK_TIME_PER_STEP_S])
    comm = sum(
        float(np.asarray(op.time_s)) * float(np.asarray(ps.repeats))
        for ps in step.passes
        for op in ps.operators
        if str(op.unit) == "link"
    )
    assert two == pytest.approx(comm) and 0.0 < two < float(step.time_per_step_s)
