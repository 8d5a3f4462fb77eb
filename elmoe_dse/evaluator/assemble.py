"""The step-level rule: passes -> time, energy (with static), feasibility and the cost record.

The rule itself is written on :class:`~elmoe_dse.evaluator.records.StepCost`; here the arrays of
the stages are combined and broadcast to the grid's shape.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from elmoe_dse.evaluator.records import Design, Residency, Speculation, StepCost, Violations
from elmoe_dse.platforms import MemoryPlan
from elmoe_dse.roofline import PassCost, add_dicts, add_into, max_and_argmax, sum_arrays

Array = np.ndarray


def step_bound(passes: tuple[PassCost, ...]) -> Array:
    """Per design point, the term (compute, a tier, a link) that binds the most step time (an
    object array of the labels)."""
    names: list[str] = []
    share: list[Array] = []
    owned: list[bool] = []
    for ps in passes:
        for op in ps.operators:
            busy_s = op.time_s * ps.repeats
            bound = np.asarray(op.bound)
            for i, label in enumerate(op.labels):
                if label not in names:
                    names.append(label)
                    share.append(np.zeros(()))
                    owned.append(False)
                binds = bound == i
                count = np.count_nonzero(binds)
                if not count:  # a term that binds no point adds only zeros: the same sums
                    continue
                j = names.index(label)
                where = None if count == bound.size else binds
                share[j], owned[j] = add_into(share[j], busy_s, owned[j], where)
    _, winner = max_and_argmax(share)
    return np.asarray(names, dtype=object)[winner]  # the labels shared, not a string per point


def violation_texts(plan: MemoryPlan, num_experts: int) -> dict[str, str]:
    """One line per feasibility rule: what is wrong and what to change."""
    return {
        "memory": plan.reason,
        "pool_exceeds_experts": f"pool_experts exceeds the model's {num_experts} experts "
        "per layer; lower it or use auto",
        "pool_exceeds_fast_tier": "pool_experts does not fit in the fast tier after the KV cache,"
        " the non-expert weights and any draft model; lower it, use auto, or raise "
        "hb_capacity_gb",
    }


def step_cost(
    passes: tuple[PassCost, ...],
    design: Design,
    residency: Residency,
    speculation: Speculation,
    violations: Violations,
    *,
    plan: MemoryPlan,
    static_power_w: Array | float,
    num_experts: int,
    shape: tuple[int, ...] = (),
) -> StepCost:
    """Combine the passes by the rule of :class:`StepCost` and broadcast to the grid's shape
    (``shape``: the knobs', which the arrays of the stages may not all span)."""
    time_s = sum_arrays([ps.time_s for ps in passes])
    energy = add_dicts([ps.energy_j for ps in passes])
    energy["static"] = static_power_w * time_s
    text = violation_texts(plan, num_experts)
    masks = violations.masks()
    feasible = ~violations.any()
    tau, b = speculation.tau_tokens, design.sequences
    shape = np.broadcast_shapes(shape, np.shape(time_s), b.shape, np.shape(tau), np.shape(feasible))

    def grid(a: Array) -> Array:
        return np.broadcast_to(a, shape)

    return StepCost(
        passes=passes,
        tokens_per_step=grid(b * tau),
        tokens_per_sequence_per_step=grid(tau),
        time_per_step_s=grid(time_s),
        energy_by_component_j={k: grid(v) for k, v in energy.items()},
        bound=grid(step_bound(passes)),
        cache=replace(
            residency,
            pool_experts_per_layer=grid(residency.pool_experts_per_layer),
            hit_rate_frac=grid(residency.hit_rate_frac),
            resident_unique_frac=grid(residency.resident_unique_frac),
            unique_experts_per_layer=grid(residency.unique_experts_per_layer),
            overlap_frac=grid(residency.overlap_frac),
            refresh_experts_per_layer=grid(residency.refresh_experts_per_layer),
        ),
        speculative=replace(
            speculation,
            acceptance_frac=grid(speculation.acceptance_frac),
            draft_length_tokens=grid(speculation.draft_length_tokens),
            tau_tokens=grid(tau),
        ),
        feasible=grid(feasible),
        reason="; ".join(text[k] for k, v in masks.items() if np.any(v)),
        violations=Violations(**{k: grid(v) for k, v in masks.items()}),
        violation_text=text,
        static_power_w=grid(np.asarray(static_power_w, dtype=float)),
    )
