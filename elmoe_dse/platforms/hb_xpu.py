"""``hb-xpu`` family: an xPU with a hybrid-bonded DRAM stack (HB) beside LPDDR, no speculation.

HB holds the batch's KV cache, the non-expert weights and, in what is left, a full-precision
expert cache (LRU by default, docs/model.md §5). A resident expert is read whole from HB, a
missed one whole from LPDDR; both tiers are read in parallel inside an operator.
"""

from __future__ import annotations

from elmoe_dse.platforms._base import PlatformModel
from elmoe_dse.platforms._placement import hb_plan
from elmoe_dse.platforms._resources import host_cost_pass

MODEL = PlatformModel(
    family="hb-xpu",
    fast_tier="hb",
    bit_nested=False,
    default_policy="ar-cache",
    default_cache="lru",
    memory_plan=hb_plan,
    cost_pass=host_cost_pass,
    required_tiers=("hb", "lpddr"),
)
