"""Closed forms, hand checks and invariants of the decode-step evaluation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elmoe_dse.errors import KnobError
from elmoe_dse.knobs import Knobs
from elmoe_dse.overrides import apply_overrides
from elmoe_dse.platforms import PlatformKnobs, static_power_w
from elmoe_dse.specs.model import ModelSpec, load_model
from elmoe_dse.specs.platform import PlatformSpec, list_platforms, load_platform
from tests.conftest import (
    PAPER_MODELS,
    fast_tier_platforms,
    one_platform_per_family,
    uniform,
    zipf,
)
from tests.conftest import evaluate_mt_bench as evaluate


def with_fields(spec: PlatformSpec, **paths: float) -> PlatformSpec:
    """A copy of ``spec`` with dotted-path fields (``tiers__lpddr__peak_bw_gb_per_s``) replaced."""
    pairs = [f"{k.replace('__', '.')}={v}" for k, v in paths.items()]
    model = load_model("qwen3-30b-a3b")
    _, out, _ = apply_overrides(model, spec, Knobs(), pairs)
    return out


def test_qwen3_on_xpu_batch1_is_lpddr_bound_hand_check() -> None:
    """Hand check of `explain --model qwen3-30b-a3b --platform xpu --batch 1 --routing uniform`.

    Qwen3-30B-A3B (d 2048, 48 layers, GQA 32/4 heads of 128, 128 experts top-8, f 768, V 151936):
      attention/layer  = 2048*4096 (q) + 2*2048*512 (k, v) + 4096*2048 (o) = 18.87 M (+ q/k norms)
      router/layer     = 2048*128 = 0.262 M
      expert           = 3*2048*768 = 4.719 M; B = 1 touches k = 8 experts per layer
      LM head          = 151936*2048 = 311.2 M (untied)
      params read      = 48*(18.87 + 0.262 + 8*4.719) M + 311.2 M = 3.041 G params
      INT8 G32 + FP16 scales = 8.5 bit = 1.0625 B/param      -> 3.232 GB
      KV (FP16) read   = 1024 tokens * 48 layers * 2*4*128 * 2 B = 0.1007 GB
      total ~ 3.33 GB at 102.4 GB/s * 0.99 = 101.4 GB/s achievable -> ~32.9 ms per step.
    The test asserts the model's own reported bytes / achievable bandwidth equals its step time
    within 1 % (compute and KV writes are tiny), and the totals match the hand figures above.
    """
    model, spec = load_model("qwen3-30b-a3b"), load_platform("xpu")
    step = evaluate(model, spec, Knobs(batch_size=1), uniform(model))
    assert step.bound == "lpddr"
    bw = 102.4e9 * 0.99
    moved = step.bytes_by_tier["lpddr"] + step.passes[-1].bytes_written_by_tier["lpddr"]
    assert step.time_per_step_s == pytest.approx(moved / bw, rel=0.01)
    assert step.bytes_by_tier["lpddr"] == pytest.approx(3.33e9, rel=0.01)
    assert step.time_per_step_s == pytest.approx(32.9e-3, rel=0.01)
    assert step.passes[-1].unique_experts_per_layer == pytest.approx(8.0)


def test_infinite_compute_time_is_bytes_over_bandwidth_exactly() -> None:
    """Compute at the plausible ceiling (1e6 TOPS, a million times the xPU): every operator is
    memory-bound, so the step time is the bytes over the bandwidth, exactly."""
    model = load_model("deepseek-v2-lite")
    spec = with_fields(
        load_platform("xpu"),
        compute__peak_tops__w8a8=1e6,
        compute__peak_tops__w16a16=1e6,
        compute__peak_tops__w4a8=1e6,
    )
    step = evaluate(model, spec, Knobs(batch_size=np.array([1, 4, 16])), uniform(model))
    bw = spec.tiers["lpddr"].bw_bytes_per_s
    ps = step.passes[-1]
    expected = sum(
        (op.bytes_read.get("lpddr", 0.0) + op.bytes_written.get("lpddr", 0.0)) / bw
        for op in ps.operators
    )
    np.testing.assert_allclose(step.time_per_step_s, expected, rtol=1e-12)


@pytest.mark.parametrize("model_id", PAPER_MODELS)
def test_full_cache_hit_reads_no_expert_bytes_from_lpddr(model_id: str) -> None:
    model = load_model(model_id)
    spec = load_platform("hb-xpu")
    knobs = Knobs(batch_size=4, hb_capacity_gb=200.0, cache_policy="hot")
    step = evaluate(model, spec, knobs, uniform(model))
    assert step.cache.pool_experts_per_layer == model.num_experts
    routed = next(op for op in step.passes[-1].operators if op.name == "routed_experts")
    assert routed.bytes_read.get("lpddr", 0.0) == pytest.approx(0.0, abs=1e-6)
    assert step.cache.hit_rate_frac == pytest.approx(1.0)


def test_bit_nested_hit_still_reads_the_lsb_slice_from_lpddr() -> None:
    model = load_model("qwen3-30b-a3b")
    step = evaluate(
        model,
        load_platform("elmoe3d-8g"),
        Knobs(batch_size=1, hb_capacity_gb=200.0, policy="ar-cache"),
        uniform(model),
    )
    routed = next(op for op in step.passes[-1].operators if op.name == "routed_experts")
    # every expert resident: MSB4 + scale (4.5 bit) from HB, LSB4 (4 bit) from LPDDR
    expected_lsb = 48 * 8 * model.expert_params() * 4 / 8
    expected_msb = 48 * 8 * model.expert_params() * 4.5 / 8
    assert routed.bytes_read["lpddr"] == pytest.approx(expected_lsb, rel=1e-9)
    assert routed.bytes_read["hb"] == pytest.approx(expected_msb, rel=1e-9)


def test_bit_nested_pool_holds_about_twice_the_experts_of_a_full_cache() -> None:
    model = load_model("qwen3-30b-a3b")
    full = evaluate(model, load_platform("hb-xpu"), Knobs(batch_size=1), uniform(model))
    nested = evaluate(model, load_platform("elmoe3d-8g"), Knobs(batch_size=1), uniform(model))
    ratio = nested.cache.pool_experts_per_layer / full.cache.pool_experts_per_layer
    assert 1.7 < ratio < 2.0  # 8.5 / 4.5 = 1.89, floors per layer


def test_vector_path_equals_scalar_path(any_platform: PlatformSpec) -> None:
    model = load_model("glm-4.7-flash")
    p = zipf(model, 0.8)
    batches = np.array([1, 3, 8, 16])
    ctx = np.array([512, 1024, 2048, 4096])
    vec = evaluate(model, any_platform, Knobs(batch_size=batches, context_len=ctx), p)
    for i, (b, s) in enumerate(zip(batches, ctx, strict=True)):
        one = evaluate(model, any_platform, Knobs(batch_size=int(b), context_len=int(s)), p)
        assert vec.time_per_step_s[i] == pytest.approx(float(one.time_per_step_s), rel=1e-12)
        assert vec.energy_per_token_j[i] == pytest.approx(float(one.energy_per_token_j), rel=1e-12)


def test_contract_every_platform_every_paper_model(any_platform: PlatformSpec) -> None:
    """Every platform gives positive, finite time and energy, energy >= static x time."""
    for model_id in PAPER_MODELS:
        model = load_model(model_id)
        step = evaluate(model, any_platform, Knobs(batch_size=np.arange(1, 17)), uniform(model))
        assert np.all(np.isfinite(step.time_per_step_s)) and np.all(step.time_per_step_s > 0)
        assert np.all(np.isfinite(step.energy_per_token_j)) and np.all(step.energy_per_token_j > 0)
        knobs = PlatformKnobs.of(Knobs(batch_size=np.arange(1, 17)))
        static = static_power_w(any_platform, knobs) * step.time_per_step_s
        assert np.all(step.energy_per_step_j >= static)
        assert np.all(step.feasible)


@settings(max_examples=25, deadline=None)
@given(
    model_id=st.sampled_from(PAPER_MODELS),
    platform=st.sampled_from(list_platforms()),
    batch=st.integers(1, 32),
    factor=st.floats(1.01, 8.0),
)
def test_more_bandwidth_or_compute_is_never_slower(
    model_id: str, platform: str, batch: int, factor: float
) -> None:
    """Throughput, not the step time: a faster machine may switch a design to speculative
    decoding (B* = auto picks the faster mode), whose step is longer but commits more tokens
    (hypothesis found GLM-4.7-Flash on elmoe3d-4g at batch 11: 2x compute drafts 4 tokens, the
    step takes 0.27 s against 0.12 s, 93.397 against 93.380 tokens/s)."""
    model, spec = load_model(model_id), load_platform(platform)
    p = zipf(model, 0.7)

    def throughput(s: PlatformSpec) -> float:
        return float(evaluate(model, s, Knobs(batch_size=batch), p).throughput_tok_per_s)

    base = throughput(spec)
    tier = spec.main_tier
    faster_mem = with_fields(
        spec, **{f"tiers__{tier}__peak_bw_gb_per_s": spec.tiers[tier].peak_bw_gb_per_s * factor}
    )
    assert throughput(faster_mem) >= base * (1 - 1e-12)
    more_ops = with_fields(
        spec,
        compute__peak_tops__w8a8=spec.compute.peak_tops.w8a8 * factor,
        compute__peak_tops__w4a8=spec.compute.peak_tops.w4a8 * factor,
        compute__peak_tops__w16a16=spec.compute.peak_tops.w16a16 * factor,
    )
    assert throughput(more_ops) >= base * (1 - 1e-12)


def test_more_compute_can_lengthen_the_step_by_switching_to_speculation() -> None:
    """The case behind the throughput form above, pinned: the step gets longer, the
    throughput does not fall."""
    model, spec = load_model("glm-4.7-flash"), load_platform("elmoe3d-4g")
    p = zipf(model, 0.7)
    more_ops = with_fields(
        spec,
        compute__peak_tops__w8a8=spec.compute.peak_tops.w8a8 * 2,
        compute__peak_tops__w4a8=spec.compute.peak_tops.w4a8 * 2,
        compute__peak_tops__w16a16=spec.compute.peak_tops.w16a16 * 2,
    )
    base, fast = (evaluate(model, s, Knobs(batch_size=11), p) for s in (spec, more_ops))
    assert float(base.speculative.draft_length_tokens) == 0.0
    assert float(fast.speculative.draft_length_tokens) > 0.0
    assert float(fast.time_per_step_s) > 2 * float(base.time_per_step_s)
    assert float(fast.throughput_tok_per_s) >= float(base.throughput_tok_per_s)


@pytest.mark.parametrize("platform", one_platform_per_family())
@pytest.mark.parametrize("model_id", PAPER_MODELS)
def test_bigger_batch_never_moves_fewer_bytes_and_more_hb_never_slower(
    platform: str, model_id: str
) -> None:
    """At a fixed policy (AR, or SD at a fixed draft length) more sequences never move fewer
    bytes at a fixed pool size. (The elmoe3d mode switch may: it stops speculating where plain
    decoding is faster; so may an auto-sized pool: a larger batch's KV leaves fewer pool slots,
    and a smaller pool gives the self-draft fewer experts to read.)"""
    model, spec = load_model(model_id), load_platform(platform)
    fast = platform in fast_tier_platforms()
    policies = ["ar-cache", "elastic-sd"] if fast else ["ar"]
    for policy in policies:
        knobs = Knobs(batch_size=np.arange(1, 33), policy=policy, draft_length=4, pool_experts=8)
        step = evaluate(model, spec, knobs, zipf(model, 1.0))
        total = sum(step.bytes_by_tier.values())
        assert np.all(np.diff(total) >= 0)
    if fast:
        caps = np.array([2.0, 4.0, 8.0, 16.0])
        knobs = Knobs(batch_size=8, hb_capacity_gb=caps)
        tput = evaluate(model, spec, knobs, zipf(model)).throughput_tok_per_s
        assert np.all(np.diff(tput) >= -1e-9 * tput[:-1])


def test_gpu_preset_pays_kernel_overhead() -> None:
    model = load_model("qwen3-30b-a3b")
    spec = load_platform("h100")
    step = evaluate(model, spec, Knobs(batch_size=1), uniform(model))
    # GPU presets are family "gpu": every launched kernel pays at least its floor t0_kernel
    from elmoe_dse.kernels import launches_per_pass

    assert spec.kernels is not None
    floor = launches_per_pass(model) * spec.kernels.value("t0_kernel_s")
    assert step.time_per_step_s >= floor


def test_bad_knobs_raise_knob_error() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform("xpu")
    for bad in (
        Knobs(batch_size=0),
        Knobs(overlap_frac=1.5),
        Knobs(weight_format="fp7"),
        Knobs(context_len=np.nan),
        Knobs(policy="ar-cache"),
    ):
        with pytest.raises(KnobError):
            evaluate(model, spec, bad, uniform(model))


def test_pool_larger_than_fits_is_infeasible() -> None:
    model = load_model("qwen3-30b-a3b")
    step = evaluate(model, load_platform("elmoe3d-4g"), Knobs(pool_experts=128), uniform(model))
    assert not step.feasible


def test_weight_format_changes_bytes() -> None:
    model: ModelSpec = load_model("mixtral-8x7b")
    spec = load_platform("h200")
    int8 = evaluate(model, spec, Knobs(batch_size=1), uniform(model))
    bf16 = evaluate(model, spec, replace(Knobs(batch_size=1), weight_format="bf16"), uniform(model))
    ratio = bf16.bytes_by_tier["hbm"] / int8.bytes_by_tier["hbm"]
    assert 1.8 < ratio < 16 / 8.5 + 0.01  # weights x 16/8.5, KV unchanged


@pytest.mark.parametrize("platform", ["elmoe3d-8g", "hb-xpu", "xpu"])
def test_residency_memo_gives_the_same_step_and_keys_on_every_routing_input(platform: str) -> None:
    """A residency memo shared by calls that differ in a parameter the routing does not read
    (an energy, a bandwidth) gives bit for bit the step of a call without it; a call whose reuse
    differs solves its own residency (a new memo entry), not the first one's."""
    from elmoe_dse.evaluator import ResidencyMemo
    from elmoe_dse.evaluator import evaluate as evaluate_with
    from elmoe_dse.scenario import resolve_inputs

    inputs = resolve_inputs([platform], ["mt-bench"], None)
    model = load_model("qwen3-30b-a3b")
    sc = inputs.scenario(model, platform, "mt-bench")
    spec = sc.platform
    hotter = with_fields(spec, **{"compute__energy_pj_per_op__w8a8": 0.4})
    batch = np.asarray([1.0, 4.0, 16.0])[:, None]
    gamma = np.asarray([0.0, 3.0])[None, :] if platform == "elmoe3d-8g" else 0
    policy = {"elmoe3d-8g": "elastic-sd", "hb-xpu": "ar-cache", "xpu": "ar"}[platform]
    knobs = sc.knobs(batch_size=batch, draft_length=gamma, policy=policy)
    memo: ResidencyMemo = {}
    for s in (spec, hotter):
        shared = evaluate_with(sc.model, s, knobs, sc.p, quality=sc.quality, residency_memo=memo)
        alone = evaluate_with(sc.model, s, knobs, sc.p, quality=sc.quality)
        for field in ("time_per_step_s", "energy_per_token_j", "throughput_tok_per_s"):
            np.testing.assert_array_equal(getattr(shared, field), getattr(alone, field))
    entries = len(memo)
    assert entries >= 1
    other = replace(knobs, overlap_frac=0.6)
    moved = evaluate_with(sc.model, spec, other, sc.p, quality=sc.quality, residency_memo=memo)
    assert len(memo) > entries
    np.testing.assert_array_equal(
        moved.time_per_step_s,
        evaluate_with(sc.model, spec, other, sc.p, quality=sc.quality).time_per_step_s,
    )
