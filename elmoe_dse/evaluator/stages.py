"""The stages of one decode step, each a pure function over arrays and one section of the model.

In order: the policy and design (docs/model.md §6), the separate draft and the bytes held (§2,
§3), the pool in force (§5), residency and the verify pass (§4, §5, §7), acceptance (§6) and
the draft pass (§6, §7).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from elmoe_dse import locality, platforms, routing
from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.evaluator.layout import device_loads, device_ops
from elmoe_dse.evaluator.records import Design, Machine, Residency, Speculation, Violations
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import MemoryPlan, PlatformModel
from elmoe_dse.policies import POLICIES, Policy
from elmoe_dse.roofline import PassCost
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.speculative import DraftQuality, elastic_acceptance, tau_width_tree
from elmoe_dse.workload import (
    QUANT_DRAFT_BITS,
    ExpertTraffic,
    Footprint,
    OpLoad,
    cached_traffic,
    decode_pass,
    draft_model_loads,
    draft_traffic,
    eagle_draft,
    expert_format,
    footprint,
    no_cache_traffic,
    slot_bytes_per_expert,
    small_lm_draft,
)

Array = np.ndarray


def resolve_policy(family: PlatformModel, knobs: Knobs) -> Policy:
    """The decoding policy in force: the knob, or the platform family's default."""
    if knobs.policy == "auto":
        return POLICIES[family.default_policy]
    policy = POLICIES[knobs.policy]
    if policy.needs_fast_tier and family.fast_tier is None:
        without = [p.name for p in POLICIES.values() if not p.needs_fast_tier]
        with_fast = [f for f in platforms.families() if platforms.get(f).fast_tier is not None]
        raise KnobError(
            f"policy '{policy.name}' needs a fast tier to hold the expert pool; family "
            f"'{family.family}' has none (use a platform of family {' or '.join(with_fast)}, "
            f"or policy {', '.join(without[:-1])} or {without[-1]})"
        )
    return policy


def resolve_cache(family: PlatformModel, knobs: Knobs, policy: Policy) -> str:
    """The pool/cache replacement in force: none, lru, hot or random."""
    if not policy.caches_experts or family.fast_tier is None:
        return "none"
    want = knobs.cache_policy
    if want == "auto":
        return "hot" if policy.fixed_pool else family.default_cache
    if want == "none":
        raise KnobError(f"cache_policy 'none' contradicts policy '{policy.name}'; use policy=ar")
    if policy.fixed_pool and want == "lru":
        raise KnobError(
            f"policy '{policy.name}' drafts from a fixed expert pool; use cache_policy hot or "
            "random"
        )
    return want


def design_of(policy: Policy, family: PlatformModel, knobs: Knobs, gamma: Array) -> Design:
    """The design: policy, replacement, bit-nesting, B, and gamma (0 without a draft)."""
    cache_policy = resolve_cache(family, knobs, policy)
    return Design(
        policy=policy,
        cache_policy=cache_policy,
        bit_nested=cache_policy != "none" and (family.bit_nested or policy.reads_pool),
        sequences=np.asarray(knobs.batch_size, dtype=float),
        draft_length_tokens=gamma if policy.speculative else np.zeros_like(gamma),
        draft_width=np.asarray(knobs.draft_width, dtype=float),
    )


def separate_draft(model: ModelSpec, design: Design, knobs: Knobs) -> tuple[list[OpLoad], Array]:
    """A separate draft model's pass loads and reserved bytes (none for other drafts)."""
    if design.draft == "eagle":
        draft = eagle_draft(model, knobs.kv_format)
    elif design.draft == "slm":
        draft = small_lm_draft(knobs.slm_params, knobs.slm_kv_bytes_per_token)
    else:
        return [], np.zeros(())
    return draft_model_loads(
        model,
        draft,
        sequences=design.sequences,
        context_len=knobs.context_len,
        weight_format=knobs.weight_format,
        kv_format=knobs.kv_format,
        tokens_per_sequence=design.draft_width,
    )


def demand_of(model: ModelSpec, design: Design, knobs: Knobs, reserved: Array) -> Footprint:
    """Bytes the design holds, with the fast-tier slot size its pool needs."""
    slot = slot_bytes_per_expert(
        model,
        knobs.weight_format,
        bit_nested=design.bit_nested,
        msb_bits=knobs.draft_bits,
        quant_copy=design.draft == "quant",
    )
    return footprint(
        model,
        batch_size=knobs.batch_size,
        context_len=knobs.context_len,
        weight_format=knobs.weight_format,
        kv_format=knobs.kv_format,
        reserved_bytes=reserved,
        slot_bytes=slot,
    )


