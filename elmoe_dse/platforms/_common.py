"""Shared placement and costing used by every platform module.

A :class:`MemoryPlan` says, per data class of :mod:`elmoe_dse.workload` (``weights``, ``kv``,
``expert_fast``, ``expert_slow``, ``draft``), which share of its bytes each tier serves, and how
many experts per MoE layer fit in the fast tier. HB capacity is given in this order of priority
(paper): the batch's KV cache, then the non-expert weights, then any reserved bytes (a separate
draft model), then expert slots.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from elmoe_dse import units
from elmoe_dse.cache import expert_slots_per_layer
from elmoe_dse.knobs import Knobs
from elmoe_dse.roofline import OpCost, Resources, operator_cost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad

Array = np.ndarray

#: Data classes a workload reads; a plan maps each to tiers. ``draft``: a separate draft model's
#: weights and KV (EAGLE head, small LM), kept in the fast tier where there is one.
DATA_CLASSES = ("weights", "kv", "expert_fast", "expert_slow", "draft")


@dataclass(frozen=True)
class Footprint:
    """Bytes a design keeps in memory (SI bytes, arrays over the grid)."""

    nonexpert_bytes: Array
    expert_bytes: Array
    kv_bytes: Array
    reserved_bytes: Array


@dataclass(frozen=True)
class MemoryPlan:
    """Where each data class is read from, and the fast tier's expert slots per MoE layer."""

    read_split: dict[str, dict[str, Array]]
    write_split: dict[str, dict[str, Array]]
    expert_slots: Array
    fast_tier: str | None
    fits: Array
    reason: str


def main_tier_plan(
    spec: PlatformSpec,
    knobs: Knobs,
    fp: Footprint,
    *,
    num_moe_layers: int,
    num_experts: int,
    slot_bytes_per_expert: Array,
) -> MemoryPlan:
    """Everything in the platform's main tier; it must hold weights and KV. No expert slots."""
    tier = spec.main_tier
    one = np.ones(())
    total = fp.nonexpert_bytes + fp.expert_bytes + fp.kv_bytes + fp.reserved_bytes
    cap = spec.tiers[tier].capacity_bytes
    return MemoryPlan(
        read_split={c: {tier: one} for c in DATA_CLASSES},
        write_split={"kv": {tier: one}, "draft": {tier: one}, "expert_fill": {tier: one}},
        expert_slots=np.zeros(np.shape(total)),
        fast_tier=None,
        fits=np.asarray(total <= cap),
        reason=f"weights + KV exceed the {tier} capacity ({cap / units.GB:.0f} GB)",
    )


def hb_capacity_bytes(spec: PlatformSpec, knobs: Knobs) -> Array:
    """HB capacity: the ``hb_capacity_gb`` knob where set, else the spec's."""
    cap = np.asarray(knobs.hb_capacity_gb, dtype=float)
    return np.where(np.isfinite(cap), cap, spec.tiers["hb"].capacity_gb) * units.GB


def hb_plan(
    spec: PlatformSpec,
    knobs: Knobs,
    fp: Footprint,
    *,
    num_moe_layers: int,
    num_experts: int,
    slot_bytes_per_expert: Array,
) -> MemoryPlan:
    """Fast-tier (HB) plan: KV first, then non-expert weights, reserved bytes, expert slots.

    slots = floor((HB - KV - non-expert - reserved) / (L_moe x slot bytes)), clipped to [0, E].
    What does not fit in HB is read from LPDDR. LPDDR must hold all weights (its copy of every
    expert backs the cache) plus the KV that spills.
    """
    hb = hb_capacity_bytes(spec, knobs)
    kv = fp.kv_bytes
    kv_hb = np.where(kv > 0, np.clip(hb / np.maximum(kv, 1.0), 0.0, 1.0), 1.0)
    free = np.maximum(hb - kv, 0.0)
    ne = fp.nonexpert_bytes
    ne_hb = np.where(ne > 0, np.clip(free / np.maximum(ne, 1.0), 0.0, 1.0), 1.0)
    slots = expert_slots_per_layer(
        hb, ne, kv, fp.reserved_bytes, num_moe_layers, slot_bytes_per_expert, num_experts
    ).astype(float)
    lp_cap = spec.tiers["lpddr"].capacity_bytes
    lp_need = ne + fp.expert_bytes + kv * (1.0 - kv_hb)
    fits = (lp_need <= lp_cap) & (fp.reserved_bytes <= np.maximum(hb - kv - ne, 0.0))
    return MemoryPlan(
        read_split={
            "weights": {"hb": ne_hb, "lpddr": 1.0 - ne_hb},
            "kv": {"hb": kv_hb, "lpddr": 1.0 - kv_hb},
            "expert_fast": {"hb": np.ones(())},
            "expert_slow": {"lpddr": np.ones(())},
            "draft": {"hb": np.ones(())},
        },
        write_split={
            "kv": {"hb": kv_hb, "lpddr": 1.0 - kv_hb},
            "draft": {"hb": np.ones(())},
            "expert_fill": {"hb": np.ones(())},
        },
        expert_slots=slots,
        fast_tier="hb",
        fits=np.asarray(fits),
        reason="weights do not fit in LPDDR, or the draft model does not fit in HB after KV and"
        " non-expert weights",
    )


def split(nbytes: dict[str, Array], rule: dict[str, dict[str, Array]]) -> dict[str, Array]:
    """Bytes per tier from bytes per data class and the plan's split fractions."""
    out: dict[str, Array] = {}
    for cls, b in nbytes.items():
        for tier, frac in rule[cls].items():
            out[tier] = out.get(tier, 0.0) + np.asarray(b) * frac
    return out


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
        peak_ops_per_s={
            p: np.asarray(scale) * spec.compute.peak_ops_per_s(p)
            for p in ("w4a8", "w8a8", "w16a16")
        },
        energy_j_per_op={p: spec.compute.energy_j_per_op(p) for p in ("w4a8", "w8a8", "w16a16")},
        bw_bytes_per_s=bw,
        read_energy_j_per_bit={t: s.read_energy_j_per_bit for t, s in spec.tiers.items()},
        write_energy_j_per_bit={t: s.write_energy_j_per_bit for t, s in spec.tiers.items()},
        link_bw_bytes_per_s={n: np.asarray(s.bw_bytes_per_s) for n, s in spec.links.items()},
        link_energy_j_per_bit={n: s.energy_pj_per_bit * units.PJ for n, s in spec.links.items()},
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
    spec: PlatformSpec, knobs: Knobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the host compute, reading its tiers in parallel (xpu, hb-xpu)."""
    res = host_resources(spec)
    return tuple(cost_on(load, plan, res) for load in loads)
