"""Compute resources and operator costing shared by the platform families.

:func:`host_resources` is the host compute (or a PE array) seeing every tier at its achievable
bandwidth; :func:`cost_on` is the roofline cost of one operator load placed by a memory plan
(docs/model.md §7); :func:`host_cost_pass` costs a whole pass on the host.
"""

from __future__ import annotations

import numpy as np

from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs
from elmoe_dse.platforms._placement import split
from elmoe_dse.roofline import OpCost, Resources, operator_cost
from elmoe_dse.specs.platform import PRECISIONS, PlatformSpec
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
    return tuple(cost_on(load, plan, res) for load in loads)
