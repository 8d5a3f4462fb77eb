"""Dimensional checks of the whole evaluator: exact scaling laws over random designs.

Every rate of a platform (tier and link bandwidths, the HB bandwidth per PE, compute peaks) times
k, and its fixed per-operator latency over k, must divide the step time by exactly k; every
energy per bit or op and every static-power part times k must multiply the energy per token by
exactly k, and leave the time alone. This catches what a unit test of one constant cannot: a
time or energy the code adds that does not come from the spec (a hard-coded latency, bandwidth
or pJ figure, or one read in another dimension, such as seconds added to a count), and a rate
that enters other than inversely. It cannot see a constant factor such as GB read as GiB (that
scales like the rest; tests/specs/test_unit_plausibility.py covers those). The GPU presets are
left out: their kernel costs include measured fixed latencies (docs/model.md §11), so their time
is not a pure rate law.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from elmoe_dse.specs.platform import PRECISIONS, PlatformSpec, list_platforms, load_platform
from tests.conftest import spec_with
from tests.evaluator.test_invariants import designs, evaluate, run

ANALYTICAL = tuple(p for p in list_platforms() if load_platform(p).family != "gpu")


def faster(spec: PlatformSpec, k: float) -> PlatformSpec:
    """Every rate times k, the fixed latency per operator over k."""
    v: dict[str, float] = {"op_overhead_s": spec.op_overhead_s / k}
    for t, tier in spec.tiers.items():
        v[f"tiers.{t}.peak_bw_gb_per_s"] = tier.peak_bw_gb_per_s * k
    for n, link in spec.links.items():
        v[f"links.{n}.bw_gb_per_s"] = link.bw_gb_per_s * k
    for p in PRECISIONS:
        v[f"compute.peak_tops.{p}"] = spec.compute.peak_tops.get(p) * k
    if spec.logic_die is not None:
        v["logic_die.hb_bw_per_pe_gb_per_s"] = spec.logic_die.hb_bw_per_pe_gb_per_s * k
    nm = spec.near_memory
    if nm is not None and nm.peak_tops is not None:  # else its peak follows its tier's bandwidth
        for p in PRECISIONS:
            v[f"near_memory.peak_tops.{p}"] = nm.peak_tops.get(p) * k
    return spec_with(spec, v)


def dearer(spec: PlatformSpec, k: float) -> PlatformSpec:
    """Every energy per bit or op and every static-power part times k."""
    v: dict[str, float] = {}
    for t, tier in spec.tiers.items():
        v[f"tiers.{t}.read_energy_pj_per_bit"] = tier.read_energy_pj_per_bit * k
        v[f"tiers.{t}.write_energy_pj_per_bit"] = tier.write_energy_pj_per_bit * k
    for n, link in spec.links.items():
        v[f"links.{n}.energy_pj_per_bit"] = link.energy_pj_per_bit * k
    for p in PRECISIONS:
        v[f"compute.energy_pj_per_op.{p}"] = spec.compute.energy_pj_per_op.get(p) * k
    nm = spec.near_memory
    if nm is not None:
        v["near_memory.read_energy_pj_per_bit"] = nm.read_energy_pj_per_bit * k
        for p in PRECISIONS:
            v[f"near_memory.energy_pj_per_op.{p}"] = nm.energy_pj_per_op.get(p) * k
    if spec.static_power is not None:
        for name, value in spec.static_power.model_dump().items():
            if isinstance(value, float):
                v[f"static_power.{name}"] = value * k
    else:
        assert spec.static_power_w is not None
        v["static_power_w"] = spec.static_power_w * k
    return spec_with(spec, v)


@settings(max_examples=40, deadline=None)
@given(designs, st.sampled_from(ANALYTICAL), st.sampled_from([0.25, 2.0, 10.0]))
def test_time_is_inverse_in_every_rate_and_energy_linear_in_every_energy(
    d: dict,  # type: ignore[type-arg]
    platform: str,
    k: float,
) -> None:
    model, spec, knobs, p, step = run({**d, "platform": platform})
    quick = evaluate(model, faster(spec, k), knobs, p)
    assert abs(float(quick.time_per_step_s) * k / float(step.time_per_step_s) - 1) < 1e-9
    assert float(quick.tokens_per_step) == float(step.tokens_per_step)
    dear = evaluate(model, dearer(spec, k), knobs, p)
    assert abs(float(dear.energy_per_token_j) / (k * float(step.energy_per_token_j)) - 1) < 1e-9
    assert float(dear.time_per_step_s) == float(step.time_per_step_s)


def test_a_fixed_time_the_spec_does_not_scale_breaks_the_law() -> None:
    """The law has teeth: a per-operator latency left unscaled (as a hard-coded one would be)
    moves the scaled step off 1/k."""
    d = {
        "model_id": "qwen3-30b-a3b", "platform": "xpu", "policy": "ar", "batch": 4,
        "context": 1024, "gamma": 0, "bits": 4, "rounding": "round", "zipf": 0.0, "rho": 0.0,
    }  # fmt: skip
    model, spec, knobs, p, _ = run(d)
    latent = spec_with(spec, {"op_overhead_s": 2e-5})
    step = evaluate(model, latent, knobs, p)
    law = evaluate(model, faster(latent, 2.0), knobs, p)
    fixed = evaluate(model, spec_with(faster(latent, 2.0), {"op_overhead_s": 2e-5}), knobs, p)
    assert abs(float(law.time_per_step_s) * 2.0 / float(step.time_per_step_s) - 1) < 1e-9
    assert float(fixed.time_per_step_s) * 2.0 / float(step.time_per_step_s) > 1.02
