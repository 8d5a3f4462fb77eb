"""``elmoe3d`` family: HB DRAM hybrid-bonded on a logic die of bit-sliced PEs, beside LPDDR.

Each PE owns one HB bank (paper section 6), so HB bandwidth and PE compute both scale with the
``pe_count`` knob: bw_HB = PEs x bw_per_PE, peak = PEs / PEs_spec x peak_spec. HB holds KV, the
non-expert weights and a bit-nested expert pool of MSB slices (hot set by default); the LSB slices
and every other expert stay in LPDDR and reach the PEs over the stream link. Partial sums are
exchanged over the aggregation link at projection boundaries; both links add a term to each
operator's max (the paper states they stay hidden under the LPDDR fetch, which the model checks
rather than assumes).
"""

from __future__ import annotations

import numpy as np

from elmoe_dse import units
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms._common import (
    MemoryPlan,
    cost_on,
    hb_plan,
    host_resources,
    split,
)
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad

FAMILY = "elmoe3d"
BIT_NESTED = True
DEFAULT_CACHE = "hot"


def pe_count(spec: PlatformSpec, knobs: Knobs) -> np.ndarray:
    """PEs: the knob where set, else the spec's."""
    die = spec.logic_die
    if die is None:  # guarded by PlatformSpec validation
        raise ValueError(f"platform {spec.name} has no [logic_die] table")
    pes = np.asarray(knobs.pe_count, dtype=float)
    return np.where(np.isfinite(pes), pes, die.pe_count)


#: KV, non-expert weights, then expert slots in HB (see _common.hb_plan).
memory_plan = hb_plan


def cost_pass(
    spec: PlatformSpec, knobs: Knobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the PE array; HB, LPDDR (via the stream link) and PSUM sync in parallel."""
    die = spec.logic_die
    if die is None:
        raise ValueError(f"platform {spec.name} has no [logic_die] table")
    pes = pe_count(spec, knobs)
    hb_bw = pes * die.hb_bw_per_pe_gb_per_s * units.GB * spec.tiers["hb"].bw_efficiency_frac
    res = host_resources(spec, unit="pe-array", scale=pes / die.pe_count, hb_bw_bytes_per_s=hb_bw)
    out = []
    for load in loads:
        lp_bytes = split(load.read_bytes, plan.read_split).get("lpddr", np.zeros(()))
        links = {
            "stream": np.asarray(lp_bytes),
            "aggregation": np.asarray(load.psum_elements) * die.psum_bytes_per_element,
        }
        out.append(cost_on(load, plan, res, {k: v for k, v in links.items() if k in spec.links}))
    return tuple(out)
