"""Model + platform + policy + knobs -> cost record, vectorized over the knob grid (MODEL.md 1, 6).

Every policy is one formulation: ``gamma`` draft passes, then one verify pass of T = gamma + 1
tokens per sequence with the original routing at full precision. Plain decoding is gamma = 0 (the
verify pass is then an ordinary decode pass), so gamma = 0 gives plain decoding exactly.

- Verify pass: routing gives the unique experts per MoE layer, U(N) = sum_i [1 - (1 - p_i)^N] with
  N = B x T_eff, T_eff = 1 + (T - 1)(1 - rho): rejected tokens' experts are loaded too (paper: the
  central cost of SD on MoE). Of those, the resident share (hot set, LRU or random pool) is read
  from the fast tier (whole, or as MSB slice + LSB from LPDDR in parallel when bit-nested).
- Draft pass, repeated gamma times, one token per sequence:
  ``elastic-sd``: expert throttling keeps the router's ranking restricted to the pool, so each
  token picks its k experts inside the pool with p'_i = min(1, p_i x k / mass(P)); the draft reads
  only the pool's b_d-bit MSB slices and the non-expert weights from HB (W4A8 experts).
  ``quant-sd``: the same, from a separate 4-bit rounded copy of each pool expert stored beside its
  MSB slice (so the pool holds about half as many experts).
  ``eagle-sd`` / ``slm-sd``: a separate draft model (EAGLE head / small LM) whose weights and KV
  are reserved in the fast tier (or main memory without one) before expert slots.
- Acceptance: the ``acceptance`` knob if set, else the speculative module's model
  (alpha_max x q_bits x q_experts for self-drafts; a dataset profile's rate for EAGLE and SLM).
  tau = (1 - alpha^(gamma + 1)) / (1 - alpha) tokens per sequence per step.
- ``elmoe3d``: gamma_eff = gamma where B >= B* (or where elastic-sd is faster, with B* = auto),
  else 0 (ar-cache from the same bit-nested pool).

Pool refresh (MSB slices of newly hot experts written during verify) is off the critical path
(paper) and, under the stationary routing model here, moves no bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache as memoize

import numpy as np

from elmoe_dse import cache, routing
from elmoe_dse.errors import KnobError
from elmoe_dse.formats import (
    KV_PRECISION,
    WEIGHT_PRECISION,
    msb_bytes_per_param,
    weight_bytes_per_param,
)
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import PlatformModel, families, get, model_for
from elmoe_dse.platforms._base import Footprint, MemoryPlan, PlatformKnobs
from elmoe_dse.policies import POLICIES, Policy
from elmoe_dse.roofline import PassCost, add_dicts, max_and_argmax, sum_arrays
from elmoe_dse.specs.dataset import ModelProfile, load_dataset
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.speculative import (
    AcceptanceParams,
    elastic_acceptance,
    load_acceptance_params,
    tau_chain,
)
from elmoe_dse.workload import (
    ExpertTraffic,
    OpLoad,
    attention_dims,
    cached_traffic,
    decode_pass,
    draft_traffic,
    expert_format,
    kv_bytes_per_token,
    no_cache_traffic,
    nonexpert_read_params,
)

Array = np.ndarray

#: Bits per parameter of quant-sd's separate 4-bit copy: INT4 G32 with FP16 scales.
QUANT_DRAFT_BITS = 4
#: Query heads per KV head of the slm-sd draft (Qwen2.5-0.5B: 14 / 2, arXiv 2412.15115).
SLM_GQA_GROUP = 7


@dataclass(frozen=True)
class DraftQuality:
    """What sets acceptance: a dataset profile's rates for one model, and the shape parameters."""

    profile: ModelProfile
    params: AcceptanceParams


@memoize
def default_quality(model_id: str, dataset: str) -> DraftQuality:
    """The shipped profile of ``dataset`` for ``model_id`` and the shipped acceptance shape."""
    return DraftQuality(load_dataset(dataset).for_model(model_id), load_acceptance_params())


@dataclass(frozen=True)
class CacheInfo:
    """Expert pool or cache of a design: policy, slots and hit rates (fractions 0-1)."""

    policy: str
    bit_nested: bool
    pool_experts_per_layer: Array
    hit_rate: Array
    resident_unique_frac: Array