def pool_in_force(
    plan: MemoryPlan, design: Design, pool_experts: Array, num_experts: int
) -> tuple[Array, Violations]:
    """Experts per layer in the pool (the knob, or as many as fit), and the violated rules."""
    want = np.asarray(pool_experts, dtype=float)
    auto = ~np.isfinite(want)
    asked = np.nan_to_num(want)
    pool = np.where(auto, plan.expert_slots, np.minimum(asked, num_experts))
    too_many = ~auto & (asked > num_experts)
    violations = Violations(
        memory=np.asarray(~plan.fits),
        pool_exceeds_experts=np.asarray(too_many),
        pool_exceeds_fast_tier=np.asarray(~auto & ~too_many & (asked > plan.expert_slots)),
    )
    if design.cache_policy == "none":
        pool = np.zeros_like(pool)
    return pool, violations


def locality_terms(quality: DraftQuality) -> tuple[float, float]:
    """(B_loc, W) of the dataset profile (filled by ``DatasetProfile.for_model``)."""
    scale, window = quality.profile.batch_locality_scale, quality.profile.pool_window_tokens
    if scale is None or window is None:
        raise SpecError(
            "the model profile has no batch_locality_scale / pool_window_tokens; build it with "
            "DatasetProfile.for_model(), which fills them from the dataset's [locality] block"
        )
    return scale, window


def residency_of(
    design: Design, p: Array, pool: Array, overlap_frac: Array, quality: DraftQuality
) -> Residency:
    """What the pool serves, and the verify pass's unique experts, under one routing process.

    Every mechanism takes the same process (:mod:`elmoe_dse.locality`) at the same reuse
    rho_B = rho / (1 + (B - 1) / B_loc): the verify union, the LRU, the window-chosen hot pool
    and its refresh, whatever the platform. ``p`` may be S draws' routings (S, E)
    (:mod:`elmoe_dse.evaluator.ensemble`): each draw is solved on its
    own routing levels, all draws together (the grid's first axis is then the draws').
    """
    b, t = design.sequences, design.verify_tokens_per_sequence
    scale, window = locality_terms(quality)
    rho = locality.batch_overlap(overlap_frac, b, scale)
    unique = locality.correlated_unique(p, rho, b, t)
    refresh = np.zeros(())
    if design.cache_policy == "hot":
        stats = locality.window_pool(p, rho, b, window, pool, t)
        coverage, res_frac = stats.hit_frac, stats.resident_unique_frac
        refresh = stats.refresh_experts
    elif design.cache_policy == "lru":
        coverage, res_frac = locality.lru_resident_frac(p, rho, b, pool, t)
    elif design.cache_policy == "random":
        e = np.shape(p)[-1]
        coverage = res_frac = np.asarray(np.clip(np.floor(pool), 0, e) / e)
    else:
        coverage = res_frac = np.zeros(np.broadcast_shapes(np.shape(pool), np.shape(unique)))
    return Residency(
        policy=design.cache_policy,
        bit_nested=design.bit_nested,
        pool_experts_per_layer=pool,
        hit_rate_frac=coverage,
        resident_unique_frac=res_frac,
        unique_experts_per_layer=unique,
        overlap_frac=rho,
        refresh_experts_per_layer=refresh,
    )


def refreshes_per_step(speculation: Speculation, quality: DraftQuality) -> Array:
    """Pool refreshes per step: tau committed tokens per sequence over the window W, at most one
    (the pool is fixed once per draft phase, before verify)."""
    return np.minimum(1.0, speculation.tau_tokens / locality_terms(quality)[1])


def pass_cost(
    machine: Machine,
    loads: list[OpLoad],
    *,
    kind: str,
    sequences: Array,
    tokens_per_sequence: Array,
    experts: ExpertTraffic | None = None,
    repeats: Array | None = None,
) -> PassCost:
    """Cost one pass's operator loads on the machine (``experts``: the routed-expert traffic)."""
    layout = machine.layout
    if layout is not None:
        unique = np.zeros(()) if experts is None else np.asarray(experts.unique)
        loads = device_loads(layout, loads, unique)
    ops = machine.family.cost_pass(machine.spec, machine.knobs, loads, machine.plan)
    if layout is not None:
        ops = device_ops(layout, loads, tuple(ops), np.asarray(sequences) * tokens_per_sequence)
    return PassCost(
        kind=kind,
        tokens=np.asarray(sequences) * np.asarray(tokens_per_sequence),
        sequences=np.asarray(sequences),
        unique_experts_per_layer=np.zeros(()) if experts is None else np.asarray(experts.unique),
        resident_experts_per_layer=np.zeros(())
        if experts is None
        else np.asarray(experts.resident),
        operators=tuple(ops),
        repeats=np.ones(()) if repeats is None else np.asarray(repeats),
    )


