"""Model + platform + policy + knobs -> cost record, vectorized over the knob grid (docs/model.md
§1, §6).

Every policy is one formulation: ``gamma`` draft passes, then one verify pass of T = gamma + 1
tokens per sequence with the original routing at full precision. Plain decoding is gamma = 0 (the
verify pass is then an ordinary decode pass), so gamma = 0 gives plain decoding exactly.

- Verify pass: routing gives the unique experts per MoE layer, U(N) = sum_i [1 - (1 - p_i)^N] with
  N = B x T_eff, T_eff = 1 + (T - 1)(1 - rho): rejected tokens' experts are loaded too (paper: the
  central cost of SD on MoE). Of those, the resident share (hot set, LRU or random pool) is read
  from the fast tier (whole, or as MSB slice + LSB from LPDDR in parallel when bit-nested).
- Draft pass, repeated gamma times, one token per sequence (the draft kinds of
  :mod:`elmoe_dse.policies`): a pool draft (``self``, ``quant``) keeps the router's ranking
  restricted to the pool, so each token picks its k experts inside the pool with
  p'_i = min(1, p_i x k / mass(P)), and reads only the pool's b_d-bit MSB slices (or the separate
  4-bit copy stored beside them, so the pool holds about half as many experts) and the
  non-expert weights; a separate draft model (``eagle``, ``slm``) has its weights and KV reserved
  in the fast tier (or main memory without one) before expert slots.
- Acceptance: the ``acceptance`` knob if set, else the speculative module's model
  (alpha_max x q_bits x q_experts for pool drafts; a dataset profile's rate for EAGLE and SLM).
  tau = (1 - alpha^(gamma + 1)) / (1 - alpha) tokens per sequence per step.
- Mode switch (the ``elmoe3d`` policy): gamma_eff = gamma where B >= B* (or where speculating is
  faster, with B* = auto), else 0 (plain decoding from the same bit-nested pool).

Pool refresh (MSB slices of newly hot experts written during verify) is off the critical path
(paper) and, under the stationary routing model here, moves no bytes.

The stages are in :mod:`elmoe_dse.evaluator.stages`, the records in
:mod:`elmoe_dse.evaluator.records` and the step-level rule in :mod:`elmoe_dse.evaluator.assemble`.
"""

from __future__ import annotations

import numpy as np

from elmoe_dse import platforms
from elmoe_dse.errors import KnobError
from elmoe_dse.evaluator.assemble import step_cost
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
    """
    knobs = knobs.validated()
    p = np.asarray(routing_probs, dtype=float)
    if p.shape != (model.num_experts,):
        raise KnobError(
            f"routing has {p.shape[-1]} experts but model '{model.id}' has {model.num_experts}"
        )
    family = platforms.model_for(spec)
    policy = resolve_policy(family, knobs)
    gamma = np.asarray(knobs.draft_length)

    def at(draft_length: Array) -> StepCost:
        return _step(model, spec, family, policy, knobs, p, quality, draft_length)

    if not policy.mode_switch:
        return at(gamma)
    threshold = np.asarray(knobs.mode_threshold)
    speculate = np.asarray(knobs.batch_size) >= np.nan_to_num(threshold)
    if not np.all(np.isfinite(threshold)):
        faster = at(gamma).throughput_tok_per_s > at(np.zeros_like(gamma)).throughput_tok_per_s
        speculate = np.where(np.isfinite(threshold), speculate, faster)
    return at(np.where(speculate, gamma, 0))


def _step(
    model: ModelSpec,
    spec: PlatformSpec,
    family: PlatformModel,
    policy: Policy,
    knobs: Knobs,
    p: Array,
    quality: DraftQuality,
    gamma: Array,
) -> StepCost:
    """One policy at draft lengths ``gamma`` (0 where the step decodes plainly)."""
    design = design_of(policy, family, knobs, gamma)
    separate_loads, reserved = separate_draft(model, design, knobs)
    demand = demand_of(model, design, knobs, reserved)
    platform_knobs = PlatformKnobs.of(knobs)
    plan = family.memory_plan(spec, platform_knobs, demand)
    machine = Machine(spec, family, platform_knobs, plan)
    pool, violations = pool_in_force(plan, design, knobs.pool_experts, model.num_experts)
    residency = residency_of(design, p, pool, knobs.overlap_frac)
    verify = verify_pass(model, machine, design, residency, knobs)
    speculation = acceptance_of(model, design, residency, knobs, quality)
    draft = draft_pass(model, machine, design, residency, p, knobs, separate_loads)
    passes = (verify,) if draft is None else (draft, verify)
    return step_cost(
        passes,
        design,
        residency,
        speculation,
        violations,
        plan=plan,
        static_power_w=platforms.static_power_w(spec, platform_knobs),
        num_experts=model.num_experts,
    )
