"""``near-memory`` family: an xPU plus processing inside one memory tier (PIM, Logic-PIM, NMP).

Each operator runs where it finishes sooner (MODEL.md 7): in memory, at the internal bandwidth
``m x peak x eff`` with the near-memory unit's compute and read energy, or on the xPU over the
external bandwidth. Low-intensity GEMVs (B = 1, attention) go to memory; at high batch the expert
GEMMs exceed the unit's compute and fall back to the host, where the external bandwidth limits
again (paper section 3).
"""

from __future__ import annotations

import numpy as np

from elmoe_dse import units
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms._common import (
    MemoryPlan,
    cost_on,
    host_resources,
    main_tier_plan,
)
from elmoe_dse.roofline import OpCost, Resources, choose_faster
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad

FAMILY = "near-memory"
BIT_NESTED = False
DEFAULT_CACHE = "none"


#: Everything in the main tier; no expert slots (see _common.main_tier_plan).
memory_plan = main_tier_plan


def near_resources(spec: PlatformSpec) -> Resources:
    """The near-memory unit: its compute and its internal view of its tier."""
    nm = spec.near_memory
    if nm is None:  # guarded by PlatformSpec validation
        raise ValueError(f"platform {spec.name} has no [near_memory] table")
    host = host_resources(spec)
    tier = spec.tiers[nm.tier]
    bw = dict(host.bw_bytes_per_s)
    bw[nm.tier] = np.asarray(
        nm.internal_bw_multiplier * tier.peak_bw_gb_per_s * units.GB * nm.bw_efficiency_frac
    )
    read_e = dict(host.read_energy_j_per_bit)
    read_e[nm.tier] = nm.read_energy_pj_per_bit * units.PJ
    precisions = ("w4a8", "w8a8", "w16a16")
    return Resources(
        unit=nm.kind,
        peak_ops_per_s={p: np.asarray(nm.peak_tops.get(p) * units.TERA) for p in precisions},
        energy_j_per_op={p: nm.energy_pj_per_op.get(p) * units.PJ for p in precisions},
        bw_bytes_per_s=bw,
        read_energy_j_per_bit=read_e,
        write_energy_j_per_bit=host.write_energy_j_per_bit,
        link_bw_bytes_per_s=host.link_bw_bytes_per_s,
        link_energy_j_per_bit=host.link_energy_j_per_bit,
        overhead_s=host.overhead_s,
    )


def cost_pass(
    spec: PlatformSpec, knobs: Knobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Per operator and design point, the faster of host and in-memory execution."""
    host, near = host_resources(spec), near_resources(spec)
    return tuple(
        choose_faster(cost_on(load, plan, host), cost_on(load, plan, near)) for load in loads
    )