@dataclass(frozen=True)
class SpecInfo:
    """Speculation of a design: acceptance alpha, effective draft length gamma, tau."""

    policy: str
    draft: str
    acceptance: Array
    draft_length: Array
    tau: Array


@dataclass(frozen=True)
class StepCost:
    """Cost of one decode step; every field an array over the design grid.

    ``energy_by_component_j`` keys: ``read_<tier>``, ``write_<tier>``, ``compute``, ``link``,
    ``static``. ``feasible`` is False where a rule is violated: ``violations`` maps each rule
    (``memory``, ``pool_exceeds_experts``, ``pool_exceeds_fast_tier``) to its mask over the grid,
    ``violation_text`` to its one-line explanation; ``reason`` joins those that occur.
    """

    passes: tuple[PassCost, ...]
    tokens_per_step: Array
    tokens_per_sequence_per_step: Array
    time_per_step_s: Array
    energy_by_component_j: dict[str, Array]
    bound: Array
    cache: CacheInfo
    speculative: SpecInfo
    feasible: Array
    reason: str
    violations: dict[str, Array]
    violation_text: dict[str, str]

    def reason_per_point(self) -> Array:
        """Per design point, the first violated rule's explanation ('' where feasible)."""
        keys = list(self.violations)
        codes = np.zeros(np.shape(self.feasible), dtype=np.int8)
        for i in reversed(range(len(keys))):
            codes[np.broadcast_to(self.violations[keys[i]], codes.shape)] = i + 1
        labels = np.asarray(["", *(self.violation_text[k] for k in keys)], dtype=object)
        return np.asarray(labels[codes])

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


def has_fast_tier(module: PlatformModel) -> bool:
    return module.fast_tier is not None


def resolve_policy(module: PlatformModel, knobs: Knobs) -> Policy:
    """The decoding policy in force: the knob, or the platform family's default."""
    fast = has_fast_tier(module)
    if knobs.policy == "auto":
        return POLICIES[module.default_policy]
    policy = POLICIES[knobs.policy]
    if policy.needs_fast_tier and not fast:
        without = [p.name for p in POLICIES.values() if not p.needs_fast_tier]
        with_fast = [f for f in families() if get(f).fast_tier is not None]
        raise KnobError(
            f"policy '{policy.name}' needs a fast tier to hold the expert pool; family "
            f"'{module.family}' has none (use a platform of family {' or '.join(with_fast)}, "
            f"or policy {', '.join(without[:-1])} or {without[-1]})"
        )
    return policy


def resolve_cache(module: PlatformModel, knobs: Knobs, policy: Policy) -> str:
    """The pool/cache replacement in force: none, lru, hot or random."""
    if not policy.caches_experts or not has_fast_tier(module):
        return "none"
    want = knobs.cache_policy
    if want == "auto":
        return "hot" if policy.fixed_pool else module.default_cache
    if want == "none":
        raise KnobError(f"cache_policy 'none' contradicts policy '{policy.name}'; use policy=ar")
    if policy.fixed_pool and want == "lru":
        raise KnobError(
            f"policy '{policy.name}' drafts from a fixed expert pool; use cache_policy hot or "
            "random"
        )
    return want


def resident_frac(kind: str, p: Array, slots: Array, n_tokens: Array) -> tuple[Array, Array]:
    """(share of routed selections the pool serves, share of a pass's unique experts resident)."""
    if kind == "hot":
        return cache.hot_set_hit_frac(p, slots), cache.hot_set_unique_hit_frac(p, slots, n_tokens)
    if kind == "lru":
        return cache.lru_hit_frac(p, slots), cache.lru_unique_hit_frac(p, slots, n_tokens)
    if kind == "random":
        h = np.asarray(cache.random_pool_hit_frac(p.shape[-1], slots))
        return h, h + np.zeros(np.shape(n_tokens))
    zero = np.zeros(np.broadcast_shapes(np.shape(slots), np.shape(n_tokens)))
    return zero, zero


