"""The HB memory plan in closed form: KV first, then non-expert weights, reserved bytes, slots.

slots = clip(floor((HB - KV - non-expert - reserved) / (L_moe x slot bytes)), 0, E).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from elmoe_dse.platforms import Footprint, PlatformKnobs
from elmoe_dse.platforms._placement import hb_plan, main_tier_plan, split
from elmoe_dse.specs.platform import PlatformSpec

GB = 1e9
L_MOE, E = 48, 128
NAN = np.asarray(np.nan)


def tier(capacity_gb: float) -> dict[str, Any]:
    return {
        "capacity_gb": capacity_gb,
        "peak_bw_gb_per_s": 100.0,
        "bw_efficiency_frac": 1.0,
        "read_energy_pj_per_bit": 1.0,
        "write_energy_pj_per_bit": 1.0,
        "source": "test",
    }


SPEC = PlatformSpec.model_validate(
    {
        "schema_version": 1,
        "name": "hb-test",
        "family": "hb-xpu",
        "description": "test",
        "source": "test",
        "static_power_w": 1.0,
        "op_overhead_s": 0.0,
        "tiers": {"hb": tier(4.0), "lpddr": tier(64.0)},
        "compute": {
            "peak_tops": {"w4a8": 1.0, "w8a8": 1.0, "w16a16": 1.0},
            "energy_pj_per_op": {"w4a8": 1.0, "w8a8": 1.0, "w16a16": 1.0},
            "source": "test",
        },
    }
)
AUTO = PlatformKnobs(hb_capacity_bytes=NAN, pe_count=NAN)


def demand(kv: float, nonexpert: float, reserved: float = 0.0, slot: float = 5e6) -> Footprint:
    return Footprint(
        nonexpert_bytes=np.asarray(nonexpert),
        expert_bytes=np.asarray(30 * GB),
        kv_bytes=np.asarray(kv),
        reserved_bytes=np.asarray(reserved),
        slot_bytes_per_expert=np.asarray(slot),
        num_moe_layers=L_MOE,
        num_experts=E,
    )


def test_kv_first_then_weights_then_slots() -> None:
    # KV larger than HB: HB serves 4/5 of it, no weight and no slot fits.
    plan = hb_plan(SPEC, AUTO, demand(kv=5 * GB, nonexpert=1 * GB))
    assert float(plan.read_split["kv"]["hb"]) == pytest.approx(0.8)
    assert float(plan.read_split["weights"]["hb"]) == 0.0
    assert float(plan.expert_slots) == 0.0
    # KV fits, 3 GB left for 5 GB of weights: 60 % of them from HB, still no slot.
    plan = hb_plan(SPEC, AUTO, demand(kv=1 * GB, nonexpert=5 * GB))
    assert float(plan.read_split["kv"]["hb"]) == 1.0
    assert float(plan.read_split["weights"]["hb"]) == pytest.approx(0.6)
    assert float(plan.read_split["weights"]["lpddr"]) == pytest.approx(0.4)
    assert float(plan.expert_slots) == 0.0


def test_slot_floor_formula() -> None:
    # (4 - 1 - 1 - 0.5) GB / (48 x 5 MB) = 1.5e9 / 2.4e8 = 6.25 -> 6 slots per layer
    plan = hb_plan(SPEC, AUTO, demand(kv=1 * GB, nonexpert=1 * GB, reserved=0.5 * GB))
    assert float(plan.expert_slots) == 6.0
    assert float(plan.read_split["weights"]["hb"]) == 1.0 and bool(plan.fits)
    # an exact quotient keeps its slot: 2.4e8 x 10 = 2.4 GB left -> 10
    assert float(hb_plan(SPEC, AUTO, demand(kv=0.6 * GB, nonexpert=1 * GB)).expert_slots) == 10.0
    # the knob's capacity replaces the spec's: (8 - 2.5) GB / 2.4e8 = 22.9 -> 22
    knobs = PlatformKnobs(hb_capacity_bytes=np.asarray(8 * GB), pe_count=NAN)
    plan = hb_plan(SPEC, knobs, demand(kv=1 * GB, nonexpert=1 * GB, reserved=0.5 * GB))
    assert float(plan.expert_slots) == 22.0
    # never more than E
    knobs = PlatformKnobs(hb_capacity_bytes=np.asarray(1000 * GB), pe_count=NAN)
    assert float(hb_plan(SPEC, knobs, demand(kv=1 * GB, nonexpert=1 * GB)).expert_slots) == E


def test_plan_vectorizes_over_the_grid() -> None:
    kv = np.array([0.5, 1.0, 2.0, 5.0]) * GB
    plan = hb_plan(SPEC, AUTO, demand(kv=kv, nonexpert=1 * GB))  # type: ignore[arg-type]
    # (4 - kv - 1) GB / 2.4e8: 10.4, 8.3, 4.2, 0 -> 10, 8, 4, 0
    np.testing.assert_array_equal(plan.expert_slots, [10.0, 8.0, 4.0, 0.0])


def test_fits_needs_lpddr_for_all_weights_and_hb_for_the_draft() -> None:
    assert bool(hb_plan(SPEC, AUTO, demand(kv=1 * GB, nonexpert=1 * GB)).fits)
    # the draft reservation must fit in HB after KV and non-expert weights
    assert not bool(
        hb_plan(SPEC, AUTO, demand(kv=1 * GB, nonexpert=1 * GB, reserved=2.5 * GB)).fits
    )
    # LPDDR holds every weight and the KV that spills: 35 + 30 + (40 - 4) > 64 GB
    assert not bool(hb_plan(SPEC, AUTO, demand(kv=40 * GB, nonexpert=35 * GB)).fits)


def test_pool_reads_fast_slices_from_hb_and_the_rest_from_lpddr() -> None:
    plan = hb_plan(SPEC, AUTO, demand(kv=1 * GB, nonexpert=1 * GB))
    got = split({"expert_fast": np.asarray(3.0), "expert_slow": np.asarray(5.0)}, plan.read_split)
    assert {k: float(v) for k, v in got.items()} == {"hb": 3.0, "lpddr": 5.0}
    assert plan.fast_tier == "hb"


def test_main_tier_plan_holds_everything_in_one_tier() -> None:
    plan = main_tier_plan(SPEC, AUTO, demand(kv=1 * GB, nonexpert=1 * GB))
    assert plan.fast_tier is None and float(plan.expert_slots) == 0.0
    assert all(set(shares) == {"lpddr"} for shares in plan.read_split.values())
    # 1 + 30 + 40 GB > 64 GB of LPDDR
    assert not bool(main_tier_plan(SPEC, AUTO, demand(kv=40 * GB, nonexpert=1 * GB)).fits)
