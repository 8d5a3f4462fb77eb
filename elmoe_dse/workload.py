"""Bytes held and bytes and ops per operator of one decode pass (docs/model.md §2, §3, §7).

A pass processes ``N = B x T`` tokens: ``B`` sequences with ``T`` tokens each (T = 1 for plain
decoding and for one chain-draft step, T = gamma + 1 for a verify pass) at context length ``s``.
Operators, in execution order, each repeated over the layers that have it::

    qkv_proj      weights: attention projections except the output one; ops 2 N P
    attention     reads the batch's KV cache, B x min(s, window) x KV bytes per token;
                  ops 2 N s H (d_qk + d_v); MLA in absorbed form:
                  d_qk = kv_lora + rope, d_v = kv_lora
    o_proj        weights H d_v x d
    router        weights d x E
    shared_experts weights n_shared x 3 d f_shared (MoE layers)
    routed_experts U unique experts per layer, ops 2 N k 3 d f (token-expert pairs)
    dense_ffn     leading dense layers, 3 d f_dense
    lm_head       V x d once per pass

Weight bytes are read once per pass whatever the number of tokens (weights are shared by the
batch); KV bytes are read per sequence. Per-layer routed-expert bytes come split into classes that
a platform places on its tiers: ``expert_fast`` (resident slices in the fast tier),
``expert_slow`` (the rest: LSB slices of resident experts and whole missed experts), and writes
``expert_fill`` (what an LRU cache inserts on a miss). The embedding
lookup (N rows) and activations are ignored: they are kilobytes against megabytes of weights.
Partial sums exchanged between PEs (``psum_elements``) are counted at projection boundaries
(attention output, FFN/expert output).

Bytes held (:func:`footprint`): the non-expert weights a pass reads, every routed expert, the
batch's KV cache, a separate draft model's reservation, and the bytes one pooled expert takes in a
fast tier (:func:`slot_bytes_per_expert`). Separate drafts (:func:`draft_model_loads`): an EAGLE
head (:func:`eagle_head_params`) or a small LM, each a weight operator and an attention operator.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from elmoe_dse.formats import (
    KV_PRECISION,
    WEIGHT_PRECISION,
    kv_bytes_per_element,
    lsb_bytes_per_param,
    msb_bytes_per_param,
    weight_bytes_per_param,
)
from elmoe_dse.kernels import Kernel, default_kernels, inventory
from elmoe_dse.specs.model import ModelSpec

Array = np.ndarray


@dataclass(frozen=True)
class OpLoad:
    """Demand of one operator per layer instance; ``layers`` instances run one after another.

    ``read_bytes`` and ``write_bytes`` map a data class (``weights``, ``kv``, ``expert_fast``,
    ``expert_slow``, ``draft``, ``expert_fill``) to bytes per instance; the platform maps
    classes to tiers. ``kernels``: what an engine launches per instance (:mod:`elmoe_dse.kernels`;
    read by the ``gpu`` family, empty for loads outside a decode pass).
    """

    name: str
    layers: int
    read_bytes: dict[str, Array]
    write_bytes: dict[str, Array]
    ops: Array
    precision: str
    psum_elements: Array
    kernels: tuple[Kernel, ...] = ()
    #: tokens entering a fused-MoE call over the experts it holds (M / E; 0 for other loads):
    #: the ``gpu`` family's tile regime (:func:`elmoe_dse.platforms.gpu.moe_eta`)
    tokens_over_experts: Array | float = 0.0


@dataclass(frozen=True)
class ExpertTraffic:
    """Routed-expert traffic of a pass, per MoE layer.

    Attributes:
        unique: unique experts touched per layer (dimensionless).
        resident: of those, experts whose fast-tier copy is used.
        resident_fast_bytes_per_param: bytes per parameter read from the fast tier for a resident
            expert (MSB slice + scale for a bit-nested pool, the whole weight for a full cache).
        resident_slow_bytes_per_param: bytes per parameter still read from the main tier for a
            resident expert (the LSB slice; 0 for a full cache or a draft pass).
        miss_bytes_per_param: bytes per parameter of a non-resident expert.
        precision: compute precision of the expert GEMMs.
        fill_bytes_per_param: bytes per parameter written into the fast tier for each missed
            expert (an LRU cache inserts what it misses; a static pool writes nothing).
    """

    unique: Array
    resident: Array
    resident_fast_bytes_per_param: Array
    resident_slow_bytes_per_param: Array
    miss_bytes_per_param: Array
    precision: str
    fill_bytes_per_param: Array = field(default_factory=lambda: np.zeros(()))
    #: Where set, 1 at the design points whose expert GEMMs run at ``wide_precision`` instead
    #: (a self-draft wider than 4 bits takes two slice passes on bit-sliced PEs: W8A8), else 0.
    wide: Array | None = None
    wide_precision: str = "w8a8"
    #: Experts per layer per pass that a pool refresh writes into the fast tier (their slot
    #: content, ``resident_fast_bytes_per_param``): a window-chosen hot pool's new members.
    refresh_experts: Array = field(default_factory=lambda: np.zeros(()))

    def counts(self) -> tuple[Array, Array]:
        """(unique, resident) experts per layer as arrays."""
        return np.asarray(self.unique), np.asarray(self.resident)


def expert_format(model: ModelSpec, weight_format: str) -> str:
    """Storage format of routed experts: the model's native one (MXFP4 on GPT-OSS) or the knob."""
    return model.native_expert_format or weight_format