def capped_pool_probabilities(p: Array, pool: Array) -> Array:
    """Selection probabilities when routing is throttled to the C most popular experts.

    The router's ranking is kept inside the pool (paper 4.3), so each token still picks
    min(k, C) experts: p'_i proportional to p_i for i < C, rescaled to sum min(k, C), capped at 1
    with the excess spread over the uncapped pool members (MODEL.md 4), until none exceeds 1.

    Args:
        p: per-expert selection probabilities, shape (E,), sum k.
        pool: pool sizes C, shape (n,) (floored).
    Returns:
        shape (n, E), each row summing to min(k, C), zero outside the pool.
    """
    k = float(np.sum(p))
    ps = np.sort(np.asarray(p, dtype=float))[::-1]
    inside = np.arange(ps.size) < np.floor(np.asarray(pool, dtype=float))[:, None]
    weights = np.where(inside, ps, 0.0)
    capped = np.zeros(weights.shape, dtype=bool)
    q = weights
    for _ in range(ps.size + 1):  # each round caps at least one more member, or stops
        free = np.where(capped, 0.0, weights)
        free_sum = free.sum(axis=-1, keepdims=True)
        left = np.maximum(k - capped.sum(axis=-1, keepdims=True), 0.0)
        q = np.where(capped, 1.0, left * free / np.where(free_sum > 0, free_sum, 1.0))
        over = q > 1.0 + 1e-12
        if not over.any():
            break
        capped |= over
    return np.asarray(np.minimum(q, 1.0))


def throttled_unique(p: Array, kind: str, pool: Array, n_tokens: Array) -> Array:
    """Unique pool experts N draft tokens touch when routing is throttled to the pool.

    Hot pool (the C most popular experts): :func:`capped_pool_probabilities`. Random pool: its C
    members alike, p'_i = min(1, k / C). U = sum_i [1 - (1 - p'_i)^N]. Evaluated once per
    distinct (C, N) pair of the grid and scattered back.
    """
    k = float(np.sum(p))
    shape, (c, n), inverse = routing.distinct_points(
        np.floor(np.asarray(pool, dtype=float)), np.asarray(n_tokens, dtype=float)
    )
    if kind == "random":
        q = np.minimum(1.0, k / np.maximum(c, 1.0))
        u = np.where(c > 0, c * (1.0 - (1.0 - q) ** n), 0.0)
    else:
        q2 = capped_pool_probabilities(p, c)
        u = np.sum(1.0 - (1.0 - q2) ** n[:, None], axis=-1)
    return np.asarray(u[inverse].reshape(shape))


def eagle_head_params(model: ModelSpec) -> int:
    """EAGLE draft head: one decoder layer (the target's attention, a SwiGLU MLP of 8/3 d) plus the
    feature-fusion FC (2d x d); it reuses the target's LM head (Li et al., EAGLE, ICML 2024)."""
    d = model.hidden_size
    return model.attention_params_per_layer() + 3 * d * (8 * d // 3) + 2 * d * d


def draft_model_loads(
    model: ModelSpec, knobs: Knobs, draft: str, sequences: Array
) -> tuple[list[OpLoad], Array]:
    """Operator loads of one EAGLE or SLM draft pass, and the bytes the draft reserves."""
    b = np.asarray(sequences, dtype=float)
    ctx = np.asarray(knobs.context_len, dtype=float)
    wbpp = weight_bytes_per_param(knobs.weight_format)
    wprec = WEIGHT_PRECISION[knobs.weight_format]
    if draft == "eagle":
        params = np.asarray(float(eagle_head_params(model)))
        kv_per_token = kv_bytes_per_token(model, np.ones(()), knobs.kv_format) / model.num_layers
        kv_per_token = np.asarray(kv_per_token)
        qk, v = attention_dims(model)  # the head's one layer attends like the target's
        attention_ops_per_context_token = np.asarray(float(model.num_attention_heads * (qk + v)))
    else:
        params = np.asarray(knobs.slm_params, dtype=float)
        kv_per_token = np.asarray(knobs.slm_kv_bytes_per_token, dtype=float)
        # K and V FP16 elements per token, each read by SLM_GQA_GROUP query heads: Qwen2.5-0.5B
        # has 14 query heads over 2 KV heads; 24 layers x 14 x (64 + 64) = 12288 / 2 x 7.
        attention_ops_per_context_token = kv_per_token / 2.0 * SLM_GQA_GROUP
    zero = np.zeros_like(b)
    loads = [
        OpLoad(
            "draft_model",
            1,
            {"draft": params * wbpp + zero},
            {},
            2.0 * b * params,
            wprec,
            b * model.hidden_size,
        ),
        OpLoad(
            "draft_attention",
            1,
            {"draft": b * ctx * kv_per_token},
            {"draft": b * kv_per_token},
            2.0 * b * ctx * attention_ops_per_context_token,
            KV_PRECISION[knobs.kv_format],
            zero,
        ),
    ]
    if draft == "eagle":
        head = float(model.lm_head_params() or model.embedding_params())
        loads.append(
            OpLoad("lm_head", 1, {"weights": head * wbpp + zero}, {}, 2.0 * b * head, wprec, zero)
        )
    reserved = params * wbpp + b * ctx * kv_per_token
    return loads, reserved


def footprint(
    model: ModelSpec, knobs: Knobs, *, reserved_bytes: Array | float = 0.0, slot_bytes: Array
) -> Footprint:
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
        slot_bytes_per_expert=np.asarray(slot_bytes),
        num_moe_layers=model.num_moe_layers,
        num_experts=model.num_experts,
    )


