"""Model + platform + policy + knobs -> cost record, vectorized over the knob grid (MODEL.md 1).

One decode step is a sequence of passes (a plain decode pass here; draft and verify passes for
speculative policies). Each pass: routing gives the unique experts per MoE layer,
U(N) = sum_i [1 - (1 - p_i)^N] with N = B x T_eff; the platform's memory plan gives the fast tier's
expert slots; the cache policy gives how many of the U experts are resident; the workload gives
bytes and ops per operator; the platform costs each operator on its roofline. The step adds the
passes and static energy = static power x step time.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from elmoe_dse import cache, routing
from elmoe_dse.errors import KnobError
from elmoe_dse.formats import msb_bytes_per_param, weight_bytes_per_param
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import family_module
from elmoe_dse.platforms._common import Footprint, MemoryPlan
from elmoe_dse.roofline import PassCost, add_dicts, sum_arrays
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.workload import (
    ExpertTraffic,
    cached_traffic,
    decode_pass,
    expert_format,
    kv_bytes_per_token,
    no_cache_traffic,
    nonexpert_read_params,
)

Array = np.ndarray


@dataclass(frozen=True)
class CacheInfo:
    """Expert cache of a design: policy, slots and hit rates (fractions 0-1)."""

    policy: str
    bit_nested: bool
    pool_experts_per_layer: Array
    hit_rate: Array
    resident_unique_frac: Array


@dataclass(frozen=True)
class StepCost:
    """Cost of one decode step; every field an array over the design grid.

    ``energy_by_component_j`` keys: ``read_<tier>``, ``write_<tier>``, ``compute``, ``link``,
    ``static``. ``feasible`` is False where the design does not fit its memories (``reason``).
    """

    passes: tuple[PassCost, ...]
    tokens_per_step: Array
    tokens_per_sequence_per_step: Array
    time_per_step_s: Array
    energy_by_component_j: dict[str, Array]
    bound: Array
    cache: CacheInfo
    feasible: Array
    reason: str

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
        }


def resolve_policy(module: ModuleType, knobs: Knobs) -> str:
    """The decoding policy in force: the knob, or the platform family's default."""
    has_fast_tier = module.DEFAULT_CACHE != "none"
    policy = knobs.policy
    if policy == "auto":
        return "ar-cache" if has_fast_tier else "ar"
    if policy == "ar-cache" and not has_fast_tier:
        raise KnobError(
            f"policy 'ar-cache' needs a fast tier to cache experts in; family '{module.FAMILY}' "
            "has none (use an hb-xpu or elmoe3d platform, or policy=ar)"
        )
    return policy


def resolve_cache(module: ModuleType, knobs: Knobs, policy: str) -> str:
    """The cache replacement policy: none without caching, else the knob or the family default."""
    if policy == "ar":
        return "none"
    if knobs.cache_policy == "auto":
        return str(module.DEFAULT_CACHE)
    if knobs.cache_policy == "none":
        raise KnobError("cache_policy 'none' contradicts policy 'ar-cache'; use policy=ar")
    return knobs.cache_policy


def resident_frac(kind: str, p: Array, slots: Array, n_tokens: Array) -> tuple[Array, Array]:
    """(share of routed selections served, share of a pass's unique experts resident)."""
    e = p.shape[-1]
    if kind == "hot":
        return cache.hot_set_hit_frac(p, slots), cache.hot_set_unique_hit_frac(p, slots, n_tokens)
    if kind == "lru":
        return cache.lru_hit_frac(p, slots), cache.lru_unique_hit_frac(p, slots, n_tokens)
    if kind == "random":
        h = cache.random_pool_hit_frac(e, slots)
        return h, h + np.zeros(np.shape(n_tokens))
    zero = np.zeros(np.broadcast_shapes(np.shape(slots), np.shape(n_tokens)))
    return zero, zero


def footprint(model: ModelSpec, knobs: Knobs, *, reserved_bytes: Array | float = 0.0) -> Footprint:
    """Bytes held: non-expert weights read per pass, every routed expert, the batch's KV."""
    wbpp = weight_bytes_per_param(knobs.weight_format)
    ebpp = weight_bytes_per_param(expert_format(model, knobs.weight_format))
    return Footprint(
        nonexpert_bytes=np.asarray(nonexpert_read_params(model) * wbpp),
        expert_bytes=np.asarray(
            model.num_moe_layers * model.num_experts * model.expert_params() * ebpp
        ),
        kv_bytes=np.asarray(knobs.batch_size)
        * kv_bytes_per_token(model, knobs.context_len, knobs.kv_format),
        reserved_bytes=np.asarray(reserved_bytes),
    )


def slot_bytes_per_expert(model: ModelSpec, knobs: Knobs, bit_nested: bool) -> Array:
    """Bytes one cached expert takes: its MSB slice (+ scale) if bit-nested and sliceable."""
    fmt = expert_format(model, knobs.weight_format)
    if bit_nested and fmt == "int8":
        return np.asarray(model.expert_params() * msb_bytes_per_param(knobs.msb_bits))
    return np.asarray(model.expert_params() * weight_bytes_per_param(fmt))