def target_pass(
    model: ModelSpec,
    machine: Machine,
    knobs: Knobs,
    *,
    kind: str,
    sequences: Array,
    tokens_per_sequence: Array,
    experts: ExpertTraffic,
    repeats: Array | None = None,
) -> PassCost:
    """Cost one pass of the target model (decode, verify, or a self-draft step)."""
    loads = decode_pass(
        model,
        sequences=sequences,
        tokens_per_sequence=tokens_per_sequence,
        context_len=knobs.context_len,
        weight_format=knobs.weight_format,
        kv_format=knobs.kv_format,
        experts=experts,
    )
    return pass_cost(
        machine,
        loads,
        kind=kind,
        sequences=sequences,
        tokens_per_sequence=tokens_per_sequence,
        experts=experts,
        repeats=repeats,
    )


def verify_pass(
    model: ModelSpec,
    machine: Machine,
    design: Design,
    residency: Residency,
    knobs: Knobs,
    refresh_experts: Array,
) -> PassCost:
    """The verify (or plain decode) pass: B x (1 + w gamma) tokens with the original routing.

    ``refresh_experts``: experts per layer a pool refresh writes into the fast tier during this
    pass (their MSB slices, piggy-backed on the LPDDR reads; the write time counts where the
    fast tier's write is not hidden under the operator's other terms).
    """
    unique = residency.unique_experts_per_layer
    if design.cache_policy == "none":
        traffic = no_cache_traffic(model, unique, knobs.weight_format)
    else:
        traffic = cached_traffic(
            model,
            unique,
            unique * residency.resident_unique_frac,
            knobs.weight_format,
            bit_nested=design.bit_nested,
            msb_bits=knobs.draft_bits,
            fill_on_miss=design.cache_policy == "lru",
        )
        traffic = replace(traffic, refresh_experts=np.asarray(refresh_experts))
    return target_pass(
        model,
        machine,
        knobs,
        kind="verify" if design.policy.speculative else "decode",
        sequences=design.sequences,
        tokens_per_sequence=design.verify_tokens_per_sequence,
        experts=traffic,
    )


def self_draft_bits(design: Design, knobs: Knobs) -> tuple[Array | int, str]:
    """A pool draft's bits and rounding: Elastic-SD's MSB slices (the knobs), or quant-sd's
    rounded INT4 copy."""
    if design.draft == "self":
        return knobs.draft_bits, knobs.rounding
    return QUANT_DRAFT_BITS, "round"


def acceptance_of(
    model: ModelSpec, design: Design, residency: Residency, knobs: Knobs, quality: DraftQuality
) -> Speculation:
    """alpha (the ``acceptance`` knob if set, else modelled) and tau of a tree of w candidates
    per depth: per-depth acceptance 1 - (1 - alpha)^w, tau = sum_j<=gamma a^j."""
    draft = design.draft
    if design.policy.reads_pool:
        bits, rounding = self_draft_bits(design, knobs)
        # experts that cannot be sliced (MXFP4) draft at full width
        sliceable = expert_format(model, knobs.weight_format) == "int8"
        modelled = elastic_acceptance(
            quality.profile.alpha_max,
            bits if sliceable else 8.0,
            rounding if sliceable else "round",
            residency.hit_rate_frac,
            quality.params,
        )
    elif draft == "eagle":
        modelled = np.asarray(quality.profile.eagle_acceptance_frac)
    elif draft == "slm":
        modelled = np.asarray(quality.profile.slm_acceptance_frac)
    else:
        modelled = np.zeros(())
    fixed = np.asarray(knobs.acceptance, dtype=float)
    alpha = np.where(np.isfinite(fixed), fixed, modelled)
    gamma = design.draft_length_tokens
    return Speculation(
        policy=design.policy.name,
        draft=draft,
        acceptance_frac=np.where(gamma > 0, alpha, np.nan),
        draft_length_tokens=gamma,
        tau_tokens=tau_width_tree(alpha, design.draft_width, gamma),
    )


def draft_pass(
    model: ModelSpec,
    machine: Machine,
    design: Design,
    residency: Residency,
    p: Array,
    knobs: Knobs,
    separate_loads: list[OpLoad],
) -> PassCost | None:
    """One draft depth of B x w tokens, repeated gamma times (None without a draft).

    A pool draft reads the pool's MSB slices with routing throttled to the pool (the w
    candidates of a depth counted as independent tokens); a separate draft model runs its own
    loads.
    """
    b, gamma, width = design.sequences, design.draft_length_tokens, design.draft_width
    if design.policy.reads_pool:
        unique = routing.throttled_unique(
            p, design.cache_policy, residency.pool_experts_per_layer, b * width
        )
        bits, _ = self_draft_bits(design, knobs)
        traffic = draft_traffic(model, unique, knobs.weight_format, bits)
        return target_pass(
            model,
            machine,
            knobs,
            kind="draft",
            sequences=b,
            tokens_per_sequence=width,
            experts=traffic,
            repeats=gamma,
        )
    if design.policy.separate_draft:
        return pass_cost(
            machine,
            separate_loads,
            kind="draft",
            sequences=b,
            tokens_per_sequence=width,
            repeats=gamma,
        )
    return None
