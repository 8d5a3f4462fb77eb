"""``xpu`` family: naive MoE serving on one compute device reading everything from its main tier.

Also the GPU presets (main tier HBM, a per-kernel overhead). No expert cache: every unique expert
of a pass, every non-expert weight and the batch's KV cache are read from the main tier.
"""

from __future__ import annotations

from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs, PlatformModel
from elmoe_dse.platforms._placement import main_tier_plan
from elmoe_dse.platforms._resources import host_cost_pass
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import OpLoad


def cost_pass(
    spec: PlatformSpec, knobs: PlatformKnobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator on the host compute, reading its tiers at their achievable bandwidth."""
    return host_cost_pass(spec, knobs, loads, plan)


MODEL = PlatformModel(
    family="xpu",
    fast_tier=None,
    bit_nested=False,
    default_policy="ar",
    default_cache="none",
    memory_plan=main_tier_plan,
    cost_pass=cost_pass,
)