def slot_bytes_per_expert(model: ModelSpec, knobs: Knobs, bit_nested: bool, draft: str) -> Array:
    """Bytes one pooled expert takes in the fast tier.

    Bit-nested and sliceable (INT8): its b_d-bit MSB slice + scale; quant-sd adds a separate
    INT4 G32 copy beside it; otherwise the whole expert in its storage format.
    """
    fmt = expert_format(model, knobs.weight_format)
    params = model.expert_params()
    if bit_nested and fmt == "int8":
        slot = params * msb_bytes_per_param(knobs.draft_bits)
        if draft == "quant":
            slot = slot + params * msb_bytes_per_param(QUANT_DRAFT_BITS)
        return np.asarray(slot)
    return np.asarray(params * weight_bytes_per_param(fmt))


def plan_memory(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    module: PlatformModel,
    *,
    reserved: Array,
    bit_nested: bool,
    draft: str,
) -> tuple[MemoryPlan, Array, dict[str, Array]]:
    """The memory plan, the pool size in force (experts per layer) and the violated rules."""
    demand = footprint(
        model,
        knobs,
        reserved_bytes=reserved,
        slot_bytes=slot_bytes_per_expert(model, knobs, bit_nested, draft),
    )
    plan = module.memory_plan(spec, PlatformKnobs.of(knobs), demand)
    want = np.asarray(knobs.pool_experts, dtype=float)
    auto = ~np.isfinite(want)
    asked = np.nan_to_num(want)
    pool = np.where(auto, plan.expert_slots, np.minimum(asked, model.num_experts))
    too_many = ~auto & (asked > model.num_experts)
    violations = {
        "memory": np.asarray(~plan.fits),
        "pool_exceeds_experts": np.asarray(too_many),
        "pool_exceeds_fast_tier": np.asarray(~auto & ~too_many & (asked > plan.expert_slots)),
    }
    return plan, pool, violations


def cost_loads(
    spec: PlatformSpec,
    knobs: Knobs,
    module: PlatformModel,
    plan: MemoryPlan,
    loads: list[OpLoad],
    *,
    kind: str,
    sequences: Array,
    tokens_per_sequence: Array,
    unique: Array,
    resident: Array,
    repeats: Array | None = None,
) -> PassCost:
    """Cost one pass's loads on the platform."""
    ops = module.cost_pass(spec, PlatformKnobs.of(knobs), loads, plan)
    return PassCost(
        kind=kind,
        tokens=np.asarray(sequences) * np.asarray(tokens_per_sequence),
        sequences=np.asarray(sequences),
        unique_experts_per_layer=np.asarray(unique),
        resident_experts_per_layer=np.asarray(resident),
        operators=tuple(ops),
        repeats=np.ones(()) if repeats is None else np.asarray(repeats),
    )


