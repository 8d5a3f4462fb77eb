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
  bw))``; the expert bytes ``U(N) x bytes_per_expert`` are the routed-expert load's bytes;
  weight-only formats (MXFP4, and the 4-bit kernels of Ampere/Hopper) compute at the BF16 peak;
- every elementwise kernel (norms, RoPE, activations, top-k, cache writes) costs ``t0_kernel``;
- every launched kernel adds ``kernel_gap_s`` (the gap between kernels of a whole step, which a
  kernel database timing kernels one by one does not see), and each pass adds ``step_host_s``
  (charged to its last operator).

The same formulas fit the constants to a kernel database (:mod:`elmoe_dse.explore.calibrate_hw`).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from elmoe_dse.kernels import Kernel, default_kernels
from elmoe_dse.platforms._base import MemoryPlan, PlatformKnobs, PlatformModel
from elmoe_dse.platforms._placement import main_tier_plan, split
from elmoe_dse.platforms._resources import host_resources
from elmoe_dse.roofline import OpCost, Resources, operator_cost
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.units import GB
from elmoe_dse.workload import OpLoad

Array = np.ndarray

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


def moe_time_s(
    k: dict[str, float], fmt: str, nbytes: Array, ops: Array, peak: float | Array, bw: float
) -> Array:
    """The fused-MoE operator reading ``nbytes`` of expert weights (format ``fmt``)."""
    mem = np.asarray(nbytes) / (k[f"moe_eta_{fmt}_frac"] * bw)
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
            k[f"moe_eta_{fmt}_frac"],
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
    """The ``[kernels]`` constants of a GPU preset (the family requires the section)."""
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
