"""The GPU kernels one decoder layer launches, per operator of :mod:`elmoe_dse.workload`.

An engine (vLLM, TensorRT-LLM) runs each operator of a decode pass as one or more kernels; each
kernel has a fixed floor even inside a CUDA graph, so the fixed cost per layer follows from the
model's structure. The inventory below is that of vLLM's model files (``vllm/model_executor/
models/{qwen3_moe,mixtral,deepseek_v2,gpt_oss}.py``, fused-MoE in ``layers/fused_moe``), one entry
per launched kernel, with the operator that carries it:

- ``qkv_proj``: the input RMSNorm (fused with the residual add), then for GQA the fused QKV GEMM,
  the q and k RMSNorms where the model has them (``qk_norm``: two launches), RoPE. For MLA
  (DeepSeek-V2 layout): with a q LoRA the fused ``q_a + kv_a`` GEMM, the q_a RMSNorm and the q_b
  GEMM (without one, the q GEMM and the kv_a GEMM), the kv_a RMSNorm, the absorbed ``W_UK``
  batched GEMM, RoPE.
- ``attention``: the KV-cache write and the decode-attention kernel (sliding layers alike;
  ``mla_decode_attention`` for MLA).
- ``o_proj``: the output GEMM; MLA first runs the absorbed ``W_UV`` batched GEMM.
- ``router``: the post-attention RMSNorm (fused residual add), the router GEMM, the fused top-k
  softmax.
- ``routed_experts``: one fused-MoE operator (block alignment, gate-up GEMM, activation, down
  GEMM, weighted sum: the unit the kernel database times as one).
- ``shared_experts``: gate-up GEMM, SiLU-and-mul, down GEMM, the add into the routed output; with
  ``shared_expert_gate`` the gate GEMM and its sigmoid-multiply.
- ``dense_ffn``: the post-attention RMSNorm, gate-up GEMM, SiLU-and-mul, down GEMM.
- ``lm_head``: the final RMSNorm and the head GEMM (sampling is the per-step host term).

Kinds: ``gemm`` (weight GEMM/GEMV), ``elementwise`` (norms, RoPE, activations, top-k, cache
writes: activation-sized, costed at the kernel floor), ``attention`` and ``moe`` (their own
terms). A GEMM operator's weight bytes are shared evenly by its GEMM kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from elmoe_dse.specs.model import ModelSpec

KernelKind = Literal["gemm", "elementwise", "attention", "moe"]
KINDS: tuple[KernelKind, ...] = ("gemm", "elementwise", "attention", "moe")


@dataclass(frozen=True)
class Kernel:
    """One launched kernel: its name and how it is costed."""

    name: str
    kind: KernelKind


def _k(kind: KernelKind, *names: str) -> tuple[Kernel, ...]:
    return tuple(Kernel(n, kind) for n in names)


def _qkv_kernels(model: ModelSpec) -> tuple[Kernel, ...]:
    norm = _k("elementwise", "input_rmsnorm")
    if model.attention_kind == "mla":
        if model.q_lora_rank:
            proj = (
                *_k("gemm", "q_a_kv_a_proj"),
                *_k("elementwise", "q_a_rmsnorm"),
                *_k("gemm", "q_b_proj"),
            )
        else:
            proj = _k("gemm", "q_proj", "kv_a_proj")
        tail = (*_k("elementwise", "kv_a_rmsnorm"), *_k("gemm", "w_uk_bmm"))
        return (*norm, *proj, *tail, *_k("elementwise", "rope"))
    qk = _k("elementwise", "q_rmsnorm", "k_rmsnorm") if model.qk_norm != "none" else ()
    return (*norm, *_k("gemm", "qkv_proj"), *qk, *_k("elementwise", "rope"))


def _shared_kernels(model: ModelSpec) -> tuple[Kernel, ...]:
    gate = (
        (*_k("gemm", "shared_gate"), *_k("elementwise", "shared_gate_sigmoid_mul"))
        if model.shared_expert_gate
        else ()
    )
    return (
        *_k("gemm", "shared_gate_up"),
        *_k("elementwise", "shared_silu_mul"),
        *_k("gemm", "shared_down"),
        *gate,
        *_k("elementwise", "shared_add"),
    )


def inventory(model: ModelSpec) -> dict[str, tuple[Kernel, ...]]:
    """Kernels per instance of each operator of ``model``'s decode pass (module docstring)."""
    kind = "mla_decode_attention" if model.attention_kind == "mla" else "decode_attention"
    attention = (*_k("elementwise", "kv_cache_write"), *_k("attention", kind))
    o_proj = (
        _k("gemm", "w_uv_bmm", "o_proj") if model.attention_kind == "mla" else _k("gemm", "o_proj")
    )
    out = {
        "qkv_proj": _qkv_kernels(model),
        "attention": attention,
        "attention_sliding": attention,
        "o_proj": o_proj,
        "router": (
            *_k("elementwise", "post_attention_rmsnorm"),
            *_k("gemm", "router"),
            *_k("elementwise", "topk_softmax"),
        ),
        "routed_experts": _k("moe", "fused_moe"),
        "lm_head": (*_k("elementwise", "final_rmsnorm"), *_k("gemm", "lm_head")),
    }
    if model.num_shared_experts:
        out["shared_experts"] = _shared_kernels(model)
    if model.num_dense_layers:
        out["dense_ffn"] = (
            *_k("elementwise", "post_attention_rmsnorm"),
            *_k("gemm", "dense_gate_up"),
            *_k("elementwise", "dense_silu_mul"),
            *_k("gemm", "dense_down"),
        )
    return out


def default_kernels(op_name: str) -> tuple[Kernel, ...]:
    """One kernel for an operator outside the inventory (a separate draft model's operators)."""
    kind: KernelKind = "attention" if "attention" in op_name else "gemm"
    if op_name.startswith("routed_experts"):
        kind = "moe"
    return (Kernel(op_name, kind),)


def kernels_per_layer(model: ModelSpec) -> dict[str, float]:
    """Kernel launches of one decoder layer by kind, averaged over the model's layers.

    MoE layers count router, routed and shared experts; dense layers their FFN; every layer its
    attention block. The LM head is per pass, not per layer, and is left out.
    """
    inv = inventory(model)
    counts = dict.fromkeys(KINDS, 0.0)
    layers = {
        "qkv_proj": model.num_layers,
        "attention": model.num_layers,
        "o_proj": model.num_layers,
        "router": model.num_moe_layers,
        "routed_experts": model.num_moe_layers,
        "shared_experts": model.num_moe_layers,
        "dense_ffn": model.num_dense_layers,
    }
    for op, n in layers.items():
        for kernel in inv.get(op, ()):
            counts[kernel.kind] += n / model.num_layers
    return {k: round(v, 6) for k, v in counts.items()}


def launches_per_pass(model: ModelSpec) -> int:
    """Kernels one decode pass launches (every layer's operators and the LM head)."""
    inv = inventory(model)
    full = model.num_layers - model.num_sliding_layers
    layers = {
        "qkv_proj": model.num_layers,
        "attention": full,
        "attention_sliding": model.num_sliding_layers,
        "o_proj": model.num_layers,
        "router": model.num_moe_layers,
        "routed_experts": model.num_moe_layers,
        "shared_experts": model.num_moe_layers,
        "dense_ffn": model.num_dense_layers,
        "lm_head": 1,
    }
    return sum(n * len(inv.get(op, ())) for op, n in layers.items())