def model_pass(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    module: PlatformModel,
    plan: MemoryPlan,
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
    return cost_loads(
        spec,
        knobs,
        module,
        plan,
        loads,
        kind=kind,
        sequences=sequences,
        tokens_per_sequence=tokens_per_sequence,
        unique=experts.unique,
        resident=experts.resident,
        repeats=repeats,
    )


def step_bound(passes: tuple[PassCost, ...]) -> Array:
    """Per design point, the term (compute, a tier, a link) that binds the most step time."""
    names: list[str] = []
    share: list[Array] = []
    for ps in passes:
        for op in ps.operators:
            busy_s = op.time_s * ps.repeats
            for i, label in enumerate(op.labels):
                if label not in names:
                    names.append(label)
                    share.append(np.zeros(()))
                j = names.index(label)
                share[j] = share[j] + np.where(op.bound == i, busy_s, 0.0)
    _, winner = max_and_argmax(share)
    return np.asarray(names)[winner]


def evaluate(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    p: Array,
    *,
    quality: DraftQuality | None = None,
) -> StepCost:
    """Cost of one decode step of ``model`` on ``spec`` at ``knobs`` (arrays broadcast).

    Args:
        model: the MoE model.
        spec: the platform.
        knobs: design knobs; numeric ones may be arrays.
        p: per-expert selection probabilities of one MoE layer, shape (E,), sum = top-k
            (see :func:`elmoe_dse.routing.expert_probabilities`).
        quality: acceptance inputs (dataset profile + shape); default: the shipped MT-Bench
            profile for this model.
    """
    knobs = knobs.validated()
    p = np.asarray(p, dtype=float)
    if p.shape != (model.num_experts,):
        raise KnobError(
            f"routing has {p.shape[-1]} experts but model '{model.id}' has {model.num_experts}"
        )
    module = model_for(spec)
    policy = resolve_policy(module, knobs)
    q = quality or default_quality(model.id, "mt-bench")
    if not policy.mode_switch:
        return _evaluate(model, spec, knobs, p, q, module, policy, np.asarray(knobs.draft_length))
    gamma = np.asarray(knobs.draft_length)
    threshold = np.asarray(knobs.mode_threshold)
    speculate = np.asarray(knobs.batch_size) >= np.nan_to_num(threshold)
    if not np.all(np.isfinite(threshold)):
        ar = _evaluate(model, spec, knobs, p, q, module, policy, np.zeros_like(gamma))
        sd = _evaluate(model, spec, knobs, p, q, module, policy, gamma)
        faster = sd.throughput_tok_per_s > ar.throughput_tok_per_s
        speculate = np.where(np.isfinite(threshold), speculate, faster)
    return _evaluate(model, spec, knobs, p, q, module, policy, np.where(speculate, gamma, 0))


def _evaluate(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    p: Array,
    quality: DraftQuality,
    module: PlatformModel,
    policy: Policy,
    gamma: Array,
) -> StepCost:
    """One policy at draft lengths ``gamma`` (0 where the step decodes plainly)."""
    draft = policy.draft
    if draft == "none":
        gamma = np.zeros_like(gamma)
    kind = resolve_cache(module, knobs, policy)
    bit_nested = kind != "none" and (module.bit_nested or draft in ("self", "quant"))
    b = np.asarray(knobs.batch_size, dtype=float)

    draft_loads: list[OpLoad] = []
    reserved: Array = np.zeros(())
    if draft in ("eagle", "slm"):
        draft_loads, reserved = draft_model_loads(model, knobs, draft, b)
    plan, pool, violations = plan_memory(
        model, spec, knobs, module, reserved=reserved, bit_nested=bit_nested, draft=draft
    )
    if kind == "none":
        pool = np.zeros_like(pool)

    # Verify (or plain decode) pass: B x (gamma + 1) tokens with the original routing.
    tokens = gamma + 1.0
    n_eff = routing.effective_tokens(b, tokens, knobs.overlap_frac)
    unique = routing.unique_experts(p, n_eff)
    coverage, res_frac = resident_frac(kind, p, pool, n_eff)
    if kind == "none":
        traffic = no_cache_traffic(model, unique, knobs.weight_format)
    else:
        traffic = cached_traffic(
            model,
            unique,
            unique * res_frac,
            knobs.weight_format,
            bit_nested=bit_nested,
            msb_bits=knobs.draft_bits,
            fill_on_miss=kind == "lru",
        )
    verify = model_pass(
        model,
        spec,
        knobs,
        module,
        plan,
        kind="verify" if draft != "none" else "decode",
        sequences=b,
        tokens_per_sequence=tokens,
        experts=traffic,
    )

    # Acceptance and tau.
    sliceable = expert_format(model, knobs.weight_format) == "int8"
    fixed = np.asarray(knobs.acceptance, dtype=float)
    # The self-drafts' bits: Elastic-SD's MSB slices (knobs), quant-sd's rounded INT4 copy;
    # experts that cannot be sliced (MXFP4) draft at full width.
    draft_bits, rounding = (
        (knobs.draft_bits, knobs.rounding) if draft == "self" else (QUANT_DRAFT_BITS, "round")
    )
    if draft in ("self", "quant"):
        modelled = elastic_acceptance(
            quality.profile.alpha_max,
            draft_bits if sliceable else 8.0,
            rounding if sliceable else "round",
            coverage,
            quality.params,
        )
    elif draft == "eagle":
        modelled = np.asarray(quality.profile.eagle_acceptance_frac)
    elif draft == "slm":
        modelled = np.asarray(quality.profile.slm_acceptance_frac)
    else:
        modelled = np.zeros(())
    alpha = np.where(np.isfinite(fixed), fixed, modelled)
    tau = tau_chain(alpha, gamma)

    passes: tuple[PassCost, ...] = (verify,)
    if draft in ("self", "quant"):
        d_unique = throttled_unique(p, kind, pool, b)
        d_traffic = draft_traffic(model, d_unique, knobs.weight_format, draft_bits)
        d_pass = model_pass(
            model,
            spec,
            knobs,
            module,
            plan,
            kind="draft",
            sequences=b,
            tokens_per_sequence=np.ones(()),
            experts=d_traffic,
            repeats=gamma,
        )
        passes = (d_pass, verify)
    elif draft in ("eagle", "slm"):
        d_pass = cost_loads(
            spec,
            knobs,
            module,
            plan,
            draft_loads,
            kind="draft",
            sequences=b,
            tokens_per_sequence=np.ones(()),
            unique=np.zeros(()),
            resident=np.zeros(()),
            repeats=gamma,
        )
        passes = (d_pass, verify)

    time_s = sum_arrays([ps.time_s for ps in passes])
    energy = add_dicts([ps.energy_j for ps in passes])
    energy["static"] = spec.static_power_w * time_s
    violation_text = {
        "memory": plan.reason,
        "pool_exceeds_experts": f"pool_experts exceeds the model's {model.num_experts} experts "
        "per layer; lower it or use auto",
        "pool_exceeds_fast_tier": "pool_experts does not fit in the fast tier after the KV cache,"
        " the non-expert weights and any draft model; lower it, use auto, or raise "
        "hb_capacity_gb",
    }
    feasible = ~np.logical_or.reduce(np.broadcast_arrays(*violations.values()))
    reasons = [violation_text[k] for k, v in violations.items() if np.any(v)]
    shape = np.broadcast_shapes(np.shape(time_s), b.shape, np.shape(tau), np.shape(feasible))
    cache_info = CacheInfo(
        policy=kind,
        bit_nested=bit_nested,
        pool_experts_per_layer=np.broadcast_to(pool, shape),
        hit_rate=np.broadcast_to(coverage, shape),
        resident_unique_frac=np.broadcast_to(res_frac, shape),
    )
    spec_info = SpecInfo(
        policy=policy.name,
        draft=draft,
        acceptance=np.broadcast_to(np.where(gamma > 0, alpha, np.nan), shape),
        draft_length=np.broadcast_to(gamma, shape),
        tau=np.broadcast_to(tau, shape),
    )
    return StepCost(
        passes=passes,
        tokens_per_step=np.broadcast_to(b * tau, shape),
        tokens_per_sequence_per_step=np.broadcast_to(tau, shape),
        time_per_step_s=np.broadcast_to(time_s, shape),
        energy_by_component_j={k: np.broadcast_to(v, shape) for k, v in energy.items()},
        bound=np.broadcast_to(step_bound(passes), shape),
        cache=cache_info,
        speculative=spec_info,
        feasible=np.broadcast_to(feasible, shape),
        reason="; ".join(reasons),
        violations={k: np.broadcast_to(v, shape) for k, v in violations.items()},
        violation_text=violation_text,
    )
