"""The platform contract: what a family's module exports, typed, and the records it exchanges.

Each family module ends with ``MODEL = PlatformModel(...)``: its capabilities (a fast tier, a
bit-nested pool, the default policy and cache), what its spec files must contain, and two pure
functions over arrays:

- ``memory_plan(spec, knobs, demand) -> MemoryPlan``: which tier serves each data class of
  :mod:`elmoe_dse.workload`, and the expert slots per MoE layer of the fast tier;
- ``cost_pass(spec, knobs, loads, plan) -> tuple[OpCost, ...]``: the roofline cost of one pass's
  operator loads placed by the plan (docs/model.md §7).

Platforms receive only the knobs they read, already in SI (:class:`PlatformKnobs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from elmoe_dse.workload import Footprint

if TYPE_CHECKING:
    from elmoe_dse.knobs import Knobs
    from elmoe_dse.roofline import OpCost
    from elmoe_dse.specs.platform import PlatformSpec
    from elmoe_dse.workload import OpLoad

__all__ = [
    "READ_CLASSES",
    "CostPassFn",
    "DataClass",
    "Footprint",
    "MemoryPlan",
    "MemoryPlanFn",
    "PlatformKnobs",
    "PlatformModel",
]

Array = np.ndarray

#: The data classes a workload reads or writes; a memory plan maps each to tiers. ``draft``: a
#: separate draft model's weights and KV (EAGLE head, small LM), kept in the fast tier where
#: there is one; ``expert_fill``: what an LRU cache writes on a miss.
DataClass = Literal["weights", "kv", "expert_fast", "expert_slow", "draft", "expert_fill"]
#: The data classes a pass reads.
READ_CLASSES: tuple[DataClass, ...] = ("weights", "kv", "expert_fast", "expert_slow", "draft")


@dataclass(frozen=True)
class PlatformKnobs:
    """The knobs a platform reads, in SI; ``nan`` where the spec's value applies.

    Attributes:
        hb_capacity_bytes: capacity of the HB stack, bytes.
        pe_count: logic-die PEs (each with one HB bank), dimensionless.
    """

    hb_capacity_bytes: Array
    pe_count: Array

    @classmethod
    def of(cls, knobs: Knobs) -> PlatformKnobs:
        """The platform's share of a validated knob record."""
        return cls(
            hb_capacity_bytes=knobs.hb_capacity_bytes,
            pe_count=np.asarray(knobs.pe_count, dtype=float),
        )


@dataclass(frozen=True)
class MemoryPlan:
    """Where each data class is read from and written to, and the fast tier's expert slots.

    ``read_split[cls][tier]`` is the share of class ``cls``'s bytes tier ``tier`` serves;
    ``fits`` is False where the footprint does not fit, and ``reason`` says why in one line.
    """

    read_split: dict[str, dict[str, Array]]
    write_split: dict[str, dict[str, Array]]
    expert_slots: Array
    fast_tier: str | None
    fits: Array
    reason: str


MemoryPlanFn = Callable[["PlatformSpec", PlatformKnobs, Footprint], MemoryPlan]
CostPassFn = Callable[
    ["PlatformSpec", PlatformKnobs, "list[OpLoad]", MemoryPlan], "tuple[OpCost, ...]"
]


@dataclass(frozen=True)
class PlatformModel:
    """One platform family: its capabilities, what its spec needs, and its two model functions.

    Attributes:
        family: the ``family`` value of its spec files.
        fast_tier: the tier holding an expert pool or cache (``"hb"``), or None.
        bit_nested: its pool holds MSB slices (a resident expert's LSB slice comes from the main
            tier), whatever the policy; self-drafting policies make any pool bit-nested.
        default_policy: the policy ``auto`` resolves to.
        default_cache: the pool/cache replacement ``auto`` resolves to for a policy that does not
            fix it (``none`` without a fast tier).
        memory_plan: see the module docstring.
        cost_pass: see the module docstring.
        required_tiers: tiers its spec files must have (``[tiers.NAME]``).
        required_sections: optional spec sections its spec files must have (``logic_die``).
        params: keys of the spec's ``[family_params]`` table the family reads (all required,
            no others allowed), for a family whose parameters no shared section holds.
    """

    family: str
    fast_tier: str | None
    bit_nested: bool
    default_policy: str
    default_cache: str
    memory_plan: MemoryPlanFn
    cost_pass: CostPassFn
    required_tiers: tuple[str, ...] = ()
    required_sections: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
