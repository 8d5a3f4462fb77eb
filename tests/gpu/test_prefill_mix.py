"""The chunked-prefill term of a serving run's TPOT (elmoe_dse.platforms.gpu, docs/model.md §11).

Closed forms for the prompt tokens per step and the prefill-attention ops, and the behaviour of
the mixed step on the shipped gpt-oss-120b / H200 scenario: zero without prompt tokens, growing
with the input length, the every-step formula once P exceeds the chunk, and the decode part equal
to the evaluator's step.
"""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.evaluator import evaluate
from elmoe_dse.explore.validate import load_points, predict_s
from elmoe_dse.platforms import PlatformKnobs
from elmoe_dse.platforms._placement import main_tier_plan
from elmoe_dse.platforms.gpu import (
    _pass_loads,
    cost_pass,
    mean_prefix_tokens,
    mixed_step_extra_s,
    prefill_attention_ops,
    prefill_tokens_per_step,
)
from elmoe_dse.scenario import load_scenario
from elmoe_dse.workload import footprint


def test_prefill_tokens_closed_form() -> None:
    b, isl, osl = np.meshgrid([1, 2, 8, 64], [0, 128, 1024, 8192], [128, 1024, 8192])
    p = prefill_tokens_per_step(b, isl, osl)
    np.testing.assert_allclose(p, (b - 1) * isl / osl)
    assert float(prefill_tokens_per_step(16, 8192, 1024)) == 15 * 8
    assert np.all(prefill_tokens_per_step(b, 0, osl) == 0)  # no prompt, nothing mixed in
    assert np.all(prefill_tokens_per_step(1, isl, osl) == 0)  # own prompt is in TTFT
    assert np.all(np.diff(prefill_tokens_per_step(8, np.arange(0, 9000, 500), 1024)) > 0)


@pytest.mark.parametrize("window", [0.0, 128.0, 4096.0])
def test_mean_prefix_is_the_average_of_the_capped_position(window: float) -> None:
    for isl in (64.0, 1000.0, 8192.0):
        j = np.linspace(0.0, isl, 200001)
        expect = np.mean(j if window == 0 else np.minimum(j, window))
        assert float(mean_prefix_tokens(isl, window)) == pytest.approx(expect, rel=1e-4)


def test_prefill_attention_ops_closed_form() -> None:
    sc = load_scenario("qwen3-30b-a3b", "a100-80g", "benchmark")
    m = sc.model
    assert m.num_sliding_layers == 0 and m.attention_kind == "gqa"
    got = float(prefill_attention_ops(m, 100.0, 2048.0))
    expect = 4 * m.num_attention_heads * m.head_dim * 100 * 1024 * m.num_layers
    assert got == pytest.approx(expect)
    gpt = load_scenario("gpt-oss-120b", "h200", "benchmark").model
    full = gpt.num_layers - gpt.num_sliding_layers
    w = gpt.sliding_window
    prefix = full * 4096 + gpt.num_sliding_layers * (w - w * w / (2 * 8192))
    assert float(prefill_attention_ops(gpt, 1.0, 8192.0)) == pytest.approx(
        4 * gpt.num_attention_heads * gpt.head_dim * prefix
    )


def _extra(batch: float, isl: object, osl: float = 1024.0, chunk: float = 8192.0) -> np.ndarray:
    sc = load_scenario("gpt-oss-120b", "h200", "benchmark")
    knobs = sc.knobs(policy="ar", batch_size=batch, context_len=4096.0, weight_format="bf16")
    return mixed_step_extra_s(
        sc.model,
        sc.platform,
        PlatformKnobs.of(knobs.validated()),
        sc.p,
        batch=batch,
        context_len=4096.0,
        isl=np.asarray(isl, dtype=float),
        osl=osl,
        weight_format="bf16",
        kv_format="bf16",
        chunk_tokens=chunk,
    )


def test_mixed_step_is_zero_without_prompt_tokens_and_grows_with_isl() -> None:
    assert float(_extra(16, 0.0)) == 0.0
    assert float(_extra(1, 8192.0)) == 0.0
    grown = _extra(16, [256.0, 1024.0, 4096.0, 8192.0])
    assert np.all(grown > 0) and np.all(np.diff(grown) > 0)


def test_chunk_budget_below_p_mixes_every_step() -> None:
    # P = 63 x 8 = 504 > chunk - B: every step carries P prompt tokens (the Sarathi-Serve limit),
    # whatever the budget below P; a larger budget batches the prompt into fewer, bigger steps.
    small = float(_extra(64, 8192.0, chunk=100.0))
    assert small == pytest.approx(float(_extra(64, 8192.0, chunk=300.0)))
    assert float(_extra(64, 8192.0, chunk=8192.0)) != pytest.approx(small)


def test_decode_part_of_the_mixed_pass_is_the_evaluator_step() -> None:
    sc = load_scenario("gpt-oss-120b", "h200", "benchmark")
    knobs = sc.knobs(policy="ar", batch_size=16, context_len=4096.0, weight_format="bf16")
    step = float(evaluate(sc.model, sc.platform, knobs, sc.p, quality=sc.quality).time_per_step_s)
    pk = PlatformKnobs.of(knobs.validated())
    fp = footprint(
        sc.model,
        batch_size=np.asarray(16.0),
        context_len=np.asarray(4096.0),
        weight_format="bf16",
        kv_format="bf16",
    )
    b = np.asarray(16.0)
    loads = _pass_loads(sc.model, sc.p, b, b, np.asarray(4096.0), "bf16", "bf16")
    costs = cost_pass(sc.platform, pk, loads, main_tier_plan(sc.platform, pk, fp))
    assert sum(float(c.time_s) for c in costs) == pytest.approx(step, rel=1e-9)


def test_points_without_lengths_stay_decode_only() -> None:
    pt = next(p for p in load_points() if p.id.endswith("vllm018-8192x1024-b64"))
    bare = pt.model_copy(update={"isl": None, "osl": None})
    assert predict_s(pt) > 1.3 * predict_s(bare)
    one = next(p for p in load_points() if p.batch == 1 and p.isl)
    assert predict_s(one) == predict_s(one.model_copy(update={"isl": None, "osl": None}))
