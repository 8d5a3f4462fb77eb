"""Physics of the decoding policies: speculative decoding, the mode switch, draft footprints."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from elmoe_dse.errors import KnobError
from elmoe_dse.knobs import Knobs
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import load_platform
from tests.conftest import PAPER_MODELS, zipf
from tests.conftest import evaluate_mt_bench as evaluate

E8 = "elmoe3d-8g"


def expert_bytes(step: object) -> np.ndarray:
    total = 0.0
    for ps in step.passes:  # type: ignore[attr-defined]
        for op in ps.operators:
            if op.name == "routed_experts":
                total = total + ps.repeats * sum(op.bytes_read.values())
    return np.asarray(total)


@pytest.mark.parametrize("model_id", PAPER_MODELS)
@pytest.mark.parametrize("policy", ["elastic-sd", "quant-sd", "eagle-sd", "slm-sd"])
def test_gamma_zero_is_plain_decoding_exactly(model_id: str, policy: str) -> None:
    model, spec = load_model(model_id), load_platform(E8)
    p = zipf(model, 0.8)
    # a fixed pool: a separate draft's reservation or quant-sd's second copy would otherwise
    # shrink an auto-sized pool, which is a different design, not a different decoding
    knobs = Knobs(batch_size=np.array([1, 4, 16]), draft_length=0, pool_experts=16)
    plain = evaluate(model, spec, replace(knobs, policy="ar-cache"), p)
    sd = evaluate(model, spec, replace(knobs, policy=policy), p)
    np.testing.assert_array_equal(sd.speculative.tau_tokens, 1.0)
    np.testing.assert_array_equal(sd.time_per_step_s, plain.time_per_step_s)
    np.testing.assert_allclose(sd.energy_per_step_j, plain.energy_per_step_j, rtol=1e-14)
    np.testing.assert_array_equal(sd.tokens_per_step, plain.tokens_per_step)
    # gamma = 0 never runs a draft pass
    assert all(np.all(ps.repeats == 0) for ps in sd.passes if ps.kind == "draft")


def test_acceptance_one_gives_tau_gamma_plus_one() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform(E8)
    gammas = np.arange(0, 9)
    step = evaluate(
        model,
        spec,
        Knobs(batch_size=4, draft_length=gammas, acceptance=1.0, policy="elastic-sd"),
        zipf(model),
    )
    np.testing.assert_allclose(step.speculative.tau_tokens, gammas + 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(step.tokens_per_step, 4 * (gammas + 1.0))


@pytest.mark.parametrize("model_id", PAPER_MODELS)
def test_verify_moves_more_expert_bytes_than_ar(model_id: str) -> None:
    """Verification of B x (g + 1) tokens loads the experts of rejected tokens too."""
    model, spec = load_model(model_id), load_platform("xpu")
    p = zipf(model, 0.6)
    for b in (1, 4, 16):
        ar = evaluate(model, spec, Knobs(batch_size=b, policy="ar"), p)
        sd = evaluate(model, spec, Knobs(batch_size=b, policy="eagle-sd", draft_length=4), p)
        verify = sd.passes[-1]
        assert verify.kind == "verify"
        assert verify.unique_experts_per_layer > ar.passes[-1].unique_experts_per_layer
        assert expert_bytes(sd) > expert_bytes(ar)


@pytest.mark.parametrize("policy", ["eagle-sd", "slm-sd"])
def test_separate_draft_sd_on_xpu_at_batch_1_is_not_a_win_for_fine_grained_moe(policy: str) -> None:
    """The paper's motivation: on a fine-grained MoE, SD at B = 1 activates more experts than it
    saves steps, so even the best draft length is slower than or near plain decoding."""
    model, spec = load_model("qwen3-30b-a3b"), load_platform("xpu")
    p = zipf(model, 0.7)
    ar = evaluate(model, spec, Knobs(batch_size=1, policy="ar"), p).throughput_tok_per_s
    sd = evaluate(
        model, spec, Knobs(batch_size=1, policy=policy, draft_length=np.arange(1, 9)), p
    ).throughput_tok_per_s
    assert np.max(sd) <= 1.1 * ar


def test_truncated_msb_draft_accepts_far_less_than_lsb_augmented() -> None:
    model, spec = load_model("glm-4.7-flash"), load_platform(E8)
    p = zipf(model, 0.6)
    base = Knobs(batch_size=8, policy="elastic-sd", draft_length=4, draft_bits=4)
    trunc = evaluate(model, spec, replace(base, rounding="truncate"), p).speculative.acceptance_frac
    lsb = evaluate(
        model, spec, replace(base, rounding="lsb-augmented"), p
    ).speculative.acceptance_frac
    rnd = evaluate(model, spec, replace(base, rounding="round"), p).speculative.acceptance_frac
    assert trunc < 0.5 * lsb
    assert lsb == pytest.approx(rnd, rel=0.05)
    two_bit = evaluate(model, spec, replace(base, rounding="round", draft_bits=2), p)
    assert two_bit.speculative.acceptance_frac < 0.5 * rnd


def test_mode_switch_threshold_and_auto() -> None:
    model, spec = load_model("deepseek-v2-lite"), load_platform(E8)
    p = zipf(model, 0.8)
    batches = np.array([1, 2, 4, 8, 16])
    fixed = evaluate(
        model,
        spec,
        Knobs(batch_size=batches, policy="elmoe3d", mode_threshold=8, draft_length=4),
        p,
    )
    np.testing.assert_array_equal(fixed.speculative.draft_length_tokens, [0, 0, 0, 4, 4])
    auto = evaluate(model, spec, Knobs(batch_size=batches, policy="elmoe3d", draft_length=4), p)
    ar = evaluate(model, spec, Knobs(batch_size=batches, policy="ar-cache"), p)
    sd = evaluate(model, spec, Knobs(batch_size=batches, policy="elastic-sd", draft_length=4), p)
    best = np.maximum(ar.throughput_tok_per_s, sd.throughput_tok_per_s)
    np.testing.assert_allclose(auto.throughput_tok_per_s, best, rtol=1e-12)


def test_separate_drafts_shrink_the_pool_and_quant_sd_about_halves_it() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform(E8)
    p = zipf(model)
    knobs = Knobs(batch_size=4, draft_length=4)
    pools = {
        pol: float(
            evaluate(model, spec, replace(knobs, policy=pol), p).cache.pool_experts_per_layer
        )
        for pol in ("elastic-sd", "eagle-sd", "slm-sd", "quant-sd")
    }
    assert pools["eagle-sd"] < pools["elastic-sd"]
    assert pools["slm-sd"] < pools["elastic-sd"]
    assert 0.4 < pools["quant-sd"] / pools["elastic-sd"] < 0.6


def test_self_draft_reads_nothing_from_lpddr() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform(E8)
    step = evaluate(
        model, spec, Knobs(batch_size=8, policy="elastic-sd", draft_length=3), zipf(model)
    )
    draft = step.passes[0]
    assert draft.kind == "draft" and float(draft.repeats) == 3
    assert draft.bytes_by_tier.get("lpddr", 0.0) == pytest.approx(0.0, abs=1e-3)


def test_policies_that_need_a_fast_tier_are_refused_on_xpu() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform("xpu")
    for policy in ("elastic-sd", "quant-sd", "elmoe3d", "ar-cache"):
        with pytest.raises(KnobError, match="fast tier"):
            evaluate(model, spec, Knobs(policy=policy), zipf(model))
    with pytest.raises(KnobError, match="fixed expert pool"):
        evaluate(
            model, load_platform(E8), Knobs(policy="elastic-sd", cache_policy="lru"), zipf(model)
        )


def test_frequency_pool_beats_random_pool() -> None:
    model, spec = load_model("glm-4.7-flash"), load_platform(E8)
    p = zipf(model, 0.6)
    knobs = Knobs(batch_size=8, policy="elastic-sd", draft_length=4, pool_experts=24)
    hot = evaluate(model, spec, knobs, p)
    rnd = evaluate(model, spec, replace(knobs, cache_policy="random"), p)
    assert hot.speculative.acceptance_frac > rnd.speculative.acceptance_frac
    assert hot.cache.hit_rate_frac > rnd.cache.hit_rate_frac
    assert hot.throughput_tok_per_s > rnd.throughput_tok_per_s


def test_gpt_oss_has_no_bit_axis() -> None:
    """MXFP4 experts: draft bits and rounding do not change acceptance; the pool holds whole
    experts."""
    model, spec = load_model("gpt-oss-20b"), load_platform(E8)
    p = zipf(model)
    base = Knobs(batch_size=8, policy="elastic-sd", draft_length=4)
    a = evaluate(model, spec, replace(base, draft_bits=4, rounding="truncate"), p)
    b = evaluate(model, spec, replace(base, draft_bits=8, rounding="round"), p)
    assert float(a.speculative.acceptance_frac) == pytest.approx(
        float(b.speculative.acceptance_frac)
    )
    assert float(a.cache.pool_experts_per_layer) == float(b.cache.pool_experts_per_layer)


def test_wide_drafts_run_at_w8a8_and_mixed_grids_match_scalars() -> None:
    """A draft wider than 4 bits takes two slice passes (W8A8) on the bit-sliced PEs."""
    model, spec = load_model("qwen3-30b-a3b"), load_platform(E8)
    p = zipf(model)
    bits = np.array([3, 4, 5, 8])
    base = Knobs(batch_size=16, policy="elastic-sd", draft_length=4, pool_experts=16)
    vec = evaluate(model, spec, replace(base, draft_bits=bits), p)
    for i, b in enumerate(bits):
        one = evaluate(model, spec, replace(base, draft_bits=int(b)), p)
        assert vec.time_per_step_s[i] == pytest.approx(float(one.time_per_step_s), rel=1e-12)
        assert vec.energy_per_step_j[i] == pytest.approx(float(one.energy_per_step_j), rel=1e-12)
        draft = next(op for op in one.passes[0].operators if op.name == "routed_experts")
        assert draft.precision == ("w8a8" if b > 4 else "w4a8")


def test_throttled_pool_keeps_k_selections_per_token() -> None:
    """Capped and redistributed inside the pool: a token still picks min(k, C) experts."""
    from elmoe_dse.routing import capped_pool_probabilities

    model = load_model("qwen3-30b-a3b")
    p = zipf(model, 1.28)
    q = capped_pool_probabilities(p, np.array([4.0, 8.0, 16.0, 39.0, 128.0]))
    np.testing.assert_allclose(q.sum(axis=1), [4.0, 8.0, 8.0, 8.0, 8.0], rtol=1e-12)
    assert np.all(q <= 1.0) and np.all(q >= 0.0)
    np.testing.assert_allclose(q[-1], np.sort(p)[::-1], rtol=1e-12)  # the whole pool: unchanged
