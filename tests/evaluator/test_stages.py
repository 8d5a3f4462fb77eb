"""One closed-form claim per evaluation stage (a value a wrong model would get wrong)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from elmoe_dse import locality, platforms
from elmoe_dse.evaluator.assemble import step_cost
from elmoe_dse.evaluator.records import Design, Machine, Residency
from elmoe_dse.evaluator.stages import (
    acceptance_of,
    demand_of,
    design_of,
    draft_pass,
    pool_in_force,
    resolve_policy,
    separate_draft,
    verify_pass,
)
from elmoe_dse.evaluator.stages import residency_of as residency_stage
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import MemoryPlan, PlatformKnobs
from elmoe_dse.policies import POLICIES
from elmoe_dse.specs.model import ModelSpec, load_model
from elmoe_dse.specs.platform import PlatformSpec, load_platform
from elmoe_dse.workload import weight_bytes_per_param
from tests.conftest import mt_bench_quality, uniform

QWEN = "qwen3-30b-a3b"


def knobs(**kw: object) -> Knobs:
    return Knobs(**kw).validated()  # type: ignore[arg-type]


def machine_for(model: ModelSpec, spec: PlatformSpec, design: Design, k: Knobs) -> Machine:
    family = platforms.model_for(spec)
    _, reserved = separate_draft(model, design, k)
    plan = family.memory_plan(spec, PlatformKnobs.of(k), demand_of(model, design, k, reserved))
    return Machine(spec, family, PlatformKnobs.of(k), plan)


def design(policy: str, platform: str, **kw: object) -> Design:
    k = knobs(policy=policy, **kw)
    family = platforms.get(load_platform(platform).family)
    return design_of(resolve_policy(family, k), family, k, np.asarray(k.draft_length))


def test_design_of_bit_nests_for_pool_drafts_only() -> None:
    # HB-xPU's own cache is full precision (LRU); a self-draft makes its pool bit-nested (hot).
    plain = design("ar-cache", "hb-xpu", draft_length=4)
    assert (plain.cache_policy, plain.bit_nested, float(plain.draft_length_tokens)) == (
        "lru",
        False,
        0.0,
    )
    sd = design("elastic-sd", "hb-xpu", draft_length=4)
    assert (sd.cache_policy, sd.bit_nested, float(sd.draft_length_tokens)) == ("hot", True, 4.0)
    # plain AR on ELMoE-3D uses no pool at all; auto there is the mode switch
    ar = design("ar", "elmoe3d-8g")
    assert (ar.cache_policy, ar.bit_nested) == ("none", False)
    assert design("auto", "elmoe3d-8g").policy is POLICIES["elmoe3d"]


def plan_with_slots(slots: float) -> MemoryPlan:
    return MemoryPlan({}, {}, np.asarray(slots), "hb", np.asarray(True), "")


def test_pool_in_force_is_the_knob_or_what_fits() -> None:
    d = design("ar-cache", "hb-xpu")
    plan = plan_with_slots(10.0)
    want = np.array([np.nan, 5.0, 12.0, 200.0])
    pool, v = pool_in_force(plan, d, want, num_experts=128)
    np.testing.assert_array_equal(pool, [10.0, 5.0, 12.0, 128.0])
    np.testing.assert_array_equal(v.pool_exceeds_fast_tier, [False, False, True, False])
    np.testing.assert_array_equal(v.pool_exceeds_experts, [False, False, False, True])
    none, _ = pool_in_force(plan, design("ar", "hb-xpu"), want, num_experts=128)
    np.testing.assert_array_equal(none, 0.0)


def test_residency_of_uniform_hot_pool() -> None:
    """Uniform routing (p = k / E), rho = 0: a window pool of C serves h = C / E of the
    selections, and the verify pass of B (1 + gamma) tokens touches U = E [1 - (1 - k/E)^N].
    At rho > 0 the union is the correlated one at rho_B = rho / (1 + (B - 1) / B_loc)."""
    model = load_model(QWEN)
    q = mt_bench_quality(model)
    d = design("elastic-sd", "elmoe3d-8g", batch_size=4, draft_length=3)
    res = residency_stage(d, uniform(model), np.asarray(32.0), np.asarray(0.0), q)
    assert float(res.hit_rate_frac) == pytest.approx(32 / 128, rel=1e-9)
    assert float(res.unique_experts_per_layer) == pytest.approx(
        128 * (1 - (1 - 8 / 128) ** 16), rel=1e-12
    )
    res = residency_stage(d, uniform(model), np.asarray(32.0), np.asarray(0.5), q)
    rho_b = 0.5 / (1 + 3 / q.profile.batch_locality_scale)
    assert float(res.overlap_frac) == pytest.approx(rho_b, rel=1e-12)
    u = locality.correlated_unique(uniform(model), rho_b, 4, 4)
    assert float(res.unique_experts_per_layer) == pytest.approx(float(u), rel=1e-12)
    assert float(res.hit_rate_frac) > 32 / 128  # the recent window predicts the next tokens


def test_verify_pass_reads_every_unique_expert_from_the_main_tier() -> None:
    model, spec = load_model(QWEN), load_platform("xpu")
    k = knobs(policy="ar", batch_size=2)
    d = design("ar", "xpu", batch_size=2)
    res = residency_stage(d, uniform(model), np.zeros(()), np.zeros(()), mt_bench_quality(model))
    ps = verify_pass(model, machine_for(model, spec, d, k), d, res, k, np.zeros(()))
    experts = next(op for op in ps.operators if op.name == "routed_experts")
    u = 128 * (1 - (1 - 8 / 128) ** 2)  # U(2) for uniform top-8 of 128
    expected = 48 * u * model.expert_params() * weight_bytes_per_param("int8")
    assert float(experts.bytes_read["lpddr"]) == pytest.approx(expected, rel=1e-12)
    assert ps.kind == "decode" and float(ps.tokens) == 2.0


def test_acceptance_of_fixed_alpha_gives_the_geometric_sum() -> None:
    model = load_model(QWEN)
    d = design("eagle-sd", "xpu", draft_length=3, acceptance=0.5)
    res = Residency("none", False, *(np.zeros(()),) * 6)
    k = knobs(policy="eagle-sd", draft_length=3, acceptance=0.5)
    sp = acceptance_of(model, d, res, k, mt_bench_quality(model))
    assert float(sp.tau_tokens) == 1 + 0.5 + 0.25 + 0.125
    # modelled: the profile's EAGLE rate; at gamma = 0 there is no acceptance to report
    q = mt_bench_quality(model)
    sp = acceptance_of(model, d, res, replace(k, acceptance=np.asarray(np.nan)), q)
    assert float(sp.acceptance_frac) == q.profile.eagle_acceptance_frac
    plain = design("eagle-sd", "xpu", draft_length=0)
    sp0 = acceptance_of(model, plain, res, replace(k, draft_length=np.asarray(0.0)), q)
    assert np.isnan(sp0.acceptance_frac) and float(sp0.tau_tokens) == 1.0


def test_draft_pass_random_pool_closed_form() -> None:
    """A random pool of C alike members: each of B draft tokens picks k of them, so the pass
    touches U = C [1 - (1 - k/C)^B], repeated gamma times; plain AR has no draft pass."""
    model, spec = load_model(QWEN), load_platform("elmoe3d-8g")
    kw = {"batch_size": 4, "draft_length": 5, "cache_policy": "random"}
    k = knobs(policy="elastic-sd", **kw)
    d = design("elastic-sd", "elmoe3d-8g", **kw)
    m = machine_for(model, spec, d, k)
    res = residency_stage(
        d, uniform(model), np.asarray(16.0), np.zeros(()), mt_bench_quality(model)
    )
    ps = draft_pass(model, m, d, res, uniform(model), k, [])
    assert ps is not None and ps.kind == "draft" and float(ps.repeats) == 5.0
    u = 16 * (1 - (1 - 8 / 16) ** 4)
    assert float(ps.unique_experts_per_layer) == pytest.approx(u, rel=1e-12)
    assert (
        draft_pass(model, m, design("ar-cache", "elmoe3d-8g"), res, uniform(model), k, []) is None
    )


def test_step_cost_sums_repeated_passes_and_adds_static_energy() -> None:
    model, spec = load_model(QWEN), load_platform("elmoe3d-8g")
    kw = {"batch_size": 4, "draft_length": 3}
    k = knobs(policy="elastic-sd", **kw)
    d = design("elastic-sd", "elmoe3d-8g", **kw)
    m = machine_for(model, spec, d, k)
    pool, v = pool_in_force(m.plan, d, k.pool_experts, model.num_experts)
    res = residency_stage(d, uniform(model), pool, k.overlap_frac, mt_bench_quality(model))
    verify = verify_pass(model, m, d, res, k, np.zeros(()))
    draft = draft_pass(model, m, d, res, uniform(model), k, [])
    assert draft is not None
    sp = acceptance_of(model, d, res, k, mt_bench_quality(model))
    step = step_cost(
        (draft, verify), d, res, sp, v, plan=m.plan, static_power_w=5.0, num_experts=128
    )
    time_s = 3 * float(np.sum([op.time_s for op in draft.operators])) + float(
        np.sum([op.time_s for op in verify.operators])
    )
    assert float(step.time_per_step_s) == pytest.approx(time_s, rel=1e-12)
    assert float(step.energy_by_component_j["static"]) == pytest.approx(5.0 * time_s, rel=1e-12)
    assert float(step.tokens_per_step) == pytest.approx(4 * float(sp.tau_tokens), rel=1e-15)
