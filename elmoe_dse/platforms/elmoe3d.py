"""``elmoe3d`` family: HB DRAM hybrid-bonded on a logic die of bit-sliced PEs, beside LPDDR.

Each PE owns one HB bank (paper, arXiv 2604.14626 §6), so HB bandwidth and PE compute both scale
with the ``pe_count`` knob: bw_HB = PEs x bw_per_PE, peak = PEs / PEs_spec x peak_spec. HB holds
KV, the non-expert weights and a bit-nested expert pool of MSB slices (hot set by default); the
LSB slices and every other expert stay in LPDDR and reach the PEs over the stream link. Partial
sums are exchanged over the aggregation link at projection boundaries; both links add a term to
each operator's max (the paper states they stay hidden under the LPDDR fetch, which the model
checks rather than assumes).
"""

from __future__ import annotations

import numpy as np

from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs, PlatformModel
from elmoe_dse.platforms._placement import hb_plan, split
from elmoe_dse.platforms._resources import cost_on, finish_pass, host_resources, pe_count
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad

__all__ = ["MODEL", "cost_pass", "pe_count"]


def cost_pass(
    spec: PlatformSpec, knobs: PlatformKnobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the PE array; HB, LPDDR (via the stream link) and PSUM sync in parallel."""
    die = spec.logic_die
    assert die is not None  # required by MODEL, checked when the spec is loaded
    pes = pe_count(die, knobs)
    hb_bw = die.hb_peak_bw_bytes_per_s(pes) * spec.tiers["hb"].bw_efficiency_frac
    res = host_resources(spec, unit="pe-array", scale=pes / die.pe_count, hb_bw_bytes_per_s=hb_bw)
    out = []
    for load in loads:
        lp_bytes = split(load.read_bytes, plan.read_split).get("lpddr", np.zeros(()))
        links = {
            "stream": np.asarray(lp_bytes),
            "aggregation": np.asarray(load.psum_elements) * die.psum_bytes_per_element,
        }
        out.append(cost_on(load, plan, res, {k: v for k, v in links.items() if k in spec.links}))
    return finish_pass(spec, tuple(out))


MODEL = PlatformModel(
    family="elmoe3d",
    fast_tier="hb",
    bit_nested=True,
    default_policy="elmoe3d",
    default_cache="hot",
    memory_plan=hb_plan,
    cost_pass=cost_pass,
    required_tiers=("hb", "lpddr"),
    required_sections=("logic_die",),
)