def plan_memory(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    module: ModuleType,
    *,
    reserved: Array | float,
) -> tuple[MemoryPlan, Array, Array]:
    """The memory plan, the pool size in force (experts per layer) and feasibility."""
    bit_nested = bool(module.BIT_NESTED)
    plan: MemoryPlan = module.memory_plan(
        spec,
        knobs,
        footprint(model, knobs, reserved_bytes=reserved),
        num_moe_layers=model.num_moe_layers,
        num_experts=model.num_experts,
        slot_bytes_per_expert=slot_bytes_per_expert(model, knobs, bit_nested),
    )
    want = np.asarray(knobs.pool_experts, dtype=float)
    auto = ~np.isfinite(want)
    pool = np.where(auto, plan.expert_slots, np.minimum(np.nan_to_num(want), model.num_experts))
    feasible = plan.fits & (auto | (np.nan_to_num(want) <= plan.expert_slots))
    return plan, pool, np.asarray(feasible)


def cost_pass(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    module: ModuleType,
    plan: MemoryPlan,
    *,
    kind: str,
    sequences: Array,
    tokens_per_sequence: Array,
    experts: ExpertTraffic,
) -> PassCost:
    """Cost one pass on the platform."""
    loads = decode_pass(
        model,
        sequences=sequences,
        tokens_per_sequence=tokens_per_sequence,
        context_len=knobs.context_len,
        weight_format=knobs.weight_format,
        kv_format=knobs.kv_format,
        experts=experts,
    )
    ops = module.cost_pass(spec, knobs, loads, plan)
    return PassCost(
        kind=kind,
        tokens=np.asarray(sequences) * np.asarray(tokens_per_sequence),
        sequences=np.asarray(sequences),
        unique_experts_per_layer=experts.unique,
        resident_experts_per_layer=experts.resident,
        operators=tuple(ops),
    )


def step_bound(passes: tuple[PassCost, ...]) -> Array:
    """Per design point, the term (compute, a tier, a link) that binds the most step time."""
    share: dict[str, Array] = {}
    for ps in passes:
        for op in ps.operators:
            labels = op.bound_label()
            for label in op.labels:
                share[label] = share.get(label, 0.0) + np.where(labels == label, op.time_s, 0.0)
    names = list(share)
    stacked = np.stack(np.broadcast_arrays(*share.values()), axis=0)
    return np.asarray(names, dtype=object)[np.argmax(stacked, axis=0)]


def assemble(
    spec: PlatformSpec,
    passes: tuple[PassCost, ...],
    *,
    tokens_per_sequence: Array,
    sequences: Array,
    cache_info: CacheInfo,
    feasible: Array,
    reason: str,
) -> StepCost:
    """Add passes into a step: times add, energies add, static energy = power x time."""
    time_s = sum_arrays([p.time_s for p in passes])
    energy = add_dicts([p.energy_j for p in passes])
    energy["static"] = spec.static_power_w * time_s
    shape = np.broadcast_shapes(
        np.shape(time_s), np.shape(sequences), np.shape(tokens_per_sequence)
    )
    return StepCost(
        passes=passes,
        tokens_per_step=np.broadcast_to(np.asarray(sequences) * tokens_per_sequence, shape),
        tokens_per_sequence_per_step=np.broadcast_to(np.asarray(tokens_per_sequence), shape),
        time_per_step_s=np.broadcast_to(time_s, shape),
        energy_by_component_j={k: np.broadcast_to(v, shape) for k, v in energy.items()},
        bound=step_bound(passes),
        cache=cache_info,
        feasible=np.broadcast_to(feasible, shape),
        reason=reason,
    )


def evaluate(model: ModelSpec, spec: PlatformSpec, knobs: Knobs, p: Array) -> StepCost:
    """Cost of one decode step of ``model`` on ``spec`` at ``knobs`` (arrays broadcast).

    Args:
        model: the MoE model.
        spec: the platform.
        knobs: design knobs; numeric ones may be arrays.
        p: per-expert selection probabilities of one MoE layer, shape (E,), sum = top-k
            (see :func:`elmoe_dse.routing.expert_probabilities`).
    """
    knobs = knobs.validated()
    if p.shape != (model.num_experts,):
        raise KnobError(
            f"routing has {p.shape[-1]} experts but model '{model.id}' has {model.num_experts}"
        )
    module = family_module(spec.family)
    policy = resolve_policy(module, knobs)
    kind = resolve_cache(module, knobs, policy)
    plan, pool, feasible = plan_memory(model, spec, knobs, module, reserved=0.0)
    b = np.asarray(knobs.batch_size, dtype=float)
    n_eff = routing.effective_tokens(b, 1.0, knobs.overlap_frac)
    unique = routing.unique_experts(p, n_eff)
    if kind == "none":
        pool = np.zeros_like(pool)
        traffic = no_cache_traffic(model, unique, knobs.weight_format)
        hit, res_frac = resident_frac("none", p, pool, n_eff)
    else:
        hit, res_frac = resident_frac(kind, p, pool, n_eff)
        traffic = cached_traffic(
            model,
            unique,
            unique * res_frac,
            knobs.weight_format,
            bit_nested=bool(module.BIT_NESTED),
            msb_bits=knobs.msb_bits,
        )
    decode = cost_pass(
        model,
        spec,
        knobs,
        module,
        plan,
        kind="decode",
        sequences=b,
        tokens_per_sequence=np.ones(()),
        experts=traffic,
    )
    info = CacheInfo(
        policy=kind,
        bit_nested=bool(module.BIT_NESTED) and kind != "none",
        pool_experts_per_layer=pool,
        hit_rate=np.asarray(hit),
        resident_unique_frac=np.asarray(res_frac),
    )
    return assemble(
        spec,
        (decode,),
        tokens_per_sequence=np.ones(()),
        sequences=b,
        cache_info=info,
        feasible=feasible,
        reason=plan.reason,
    )
