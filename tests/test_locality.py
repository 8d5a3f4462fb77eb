"""The correlated routing process (elmoe_dse.locality) against its exact Monte-Carlo references,
and its use by every cache model of the evaluator alike."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from elmoe_dse import locality, routing
from elmoe_dse.evaluator import evaluate
from elmoe_dse.knobs import Knobs
from elmoe_dse.scenario import build_scenario
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import load_platform
from elmoe_dse.speculative import (
    DraftQuality,
    draft_length_at_edge,
    tau_chain,
    tau_width_tree,
)
from tests.conftest import mt_bench_quality


def zipf(e: int, k: int, a: float) -> np.ndarray:
    return routing.expert_probabilities(e, k, "zipf", a)


def test_sampler_marginals_at_rho_zero_are_p() -> None:
    p = zipf(64, 4, 1.0)
    masks = locality.sample_correlated_routing(p, 0.0, 400, 50, np.random.default_rng(0))
    assert (masks.sum(axis=-1) == 4).all()
    n = masks.shape[0] * masks.shape[1]
    emp = masks.mean(axis=(0, 1))
    sigma = np.sqrt(p * (1 - p) / n)
    assert np.all(np.abs(emp - p) <= 4.5 * sigma + 1e-12)


def test_sampler_keeps_a_share_rho_of_the_previous_experts() -> None:
    p = zipf(64, 8, 0.5)
    rho = 0.6
    masks = locality.sample_correlated_routing(p, rho, 200, 60, np.random.default_rng(1))
    shared = (masks[1:] & masks[:-1]).sum(axis=-1).mean() / 8
    # kept (rho) plus re-drawn by chance among the rest
    assert rho < shared < rho + 0.1


@pytest.mark.parametrize("a, rho", [(1.0, 0.5), (1.5, 0.8), (0.5, 0.5)])
def test_chain_marginals_match_the_sampler(a: float, rho: float) -> None:
    p = zipf(64, 4, a)
    masks = locality.sample_correlated_routing(p, rho, 200, 200, np.random.default_rng(2))
    emp = masks[50:].mean(axis=(0, 1))
    pi, _ = locality.chain_marginals(p, rho)
    assert pi.sum() == pytest.approx(4, rel=1e-6)
    assert np.max(np.abs(emp - pi)) < 0.04  # mean-field chain: worst on the top expert
    # the process flattens the marginals at rho > 0 (a kept expert is not re-drawn)
    assert pi[0] < p[0]


@pytest.mark.parametrize("rho, b, t", [(0.0, 4, 3), (0.5, 1, 5), (0.8, 4, 5), (0.5, 16, 2)])
def test_correlated_union_matches_the_sampler(rho: float, b: int, t: int) -> None:
    p = zipf(128, 8, 1.0)
    masks = locality.sample_correlated_routing(p, rho, b * 100, 40 * t, np.random.default_rng(3))
    passes = masks[10 * t :].reshape(-1, t, 100, b, 128).any(axis=(1, 3))
    mc = passes.sum(axis=-1).mean()
    model = float(locality.correlated_unique(p, rho, b, t))
    assert model == pytest.approx(mc, rel=0.015)
    if rho == 0.0:
        assert model == pytest.approx(float(routing.unique_experts(p, b * t)), rel=1e-9)


def test_old_t_eff_is_off_under_the_process() -> None:
    """routing.effective_tokens' T_eff = 1 + (T - 1)(1 - rho) misses the union by more than a
    few % at strong reuse; the evaluator uses locality.correlated_unique instead."""
    p = zipf(128, 8, 1.0)
    exact = float(locality.correlated_unique(p, 0.8, 1, 9))
    t_eff = float(routing.unique_experts(p, routing.effective_tokens(1, 9, 0.8)))
    assert abs(t_eff / exact - 1) > 0.03


LRU_GRID = list(
    itertools.product(((64, 4), (128, 8)), (0.0, 1.0), (0.0, 0.5), (1, 4), (1 / 8, 1 / 4))
)


@pytest.mark.parametrize("ek, a, rho, b, frac", LRU_GRID)
def test_lru_model_matches_exact_simulation(
    ek: tuple[int, int], a: float, rho: float, b: int, frac: float
) -> None:
    e, k = ek
    p = zipf(e, k, a)
    c = int(e * frac)
    sim = locality.simulate_correlated_lru(
        p, rho, b, c, 800, np.random.default_rng(4), warmup_steps=150, layers=2
    )
    _, model = locality.lru_resident_frac(p, rho, b, c)
    assert float(model) == pytest.approx(sim, abs=0.02)


def test_lru_at_rho_zero_is_the_che_pass_model() -> None:
    from elmoe_dse.cache import lru_unique_hit_frac

    p = zipf(128, 8, 1.0)
    c = np.array([8.0, 16.0, 32.0, 64.0])
    _, h_u = locality.lru_resident_frac(p, 0.0, 4, c)
    np.testing.assert_allclose(h_u, lru_unique_hit_frac(p, c, 4.0), atol=1e-9)


def test_lru_resident_share_rises_with_rho_and_falls_with_locality_loss() -> None:
    p = zipf(128, 8, 0.7)
    rho = np.array([0.0, 0.25, 0.5, 0.8])
    _, h_u = locality.lru_resident_frac(p, rho, 4, 32)
    assert np.all(np.diff(h_u) > 0)
    rho_b = locality.batch_overlap(0.5, 8, np.array([4.0, 16.0, np.inf]))
    assert np.all(np.diff(rho_b) > 0) and float(rho_b[-1]) == 0.5
    assert float(locality.batch_overlap(0.5, 1, 4.0)) == 0.5


WINDOW_GRID = list(itertools.product(((64, 4, 1.0), (128, 8, 0.6)), (0.0, 0.5), ((1, 8), (4, 16))))


@pytest.mark.parametrize("eka, rho, bw", WINDOW_GRID)
def test_window_pool_matches_monte_carlo(
    eka: tuple[int, int, float], rho: float, bw: tuple[int, int]
) -> None:
    """Top-C of noisy window counts: hit rate within 0.05 absolute, experts entering per refresh
    within 25 % (Gaussian count approximation)."""
    e, k, a = eka
    b, w = bw
    p = zipf(e, k, a)
    c = e // 4
    hit, res, changes = locality.simulate_window_pool(p, rho, b, w, c, 60, np.random.default_rng(5))
    stats = locality.window_pool(p, rho, b, w, c)
    assert float(stats.hit_frac) == pytest.approx(hit, abs=0.05)
    assert float(stats.resident_unique_frac) == pytest.approx(res, abs=0.05)
    assert float(stats.refresh_experts) == pytest.approx(changes, rel=0.25)


def test_window_pool_is_below_the_oracle_and_reaches_it_with_a_long_window() -> None:
    from elmoe_dse.cache import hot_set_hit_frac

    p = zipf(128, 8, 1.0)
    oracle = float(hot_set_hit_frac(p, 32))
    hits = locality.window_pool(p, 0.0, 1, np.array([4.0, 32.0, 4096.0]), 32).hit_frac
    assert np.all(np.diff(hits) > 0) and hits[0] < oracle - 0.05
    assert float(hits[-1]) == pytest.approx(oracle, abs=0.01)


# ----------------------------------------------------------------------------------------------
# Every cache model of the evaluator uses rho and the locality-loss term
# ----------------------------------------------------------------------------------------------


def _step(platform: str, quality: DraftQuality, **kw: object):  # type: ignore[no-untyped-def]
    model = load_model("qwen3-30b-a3b")
    p = zipf(model.num_experts, model.experts_per_token, 0.7)
    return evaluate(model, load_platform(platform), Knobs(**kw), p, quality=quality)  # type: ignore[arg-type]


CACHES = [
    ("hb-xpu", {"policy": "ar-cache"}),  # LRU
    ("elmoe3d-8g", {"policy": "elmoe3d", "mode_threshold": 64}),  # AR mode from the hot pool
    ("elmoe3d-8g", {"policy": "elastic-sd"}),  # the draft's hot pool
]


@pytest.mark.parametrize("platform, kw", CACHES)
def test_every_cache_uses_rho_and_the_locality_loss(platform: str, kw: dict[str, object]) -> None:
    q = mt_bench_quality(load_model("qwen3-30b-a3b"))
    base = {"batch_size": 8, **kw}
    share = [
        float(_step(platform, q, overlap_frac=r, **base).cache.resident_unique_frac)
        for r in (0.0, 0.5)
    ]
    assert share[1] != pytest.approx(share[0], abs=1e-4)
    strong_loss = DraftQuality(q.profile.model_copy(update={"batch_locality_scale": 2.0}), q.params)
    lost = float(_step(platform, strong_loss, overlap_frac=0.5, **base).cache.overlap_frac)
    kept = float(_step(platform, q, overlap_frac=0.5, **base).cache.overlap_frac)
    assert lost < kept < 0.5


def test_lru_and_hot_pool_gain_from_reuse_at_batch_one() -> None:
    q = mt_bench_quality(load_model("qwen3-30b-a3b"))
    for platform, kw in CACHES[:2]:
        low, high = (
            float(_step(platform, q, overlap_frac=r, batch_size=1, **kw).cache.hit_rate_frac)
            for r in (0.0, 0.5)
        )
        assert high > low, platform


def test_pool_refresh_writes_msb_slices_into_hb() -> None:
    q = mt_bench_quality(load_model("qwen3-30b-a3b"))
    step = _step("elmoe3d-8g", q, policy="elastic-sd", batch_size=8)
    verify = step.passes[-1]
    experts = next(op for op in verify.operators if op.name.startswith("routed_experts"))
    assert float(step.cache.refresh_experts_per_layer) > 0
    assert float(experts.bytes_written.get("hb", 0.0)) > 0
    assert float(step.energy_by_component_j.get("write_hb", 0.0)) > 0


def test_explain_hb_xpu_resident_share_rises_with_overlap_and_matches_simulation() -> None:
    """The done-when of the symmetric mechanisms: explain -p hb-xpu -m qwen3-30b-a3b
    --set overlap_frac=0.5 reports a higher LRU resident share than 0.0, within 0.02 of the exact
    simulation of the same process."""
    sc = build_scenario("qwen3-30b-a3b", "hb-xpu", "mt-bench", None)
    shares = {}
    for rho in (0.0, 0.5):
        step = evaluate(sc.model, sc.platform, sc.knobs(overlap_frac=rho), sc.p, quality=sc.quality)
        shares[rho] = (
            float(step.cache.resident_unique_frac),
            int(step.cache.pool_experts_per_layer),
        )
    assert shares[0.5][0] > shares[0.0][0] + 0.02
    for rho, (model_share, slots) in shares.items():
        sim = locality.simulate_correlated_lru(
            sc.p, rho, 1, slots, 1500, np.random.default_rng(6), warmup_steps=200, layers=2
        )
        assert model_share == pytest.approx(sim, abs=0.02)


# ----------------------------------------------------------------------------------------------
# Draft trees
# ----------------------------------------------------------------------------------------------


def test_tree_of_width_one_is_a_chain_and_wider_trees_commit_more() -> None:
    alpha, gamma = np.asarray(0.6), np.arange(1.0, 9.0)
    np.testing.assert_allclose(tau_width_tree(alpha, 1, gamma), tau_chain(alpha, gamma))
    a2 = 1 - 0.4**2
    np.testing.assert_allclose(tau_width_tree(alpha, 2, gamma), tau_chain(a2, gamma))


def test_tree_verify_runs_every_node() -> None:
    q = mt_bench_quality(load_model("qwen3-30b-a3b"))
    kw = {"policy": "eagle-sd", "batch_size": 2, "draft_length": 3, "acceptance": 0.5}
    chain = _step("xpu", q, draft_width=1, **kw)
    tree = _step("xpu", q, draft_width=3, **kw)
    assert float(chain.passes[-1].tokens) == 2 * (1 + 3)
    assert float(tree.passes[-1].tokens) == 2 * (1 + 3 * 3)
    assert float(tree.passes[0].tokens) == 2 * 3  # one draft depth: w tokens per sequence
    assert float(tree.tokens_per_step) > float(chain.tokens_per_step)


def test_draft_length_at_edge() -> None:
    flags = draft_length_at_edge(np.array([1.0, 4.0, 16.0, np.nan]))
    assert flags.tolist() == [True, False, True, False]
    assert draft_length_at_edge(8.0, 1, 8)
