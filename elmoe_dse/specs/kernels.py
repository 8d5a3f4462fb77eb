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
- ``moe_large_m_factor``: factor on the ``moe_eta_<fmt>_frac`` of a fused-MoE call with more
  tokens than experts (vLLM's default tile switches from 16 to 64 rows at ``M > E``).
- ``moe_skew_factor``: factor on that efficiency in a kernel database's ``power_law`` rows
  against its ``balanced`` ones (per distinct expert). Used only by the fit
  (:mod:`elmoe_dse.explore.calibrate_hw`): at run time the routing's skew enters through the
  distinct experts U; a database without balanced rows (A100) keeps the prior.
- ``kernel_gap_s``: time between consecutive kernels of a whole decode step (not in a kernel
  database that times kernels one by one), per launched kernel.
- ``step_host_s``: per-step host time not hidden behind the GPU (scheduling, sampling).

**Serving engines.** The constants describe the kernels of the engine the kernel database
measured (``measured_engine``, vLLM for the shipped presets). ``engines`` holds, per other engine
(``tensorrt-llm``, ``sglang``), factors on those efficiencies, each a :class:`KernelParam` with
its prior, range, source and the measured points that fitted it (``fit_points``):

- ``attn_bw_factor`` multiplies ``attn_eta_bw_frac`` (GQA decode attention: TensorRT-LLM's XQA
  kernel against vLLM's FlashAttention/FlashInfer decode);
- ``moe_compute_factor`` multiplies ``moe_eta_compute_frac`` (the compute-bound fused MoE of
  the prompt chunks a serving run mixes into decode steps).

The measured engine has no entry: its factors are 1 by construction. ``engine`` selects the
engine a preset models (default the measured one); a factor may not push its constant outside
that constant's own ``[min, max]``.
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
    "moe_large_m_factor",
    "moe_skew_factor",
    "kernel_gap_s",
    "step_host_s",
)


#: Engine factors and the constants each multiplies.
ENGINE_FACTORS: dict[str, tuple[str, ...]] = {
    "attn_bw_factor": ("attn_eta_bw_frac",),
    "moe_compute_factor": ("moe_eta_compute_frac",),
}
#: Serving engines a measured point or a preset may name.
ENGINES: tuple[str, ...] = ("vllm", "sglang", "tensorrt-llm")


class KernelParam(Spec):
    """One constant: value, prior, range, source, and what fitted it."""

    value: float = Field(ge=0)
    prior: float = Field(ge=0)
    min: float = Field(ge=0)
    max: float = Field(ge=0)
    source: str = Field(min_length=1)
    fitted_on: str = Field(min_length=1)
    fit_points: list[str] = Field(
        default_factory=list, description="ids of the measured end-to-end points that fitted it"
    )

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


class EngineSpec(Spec):
    """Factors of one serving engine on the measured engine's kernel efficiencies."""

    source: str = Field(min_length=1)
    params: dict[str, KernelParam]

    @model_validator(mode="after")
    def _complete(self) -> EngineSpec:
        for name in ENGINE_FACTORS:
            if name not in self.params:
                raise ValueError(f"params.{name} is missing; add it (value, prior, ...)")
        extra = sorted(set(self.params) - set(ENGINE_FACTORS))
        if extra:
            raise ValueError(
                f"params.{extra[0]} is not an engine factor; use one of {', '.join(ENGINE_FACTORS)}"
            )
        return self


class KernelSpec(Spec):
    """The ``[kernels]`` section: constants, their provenance, and the fit's error."""

    source: str = Field(min_length=1)
    command: str = Field(min_length=1, description="the calibrate-hw call that wrote the values")
    params: dict[str, KernelParam]
    fit_error: dict[str, FitError] = Field(default_factory=dict)
    measured_engine: str = Field("vllm", description="the engine the kernel database measured")
    engine: str = Field("", description="the engine modelled ('' = measured_engine)")
    engines: dict[str, EngineSpec] = Field(default_factory=dict)

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
        self._check_engines()
        return self

    def _check_engines(self) -> None:
        for name in (self.measured_engine, self.engine or self.measured_engine, *self.engines):
            if name not in ENGINES:
                raise ValueError(f"engine '{name}' is not known; use one of {', '.join(ENGINES)}")
        if self.measured_engine in self.engines:
            raise ValueError(
                f"kernels.engines.{self.measured_engine} is the measured engine (factors 1 by "
                "construction); remove it"
            )
        chosen = self.engine or self.measured_engine
        if chosen != self.measured_engine and chosen not in self.engines:
            raise ValueError(
                f"kernels.engine = '{chosen}' has no kernels.engines.{chosen} factors; add them "
                f"or use '{self.measured_engine}'"
            )
        for eng, spec in self.engines.items():
            for factor, targets in ENGINE_FACTORS.items():
                f = spec.params[factor].value
                for t in targets:
                    q = self.params[t]
                    if not q.min <= q.value * f <= q.max:
                        raise ValueError(
                            f"kernels.engines.{eng}.params.{factor} = {f} puts {t} at "
                            f"{q.value * f:.4g}, outside [{q.min}, {q.max}]; lower the factor"
                        )

    def for_engine(self, engine: str) -> KernelSpec:
        """This section modelling ``engine`` ('' = the measured engine); one-line error if the
        section has no factors for it."""
        name = engine or self.measured_engine
        if name != self.measured_engine and name not in self.engines:
            known = ", ".join([self.measured_engine, *self.engines])
            raise ValueError(f"no kernel factors for engine '{name}'; use one of {known}")
        return self.model_copy(update={"engine": name})

    def factors(self) -> dict[str, float]:
        """The selected engine's factor per constant (empty for the measured engine)."""
        chosen = self.engine or self.measured_engine
        if chosen == self.measured_engine:
            return {}
        spec = self.engines[chosen]
        return {t: spec.params[f].value for f, ts in ENGINE_FACTORS.items() for t in ts}

    def value(self, name: str) -> float:
        """The value of constant ``name``."""
        return self.params[name].value

    def values(self) -> dict[str, float]:
        """Every constant's value, by name, with the selected engine's factors applied."""
        f = self.factors()
        return {k: self.params[k].value * f.get(k, 1.0) for k in KERNEL_PARAMS}
