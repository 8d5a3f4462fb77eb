"""The platform contract, checked for every registered family (not for every shipped file).

Each family gets a minimal spec from a name -> factory table (readable test ids); a family
registered without a factory fails :func:`test_every_family_has_a_minimal_spec`. A throwaway
family defined inside a test registers, loads its spec file and passes the same checks without
any other module being edited.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from elmoe_dse import platforms
from elmoe_dse.errors import SpecError
from elmoe_dse.evaluator import evaluate
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.platforms import (
    Footprint,
    MemoryPlan,
    PlatformKnobs,
    PlatformModel,
    load_platform,
)
from elmoe_dse.platforms._base import READ_CLASSES
from elmoe_dse.platforms._placement import main_tier_plan
from elmoe_dse.platforms._resources import cost_on, host_resources
from elmoe_dse.policies import POLICIES
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad, decode_pass, no_cache_traffic
from tests.conftest import mt_bench_quality, zipf

MODEL_ID = "qwen3-30b-a3b"


def tier(capacity_gb: float, bw_gb_per_s: float, pj_per_bit: float) -> dict[str, Any]:
    return {
        "capacity_gb": capacity_gb,
        "peak_bw_gb_per_s": bw_gb_per_s,
        "bw_efficiency_frac": 0.9,
        "read_energy_pj_per_bit": pj_per_bit,
        "write_energy_pj_per_bit": pj_per_bit,
        "source": "test",
    }


def table(w4: float, w8: float, w16: float) -> dict[str, float]:
    return {"w4a8": w4, "w8a8": w8, "w16a16": w16}


def minimal(family: str, **sections: Any) -> dict[str, Any]:
    """The smallest valid spec of ``family``: one 64 GB LPDDR tier and a host compute."""
    spec: dict[str, Any] = {
        "schema_version": 1,
        "name": f"minimal-{family}",
        "family": family,
        "description": "test",
        "source": "test",
        "static_power_w": 2.0,
        "op_overhead_s": 0.0,
        "tiers": {"lpddr": tier(64.0, 100.0, 4.0)},
        "compute": {
            "peak_tops": table(400.0, 200.0, 100.0),
            "energy_pj_per_op": table(0.1, 0.1, 0.2),
            "source": "test",
        },
    }
    spec.update(sections)
    return spec


def with_hb(family: str, **sections: Any) -> dict[str, Any]:
    spec = minimal(family, **sections)
    spec["tiers"] = {"hb": tier(4.0, 1024.0, 0.5), "lpddr": tier(64.0, 100.0, 4.0)}
    return spec


#: A minimal spec per registered family.
def shipped_kernels() -> dict[str, Any]:
    """The [kernels] section of a shipped GPU preset, as a mapping."""
    from elmoe_dse.specs.platform import load_platform as load_spec

    kernels = load_spec("h200").kernels
    assert kernels is not None
    return kernels.model_dump()


MINIMAL_SPECS: dict[str, Callable[[], dict[str, Any]]] = {
    "xpu": lambda: minimal("xpu"),
    "near-memory": lambda: minimal(
        "near-memory",
        near_memory={
            "kind": "nmp",
            "tier": "lpddr",
            "internal_bw_multiplier": 4.0,
            "bw_efficiency_frac": 0.9,
            "read_energy_pj_per_bit": 1.0,
            "peak_tops": table(8.0, 8.0, 4.0),
            "energy_pj_per_op": table(0.2, 0.2, 0.4),
            "source": "test",
        },
    ),
    "hb-xpu": lambda: with_hb("hb-xpu"),
    "gpu": lambda: minimal("gpu", kernels=shipped_kernels()),
    "elmoe3d": lambda: with_hb(
        "elmoe3d",
        logic_die={
            "pe_count": 16,
            "hb_bw_per_pe_gb_per_s": 64.0,
            "hb_capacity_per_pe_gb": 0.25,
            "psum_bytes_per_element": 2.0,
            "source": "test",
        },
        links={"stream": {"bw_gb_per_s": 200.0, "energy_pj_per_bit": 0.5, "source": "test"}},
    ),
}


def write_spec(folder: Path, data: dict[str, Any]) -> Path:
    path = folder / f"{data['name']}.json"
    path.write_text(json.dumps(data))
    return path


def check_contract(model: PlatformModel, spec: PlatformSpec) -> None:
    """What every family model promises, on one spec of its family."""
    # Capabilities: the defaults are valid choices and agree with the fast tier.
    policy = POLICIES[model.default_policy]
    assert not policy.needs_fast_tier or model.fast_tier is not None
    assert model.default_cache in KNOB_INFO["cache_policy"].choices
    assert (model.default_cache == "none") == (model.fast_tier is None)
    assert model.fast_tier is None or model.fast_tier in spec.tiers
    # The memory plan: every class read from the spec's tiers, shares summing to 1.
    llm = load_model(MODEL_ID)
    batch = np.array([1.0, 8.0, 64.0])
    demand = Footprint(
        nonexpert_bytes=np.asarray(1e9),
        expert_bytes=np.asarray(30e9),
        kv_bytes=batch * 1e8,
        reserved_bytes=np.zeros(()),
        slot_bytes_per_expert=np.asarray(5e6),
        num_moe_layers=llm.num_moe_layers,
        num_experts=llm.num_experts,
    )
    knobs = PlatformKnobs.of(Knobs().validated())
    plan = model.memory_plan(spec, knobs, demand)
    assert isinstance(plan, MemoryPlan) and plan.fast_tier == model.fast_tier
    for rule in (plan.read_split, plan.write_split):
        for cls, shares in rule.items():
            assert set(shares) <= set(spec.tiers), cls
            np.testing.assert_allclose(sum(np.asarray(s) for s in shares.values()), 1.0)
    assert set(READ_CLASSES) <= set(plan.read_split)
    assert {"kv", "draft", "expert_fill"} <= set(plan.write_split)
    slots = np.broadcast_to(plan.expert_slots, batch.shape)
    assert np.all((slots >= 0) & (slots <= llm.num_experts) & (slots == np.floor(slots)))
    if model.fast_tier is None:
        assert np.all(slots == 0)
    # The pass cost: one finite, positive-time cost per operator load.
    traffic = no_cache_traffic(llm, np.asarray(8.0), "int8")
    loads = decode_pass(
        llm,
        sequences=batch,
        tokens_per_sequence=np.ones(()),
        context_len=1024,
        weight_format="int8",
        kv_format="fp16",
        experts=traffic,
    )
    costs = model.cost_pass(spec, knobs, loads, plan)
    assert [c.name for c in costs] == [load.name for load in loads]
    for cost in costs:
        assert isinstance(cost, OpCost)
        assert np.all(np.isfinite(cost.time_s)) and np.all(cost.time_s > 0)
        assert all(np.all(np.asarray(e) >= 0) for e in cost.energy_j.values())
    # End to end at the family's default policy: finite, and a vector equals its scalars.
    p = zipf(llm)
    step = evaluate(llm, spec, Knobs(batch_size=batch), p, quality=mt_bench_quality(llm))
    assert np.all(np.isfinite(step.time_per_step_s)) and np.all(step.time_per_step_s > 0)
    assert step.speculative.policy == model.default_policy
    for i, b in enumerate(batch):
        one = evaluate(llm, spec, Knobs(batch_size=b), p, quality=mt_bench_quality(llm))
        assert float(one.time_per_step_s) == step.time_per_step_s[i]


def test_every_family_has_a_minimal_spec() -> None:
    assert sorted(MINIMAL_SPECS) == platforms.families()


@pytest.mark.parametrize("family", platforms.families())
def test_family_contract(family: str, tmp_path: Path) -> None:
    spec = load_platform(write_spec(tmp_path, MINIMAL_SPECS[family]()))
    check_contract(platforms.get(family), spec)


@pytest.mark.parametrize("family", platforms.families())
def test_missing_section_names_file_field_and_fix(family: str, tmp_path: Path) -> None:
    model = platforms.get(family)
    needs = [f"tiers.{t}" for t in model.required_tiers] + list(model.required_sections)
    for field in needs:
        data = MINIMAL_SPECS[family]()
        node = data
        *parents, leaf = field.split(".")
        for key in parents:
            node = node[key]
        del node[leaf]
        path = write_spec(tmp_path, data)
        with pytest.raises(SpecError) as err:
            load_platform(path)
        msg = str(err.value)
        assert str(path) in msg and field in msg and "add it" in msg and "\n" not in msg


def test_unknown_family_names_file_field_and_fix(tmp_path: Path) -> None:
    path = write_spec(tmp_path, minimal("quantum"))
    with pytest.raises(SpecError) as err:
        load_platform(path)
    msg = str(err.value)
    assert str(path) in msg and "'family'" in msg and "use one of" in msg
    assert all(f in msg for f in platforms.families())


def test_duplicate_family_raises() -> None:
    with pytest.raises(ValueError, match="already registered"):
        platforms.register(platforms.get("xpu"))


# A throwaway family: the xPU with its compute scaled by a family parameter.


def scaled_cost_pass(
    spec: PlatformSpec, knobs: PlatformKnobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    res = host_resources(spec, scale=spec.family_params["compute_scale"])
    return tuple(cost_on(load, plan, res) for load in loads)


SCALED_XPU = PlatformModel(
    family="scaled-xpu",
    fast_tier=None,
    bit_nested=False,
    default_policy="ar",
    default_cache="none",
    memory_plan=main_tier_plan,
    cost_pass=scaled_cost_pass,
    params=("compute_scale",),
)


@pytest.fixture
def scaled_xpu() -> Iterator[PlatformModel]:
    platforms.register(SCALED_XPU)
    try:
        yield SCALED_XPU
    finally:
        platforms.unregister(SCALED_XPU.family)


def test_new_family_is_one_model_and_a_spec_file(scaled_xpu: PlatformModel, tmp_path: Path) -> None:
    data = minimal(scaled_xpu.family, family_params={"compute_scale": 1.0})
    spec = load_platform(write_spec(tmp_path, data))
    check_contract(scaled_xpu, spec)
    # At scale 1 it is the xPU exactly.
    xpu = load_platform(write_spec(tmp_path, minimal("xpu")))
    llm = load_model(MODEL_ID)
    knobs, p, q = Knobs(batch_size=np.array([1, 16, 256])), zipf(llm), mt_bench_quality(llm)
    np.testing.assert_array_equal(
        evaluate(llm, spec, knobs, p, quality=q).time_per_step_s,
        evaluate(llm, xpu, knobs, p, quality=q).time_per_step_s,
    )
    # Its parameters are checked like any section.
    for params, needle in (
        ({}, "needs family_params.compute_scale"),
        ({"compute_scale": 1.0, "x": 1.0}, "remove it"),
    ):
        bad = minimal(scaled_xpu.family, family_params=params)
        bad["name"] = "bad-scaled"
        with pytest.raises(SpecError, match=needle):
            load_platform(write_spec(tmp_path, bad))


def test_throwaway_family_is_gone_after_the_test() -> None:
    assert SCALED_XPU.family not in platforms.families()
