"""Model + platform + policy + knobs -> cost record, vectorized over the knob grid (docs/model.md
§1, §6).

Every policy is one formulation: ``gamma`` draft depths of ``w`` candidates per sequence
(``draft_width``; w = 1 is a chain), then one verify pass of T = 1 + w gamma tokens per sequence
with the original routing at full precision. Plain decoding is gamma = 0 (the verify pass is then
an ordinary decode pass), so gamma = 0 gives plain decoding exactly.

- Routing: one correlated process for every mechanism (:mod:`elmoe_dse.locality`): each token
  keeps each of its predecessor's experts with probability rho_B and draws the rest in
  proportion to p; rho_B = rho / (1 + (B - 1) / B_loc) is the loss of locality as the batch
  grows (B_loc from the dataset profile), the same for every platform and cache.
- Verify pass: U = sum_i [1 - ((1 - pi_i)(1 - g_i)^(T - 1))^B] unique experts per MoE layer:
  rejected nodes' experts are loaded too (paper: the central cost of SD on MoE). Of those, the
  resident share (window-chosen hot pool, LRU or random pool) is read from the fast tier
  (whole, or as MSB slice + LSB from LPDDR in parallel when bit-nested).
- Draft depth, repeated gamma times, w tokens per sequence (the draft kinds of
  :mod:`elmoe_dse.policies`): a pool draft (``self``, ``quant``) keeps the router's ranking
  restricted to the pool, so each token picks its k experts inside the pool with
  p'_i = min(1, p_i x k / mass(P)), and reads only the pool's b_d-bit MSB slices (or the separate
  4-bit copy stored beside them, so the pool holds about half as many experts) and the
  non-expert weights; a separate draft model (``eagle``, ``slm``) has its weights and KV reserved
  in the fast tier (or main memory without one) before expert slots.
- Acceptance: the ``acceptance`` knob if set, else the speculative module's model
  (alpha_max x q_bits x q_experts for pool drafts, coverage = the window pool's hit rate; a
  dataset profile's rate for EAGLE and SLM). Per-depth acceptance a = 1 - (1 - alpha)^w,
  tau = (1 - a^(gamma + 1)) / (1 - a) tokens per sequence per step.
- Mode switch (the ``elmoe3d`` policy): gamma_eff = gamma where B >= B* (or where speculating is
  faster, with B* = auto), else 0 (plain decoding from the same bit-nested pool).
- Pool refresh: the hot pool is the top-C by routing counts over the last W tokens per sequence;
  min(1, tau / W) refreshes per step each write the MSB slices of the experts that enter it
  into the fast tier during verify (bytes, write energy, and time where not hidden).

The stages are in :mod:`elmoe_dse.evaluator.stages`, the records in
:mod:`elmoe_dse.evaluator.records` and the step-level rule in :mod:`elmoe_dse.evaluator.assemble`.
"""

from __future__ import annotations

import numpy as np

from elmoe_dse import platforms
from elmoe_dse.errors import KnobError
from elmoe_dse.evaluator.assemble import step_cost
from elmoe_dse.evaluator.layout import device_footprint, device_layout, device_plan
from elmoe_dse.evaluator.records import (
    Design,
    Machine,
    Residency,
    Speculation,
    StepCost,
    Violations,
)
from elmoe_dse.evaluator.stages import (
    acceptance_of,
    demand_of,
    design_of,
    draft_pass,
    pool_in_force,
    refreshes_per_step,
    residency_of,
    resolve_policy,
    separate_draft,
    verify_pass,
)
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import PlatformKnobs, PlatformModel
from elmoe_dse.policies import Policy
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.speculative import DraftQuality

__all__ = [
    "Design",
    "DraftQuality",
    "Residency",
    "Speculation",
    "StepCost",
    "Violations",
    "evaluate",
]

Array = np.ndarray


