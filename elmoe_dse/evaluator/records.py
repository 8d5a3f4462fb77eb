"""The typed records the evaluation stages pass along, and the step's cost record.

Field names carry their unit and match the results columns (``hit_rate_frac``,
``acceptance_frac``, ``draft_length_tokens``, ``tau_tokens``). Every array broadcasts over the
design grid; in :class:`StepCost` each is broadcast to the grid's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import MemoryPlan, PlatformKnobs, PlatformModel
from elmoe_dse.policies import DraftKind, Policy
from elmoe_dse.roofline import PassCost, add_dicts, broadcast_shape, compact, sum_arrays
from elmoe_dse.specs.platform import PlatformSpec

if TYPE_CHECKING:
    from elmoe_dse.evaluator.layout import DeviceLayout

Array = np.ndarray


@dataclass(frozen=True)
class Design:
    """The decisions a design point's knobs and platform fix before anything is costed.

    Attributes:
        policy: the decoding policy in force (``auto`` resolved by the platform).
        cache_policy: the pool/cache replacement in force: ``none``, ``lru``, ``hot``, ``random``.
        bit_nested: the pool holds MSB slices (the LSB slice of a resident expert comes from
            the main tier).
        sequences: B, sequences decoded together.
        draft_length_tokens: gamma, draft depth per verify (0 where the step decodes plainly).
        draft_width: w, draft candidates per depth (1 = a chain).
    """

    policy: Policy
    cache_policy: str
    bit_nested: bool
    sequences: Array
    draft_length_tokens: Array
    draft_width: Array

    @property
    def verify_tokens_per_sequence(self) -> Array:
        """T = 1 + w gamma: every drafted node of a sequence plus its root, rejected included."""
        return 1.0 + self.draft_width * self.draft_length_tokens

    @property
    def draft(self) -> DraftKind:
        return self.policy.draft


@dataclass(frozen=True)
class Machine:
    """The platform a design runs on: its spec, family model, knobs (SI) and memory plan."""

    spec: PlatformSpec
    family: PlatformModel
    knobs: PlatformKnobs
    plan: MemoryPlan
    #: the parallel layout stage (elmoe_dse.evaluator.layout.DeviceLayout); None on one device
    layout: DeviceLayout | None = None


@dataclass(frozen=True)
class Residency:
    """The expert pool or cache of a design and what it serves (fractions 0-1).

    Attributes:
        policy: the replacement policy (``none`` without a pool).
        bit_nested: see :class:`Design`.
        pool_experts_per_layer: C, experts per MoE layer in the pool.
        hit_rate_frac: h, share of routed selections the pool serves (the coverage that sets a
            self-draft's acceptance).
        resident_unique_frac: h_U, share of the verify pass's unique experts that are resident.
        unique_experts_per_layer: U, unique experts per MoE layer the verify pass touches.
        overlap_frac: rho_B, the routing process's reuse at this batch (after the locality loss).
        refresh_experts_per_layer: experts per layer entering a window-chosen pool at one
            refresh (0 for LRU, random and no pool).
    """

    policy: str
    bit_nested: bool
    pool_experts_per_layer: Array
    hit_rate_frac: Array
    resident_unique_frac: Array
    unique_experts_per_layer: Array
    overlap_frac: Array
    refresh_experts_per_layer: Array


@dataclass(frozen=True)
class Speculation:
    """Speculation of a design: acceptance alpha (NaN where gamma = 0), gamma and tau.

    ``tau_tokens`` = (1 - alpha^(gamma + 1)) / (1 - alpha), tokens each sequence commits per
    step (1 where the step decodes plainly).
    """

    policy: str
    draft: DraftKind
    acceptance_frac: Array
    draft_length_tokens: Array
    tau_tokens: Array


@dataclass(frozen=True)
class Violations:
    """Where a design is infeasible, one mask per rule (True = violated)."""

    memory: Array
    pool_exceeds_experts: Array
    pool_exceeds_fast_tier: Array

    def masks(self) -> dict[str, Array]:
        """The masks by rule name, in rule order."""
        return {
            "memory": self.memory,
            "pool_exceeds_experts": self.pool_exceeds_experts,
            "pool_exceeds_fast_tier": self.pool_exceeds_fast_tier,
        }

    def any(self) -> Array:
        """True where at least one rule is violated."""
        return np.asarray(np.logical_or.reduce(np.broadcast_arrays(*self.masks().values())))


@dataclass(frozen=True)
class StepCost:
    """Cost of one decode step; every field an array over the design grid.

    How the passes combine (docs/model.md §1, §6, §8):

    - time: ``time_per_step_s`` = sum over ``passes`` of ``repeats x time_s`` (the draft pass
      ``gamma`` times, then the verify pass once); passes run one after another.
    - energy: ``energy_by_component_j`` = the passes' energies summed per component
      (``read_<tier>``, ``write_<tier>``, ``compute``, ``link``, each times its repeats), plus
      ``static`` = ``static_power_w`` (the platform's, from its parts at the design's HB
      capacity and PE count) x ``time_per_step_s``.
    - tokens: ``tokens_per_step`` = B x tau; each sequence gains ``tokens_per_sequence_per_step``
      = tau tokens.
    - feasibility: ``feasible`` is False where a rule of ``violations`` holds;
      ``violation_text`` gives each rule's one-line explanation and ``reason`` joins those that
      occur anywhere on the grid.
    """

    passes: tuple[PassCost, ...]
    tokens_per_step: Array
    tokens_per_sequence_per_step: Array
    time_per_step_s: Array
    energy_by_component_j: dict[str, Array]
    bound: Array
    cache: Residency
    speculative: Speculation
    feasible: Array
    reason: str
    violations: Violations
    violation_text: dict[str, str]
    static_power_w: Array = field(default_factory=lambda: np.zeros(()))

    def inactive_knobs(self, knobs: Knobs, spec: PlatformSpec) -> Array:
        """Per design point, the knobs set away from their default that do not act there,
        comma-joined ('' where none): ``meta.inactive_knobs``
        (:func:`~elmoe_dse.knobs.inactive_knob_names`; a point of zero draft length decodes
        plainly)."""
        from elmoe_dse.knobs import inactive_knob_names

        sp = self.speculative
        plain = (sp.draft == "none") | ~(np.asarray(sp.draft_length_tokens) > 0)
        return inactive_knob_names(
            knobs,
            np.shape(self.feasible),
            tiers=tuple(spec.tiers),
            logic_die=spec.logic_die is not None,
            policy=sp.policy,
            draft=sp.draft,
            cache_policy=self.cache.policy,
            bit_nested=self.cache.bit_nested,
            plain=plain,
        )

    def reason_per_point(self) -> Array:
        """Per design point, the first violated rule's explanation ('' where feasible)."""
        masks = self.violations.masks()
        keys = list(masks)
        small = [compact(np.asarray(m)) for m in masks.values()]  # once per distinct point
        codes = np.zeros(broadcast_shape(*(m.shape for m in small)), dtype=np.int8)
        for i in reversed(range(len(keys))):
            np.copyto(codes, i + 1, where=small[i])
        labels = np.asarray(["", *(self.violation_text[k] for k in keys)], dtype=object)
        return np.broadcast_to(labels[codes], np.shape(self.feasible))  # a read-only view

    @property
    def energy_per_step_j(self) -> Array:
        return sum_arrays(list(self.energy_by_component_j.values()))

    @property
    def throughput_tok_per_s(self) -> Array:
        return self.tokens_per_step / self.time_per_step_s

    @property
    def latency_per_token_s(self) -> Array:
        """Time between two tokens of one sequence: step time / tokens each sequence gains."""
        return self.time_per_step_s / self.tokens_per_sequence_per_step

    @property
    def energy_per_token_j(self) -> Array:
        return self.energy_per_step_j / self.tokens_per_step

    @property
    def bytes_by_tier(self) -> dict[str, Array]:
        return add_dicts([p.bytes_by_tier for p in self.passes])

    def metrics(self) -> dict[str, Array]:
        """The headline metrics, by their result-column names."""
        return {
            "time_per_step_s": self.time_per_step_s,
            "tokens_per_step": self.tokens_per_step,
            "throughput_tok_per_s": self.throughput_tok_per_s,
            "latency_per_token_s": self.latency_per_token_s,
            "energy_per_step_j": self.energy_per_step_j,
            "energy_per_token_j": self.energy_per_token_j,
            "static_power_w": self.static_power_w,
        }
