"""``gpu`` family: one GPU running an engine's kernels, with kernel-level costs (docs/model.md §11).

Everything lives in HBM (the main-tier plan, no expert cache). Each operator load of a pass runs
as the kernels :mod:`elmoe_dse.kernels` lists for it; with the constants of the preset's
``[kernels]`` section (:mod:`elmoe_dse.specs.kernels`):

- a GEMM operator of ``n`` GEMM kernels moving ``b`` bytes (weights + activations) with ``ops``::

      t = n t0_kernel + max(ops / (eta_c peak), b / (eta_bw(b / n) bw)),
      eta_bw(x) = eta_max x / (x + b_half)

  (its ``n`` kernels share the bytes evenly, so the fixed part is ``n (t0 + b_half / (eta_max
  bw))``);
- decode attention: ``t = t0_attn + max(ops / (eta_c,attn peak), kv_bytes / (eta_attn bw))``, with
  the MLA constants for MLA layers;
- the fused MoE: ``t = t0_moe + max(ops / (eta_c,moe peak), U(N) bytes_per_expert / (eta_fmt
  r(M / E) bw))``; the expert bytes ``U(N) x bytes_per_expert`` are the routed-expert load's
  bytes; weight-only formats (MXFP4, and the 4-bit kernels of Ampere/Hopper) compute at the
  BF16 peak. ``r`` is the tile regime of the call: vLLM's fused-MoE kernel runs without a tuned
  config on a heuristic that takes ``BLOCK_SIZE_M`` = 16 (one 16-row tile per expert, a weight
  stream) while the call's tokens ``M`` are at most its experts ``E``, and 64-row tiles with
  grouped launch order above (``vllm/model_executor/layers/fused_moe/fused_moe.py``,
  ``get_default_config``: ``if M <= E ...``); ``r = 1`` for ``M <= E`` and
  ``moe_large_m_factor`` above. ``E`` is the experts the device holds (``E / ep``); the kernel
  databases show the step at ``N = E`` on every shape (docs/model.md §11);
- every elementwise kernel (norms, RoPE, activations, top-k, cache writes) costs ``t0_kernel``;
- every launched kernel adds ``kernel_gap_s`` (the gap between kernels of a whole step, which a
  kernel database timing kernels one by one does not see), and each pass adds ``step_host_s``
  (charged to its last operator).

The same formulas fit the constants to a kernel database (:mod:`elmoe_dse.explore.calibrate_hw`).

**Serving with chunked prefill** (:func:`mixed_step_extra_s`). A serving benchmark at concurrency
``B`` with input length ``ISL`` and output length ``OSL`` admits a new request whenever one
finishes, and the engine mixes the newcomers' prompt tokens into the decode steps (vLLM V1 always
runs chunked prefill and schedules decodes first, docs.vllm.ai "Optimization and Tuning", section
"Chunked Prefill"; TensorRT-LLM's in-flight batching with chunked context alike; the hybrid
batches of Sarathi-Serve, Agrawal et al., arXiv 2403.02310). In steady state each of the other
``B - 1`` requests brings ``ISL`` prompt tokens per ``OSL`` steps of the measured one (its own
prompt is in its TTFT, not its TPOT), so a decode step carries on average::

    P = (B - 1) ISL / OSL          prefill tokens.

The engine takes prompt tokens in chunks under a per-step token budget ``C`` (decode tokens
first): vLLM's OpenAI server defaults to ``max_num_batched_tokens`` = 8192 on GPUs with >= 70
GiB that are not A100 (2048 otherwise; ``vllm/engine/arg_utils.py``,
``EngineArgs.get_batch_defaults``), TensorRT-LLM to ``max_num_tokens`` = 8192
(``tensorrt_llm/builder.py``, ``BuildConfig``); default :data:`PREFILL_CHUNK_TOKENS`. A step
that carries prompt tokens carries ``c = max(P, min(ISL, C - B))`` of them (a whole prompt if it
fits, else a full chunk; every step once ``P`` exceeds that), and a share ``P / c`` of the steps
does. The mean step is::

    t(B) + (P / c) [t(B + c) - t(B)] + t_prefill_attn(P)

where ``t(B + c)`` runs every linear operator and the fused MoE at ``B + c`` tokens (weights
read once; ``U(B + c)`` distinct experts), the LM head and decode attention for the ``B``
decoding sequences. Prefill attention for the new tokens over their prefix is compute-bound
flash attention, ``2 H (d_qk + d_v) s_bar`` ops per token and layer (``4 H d`` for GQA) with
``s_bar`` the mean prefix of a prompt token (``ISL / 2``; a sliding layer caps it at the
window), at ``prefill_attn_eta_compute_frac`` of the BF16 peak. Kernel counts do not change (a
mixed batch runs the same kernels with more rows), so no fixed cost is added.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from elmoe_dse import locality
from elmoe_dse.kernels import Kernel, default_kernels
from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs, PlatformModel
from elmoe_dse.platforms._placement import main_tier_plan, split
from elmoe_dse.platforms._resources import host_resources
from elmoe_dse.roofline import OpCost, Resources, operator_cost
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.units import GB
from elmoe_dse.workload import OpLoad, decode_pass, footprint, no_cache_traffic

Array = np.ndarray
Num = Array | float

#: Default per-step token budget of chunked prefill (vLLM on H100/H200, TensorRT-LLM; docstring).
PREFILL_CHUNK_TOKENS = 8192

#: Storage format of the experts a fused-MoE load reads, by the load's compute precision.
MOE_FORMAT = {"w16a16": "bf16", "w8a8": "int8", "w4a8": "mxfp4"}
#: Tensor precision a weight-only format computes at (no FP4 tensor cores before Blackwell).
COMPUTE_PRECISION = {"w16a16": "w16a16", "w8a8": "w8a8", "w4a8": "w16a16"}


def eta_bw(nbytes: Array, eta_max: float, b_half: float) -> Array:
    """Achievable / peak bandwidth of a kernel moving ``nbytes``: eta_max b / (b + b_half)."""
    b = np.maximum(np.asarray(nbytes, dtype=float), 1.0)
    return eta_max * b / (b + b_half)


def gemm_time_s(
    k: dict[str, float], nbytes: Array, ops: Array, peak: float | Array, bw: float, n: float = 1.0
) -> Array:
    """``n`` GEMM kernels sharing ``nbytes`` and ``ops`` (see the module docstring)."""
    eff = eta_bw(np.asarray(nbytes) / n, k["gemm_eta_bw_max_frac"], k["gemm_bw_half_bytes"])
    mem = np.asarray(nbytes) / (eff * bw)
    comp = np.asarray(ops) / (k["gemm_eta_compute_frac"] * peak)
    return n * k["t0_kernel_s"] + np.maximum(mem, comp)


def attention_time_s(
    k: dict[str, float], nbytes: Array, ops: Array, peak: float | Array, bw: float, *, mla: bool
) -> Array:
    """One decode-attention kernel reading ``nbytes`` of KV cache."""
    t0, eta = (
        (k["mla_t0_s"], k["mla_eta_bw_frac"]) if mla else (k["attn_t0_s"], k["attn_eta_bw_frac"])
    )
    comp = np.asarray(ops) / (k["attn_eta_compute_frac"] * peak)
    return t0 + np.maximum(np.asarray(nbytes) / (eta * bw), comp)


def moe_eta(k: dict[str, float], fmt: str, tokens_over_experts: Num = 0.0) -> Array:
    """Fused-MoE bandwidth efficiency on ``fmt`` expert weights: ``moe_eta_<fmt>_frac`` while
    the call's tokens M are at most its experts E (vLLM's small-M tile), times
    ``moe_large_m_factor`` above (module docstring)."""
    large = np.asarray(tokens_over_experts, dtype=float) > 1.0
    return k[f"moe_eta_{fmt}_frac"] * np.where(large, k["moe_large_m_factor"], 1.0)


def moe_time_s(
    k: dict[str, float],
    fmt: str,
    nbytes: Array,
    ops: Array,
    peak: float | Array,
    bw: float,
    tokens_over_experts: Num = 0.0,
) -> Array:
    """The fused-MoE operator reading ``nbytes`` of expert weights (format ``fmt``), its
    ``tokens_over_experts`` = M / E choosing the tile regime."""
    mem = np.asarray(nbytes) / (moe_eta(k, fmt, tokens_over_experts) * bw)
    comp = np.asarray(ops) / (k["moe_eta_compute_frac"] * peak)
    return k["moe_t0_s"] + np.maximum(mem, comp)


def _main_efficiency(
    k: dict[str, float], load: OpLoad, kernels: tuple[Kernel, ...], nbytes: Array
) -> tuple[float | Array, float, float]:
    """(bandwidth factor, compute factor, fixed time) of one instance of ``load``."""
    kinds = [kern.kind for kern in kernels]
    gap = len(kernels) * k["kernel_gap_s"]
    elementwise = kinds.count("elementwise") * k["t0_kernel_s"]
    if "moe" in kinds:
        fmt = MOE_FORMAT[load.precision]
        return (
            moe_eta(k, fmt, load.tokens_over_experts),
            k["moe_eta_compute_frac"],
            k["moe_t0_s"] + gap + elementwise,
        )
    attention = [kern for kern in kernels if kern.kind == "attention"]
    if attention:
        mla = attention[0].name.startswith("mla")
        t0, eta = (
            (k["mla_t0_s"], k["mla_eta_bw_frac"])
            if mla
            else (k["attn_t0_s"], k["attn_eta_bw_frac"])
        )
        return eta, k["attn_eta_compute_frac"], t0 + gap + elementwise
    n = max(kinds.count("gemm"), 1)
    eff = eta_bw(np.asarray(nbytes) / n, k["gemm_eta_bw_max_frac"], k["gemm_bw_half_bytes"])
    return eff, k["gemm_eta_compute_frac"], n * k["t0_kernel_s"] + gap + elementwise


def kernel_cost(
    spec: PlatformSpec, load: OpLoad, plan: MemoryPlan, res: Resources, k: dict[str, float]
) -> OpCost:
    """Cost of ``load`` run as its kernels: the roofline at kernel efficiencies plus floors."""
    kernels = load.kernels or default_kernels(load.name)
    read = split(load.read_bytes, plan.read_split)
    written = split(load.write_bytes, plan.write_split)
    moved = sum(
        np.asarray(read.get(t, 0.0)) + written.get(t, 0.0) for t in set(read) | set(written)
    )
    bw_frac, comp_frac, fixed = _main_efficiency(k, load, kernels, np.asarray(moved))
    precision = COMPUTE_PRECISION[load.precision]
    scaled = replace(
        res,
        bw_bytes_per_s={
            t: s.peak_bw_gb_per_s * GB * np.asarray(bw_frac) for t, s in spec.tiers.items()
        },
        peak_ops_per_s={p: v * comp_frac for p, v in res.peak_ops_per_s.items()},
    )
    cost = operator_cost(
        name=load.name,
        layers=load.layers,
        ops=load.ops,
        precision=precision,
        bytes_read=read,
        bytes_written=written,
        link_bytes={},
        res=scaled,
    )
    return replace(cost, time_s=cost.time_s + load.layers * np.asarray(fixed))


def kernel_params(spec: PlatformSpec) -> dict[str, float]:
    """The ``[kernels]`` constants of a GPU preset (the family requires the section), with the
    factors of the serving engine it models (``kernels.engine``, default the kernel database's
    engine: no factors; :mod:`elmoe_dse.specs.kernels`)."""
    if spec.kernels is None:  # pragma: no cover - check_spec requires it
        raise ValueError(f"platform '{spec.name}' has no [kernels] section")
    return spec.kernels.values()


def cost_pass(
    spec: PlatformSpec, knobs: PlatformKnobs, loads: list[OpLoad], plan: MemoryPlan
) -> tuple[OpCost, ...]:
    """Every operator as its kernels on the GPU; the per-pass host term is charged to the pass's
    last operator (one cost per load, the platform contract)."""
    k = kernel_params(spec)
    res = host_resources(spec)
    ops = [kernel_cost(spec, load, plan, res, k) for load in loads]
    if ops:
        ops[-1] = replace(ops[-1], time_s=ops[-1].time_s + k["step_host_s"])
    return tuple(ops)


def prefill_tokens_per_step(batch: Num, isl: Num, osl: Num) -> Array:
    """Prompt tokens mixed into one decode step of a serving run: P = (B - 1) ISL / OSL."""
    b = np.asarray(batch, dtype=float)
    return np.maximum(b - 1.0, 0.0) * np.asarray(isl, dtype=float) / np.asarray(osl, dtype=float)


def mean_prefix_tokens(isl: Num, window: float = 0.0) -> Array:
    """Mean prefix a prompt token attends to, over positions 0..ISL: ISL / 2, or with a sliding
    window ``W < ISL``: W - W^2 / (2 ISL)."""
    n = np.asarray(isl, dtype=float)
    if window <= 0:
        return n / 2.0
    capped = window - window**2 / (2.0 * np.maximum(n, 1.0))
    return np.where(n <= window, n / 2.0, capped)


def prefill_attention_ops(model: ModelSpec, prefill_tokens: Num, isl: Num) -> Array:
    """Ops of prefill attention for ``prefill_tokens`` prompt tokens over their prefix, all
    layers: 2 H (d_qk + d_v) P s_bar per layer (non-absorbed MLA: d_qk = nope + rope, d_v)."""
    if model.attention_kind == "mla":
        qk, v = model.qk_nope_head_dim + model.qk_rope_head_dim, model.v_head_dim
    else:
        qk, v = model.head_dim, model.head_dim
    full = model.num_layers - model.num_sliding_layers
    prefix = full * mean_prefix_tokens(isl)
    if model.num_sliding_layers:
        prefix = prefix + model.num_sliding_layers * mean_prefix_tokens(isl, model.sliding_window)
    per_token = 2.0 * model.num_attention_heads * (qk + v)
    return per_token * np.asarray(prefill_tokens, dtype=float) * prefix


def _pass_loads(
    model: ModelSpec,
    p: Array,
    b: Array,
    n: Array,
    context_len: Array,
    fmt: str,
    kv: str,
    overlap_frac: Num = 0.0,
) -> list[OpLoad]:
    """A pass of ``n`` tokens of which ``b`` decode: linear operators and the fused MoE at ``n``
    tokens (U(n) experts under the routing process at reuse ``overlap_frac``, one token per
    sequence as in a decode step), decode attention and the LM head for the ``b`` sequences."""

    def one(tokens: Array) -> list[OpLoad]:
        unique = locality.correlated_unique(p, overlap_frac, tokens, 1.0)
        traffic = no_cache_traffic(model, unique, fmt)
        return decode_pass(
            model,
            sequences=b,
            tokens_per_sequence=tokens / b,
            context_len=context_len,
            weight_format=fmt,
            kv_format=kv,
            experts=traffic,
        )

    decode = {op.name: op for op in one(b)}
    keep = ("attention", "attention_sliding", "lm_head")
    return [replace(op, ops=decode[op.name].ops) if op.name in keep else op for op in one(n)]


def mixed_step_extra_s(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: PlatformKnobs,
    p: Array,
    *,
    batch: Num,
    context_len: Num,
    isl: Num,
    osl: Num,
    weight_format: str,
    kv_format: str,
    chunk_tokens: Num = PREFILL_CHUNK_TOKENS,
    overlap_frac: Num = 0.0,
) -> Array:
    """Mean time a decode step of ``batch`` sequences gains from the P prompt tokens a serving run
    mixes into its steps (module docstring): the share P / c of mixed steps times what a chunk
    of c prompt tokens adds, plus prefill attention. 0 where P = 0."""
    b = np.asarray(batch, dtype=float)
    ctx = np.asarray(context_len, dtype=float)
    extra = prefill_tokens_per_step(b, isl, osl)
    chunk = np.maximum(extra, np.minimum(np.asarray(isl, dtype=float), chunk_tokens - b))
    share = np.where(chunk > 0, extra / np.maximum(chunk, 1e-30), 0.0)
    fp = footprint(
        model,
        batch_size=b,
        context_len=ctx,
        weight_format=weight_format,
        kv_format=kv_format,
    )
    plan = main_tier_plan(spec, knobs, fp)

    def pass_s(tokens: Array) -> Array:
        loads = _pass_loads(model, p, b, tokens, ctx, weight_format, kv_format, overlap_frac)
        return np.asarray(sum(np.asarray(c.time_s) for c in cost_pass(spec, knobs, loads, plan)))

    k = kernel_params(spec)
    peak = spec.compute.peak_ops_per_s("w16a16")
    attn = prefill_attention_ops(model, extra, isl) / (k["prefill_attn_eta_compute_frac"] * peak)
    return np.where(extra > 0, share * (pass_s(b + chunk) - pass_s(b)) + attn, 0.0)


MODEL = PlatformModel(
    family="gpu",
    fast_tier=None,
    bit_nested=False,
    default_policy="ar",
    default_cache="none",
    memory_plan=main_tier_plan,
    cost_pass=cost_pass,
    required_sections=("kernels",),
)
