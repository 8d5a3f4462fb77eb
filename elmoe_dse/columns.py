"""The results vocabulary: the name of every column a results table holds.

One row per design point. A column is prefixed by its role and suffixed by its unit (SI):

- ``knob.*``: the inputs (:data:`elmoe_dse.knobs.KNOB_INFO`), e.g. ``knob.batch_size``;
- ``metric.*``: the outputs, e.g. ``metric.energy_per_token_j``, ``metric.hit_rate_frac``;
- ``meta.*``: scenario, policy and feasibility, e.g. ``meta.platform``, ``meta.bound``.

``sweep``, ``optimize`` and ``reproduce`` write these names for the same quantities, and a sweep
file's objectives and constraints are checked against them. Names only, no I/O: the spec layer
imports this module; writing tables is :mod:`elmoe_dse.results`.
"""

from __future__ import annotations

import re

KNOB = "knob."
METRIC = "metric."
META = "meta."

# Metrics of every step cost (``StepCost.metrics()``), SI.
TIME_PER_STEP_S = "metric.time_per_step_s"
TOKENS_PER_STEP = "metric.tokens_per_step"
THROUGHPUT_TOK_PER_S = "metric.throughput_tok_per_s"
LATENCY_PER_TOKEN_S = "metric.latency_per_token_s"
ENERGY_PER_STEP_J = "metric.energy_per_step_j"
ENERGY_PER_TOKEN_J = "metric.energy_per_token_j"
STATIC_POWER_W = "metric.static_power_w"

#: Metric columns every results table carries, SI units in the names (``StepCost.metrics()``).
METRIC_COLUMNS = (
    TIME_PER_STEP_S,
    TOKENS_PER_STEP,
    THROUGHPUT_TOK_PER_S,
    LATENCY_PER_TOKEN_S,
    ENERGY_PER_STEP_J,
    ENERGY_PER_TOKEN_J,
    STATIC_POWER_W,
)

# What the hardware design costs (elmoe_dse.costs): logic-die area (mm2, the one non-SI unit:
# 1 mm2 = 1e-6 m2) and dollars; with STATIC_POWER_W the design-cost columns.
LOGIC_AREA_MM2 = "metric.logic_area_mm2"
COST_USD = "metric.cost_usd"

#: Cost metric columns of a sweep's results table (NaN for a platform without a [cost] table).
COST_COLUMNS = (LOGIC_AREA_MM2, COST_USD)
#: The columns that describe a hardware design's cost rather than its performance.
DESIGN_COST_COLUMNS = (LOGIC_AREA_MM2, COST_USD, STATIC_POWER_W)

# Expert cache and speculative decoding.
POOL_EXPERTS_PER_LAYER = "metric.pool_experts_per_layer"
HIT_RATE_FRAC = "metric.hit_rate_frac"
ACCEPTANCE_FRAC = "metric.acceptance_frac"
TAU_TOKENS = "metric.tau_tokens"
DRAFT_LENGTH_TOKENS = "metric.draft_length_tokens"
#: Time per step of the collectives between devices (0 on one device; docs/parallel.md).
DEVICE_LINK_TIME_PER_STEP_S = "metric.device_link_time_per_step_s"

#: Metric columns every results table has besides :data:`METRIC_COLUMNS`.
EXTRA_METRIC_COLUMNS = (
    POOL_EXPERTS_PER_LAYER,
    HIT_RATE_FRAC,
    ACCEPTANCE_FRAC,
    TAU_TOKENS,
    DRAFT_LENGTH_TOKENS,
    DEVICE_LINK_TIME_PER_STEP_S,
)


def energy_column(component: str) -> str:
    """Energy of one component per step: ``metric.energy_read_hb_per_step_j``."""
    return f"{METRIC}energy_{component}_per_step_j"


def bytes_read_column(tier: str) -> str:
    """Bytes read from one memory tier per step: ``metric.bytes_read_lpddr_per_step_bytes``."""
    return f"{METRIC}bytes_read_{tier}_per_step_bytes"


#: Platform-dependent metric columns (one per energy component or memory tier).
METRIC_PATTERNS = (
    re.compile(r"^metric\.energy_[a-z0-9_]+_per_step_j$"),
    re.compile(r"^metric\.bytes_read_[a-z0-9_]+_per_step_bytes$"),
)

# Scenario, policy and feasibility.
MODEL = "meta.model"
PLATFORM = "meta.platform"
DATASET = "meta.dataset"
POLICY = "meta.policy"
DRAFT = "meta.draft"
CACHE_POLICY = "meta.cache_policy"
#: The system of a ``reproduce`` row (``elmoe3d``, ``xpu``, ``hb-xpu`` ...).
SYSTEM = "meta.system"
#: What bounds the step (``compute``, ``lpddr`` ...).
BOUND = "meta.bound"
FEASIBLE = "meta.feasible"
INFEASIBLE_REASON = "meta.infeasible_reason"
#: ``sweep``: the row is on its group's Pareto front of the sweep file's objectives.
PARETO = "meta.pareto"
#: The knobs set away from their default that do not act at the point, comma-joined ('' if none).
INACTIVE_KNOBS = "meta.inactive_knobs"


def knob_column(name: str) -> str:
    """The column of knob ``name``: ``knob.batch_size``."""
    return f"{KNOB}{name}"


def is_metric_column(column: str) -> bool:
    """True for a numeric ``metric.*`` column a results table may hold."""
    known = (*METRIC_COLUMNS, *EXTRA_METRIC_COLUMNS, *COST_COLUMNS)
    return column in known or any(p.match(column) for p in METRIC_PATTERNS)
