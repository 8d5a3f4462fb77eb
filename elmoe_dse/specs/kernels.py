"""The ``[kernels]`` section of a GPU preset: kernel-level cost constants, each with its prior.

Read by the ``gpu`` platform family (docs/model.md §11). Every constant is a table with its
fitted (or prior) ``value``, the ``prior`` it started from, the range ``[min, max]`` the fit may
not leave, a ``source`` for the prior and range, and ``fitted_on``: the kernel-database rows that
fitted it, or why it stays at its prior. ``command`` is the ``calibrate-hw`` call that wrote the
values and ``fit_error`` the error of the fitted terms on the rows they were fitted on.

Constants (SI; ``_frac`` are fractions of the datasheet peak):

- ``t0_kernel_s``: floor of a GEMM or elementwise kernel (norm, RoPE, activation, top-k).
- ``gemm_eta_bw_max_frac``, ``gemm_bw_half_bytes``: achievable bandwidth of a GEMM moving
  ``b`` bytes, ``eta_bw(b) = eta_max x b / (b + b_half)``.
- ``gemm_eta_compute_frac``: achieved / peak tensor throughput of a compute-bound GEMM.
- ``attn_t0_s``, ``attn_eta_bw_frac``: GQA decode attention floor and KV-read efficiency.
- ``mla_t0_s``, ``mla_eta_bw_frac``: the same for MLA decode attention.
- ``attn_eta_compute_frac``: achieved / peak throughput of compute-bound decode attention.
- ``prefill_attn_eta_compute_frac``: achieved / BF16 peak of prefill (flash) attention, the
  prompt tokens a serving run mixes into decode steps (not in the kernel databases, which time
  decode attention only: a sourced prior).
- ``moe_t0_s``: floor of the fused-MoE operator (alignment, two grouped GEMMs, activation, sum).
- ``moe_eta_bf16_frac``, ``moe_eta_int8_frac``, ``moe_eta_mxfp4_frac``: fused-MoE bandwidth
  efficiency on expert weights per storage format.
- ``moe_eta_compute_frac``: achieved / peak throughput of the compute-bound fused MoE.
- ``kernel_gap_s``: time between consecutive kernels of a whole decode step (not in a kernel
  database that times kernels one by one), per launched kernel.
- ``step_host_s``: per-step host time not hidden behind the GPU (scheduling, sampling).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from elmoe_dse.specs._base import Spec

#: The constants a ``[kernels]`` section must hold, in the order files list them.
KERNEL_PARAMS: tuple[str, ...] = (
    "t0_kernel_s",
    "gemm_eta_bw_max_frac",
    "gemm_bw_half_bytes",
    "gemm_eta_compute_frac",
    "attn_t0_s",
    "attn_eta_bw_frac",
    "mla_t0_s",
    "mla_eta_bw_frac",
    "attn_eta_compute_frac",
    "prefill_attn_eta_compute_frac",
    "moe_t0_s",
    "moe_eta_bf16_frac",
    "moe_eta_int8_frac",
    "moe_eta_mxfp4_frac",
    "moe_eta_compute_frac",
    "kernel_gap_s",
    "step_host_s",
)


class KernelParam(Spec):
    """One constant: value, prior, range, source, and what fitted it."""

    value: float = Field(ge=0)
    prior: float = Field(ge=0)
    min: float = Field(ge=0)
    max: float = Field(ge=0)
    source: str = Field(min_length=1)
    fitted_on: str = Field(min_length=1)

    @model_validator(mode="after")
    def _inside(self) -> KernelParam:
        if not self.min <= self.max:
            raise ValueError(f"min {self.min} > max {self.max}; swap them")
        for label, v in (("value", self.value), ("prior", self.prior)):
            if not self.min <= v <= self.max:
                raise ValueError(
                    f"{label} {v} is outside [{self.min}, {self.max}]; choose a value inside it"
                )
        return self


class FitError(Spec):
    """Error of the fitted terms on one kernel table, relative to the measured latency."""

    rows: int = Field(ge=0)
    median_abs_frac: float = Field(ge=0)
    p90_abs_frac: float = Field(ge=0)
    worst_abs_frac: float = Field(ge=0)


class KernelSpec(Spec):
    """The ``[kernels]`` section: constants, their provenance, and the fit's error."""

    source: str = Field(min_length=1)
    command: str = Field(min_length=1, description="the calibrate-hw call that wrote the values")
    params: dict[str, KernelParam]
    fit_error: dict[str, FitError] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _complete(self) -> KernelSpec:
        missing = [k for k in KERNEL_PARAMS if k not in self.params]
        if missing:
            raise ValueError(f"kernels.params.{missing[0]} is missing; add it (value, prior, ...)")
        extra = sorted(set(self.params) - set(KERNEL_PARAMS))
        if extra:
            raise ValueError(
                f"kernels.params.{extra[0]} is not a kernel constant; use one of "
                f"{', '.join(KERNEL_PARAMS)}"
            )
        return self

    def value(self, name: str) -> float:
        """The value of constant ``name``."""
        return self.params[name].value

    def values(self) -> dict[str, float]:
        """Every constant's value, by name."""
        return {k: self.params[k].value for k in KERNEL_PARAMS}