def no_cache_traffic(model: ModelSpec, unique: Array, weight_format: str) -> ExpertTraffic:
    """Every unique expert read whole from the main tier."""
    fmt = expert_format(model, weight_format)
    bpp = np.asarray(weight_bytes_per_param(fmt))
    zero = np.zeros_like(bpp)
    return ExpertTraffic(
        unique=np.asarray(unique, dtype=float),
        resident=np.zeros_like(np.asarray(unique, dtype=float)),
        resident_fast_bytes_per_param=zero,
        resident_slow_bytes_per_param=zero,
        miss_bytes_per_param=bpp,
        precision=WEIGHT_PRECISION[fmt],
    )


def cached_traffic(
    model: ModelSpec,
    unique: Array,
    resident: Array,
    weight_format: str,
    *,
    bit_nested: bool,
    msb_bits: Array | float = 4.0,
    fill_on_miss: bool = False,
) -> ExpertTraffic:
    """Target-precision traffic with part of the unique experts resident in the fast tier.

    A full-precision cache serves a resident expert entirely from the fast tier. A bit-nested
    cache holds only the top ``msb_bits`` bits (+ scale): the LSB slice still comes from the main
    tier, in parallel. Experts in a native format that cannot be sliced (MXFP4) are cached whole.
    With ``fill_on_miss`` (LRU) every missed expert's slot content is written into the fast tier.
    """
    fmt = expert_format(model, weight_format)
    full = np.asarray(weight_bytes_per_param(fmt))
    sliceable = bit_nested and fmt == "int8"
    if sliceable:
        fast = msb_bytes_per_param(msb_bits)
        slow = lsb_bytes_per_param(msb_bits)
    else:
        fast, slow = full, np.zeros_like(full)
    return ExpertTraffic(
        unique=np.asarray(unique, dtype=float),
        resident=np.asarray(resident, dtype=float),
        resident_fast_bytes_per_param=np.asarray(fast),
        resident_slow_bytes_per_param=np.asarray(slow),
        miss_bytes_per_param=full,
        precision=WEIGHT_PRECISION[fmt],
        fill_bytes_per_param=np.asarray(fast) if fill_on_miss else np.zeros(()),
    )


def draft_traffic(
    model: ModelSpec, unique: Array, weight_format: str, draft_bits: Array | float
) -> ExpertTraffic:
    """Self-draft traffic: only pool experts (all resident), their MSB slices from the fast tier.

    Unsliceable native formats (MXFP4) are read whole from the pool at their own precision.
    """
    fmt = expert_format(model, weight_format)
    u = np.asarray(unique, dtype=float)
    wide = None
    if fmt == "int8":
        fast = msb_bytes_per_param(draft_bits)
        precision = "w4a8"  # up to 4 bits: one slice pass; wider drafts: two (W8A8)
        wide = (np.asarray(draft_bits, dtype=float) > 4).astype(float)
    else:
        fast = np.asarray(weight_bytes_per_param(fmt))
        precision = WEIGHT_PRECISION[fmt]
    zero = np.zeros_like(fast)
    return ExpertTraffic(
        unique=u,
        resident=u,
        resident_fast_bytes_per_param=fast,
        resident_slow_bytes_per_param=zero,
        miss_bytes_per_param=zero,
        precision=precision,
        wide=wide,
    )


def kv_bytes_per_token(model: ModelSpec, context_len: Array, kv_format: str) -> Array:
    """KV bytes one sequence reads per pass, summed over layers (sliding layers read the window)."""
    ctx = np.asarray(context_len, dtype=float)
    per_layer = model.kv_elements_per_token_per_layer() * kv_bytes_per_element(kv_format)
    full_layers = model.num_layers - model.num_sliding_layers
    sliding_ctx = np.minimum(ctx, model.sliding_window) if model.num_sliding_layers else 0.0
    return per_layer * (full_layers * ctx + model.num_sliding_layers * sliding_ctx)


