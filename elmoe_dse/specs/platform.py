"""Platform specs: memory tiers, compute units, links, static power, per-operator overhead.

Capacities and bandwidths are decimal (1 GB = 1e9 bytes), as the paper and datasheets quote them;
an "8 GB" HB stack is modelled as 8e9 bytes (a physical 8 GiB = 8.59e9 would hold ~10 % more
expert slots: write ``capacity_gb = 8.59`` for it).

A platform file is TOML with prefixed units in the key names (``capacity_gb``,
``peak_bw_gb_per_s``, ``read_energy_pj_per_bit``, ``peak_tops``); the loader validates it and
exposes SI accessors (``capacity_bytes``, ``bw_bytes_per_s``, ``read_energy_j_per_bit``). Every
section carries a ``source``. Parameters the paper does not state declare a plausible range under
``[ranges]`` (dotted field path -> min, max, source); the loader rejects a value outside its range
and calibration never leaves it.

The ``family`` names the model in :mod:`elmoe_dse.platforms` that evaluates the platform; this
layer does not know the families. The family sections (``near_memory``, ``logic_die``,
``family_params``) are optional here and checked for consistency where present; which family needs
which section (and whether the family exists) is checked against the platform registry by
:func:`elmoe_dse.platforms.load_platform` and the evaluator.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from elmoe_dse import units
from elmoe_dse.specs._base import (
    RangeSpec,
    Spec,
    check_ranges,
    get_number,
    load_named_or_path,
    shipped_names,
)
from elmoe_dse.specs.kernels import KernelSpec

Precision = Literal["w4a8", "w8a8", "w16a16"]
PRECISIONS: tuple[str, ...] = ("w4a8", "w8a8", "w16a16")

DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "platforms"


class TierSpec(Spec):
    """One memory tier (LPDDR, HB, HBM). Reads of different tiers proceed in parallel."""

    capacity_gb: float = Field(gt=0, description="capacity, decimal GB")
    peak_bw_gb_per_s: float = Field(gt=0, description="peak bandwidth, decimal GB/s")
    bw_efficiency_frac: float = Field(gt=0, le=1, description="achievable / peak bandwidth")
    read_energy_pj_per_bit: float = Field(gt=0, description="read energy, pJ per bit")
    write_energy_pj_per_bit: float = Field(gt=0, description="write energy, pJ per bit")
    source: str

    @property
    def capacity_bytes(self) -> float:
        return self.capacity_gb * units.GB

    @property
    def bw_bytes_per_s(self) -> float:
        """Achievable bandwidth = peak x efficiency, bytes/s."""
        return self.peak_bw_gb_per_s * units.GB * self.bw_efficiency_frac

    @property
    def read_energy_j_per_bit(self) -> float:
        return self.read_energy_pj_per_bit * units.PJ

    @property
    def write_energy_j_per_bit(self) -> float:
        return self.write_energy_pj_per_bit * units.PJ


class PrecisionTable(Spec):
    """A number per compute precision (weights x activations)."""

    w4a8: float = Field(gt=0)
    w8a8: float = Field(gt=0)
    w16a16: float = Field(gt=0)

    def get(self, precision: str) -> float:
        return float(getattr(self, precision))


class ComputeSpec(Spec):
    """Host compute (xPU, GPU) or the logic die's PE array as a whole."""

    peak_tops: PrecisionTable = Field(description="dense peak, tera-ops/s per precision")
    energy_pj_per_op: PrecisionTable = Field(description="energy per op (a MAC is 2 ops), pJ")
    source: str

    def peak_ops_per_s(self, precision: str) -> float:
        return self.peak_tops.get(precision) * units.TERA

    def energy_j_per_op(self, precision: str) -> float:
        return self.energy_pj_per_op.get(precision) * units.PJ


