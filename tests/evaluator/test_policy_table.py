"""The policy table: one row per policy, read by the knobs and the evaluator."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

from elmoe_dse.errors import KnobError
from elmoe_dse.evaluator import evaluate
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.policies import (
    POLICIES,
    Policy,
    is_speculative,
    register_policy,
    unregister_policy,
)
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import load_platform
from tests.conftest import mt_bench_quality, zipf

#: A throwaway policy reusing the EAGLE draft kind: EAGLE drafting without the expert cache.
EAGLE_NO_CACHE = Policy(
    name="eagle-sd-uncached",
    draft="eagle",
    needs_fast_tier=False,
    caches_experts=False,
    fixed_pool=False,
    mode_switch=False,
    help="EAGLE draft head, every expert read from the main tier",
    label="EAGLE-SD without cache",
)


@pytest.fixture
def eagle_no_cache() -> Iterator[Policy]:
    register_policy(EAGLE_NO_CACHE)
    try:
        yield EAGLE_NO_CACHE
    finally:
        unregister_policy(EAGLE_NO_CACHE.name)


def test_knob_choices_are_the_table() -> None:
    assert KNOB_INFO["policy"].choices == ("auto", *POLICIES)
    assert all(name in KNOB_INFO["policy"].help for name in POLICIES)
    assert all(p.label for p in POLICIES.values())
    assert is_speculative("elastic-sd") and not is_speculative("ar-cache")
    assert not is_speculative("auto")


def test_duplicate_policy_raises() -> None:
    with pytest.raises(ValueError, match="already"):
        register_policy(replace(EAGLE_NO_CACHE, name="ar"))
    with pytest.raises(ValueError, match="shipped"):
        unregister_policy("ar")


def test_new_policy_row_is_evaluated_end_to_end(eagle_no_cache: Policy) -> None:
    model = load_model("qwen3-30b-a3b")
    p, quality = zipf(model), mt_bench_quality(model)
    knobs = Knobs(batch_size=np.array([1, 4, 16]), draft_length=3, policy=eagle_no_cache.name)
    assert is_speculative(eagle_no_cache.name)
    # Without a fast tier the cache is off either way: the new row is eagle-sd exactly.
    xpu = load_platform("xpu")
    new = evaluate(model, xpu, knobs, p, quality=quality)
    eagle = evaluate(model, xpu, replace(knobs, policy="eagle-sd"), p, quality=quality)
    np.testing.assert_array_equal(new.time_per_step_s, eagle.time_per_step_s)
    np.testing.assert_array_equal(new.tokens_per_step, eagle.tokens_per_step)
    assert new.speculative.policy == eagle_no_cache.name and new.speculative.draft == "eagle"
    # On HB-xPU it holds no expert cache, where eagle-sd keeps an LRU cache in HB.
    hb = load_platform("hb-xpu")
    new_hb = evaluate(model, hb, knobs, p, quality=quality)
    eagle_hb = evaluate(model, hb, replace(knobs, policy="eagle-sd"), p, quality=quality)
    np.testing.assert_array_equal(new_hb.cache.pool_experts_per_layer, 0.0)
    assert new_hb.cache.policy == "none" and eagle_hb.cache.policy == "lru"
    assert np.all(eagle_hb.cache.pool_experts_per_layer > 0)
    assert np.all(new_hb.time_per_step_s > eagle_hb.time_per_step_s)


def test_unregistered_policy_is_refused() -> None:
    with pytest.raises(KnobError, match="policy"):
        Knobs(policy=EAGLE_NO_CACHE.name).validated()