def attention_dims(model: ModelSpec) -> tuple[int, int]:
    """(query-key dot length, value length) per head as decode computes attention."""
    if model.attention_kind == "mla":
        return model.kv_lora_rank + model.qk_rope_head_dim, model.kv_lora_rank
    return model.head_dim, model.head_dim


def o_proj_params(model: ModelSpec) -> int:
    """Output projection parameters of one layer."""
    v = model.v_head_dim if model.attention_kind == "mla" else model.head_dim
    return model.num_attention_heads * v * model.hidden_size


def _weight_op(
    name: str, layers: int, params: float, n: Array, weight_format: str, psum: Array | None = None
) -> OpLoad:
    """A dense weight operator: ``params`` weights read once, 2 N params ops."""
    p = np.asarray(float(params))
    zero = np.zeros_like(n)
    return OpLoad(
        name=name,
        layers=layers,
        read_bytes={"weights": p * weight_bytes_per_param(weight_format) + zero},
        write_bytes={},
        ops=2.0 * n * p,
        precision=WEIGHT_PRECISION[weight_format],
        psum_elements=zero if psum is None else psum,
    )


def attention_ops(model: ModelSpec, b: Array, n: Array, ctx: Array, kv_format: str) -> list[OpLoad]:
    """Attention over the KV cache: full layers read ``s`` tokens, sliding ones the window."""
    kv_elems, kvb = model.kv_elements_per_token_per_layer(), kv_bytes_per_element(kv_format)
    qk, v = attention_dims(model)
    full_layers = model.num_layers - model.num_sliding_layers
    ops: list[OpLoad] = []
    for name, layers, span in (
        ("attention", full_layers, ctx),
        ("attention_sliding", model.num_sliding_layers, np.minimum(ctx, model.sliding_window)),
    ):
        if layers == 0:
            continue
        ops.append(
            OpLoad(
                name=name,
                layers=layers,
                read_bytes={"kv": b * span * kv_elems * kvb},
                write_bytes={"kv": n * kv_elems * kvb},
                ops=2.0 * n * span * model.num_attention_heads * (qk + v),
                precision=KV_PRECISION[kv_format],
                psum_elements=np.zeros_like(n),
            )
        )
    return ops


def routed_expert_ops(model: ModelSpec, n: Array, experts: ExpertTraffic) -> list[OpLoad]:
    """The routed experts of one MoE layer: U unique experts, R of them resident.

    One operator at one precision; where the precision varies over the grid (``experts.wide``),
    two operators with complementary 0/1 masks, so each design point pays exactly one of them.
    """
    pe = float(model.expert_params())
    u, r = experts.unique, experts.resident
    zero = np.zeros_like(n)
    shares: list[tuple[str, str, Array]] = [("routed_experts", experts.precision, np.ones(()))]
    if experts.wide is not None and np.any(experts.wide > 0):
        wide = np.asarray(experts.wide, dtype=float)
        if np.all(wide > 0):
            shares = [("routed_experts", experts.wide_precision, np.ones(()))]
        else:
            shares = [
                ("routed_experts", experts.precision, 1.0 - wide),
                ("routed_experts_wide", experts.wide_precision, wide),
            ]
    slow_per_expert = (
        r * pe * experts.resident_slow_bytes_per_param + (u - r) * pe * experts.miss_bytes_per_param
    )
    fill = (u - r) * pe * experts.fill_bytes_per_param
    fill = fill + experts.refresh_experts * pe * experts.resident_fast_bytes_per_param
    return [
        OpLoad(
            name=name,
            layers=model.num_moe_layers,
            read_bytes={
                "expert_fast": share * r * pe * experts.resident_fast_bytes_per_param + zero,
                "expert_slow": share * slow_per_expert + zero,
            },
            write_bytes={"expert_fill": share * fill + zero},
            ops=share * 2.0 * n * model.experts_per_token * pe,
            precision=precision,
            psum_elements=share * n * model.hidden_size,
            tokens_over_experts=n / model.num_experts,
        )
        for name, precision, share in shares
    ]


