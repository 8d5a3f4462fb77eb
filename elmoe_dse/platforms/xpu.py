"""``xpu`` family: naive MoE serving on one compute device reading everything from its main tier.

Also the GPU presets (main tier HBM, a per-kernel overhead). No expert cache: every unique expert
of a pass, every non-expert weight and the batch's KV cache are read from the main tier.
"""

from __future__ import annotations

import numpy as np

from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms._common import (
    Footprint,
    MemoryPlan,
    cost_on,
    host_resources,
    main_tier_only,
)
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad

FAMILY = "xpu"
BIT_NESTED = False
DEFAULT_CACHE = "none"


def memory_plan(
    spec: PlatformSpec,
    knobs: Knobs,
    fp: Footprint,
    *,
    num_moe_layers: int,
    num_experts: int,
    slot_bytes_per_expert: np.ndarray,
) -> MemoryPlan:
    """All data in the main tier; no expert slots."""
    return main_tier_only(spec, fp)


def cost_pass(
    spec: PlatformSpec, knobs: Knobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the host compute."""
    res = host_resources(spec)
    return tuple(cost_on(load, plan, res) for load in loads)
