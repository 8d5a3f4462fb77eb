"""``hb-xpu`` family: an xPU with a hybrid-bonded DRAM stack (HB) beside LPDDR, no speculation.

HB holds the batch's KV cache, the non-expert weights and, in what is left, a full-precision
expert cache (LRU by default, MODEL.md 5). A resident expert is read whole from HB, a missed one
whole from LPDDR; both tiers are read in parallel inside an operator.
"""

from __future__ import annotations

from elmoe_dse.platforms._common import hb_plan, host_cost_pass

FAMILY = "hb-xpu"
BIT_NESTED = False
DEFAULT_CACHE = "lru"


#: KV, non-expert weights, then expert slots in HB (see _common.hb_plan).
memory_plan = hb_plan


#: Every operator on the xPU, reading HB and LPDDR in parallel.
cost_pass = host_cost_pass