def decode_pass(
    model: ModelSpec,
    *,
    sequences: Array,
    tokens_per_sequence: Array,
    context_len: Array,
    weight_format: str,
    kv_format: str,
    experts: ExpertTraffic,
) -> list[OpLoad]:
    """Operator loads of one pass of ``sequences x tokens_per_sequence`` tokens, in order.

    Args:
        sequences: B, sequences in the batch (dimensionless, array or scalar).
        tokens_per_sequence: T, tokens each sequence processes in this pass.
        context_len: s, tokens already in each sequence's KV cache.
        weight_format: storage format of non-expert weights (``int8``, ``bf16``, ``mxfp4``).
        kv_format: KV-cache element format (``fp16``, ``int8``).
        experts: routed-expert traffic per MoE layer.
    """
    b = np.asarray(sequences, dtype=float)
    n = b * np.asarray(tokens_per_sequence, dtype=float)
    ctx = np.asarray(context_len, dtype=float)
    nd = n * model.hidden_size
    moe, fmt = model.num_moe_layers, weight_format
    o_params = o_proj_params(model)
    qkv_params = model.attention_params_per_layer() - o_params
    ops = [_weight_op("qkv_proj", model.num_layers, qkv_params, n, fmt)]
    ops += attention_ops(model, b, n, ctx, kv_format)
    ops.append(_weight_op("o_proj", model.num_layers, o_params, n, fmt, psum=nd))
    ops.append(_weight_op("router", moe, model.router_params_per_layer(), n, fmt))
    if model.num_shared_experts:
        shared = model.shared_expert_params_per_layer()
        ops.append(_weight_op("shared_experts", moe, shared, n, fmt, psum=nd))
    ops += routed_expert_ops(model, n, experts)
    if model.num_dense_layers:
        dense = model.dense_ffn_params_per_layer()
        ops.append(_weight_op("dense_ffn", model.num_dense_layers, dense, n, fmt, psum=nd))
    head = model.lm_head_params() or model.embedding_params()
    ops.append(_weight_op("lm_head", 1, head, n, fmt))
    inv = inventory(model)
    return [replace(op, kernels=inv.get(op.name, default_kernels(op.name))) for op in ops]


def nonexpert_read_params(model: ModelSpec) -> int:
    """Parameters every pass reads besides routed experts (attention, router, shared, dense, head).

    An untied input embedding is not counted: decoding looks up only B of its rows.
    """
    return (
        model.num_layers * model.attention_params_per_layer()
        + model.num_moe_layers
        * (model.router_params_per_layer() + model.shared_expert_params_per_layer())
        + model.num_dense_layers * model.dense_ffn_params_per_layer()
        + (model.lm_head_params() or model.embedding_params())
    )


# ----------------------------------------------------------------------------------------------
# Bytes held, and separate draft models
# ----------------------------------------------------------------------------------------------

#: Bits per parameter of quant-sd's separate 4-bit copy: INT4 G32 with FP16 scales.
QUANT_DRAFT_BITS = 4
#: Query heads per KV head of the slm-sd draft (Qwen2.5-0.5B: 14 / 2, arXiv 2412.15115).
SLM_GQA_GROUP = 7


@dataclass(frozen=True)
class Footprint:
    """What a design keeps in memory (SI bytes, arrays over the grid) and the pool's geometry.

    Attributes:
        nonexpert_bytes: non-expert weights every pass reads.
        expert_bytes: every routed expert of every MoE layer.
        kv_bytes: the batch's KV cache.
        reserved_bytes: a separate draft model's weights and KV, placed before expert slots.
        slot_bytes_per_expert: bytes one pooled expert takes in a fast tier.
        num_moe_layers: MoE layers L_moe.
        num_experts: routed experts per layer E.
    """

    nonexpert_bytes: Array
    expert_bytes: Array
    kv_bytes: Array
    reserved_bytes: Array
    slot_bytes_per_expert: Array
    num_moe_layers: int
    num_experts: int


def footprint(
    model: ModelSpec,
    *,
    batch_size: Array,
    context_len: Array,
    weight_format: str,
    kv_format: str,
    reserved_bytes: Array | float = 0.0,
    slot_bytes: Array | float = 0.0,
) -> Footprint:
    """Bytes held: non-expert weights read per pass, every routed expert, the batch's KV."""
    wbpp = weight_bytes_per_param(weight_format)
    ebpp = weight_bytes_per_param(expert_format(model, weight_format))
    return Footprint(
        nonexpert_bytes=np.asarray(nonexpert_read_params(model) * wbpp),
        expert_bytes=np.asarray(
            model.num_moe_layers * model.num_experts * model.expert_params() * ebpp
        ),
        kv_bytes=np.asarray(batch_size) * kv_bytes_per_token(model, context_len, kv_format),
        reserved_bytes=np.asarray(reserved_bytes),
        slot_bytes_per_expert=np.asarray(slot_bytes),
        num_moe_layers=model.num_moe_layers,
        num_experts=model.num_experts,
    )