def evaluate(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    routing_probs: Array,
    *,
    quality: DraftQuality,
    residency_memo: ResidencyMemo | None = None,
) -> StepCost:
    """Cost of one decode step of ``model`` on ``spec`` at ``knobs`` (arrays broadcast).

    Args:
        model: the MoE model.
        spec: the platform.
        knobs: design knobs; numeric ones may be arrays.
        routing_probs: per-expert selection probabilities of one MoE layer, shape (E,),
            sum = top-k (see :func:`elmoe_dse.routing.expert_probabilities`).
        quality: acceptance inputs (a dataset profile for this model + the acceptance shape),
            e.g. :attr:`elmoe_dse.scenario.Scenario.quality`.
        residency_memo: where calls that share a routing process (the same routing, reuse,
            pool and window, other parameters differing) keep the pool's residency, solved
            once (:func:`memo_residency`); ``None`` solves it every call.
    """
    p = np.asarray(routing_probs, dtype=float)
    # each knob keeps its own shape (an open mesh, broadcast at the end), but S stacked draws
    # (p of shape (S, E), :mod:`~elmoe_dse.evaluator.ensemble`) broadcast every knob to the
    # grid with its sample axis: the per-draw routing solves find the draws on each of them
    knobs = knobs.validated(broadcast=p.ndim == 2)
    if p.ndim > 2 or p.shape[-1:] != (model.num_experts,):  # (E,), or (S, E): S draws
        raise KnobError(
            f"routing has {p.shape[-1]} experts but model '{model.id}' has {model.num_experts}"
        )
    family = platforms.model_for(spec)
    policy = resolve_policy(family, knobs)
    gamma = np.asarray(knobs.draft_length)

    def at(draft_length: Array) -> StepCost:
        return _step(model, spec, family, policy, knobs, p, quality, draft_length, residency_memo)

    if not policy.mode_switch:
        return at(gamma)
    threshold = np.asarray(knobs.mode_threshold)
    speculate = np.asarray(knobs.batch_size) >= np.nan_to_num(threshold)
    if not np.all(np.isfinite(threshold)):
        faster = at(gamma).throughput_tok_per_s > at(np.zeros_like(gamma)).throughput_tok_per_s
        speculate = np.where(np.isfinite(threshold), speculate, faster)
    return at(np.where(speculate, gamma, 0))


#: Residencies already solved, by everything :func:`residency_of` reads (:func:`memo_residency`).
ResidencyMemo = dict[tuple[object, ...], Residency]


def _array_key(x: object) -> tuple[object, ...]:
    arr = np.asarray(x, dtype=float)
    return (arr.shape, arr.tobytes())


def memo_residency(
    memo: ResidencyMemo | None,
    design: Design,
    p: Array,
    pool: Array,
    overlap_frac: Array,
    quality: DraftQuality,
) -> Residency:
    """:func:`residency_of`, kept in ``memo`` under every input it reads: the cache policy, the
    bit nesting, sequences and verify tokens per sequence, the routing, pool, reuse, and the
    dataset's locality terms."""
    if memo is None:
        return residency_of(design, p, pool, overlap_frac, quality)
    profile = quality.profile
    key = (
        design.cache_policy,
        design.bit_nested,
        _array_key(design.sequences),
        _array_key(design.verify_tokens_per_sequence),
        _array_key(p),
        _array_key(pool),
        _array_key(overlap_frac),
        _array_key(profile.batch_locality_scale),
        _array_key(profile.pool_window_tokens),
    )
    if key not in memo:
        memo[key] = residency_of(design, p, pool, overlap_frac, quality)
    return memo[key]


def _step(
    model: ModelSpec,
    spec: PlatformSpec,
    family: PlatformModel,
    policy: Policy,
    knobs: Knobs,
    p: Array,
    quality: DraftQuality,
    gamma: Array,
    memo: ResidencyMemo | None = None,
) -> StepCost:
    """One policy at draft lengths ``gamma`` (0 where the step decodes plainly)."""
    design = design_of(policy, family, knobs, gamma)
    separate_loads, reserved = separate_draft(model, design, knobs)
    demand = demand_of(model, design, knobs, reserved)
    platform_knobs = PlatformKnobs.of(knobs)
    layout = device_layout(model, spec, knobs, p)
    if layout is not None:
        demand = device_footprint(layout, demand)
    plan = family.memory_plan(spec, platform_knobs, demand)
    if layout is not None:
        plan = device_plan(layout, plan, demand, spec, model.num_experts)
    machine = Machine(spec, family, platform_knobs, plan, layout)
    pool, violations = pool_in_force(plan, design, knobs.pool_experts, model.num_experts)
    residency = memo_residency(memo, design, p, pool, knobs.overlap_frac, quality)
    speculation = acceptance_of(model, design, residency, knobs, quality)
    refresh = residency.refresh_experts_per_layer * refreshes_per_step(speculation, quality)
    verify = verify_pass(model, machine, design, residency, knobs, refresh)
    draft = draft_pass(model, machine, design, residency, p, knobs, separate_loads)
    passes = (verify,) if draft is None else (draft, verify)
    return step_cost(
        passes,
        design,
        residency,
        speculation,
        violations,
        plan=plan,
        static_power_w=platforms.static_power_w(spec, platform_knobs)
        * (1.0 if layout is None else layout.layout.devices),
        num_experts=model.num_experts,
        shape=knobs.shape,
    )
