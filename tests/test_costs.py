"""Hardware costs (elmoe_dse.costs): units, the knobs they follow, and the platform specs."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.costs import cost_columns, cost_usd, logic_area_mm2, memory_gb
from elmoe_dse.errors import SpecError
from elmoe_dse.platforms import PlatformKnobs, load_platform
from elmoe_dse.specs._base import validate
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.units import GB


def _knobs(hb_gb: float = np.nan, pes: float = np.nan) -> PlatformKnobs:
    return PlatformKnobs(np.asarray([hb_gb * GB]), np.asarray([float(pes)]))


def test_doubling_pes_adds_exactly_their_area() -> None:
    spec = load_platform("elmoe3d-8g")
    assert spec.cost is not None
    a32 = logic_area_mm2(spec, _knobs(pes=32))[0]
    a64 = logic_area_mm2(spec, _knobs(pes=64))[0]
    assert a64 - a32 == pytest.approx(32 * spec.cost.logic_mm2_per_pe)
    assert a32 == pytest.approx(spec.cost.logic_fixed_mm2 + 32 * spec.cost.logic_mm2_per_pe)
    # the logic die's own PE count where the knob is auto
    assert logic_area_mm2(spec, _knobs())[0] == pytest.approx(a32)


def test_cost_adds_area_and_memory_dollars() -> None:
    spec = load_platform("elmoe3d-8g")
    parts = spec.cost
    assert parts is not None
    base = cost_usd(spec, _knobs(hb_gb=8, pes=32))[0]
    expected = (
        logic_area_mm2(spec, _knobs(pes=32))[0] * parts.logic_usd_per_mm2
        + 8 * parts.hb_usd_per_gb
        + 64 * parts.lpddr_usd_per_gb
    )
    assert base == pytest.approx(expected)
    # 8 more GB of HB cost exactly 8 x its USD per GB; PEs cost area x USD per mm2
    assert cost_usd(spec, _knobs(hb_gb=16, pes=32))[0] - base == pytest.approx(
        8 * parts.hb_usd_per_gb
    )
    assert cost_usd(spec, _knobs(hb_gb=8, pes=64))[0] - base == pytest.approx(
        32 * parts.logic_mm2_per_pe * parts.logic_usd_per_mm2
    )
    assert memory_gb(spec, _knobs(hb_gb=4))["hb"][0] == pytest.approx(4.0)


def test_knobs_a_platform_lacks_do_not_act() -> None:
    xpu = load_platform("xpu")
    a = cost_columns(xpu, _knobs(hb_gb=2, pes=16))
    b = cost_columns(xpu, _knobs(hb_gb=16, pes=64))
    assert {k: float(v[0]) for k, v in a.items()} == {k: float(v[0]) for k, v in b.items()}


def test_arrays_broadcast() -> None:
    spec = load_platform("elmoe3d-4g")
    knobs = PlatformKnobs(np.asarray([2e9, 4e9, 8e9]), np.asarray([16.0, 32.0, 64.0]))
    area = logic_area_mm2(spec, knobs)
    assert area.shape == (3,) and np.all(np.diff(area) > 0)
    assert np.all(np.diff(cost_usd(spec, knobs)) > 0)


def test_without_cost_parts_the_metrics_are_nan() -> None:
    h100 = load_platform("h100")
    assert h100.cost is None
    cols = cost_columns(h100, _knobs())
    assert all(np.isnan(v).all() for v in cols.values())


@pytest.mark.parametrize(
    "name", ["elmoe3d-4g", "elmoe3d-8g", "xpu", "hb-xpu", "xpu-pim", "xpu-logicpim", "xpu-nmp"]
)
def test_paper_platforms_have_sourced_ranged_costs(name: str) -> None:
    spec = load_platform(name)
    assert spec.cost is not None and spec.cost.source
    for field, value in spec.cost.model_dump().items():
        if field == "source" or value == 0.0:
            continue
        rng = spec.ranges[f"cost.{field}"]
        assert rng.min <= value <= rng.max and rng.source


def test_cost_part_without_its_hardware_is_refused() -> None:
    data = load_platform("xpu").model_dump()
    data["cost"]["hb_usd_per_gb"] = 10.0
    with pytest.raises(SpecError, match=r"cost\.hb_usd_per_gb > 0 needs a \[tiers\.hb\]"):
        validate(PlatformSpec, data, path="x.toml")


def test_cost_priors_are_not_ensemble_parameters() -> None:
    from elmoe_dse.calibration import prior_set

    priors = prior_set(("elmoe3d-8g",), (), ())
    assert not [k for k in priors if ".cost." in k]
    assert any(k.startswith("platform.elmoe3d-8g.static_power.") for k in priors)


def test_cost_columns_are_sweep_objectives_and_constraints() -> None:
    from elmoe_dse.explore.sweep import run_sweep
    from elmoe_dse.specs.sweep import sweep_from_dict

    spec = sweep_from_dict(
        {
            "schema_version": 1,
            "models": ["deepseek-v2-lite"],
            "platforms": ["elmoe3d-8g", "h100"],
            "knobs": {"batch_size": 1, "hb_capacity_gb": [2, 8], "pe_count": [16, 32, 64]},
            "objectives": [
                {"metric": "metric.throughput_tok_per_s", "direction": "maximize"},
                {"metric": "metric.cost_usd", "direction": "minimize"},
            ],
            "constraints": ["metric.logic_area_mm2 <= 200"],
        }
    )
    res = run_sweep(spec)
    frame = res.frame
    assert set(frame["meta.platform"]) == {"elmoe3d-8g"}  # h100: no cost parts, NaN objective
    assert res.rejected["objective metric.cost_usd is not finite"] == 6
    assert (frame["metric.logic_area_mm2"] <= 200).all()
    assert res.rejected["violates metric.logic_area_mm2 <= 200"] == 2  # the 64-PE designs
    spec8 = load_platform("elmoe3d-8g")
    got = frame.set_index(["knob.hb_capacity_gb", "knob.pe_count"])["metric.cost_usd"]
    assert got.loc[(8.0, 32.0)] == pytest.approx(cost_usd(spec8, _knobs(hb_gb=8, pes=32))[0])
