"""Stated structural assumptions: each alternative changes what it should and nothing else."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from elmoe_dse.assumptions import (
    ASSUMPTIONS,
    DEFAULTS,
    SYSTEMS,
    apply_platform_overrides,
    parse_assumption,
    resolve_assumptions,
)
from elmoe_dse.errors import KnobError
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import load_platform
from elmoe_dse.routing import expert_probabilities
from elmoe_dse.specs._base import get_number
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import PlatformSpec
from tests.conftest import evaluate_mt_bench as evaluate

PLATFORM = {
    "elmoe3d": "elmoe3d-8g",
    "elastic-sd": "elmoe3d-8g",
    "eagle-sd": "elmoe3d-8g",
    **{s: s for s in ("xpu", "xpu-pim", "xpu-logicpim", "xpu-nmp", "hb-xpu")},
}


def touched(key: str, value: str) -> set[str]:
    """Systems whose platform or knobs the alternative changes relative to the defaults."""
    base, alt = resolve_assumptions(), resolve_assumptions({key: value})
    return {
        s
        for s in SYSTEMS
        if base.platform_overrides(s) != alt.platform_overrides(s)
        or base.knob_overrides(s) != alt.knob_overrides(s)
    }


def spec_for(system: str, choices: dict[str, str]) -> PlatformSpec:
    res = resolve_assumptions(choices)
    return apply_platform_overrides(load_platform(PLATFORM[system]), res.platform_overrides(system))


def step(system: str, choices: dict[str, str], **knobs: Any) -> Any:
    model = load_model("qwen3-30b-a3b")
    p = expert_probabilities(model.num_experts, model.experts_per_token, "zipf", 0.5)
    res = resolve_assumptions(choices)
    merged = {**knobs, **res.knob_overrides(system)}
    return evaluate(model, spec_for(system, choices), Knobs(**merged), p)


def test_the_table_is_complete_and_defaults_are_alternatives() -> None:
    assert set(ASSUMPTIONS) == {"hb_role", "overlap", "pim_offload", "nmp_kind", "mode_threshold"}
    for key, record in ASSUMPTIONS.items():
        assert DEFAULTS[key] in record.values and len(record.values) >= 2
        assert record.meaning and all(a.meaning for a in record.alternatives)


def test_defaults_change_no_platform_and_set_the_paper_threshold() -> None:
    res = resolve_assumptions()
    for system in SYSTEMS:
        assert res.platform_overrides(system) == {}
        spec = load_platform(PLATFORM[system])
        assert apply_platform_overrides(spec, res.platform_overrides(system)) is spec
    assert res.knob_overrides("elmoe3d") == {"mode_threshold": 4.0}
    assert all(res.knob_overrides(s) == {} for s in SYSTEMS if s != "elmoe3d")


@pytest.mark.parametrize(
    ("key", "value", "systems"),
    [
        ("hb_role", "none", {"hb-xpu"}),
        ("overlap", "pass", set(SYSTEMS)),
        ("pim_offload", "gemv", {"xpu-pim", "xpu-logicpim", "xpu-nmp"}),
        ("pim_offload", "attention", {"xpu-pim", "xpu-logicpim", "xpu-nmp"}),
        ("nmp_kind", "per-bank", {"xpu-nmp"}),
        ("mode_threshold", "1", {"elmoe3d"}),
        ("mode_threshold", "auto", {"elmoe3d"}),
    ],
)
def test_each_alternative_touches_only_its_systems(key: str, value: str, systems: set[str]) -> None:
    assert touched(key, value) == systems
    for system in systems:  # every override applies to a shipped spec
        spec_for(system, {key: value})


def test_hb_role_none_keeps_weights_in_hb_but_caches_no_expert() -> None:
    lru = step("hb-xpu", {}, batch_size=4, policy="ar-cache")
    none = step("hb-xpu", {"hb_role": "none"}, batch_size=4, policy="ar-cache")
    assert float(lru.cache.hit_rate_frac) > 0.0 and float(none.cache.hit_rate_frac) == 0.0
    assert float(none.passes[-1].bytes_by_tier["hb"]) > 0.0  # non-expert weights and KV
    assert float(none.time_per_step_s) > float(lru.time_per_step_s)


def test_pass_overlap_is_never_slower_and_moves_the_same_bytes() -> None:
    for system in ("hb-xpu", "elmoe3d", "xpu-pim"):
        op = step(system, {}, batch_size=np.array([1, 4, 16]), policy="auto")
        ps = step(system, {"overlap": "pass"}, batch_size=np.array([1, 4, 16]), policy="auto")
        assert np.all(ps.time_per_step_s <= op.time_per_step_s * (1 + 1e-12))
        for tier, nbytes in op.bytes_by_tier.items():
            np.testing.assert_allclose(ps.bytes_by_tier[tier], nbytes, rtol=1e-12)
    # HB weights and LPDDR experts overlap across operators: strictly faster on HB-xPU
    op = step("hb-xpu", {}, batch_size=4)
    ps = step("hb-xpu", {"overlap": "pass"}, batch_size=4)
    assert float(ps.time_per_step_s) < 0.99 * float(op.time_per_step_s)


def test_offload_rules_place_the_operators() -> None:
    def units(choices: dict[str, str]) -> dict[str, str]:
        ops = step("xpu-pim", choices, batch_size=16).passes[-1].operators
        return {op.name: str(op.unit) for op in ops}

    gemv, att = units({"pim_offload": "gemv"}), units({"pim_offload": "attention"})
    assert gemv["routed_experts"] == "bank-pim" and gemv["attention"] == "bank-pim"
    assert gemv["qkv_proj"] == "xpu" and gemv["lm_head"] == "xpu"
    assert att["attention"] == "bank-pim" and att["routed_experts"] == "xpu"


def test_per_bank_nmp_has_its_own_prior_and_more_bandwidth() -> None:
    buffer, bank = spec_for("xpu-nmp", {}), spec_for("xpu-nmp", {"nmp_kind": "per-bank"})
    assert buffer.near_memory is not None and bank.near_memory is not None
    assert bank.near_memory.internal_bw_multiplier > 5 * buffer.near_memory.internal_bw_multiplier
    for path, rng in bank.ranges.items():  # the default is each prior's centre
        assert get_number(bank, path) == pytest.approx(rng.center), path
    t_buffer = step("xpu-nmp", {}, batch_size=1).time_per_step_s
    assert float(step("xpu-nmp", {"nmp_kind": "per-bank"}, batch_size=1).time_per_step_s) < float(
        t_buffer
    )


def test_mode_threshold_switches_at_b_star() -> None:
    b = np.array([1, 4, 16])
    paper = step("elmoe3d", {}, batch_size=b, policy="elmoe3d", draft_length=4)
    always = step(
        "elmoe3d", {"mode_threshold": "1"}, batch_size=b, policy="elmoe3d", draft_length=4
    )
    assert list(np.asarray(paper.tokens_per_sequence_per_step) > 1) == [False, True, True]
    assert np.all(np.asarray(always.tokens_per_sequence_per_step) > 1)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("overlp=pass", "did you mean 'overlap'"),
        ("overlap=pas", "did you mean 'pass'"),
        ("overlap", "KEY=VALUE"),
        ("mode_threshold=3", "use one of 1, 4, 8, 16, auto"),
    ],
)
def test_parse_errors_name_the_fix(text: str, needle: str) -> None:
    with pytest.raises(KnobError, match=needle):
        parse_assumption(text)
    assert parse_assumption("overlap = pass") == ("overlap", "pass")


def test_unknown_system_and_choice_raise() -> None:
    with pytest.raises(KnobError, match="unknown system"):
        resolve_assumptions().platform_overrides("tpu")
    with pytest.raises(KnobError, match="did you mean 'lru'"):
        resolve_assumptions({"hb_role": "lr"})
