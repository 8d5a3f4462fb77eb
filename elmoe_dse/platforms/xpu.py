"""``xpu`` family: naive MoE serving on one compute device reading everything from its main tier.

Also the GPU presets (main tier HBM, a per-kernel overhead). No expert cache: every unique expert
of a pass, every non-expert weight and the batch's KV cache are read from the main tier.
"""

from __future__ import annotations

from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms._common import (
    MemoryPlan,
    cost_on,
    host_resources,
    main_tier_plan,
)
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad

FAMILY = "xpu"
BIT_NESTED = False
DEFAULT_CACHE = "none"


#: Everything in the main tier; no expert slots (see _common.main_tier_plan).
memory_plan = main_tier_plan


def cost_pass(
    spec: PlatformSpec, knobs: Knobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the host compute."""
    res = host_resources(spec)
    return tuple(cost_on(load, plan, res) for load in loads)
