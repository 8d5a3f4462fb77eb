"""The memory plans the platform families share: everything in the main tier, or an HB plan.

A :class:`~elmoe_dse.platforms._base.MemoryPlan` says, per data class of :mod:`elmoe_dse.workload`
(``weights``, ``kv``, ``expert_fast``, ``expert_slow``, ``draft``), which share of its bytes each
tier serves, and how many experts per MoE layer fit in the fast tier. HB capacity is given in this
order of priority (paper, arXiv 2604.14626 §4): the batch's KV cache, then the non-expert
weights, then any reserved bytes (a separate draft model), then expert slots.
"""

from __future__ import annotations

import numpy as np

from elmoe_dse.cache import expert_slots_per_layer
from elmoe_dse.platforms._base import READ_CLASSES, Footprint, MemoryPlan, PlatformKnobs
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.units import GB

Array = np.ndarray


def main_tier_plan(spec: PlatformSpec, knobs: PlatformKnobs, fp: Footprint) -> MemoryPlan:
    """Everything in the platform's main tier; it must hold weights and KV. No expert slots."""
    tier = spec.main_tier
    one = np.ones(())
    total = fp.nonexpert_bytes + fp.expert_bytes + fp.kv_bytes + fp.reserved_bytes
    cap = spec.tiers[tier].capacity_bytes
    fits = np.asarray(total <= cap)
    need_gb = float(np.max(np.where(fits, 0.0, total))) / GB
    return MemoryPlan(
        read_split={c: {tier: one} for c in READ_CLASSES},
        write_split={"kv": {tier: one}, "draft": {tier: one}, "expert_fill": {tier: one}},
        expert_slots=np.zeros(np.shape(total)),
        fast_tier=None,
        fits=fits,
        reason=f"weights + KV need {need_gb:.1f} GB, more than the {tier} capacity "
        f"({spec.tiers[tier].capacity_gb:.0f} GB); spread them over devices (knobs tp, ep, pp) "
        "or use a smaller weight_format",
    )


def hb_capacity_bytes(spec: PlatformSpec, knobs: PlatformKnobs) -> Array:
    """HB capacity: the ``hb_capacity_gb`` knob where set, else the spec's."""
    cap = knobs.hb_capacity_bytes
    return np.where(np.isfinite(cap), cap, spec.tiers["hb"].capacity_bytes)


def hb_plan(spec: PlatformSpec, knobs: PlatformKnobs, fp: Footprint) -> MemoryPlan:
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
        hb, ne, kv, fp.reserved_bytes, fp.num_moe_layers, fp.slot_bytes_per_expert, fp.num_experts
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
