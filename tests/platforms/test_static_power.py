"""Static power from parts: PE count and HB capacity cost power; a legacy total still works."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.knobs import Knobs
from elmoe_dse.overrides import with_field
from elmoe_dse.platforms import PlatformKnobs, load_platform, static_power_w
from elmoe_dse.routing import expert_probabilities
from elmoe_dse.specs.model import load_model
from tests.conftest import evaluate_mt_bench as evaluate


def knobs(**kw: object) -> PlatformKnobs:
    return PlatformKnobs.of(Knobs(**kw))  # type: ignore[arg-type]


def test_parts_add_up_at_the_spec_defaults() -> None:
    e8 = load_platform("elmoe3d-8g")
    parts = e8.static_power
    assert parts is not None
    expected = parts.host_w + 64 * parts.lpddr_w_per_gb + 8 * parts.hb_w_per_gb
    expected += 32 * parts.logic_die_w_per_pe
    assert float(static_power_w(e8, knobs())) == pytest.approx(expected, rel=1e-12)
    xpu = load_platform("xpu")
    assert xpu.static_power is not None
    base = xpu.static_power.host_w + xpu.static_power.xpu_compute_w + 64 * 0.05
    assert float(static_power_w(xpu, knobs())) == pytest.approx(base, rel=1e-12)


def test_static_power_rises_with_pe_count_and_hb_capacity() -> None:
    e8 = load_platform("elmoe3d-8g")
    pes = static_power_w(e8, knobs(pe_count=np.array([8, 16, 32, 64])))
    assert np.all(np.diff(pes) > 0)
    hb = static_power_w(e8, knobs(hb_capacity_gb=np.array([2.0, 4.0, 8.0, 16.0])))
    assert np.all(np.diff(hb) > 0)
    hbx = static_power_w(load_platform("hb-xpu"), knobs(hb_capacity_gb=np.array([4.0, 8.0])))
    assert hbx[1] > hbx[0]
    assert float(static_power_w(load_platform("elmoe3d-4g"), knobs())) < float(
        static_power_w(e8, knobs())
    )


def test_every_system_pays_at_least_the_xpu_memories() -> None:
    xpu = float(static_power_w(load_platform("xpu"), knobs()))
    for name in ("xpu-pim", "xpu-logicpim", "xpu-nmp", "hb-xpu"):
        assert float(static_power_w(load_platform(name), knobs())) > xpu


def test_the_step_energy_carries_the_design_static_power() -> None:
    model = load_model("qwen3-30b-a3b")
    p = expert_probabilities(model.num_experts, model.experts_per_token, "zipf", 0.5)
    e8 = load_platform("elmoe3d-8g")
    k = Knobs(batch_size=4, pe_count=np.array([16, 32]), policy="ar-cache")
    step = evaluate(model, e8, k, p)
    want = static_power_w(e8, PlatformKnobs.of(k)) * step.time_per_step_s
    np.testing.assert_allclose(step.energy_by_component_j["static"], want, rtol=1e-12)


def test_a_fixed_static_power_w_replaces_the_parts() -> None:
    legacy = with_field(load_platform("elmoe3d-8g"), "static_power_w", 3.0)
    out = static_power_w(legacy, knobs(pe_count=np.array([16, 64]), hb_capacity_gb=4.0))
    np.testing.assert_allclose(out, 3.0)
