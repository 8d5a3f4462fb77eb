"""Compute resources, operator costing and static power shared by the platform families.

:func:`host_resources` is the host compute (or a PE array) seeing every tier at its achievable
bandwidth; :func:`cost_on` is the roofline cost of one operator load placed by a memory plan
(docs/model.md §7); :func:`host_cost_pass` costs a whole pass on the host; :func:`finish_pass`
applies the spec's overlap rule to a pass; :func:`static_power_w` sums the static-power parts
at the design's HB capacity and PE count (docs/model.md §8).
"""

from __future__ import annotations

import numpy as np

from elmoe_dse import units
from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs
from elmoe_dse.platforms._placement import hb_capacity_bytes, split
from elmoe_dse.roofline import OpCost, Resources, operator_cost, overlap_pass
from elmoe_dse.specs.platform import PRECISIONS, LogicDieSpec, PlatformSpec
from elmoe_dse.workload import OpLoad

Array = np.ndarray


def host_resources(
    spec: PlatformSpec,
    *,
    unit: str = "xpu",
    scale: Array | float = 1.0,
    hb_bw_bytes_per_s: Array | None = None,
) -> Resources:
    """The host compute (or PE array, scaled by ``scale``) seeing every tier at its bandwidth."""
    bw: dict[str, Array] = {t: np.asarray(s.bw_bytes_per_s) for t, s in spec.tiers.items()}
    if hb_bw_bytes_per_s is not None:
        bw["hb"] = hb_bw_bytes_per_s
    return Resources(
        unit=unit,
        peak_ops_per_s={p: np.asarray(scale) * spec.compute.peak_ops_per_s(p) for p in PRECISIONS},
        energy_j_per_op={p: spec.compute.energy_j_per_op(p) for p in PRECISIONS},
        bw_bytes_per_s=bw,
        read_energy_j_per_bit={t: s.read_energy_j_per_bit for t, s in spec.tiers.items()},
        write_energy_j_per_bit={t: s.write_energy_j_per_bit for t, s in spec.tiers.items()},
        link_bw_bytes_per_s={n: np.asarray(s.bw_bytes_per_s) for n, s in spec.links.items()},
        link_energy_j_per_bit={n: s.energy_j_per_bit for n, s in spec.links.items()},
        overhead_s=spec.op_overhead_s,
    )


def cost_on(
    load: OpLoad, plan: MemoryPlan, res: Resources, link_bytes: dict[str, Array] | None = None
) -> OpCost:
    """Roofline cost of one operator load placed by ``plan`` on resources ``res``."""
    return operator_cost(
        name=load.name,
        layers=load.layers,
        ops=load.ops,
        precision=load.precision,
        bytes_read=split(load.read_bytes, plan.read_split),
        bytes_written=split(load.write_bytes, plan.write_split),
        link_bytes=link_bytes or {},
        res=res,
    )


def host_cost_pass(
    spec: PlatformSpec, knobs: PlatformKnobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the host compute, reading its tiers in parallel (xpu, hb-xpu)."""
    res = host_resources(spec)
    return finish_pass(spec, tuple(cost_on(load, plan, res) for load in loads))


def finish_pass(spec: PlatformSpec, costs: tuple[OpCost, ...]) -> tuple[OpCost, ...]:
    """The pass's operator costs under the spec's overlap rule (``operator``: as costed;
    ``pass``: rescaled so the pass takes its busiest resource's time, :func:`overlap_pass`)."""
    return overlap_pass(costs) if spec.overlap == "pass" else costs


def pe_count(die: LogicDieSpec, knobs: PlatformKnobs) -> Array:
    """PEs: the knob where set, else the logic die's."""
    pes = knobs.pe_count
    return np.where(np.isfinite(pes), pes, die.pe_count)


def static_power_w(spec: PlatformSpec, knobs: PlatformKnobs) -> Array:
    """Static power of the platform at the design's HB capacity and PE count, W.

    A spec's fixed ``static_power_w`` (a user's older file) is the whole static power; otherwise
    the parts of ``[static_power]`` add: host uncore + xPU compute + near-memory units
    + LPDDR per GB x its capacity + HB per GB x HB capacity + per PE x PEs.
    """
    if spec.static_power_w is not None:
        return np.asarray(spec.static_power_w, dtype=float)
    parts = spec.static_power
    assert parts is not None  # the spec validator requires one of the two
    total: Array = np.asarray(parts.host_w + parts.xpu_compute_w + parts.near_memory_w)
    if "lpddr" in spec.tiers:
        total = total + parts.lpddr_w_per_gb * spec.tiers["lpddr"].capacity_gb
    if "hb" in spec.tiers:
        total = total + parts.hb_w_per_gb * hb_capacity_bytes(spec, knobs) / units.GB
    if spec.logic_die is not None:
        total = total + parts.logic_die_w_per_pe * pe_count(spec.logic_die, knobs)
    return np.asarray(total, dtype=float)
