"""``xpu`` family: naive MoE serving on one compute device reading everything from its main tier.

Also the GPU presets (main tier HBM, a per-kernel overhead). No expert cache: every unique expert
of a pass, every non-expert weight and the batch's KV cache are read from the main tier.
"""

from __future__ import annotations

from elmoe_dse.platforms._common import (
    host_cost_pass,
    main_tier_plan,
)

FAMILY = "xpu"
BIT_NESTED = False
DEFAULT_CACHE = "none"


#: Everything in the main tier; no expert slots (see _common.main_tier_plan).
memory_plan = main_tier_plan


#: Every operator on the host compute.
cost_pass = host_cost_pass