class NearMemorySpec(Spec):
    """Processing inside one memory tier (bank PIM, logic-die PIM, NMP).

    Internal bandwidth = ``internal_bw_multiplier`` x the tier's peak x ``bw_efficiency_frac``.
    """

    kind: Literal["bank-pim", "logic-pim", "nmp"]
    tier: str
    internal_bw_multiplier: float = Field(gt=0)
    bw_efficiency_frac: float = Field(gt=0, le=1)
    read_energy_pj_per_bit: float = Field(gt=0)
    peak_tops: PrecisionTable
    energy_pj_per_op: PrecisionTable
    source: str

    def internal_bw_bytes_per_s(self, tier: TierSpec) -> float:
        """Achievable internal bandwidth of its tier, bytes/s."""
        peak_bytes_per_s = self.internal_bw_multiplier * tier.peak_bw_gb_per_s * units.GB
        return peak_bytes_per_s * self.bw_efficiency_frac

    @property
    def read_energy_j_per_bit(self) -> float:
        return self.read_energy_pj_per_bit * units.PJ

    def peak_ops_per_s(self, precision: str) -> float:
        return self.peak_tops.get(precision) * units.TERA

    def energy_j_per_op(self, precision: str) -> float:
        return self.energy_pj_per_op.get(precision) * units.PJ


class LinkSpec(Spec):
    """A die-to-die or PE-to-PE link; its bytes add a ``bytes / bw`` term to an operator's max."""

    bw_gb_per_s: float = Field(gt=0)
    energy_pj_per_bit: float = Field(ge=0)
    source: str

    @property
    def bw_bytes_per_s(self) -> float:
        return self.bw_gb_per_s * units.GB

    @property
    def energy_j_per_bit(self) -> float:
        return self.energy_pj_per_bit * units.PJ


class LogicDieSpec(Spec):
    """ELMoE-3D logic die: PEs each wired to one HB bank (HB bandwidth, compute scale with PEs)."""

    pe_count: int = Field(ge=1)
    hb_bw_per_pe_gb_per_s: float = Field(gt=0)
    hb_capacity_per_pe_gb: float = Field(gt=0)
    psum_bytes_per_element: float = Field(gt=0, description="partial-sum element size, bytes")
    source: str

    def hb_peak_bw_bytes_per_s(self, pe_count: Any) -> Any:
        """Peak HB bandwidth of ``pe_count`` PEs (one HB bank each), bytes/s; arrays broadcast."""
        return pe_count * self.hb_bw_per_pe_gb_per_s * units.GB


class PlatformSpec(Spec):
    """A hardware platform. See the module docstring for the families."""

    schema_version: int = Field(ge=1, le=1)
    name: str
    family: str = Field(min_length=1, description="the platform model that evaluates it")
    description: str
    source: str
    tiers: dict[str, TierSpec]
    compute: ComputeSpec
    near_memory: NearMemorySpec | None = None
    logic_die: LogicDieSpec | None = None
    kernels: KernelSpec | None = None
    family_params: dict[str, float] = Field(
        default_factory=dict, description="numbers a family reads that no shared section holds"
    )
    links: dict[str, LinkSpec] = Field(default_factory=dict)
    static_power_w: float = Field(ge=0)
    op_overhead_s: float = Field(ge=0, description="fixed latency per operator instance, s")
    ranges: dict[str, RangeSpec] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> PlatformSpec:
        if not self.tiers:
            raise ValueError("at least one [tiers.NAME] table is needed")
        die, hb = self.logic_die, self.tiers.get("hb")
        if die is not None and hb is not None:
            expected = die.pe_count * die.hb_bw_per_pe_gb_per_s
            if abs(hb.peak_bw_gb_per_s - expected) > 1e-6 * expected:
                raise ValueError(
                    f"tiers.hb.peak_bw_gb_per_s = {hb.peak_bw_gb_per_s} but pe_count x "
                    f"hb_bw_per_pe_gb_per_s = {expected}; one HB bank per PE: make them equal"
                )
        if self.near_memory is not None and self.near_memory.tier not in self.tiers:
            raise ValueError(
                f"near_memory.tier '{self.near_memory.tier}' is not one of the tiers "
                f"{sorted(self.tiers)}; use one of them"
            )
        check_ranges(self, self.ranges)
        return self

    @property
    def main_tier(self) -> str:
        """The tier that holds everything not placed elsewhere (LPDDR, or HBM on a GPU)."""
        return "lpddr" if "lpddr" in self.tiers else next(iter(self.tiers))


#: Read a numeric field by dotted path (``tiers.lpddr.bw_efficiency_frac``).
get_field = get_number


def list_platforms() -> list[str]:
    """Names of the shipped platform specs."""
    return shipped_names(DATA_DIR)


def load_platform(name_or_path: str | Path) -> PlatformSpec:
    """Load a shipped platform by name (case-insensitive), or a platform TOML file by path."""
    return load_named_or_path(PlatformSpec, name_or_path, DATA_DIR, "platform")