def slot_bytes_per_expert(
    model: ModelSpec,
    weight_format: str,
    *,
    bit_nested: bool,
    msb_bits: Array | float,
    quant_copy: bool = False,
) -> Array:
    """Bytes one pooled expert takes in the fast tier.

    Bit-nested and sliceable (INT8): its ``msb_bits`` MSB slice + scale, plus, with
    ``quant_copy`` (quant-sd), a separate INT4 G32 copy beside it; otherwise the whole expert in
    its storage format.
    """
    fmt = expert_format(model, weight_format)
    params = model.expert_params()
    if bit_nested and fmt == "int8":
        slot = params * msb_bytes_per_param(msb_bits)
        if quant_copy:
            slot = slot + params * msb_bytes_per_param(QUANT_DRAFT_BITS)
        return np.asarray(slot)
    return np.asarray(params * weight_bytes_per_param(fmt))


def eagle_head_params(model: ModelSpec) -> int:
    """EAGLE draft head: one decoder layer (the target's attention, a SwiGLU MLP of 8/3 d) plus the
    feature-fusion FC (2d x d); it reuses the target's LM head (Li et al., EAGLE, ICML 2024)."""
    d = model.hidden_size
    return model.attention_params_per_layer() + 3 * d * (8 * d // 3) + 2 * d * d


@dataclass(frozen=True)
class DraftModel:
    """A separate draft model: its parameters, KV bytes per token, attention ops per context
    token, and whether it reads the target's LM head."""

    params: Array
    kv_bytes_per_token: Array
    attention_ops_per_context_token: Array
    uses_target_head: bool


def eagle_draft(model: ModelSpec, kv_format: str) -> DraftModel:
    """The EAGLE head of ``model``: one layer attending like the target's."""
    kv_per_token = kv_bytes_per_token(model, np.ones(()), kv_format) / model.num_layers
    qk, v = attention_dims(model)
    return DraftModel(
        params=np.asarray(float(eagle_head_params(model))),
        kv_bytes_per_token=np.asarray(kv_per_token),
        attention_ops_per_context_token=np.asarray(float(model.num_attention_heads * (qk + v))),
        uses_target_head=True,
    )


def small_lm_draft(params: Array | float, kv_bytes_per_token: Array | float) -> DraftModel:
    """A small LM draft of ``params`` parameters and ``kv_bytes_per_token`` FP16 KV bytes."""
    kv = np.asarray(kv_bytes_per_token, dtype=float)
    # K and V FP16 elements per token, each read by SLM_GQA_GROUP query heads: Qwen2.5-0.5B
    # has 14 query heads over 2 KV heads; 24 layers x 14 x (64 + 64) = 12288 / 2 x 7.
    return DraftModel(
        params=np.asarray(params, dtype=float),
        kv_bytes_per_token=kv,
        attention_ops_per_context_token=kv / 2.0 * SLM_GQA_GROUP,
        uses_target_head=False,
    )


def draft_model_loads(
    model: ModelSpec,
    draft: DraftModel,
    *,
    sequences: Array,
    context_len: Array,
    weight_format: str,
    kv_format: str,
    tokens_per_sequence: Array | float = 1.0,
) -> tuple[list[OpLoad], Array]:
    """Operator loads of one draft pass of a separate draft model, and the bytes it reserves.

    ``tokens_per_sequence`` w: candidates each sequence drafts in the pass (a tree's width); KV
    is read once per sequence, compute and KV writes scale with the B w tokens.
    """
    seqs = np.asarray(sequences, dtype=float)
    b = seqs * np.asarray(tokens_per_sequence, dtype=float)
    ctx = np.asarray(context_len, dtype=float)
    wbpp = weight_bytes_per_param(weight_format)
    wprec = WEIGHT_PRECISION[weight_format]
    params, kv_per_token = draft.params, draft.kv_bytes_per_token
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
            {"draft": seqs * ctx * kv_per_token + zero},
            {"draft": b * kv_per_token},
            2.0 * b * ctx * draft.attention_ops_per_context_token,
            KV_PRECISION[kv_format],
            zero,
        ),
    ]
    if draft.uses_target_head:
        head = float(model.lm_head_params() or model.embedding_params())
        loads.append(
            OpLoad("lm_head", 1, {"weights": head * wbpp + zero}, {}, 2.0 * b * head, wprec, zero)
        )
    reserved = params * wbpp + seqs * ctx * kv_per_token
    return loads, reserved
