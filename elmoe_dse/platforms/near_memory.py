"""``near-memory`` family: an xPU plus processing inside one memory tier (PIM, Logic-PIM, NMP).

In memory, an operator reads its tier at the internal bandwidth ``m x peak x eff`` with the
near-memory unit's compute (``ops_per_byte x m x peak``) and read energy; on the xPU, over the
external bandwidth. Which operators go where is the unit's ``offload`` rule (docs/model.md §7):

- ``faster`` (default): each operator where it finishes sooner. Low-intensity GEMVs (B = 1,
  attention) go to memory; at high batch the expert GEMMs exceed the unit's compute and fall back
  to the host, where the external bandwidth limits again (ELMoE-3D, arXiv 2604.14626, §3);
- ``gemv``: attention and every expert FFN (routed and shared) in memory, the rest on the host;
- ``attention``: attention only in memory (AttAcc, ASPLOS 2024).
"""

from __future__ import annotations

import numpy as np

from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs, PlatformModel
from elmoe_dse.platforms._placement import main_tier_plan
from elmoe_dse.platforms._resources import cost_on, finish_pass, host_resources
from elmoe_dse.roofline import OpCost, Resources, choose_faster
from elmoe_dse.specs.platform import PRECISIONS, NearMemorySpec, PlatformSpec
from elmoe_dse.workload import OpLoad

#: Operator-name prefixes each fixed offload rule runs in memory.
IN_MEMORY: dict[str, tuple[str, ...]] = {
    "gemv": ("attention", "routed_experts", "shared_experts"),
    "attention": ("attention",),
}


def near_resources(spec: PlatformSpec, nm: NearMemorySpec) -> Resources:
    """The near-memory unit ``nm`` of ``spec``: its compute and its internal view of its tier."""
    host = host_resources(spec)
    bw = dict(host.bw_bytes_per_s)
    bw[nm.tier] = np.asarray(nm.internal_bw_bytes_per_s(spec.tiers[nm.tier]))
    read_e = dict(host.read_energy_j_per_bit)
    read_e[nm.tier] = nm.read_energy_j_per_bit
    return Resources(
        unit=nm.kind,
        peak_ops_per_s={
            p: np.asarray(nm.peak_ops_per_s(p, spec.tiers[nm.tier])) for p in PRECISIONS
        },
        energy_j_per_op={p: nm.energy_j_per_op(p) for p in PRECISIONS},
        bw_bytes_per_s=bw,
        read_energy_j_per_bit=read_e,
        write_energy_j_per_bit=host.write_energy_j_per_bit,
        link_bw_bytes_per_s=host.link_bw_bytes_per_s,
        link_energy_j_per_bit=host.link_energy_j_per_bit,
        overhead_s=host.overhead_s,
    )


def cost_pass(
    spec: PlatformSpec, knobs: PlatformKnobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Per operator, host or in-memory execution by the unit's offload rule."""
    nm = spec.near_memory
    assert nm is not None  # required by MODEL, checked when the spec is loaded
    host, near = host_resources(spec), near_resources(spec, nm)
    out = []
    for load in loads:
        if nm.offload == "faster":
            out.append(choose_faster(cost_on(load, plan, host), cost_on(load, plan, near)))
        else:
            in_memory = load.name.startswith(IN_MEMORY[nm.offload])
            out.append(cost_on(load, plan, near if in_memory else host))
    return finish_pass(spec, tuple(out))


MODEL = PlatformModel(
    family="near-memory",
    fast_tier=None,
    bit_nested=False,
    default_policy="ar",
    default_cache="none",
    memory_plan=main_tier_plan,
    cost_pass=cost_pass,
    required_sections=("near_memory",),
)
