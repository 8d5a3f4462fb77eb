"""Platform specs: memory tiers, compute units, links, static power, costs, per-operator overhead.

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
from elmoe_dse.specs.link import DeviceLinkSpec

Precision = Literal["w4a8", "w8a8", "w16a16"]
#: How a pass's operators overlap (docs/model.md §7): ``operator`` (operators serial, tiers in
#: parallel inside one operator) or ``pass`` (whole-pass overlap: the pass takes as long as its
#: busiest resource, compute or a tier or a link, summed over its operators).
Overlap = Literal["operator", "pass"]
#: Which operators a near-memory unit runs (docs/model.md §7): ``faster`` (each operator where it
#: finishes sooner), ``gemv`` (attention and every expert FFN in memory, the rest on the host),
#: ``attention`` (attention only in memory, as in AttAcc, ASPLOS 2024).
Offload = Literal["faster", "gemv", "attention"]
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
        value = getattr(self, precision)  # an array: a stack of draws (evaluator.ensemble)
        return value if hasattr(value, "ndim") else float(value)


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
    Compute is tied to it, as the designs size their units: peak ops/s = ``ops_per_byte`` x
    ``internal_bw_multiplier`` x the tier's peak bandwidth (Duplex, arXiv 2409.01141: bank PIM
    1 op/B, Logic-PIM 8 op/B at FP16, INT8 at twice the rate). A user's file may give
    ``peak_tops`` instead (a fixed compute peak, independent of the multiplier); one of the two.
    """

    kind: Literal["bank-pim", "logic-pim", "nmp"]
    tier: str
    internal_bw_multiplier: float = Field(gt=0)
    bw_efficiency_frac: float = Field(gt=0, le=1)
    read_energy_pj_per_bit: float = Field(gt=0)
    ops_per_byte: PrecisionTable | None = Field(None, description="ops per internal byte")
    peak_tops: PrecisionTable | None = Field(None, description="fixed peak, tera-ops/s")
    energy_pj_per_op: PrecisionTable
    offload: Offload = "faster"
    source: str

    @model_validator(mode="after")
    def _one_compute(self) -> NearMemorySpec:
        if (self.ops_per_byte is None) == (self.peak_tops is None):
            raise ValueError(
                "give exactly one of ops_per_byte (compute tied to the internal bandwidth) and "
                "peak_tops (a fixed compute peak)"
            )
        return self

    def internal_bw_bytes_per_s(self, tier: TierSpec) -> float:
        """Achievable internal bandwidth of its tier, bytes/s."""
        peak_bytes_per_s = self.internal_bw_multiplier * tier.peak_bw_gb_per_s * units.GB
        return peak_bytes_per_s * self.bw_efficiency_frac

    @property
    def read_energy_j_per_bit(self) -> float:
        return self.read_energy_pj_per_bit * units.PJ

    def peak_ops_per_s(self, precision: str, tier: TierSpec) -> float:
        """Compute peak on its tier ``tier``: ops/B x multiplier x tier peak, or ``peak_tops``."""
        if self.peak_tops is not None:
            return self.peak_tops.get(precision) * units.TERA
        assert self.ops_per_byte is not None
        internal_peak = self.internal_bw_multiplier * tier.peak_bw_gb_per_s * units.GB
        return self.ops_per_byte.get(precision) * internal_peak

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


class StaticPowerSpec(Spec):
    """Static power from parts (docs/model.md §8): each part a sourced prior in ``[ranges]``.

    total = host_w + xpu_compute_w + near_memory_w + lpddr_w_per_gb x LPDDR capacity (GB)
            + hb_w_per_gb x HB capacity (GB, the ``hb_capacity_gb`` knob where set)
            + logic_die_w_per_pe x PEs (the ``pe_count`` knob where set)

    so HB capacity and PE count cost power. A part a platform does not have is 0.
    """

    host_w: float = Field(ge=0, description="host SoC uncore: controllers, PHY, NoC, W")
    xpu_compute_w: float = Field(0.0, ge=0, description="xPU compute array leakage, W")
    lpddr_w_per_gb: float = Field(0.0, ge=0, description="LPDDR background power per GB")
    hb_w_per_gb: float = Field(0.0, ge=0, description="HB stack background power per GB")
    logic_die_w_per_pe: float = Field(0.0, ge=0, description="logic-die leakage per PE, W")
    near_memory_w: float = Field(0.0, ge=0, description="PIM / NMP units' static power, W")
    source: str


class CostSpec(Spec):
    """What the hardware costs (docs/model.md §12): silicon area and dollars, each part a sourced
    prior in ``[ranges]``. Areas are in mm2 (1 mm2 = 1e-6 m2), the one non-SI unit of the spec.

    logic area (mm2) = logic_fixed_mm2 + xpu_compute_mm2 + near_memory_mm2
                       + logic_mm2_per_pe x PEs (the ``pe_count`` knob where set)
    cost (USD) = logic area x logic_usd_per_mm2
                 + hb_usd_per_gb x HB capacity (GB, the ``hb_capacity_gb`` knob where set)
                 + lpddr_usd_per_gb x LPDDR capacity (GB)

    so HB capacity and PE count cost area and money. A part a platform does not have is 0.
    """

    logic_fixed_mm2: float = Field(ge=0, description="die area that does not scale with PEs")
    logic_mm2_per_pe: float = Field(0.0, ge=0, description="area of one logic-die PE, mm2")
    xpu_compute_mm2: float = Field(0.0, ge=0, description="the xPU's compute array, mm2")
    near_memory_mm2: float = Field(0.0, ge=0, description="PIM / NMP logic, mm2")
    logic_usd_per_mm2: float = Field(gt=0, description="yielded, tested logic die, USD per mm2")
    hb_usd_per_gb: float = Field(0.0, ge=0, description="hybrid-bonded DRAM stack, USD per GB")
    lpddr_usd_per_gb: float = Field(0.0, ge=0, description="LPDDR packages, USD per GB")
    source: str


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
    device_link: DeviceLinkSpec | None = None
    static_power: StaticPowerSpec | None = None
    static_power_w: float | None = Field(
        None, ge=0, description="legacy: the whole static power, fixed; replaces the parts"
    )
    cost: CostSpec | None = Field(
        None, description="area and dollar cost of the hardware; without it cost metrics are NaN"
    )
    overlap: Overlap = "operator"
    op_overhead_s: float = Field(ge=0, description="fixed latency per operator instance, s")
    calibration: str | None = Field(
        None,
        description="opt in to a shipped platform's calibration: 'shipped:NAME' (a copy of a "
        "shipped platform under another name or path is otherwise taken as written)",
    )
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
            capacity = die.pe_count * die.hb_capacity_per_pe_gb
            if abs(hb.capacity_gb - capacity) > 1e-6 * capacity:
                raise ValueError(
                    f"tiers.hb.capacity_gb = {hb.capacity_gb:g} but logic_die.pe_count x "
                    f"hb_capacity_per_pe_gb = {die.pe_count} x {die.hb_capacity_per_pe_gb:g} = "
                    f"{capacity:g}; one HB bank per PE: make them equal"
                )
        if self.near_memory is not None and self.near_memory.tier not in self.tiers:
            raise ValueError(
                f"near_memory.tier '{self.near_memory.tier}' is not one of the tiers "
                f"{sorted(self.tiers)}; use one of them"
            )
        self._check_static_parts()
        self._check_cost_parts()
        self._check_calibration()
        check_ranges(self, self.ranges)
        return self

    def _check_calibration(self) -> None:
        if self.calibration is None:
            return
        kind, _, name = self.calibration.partition(":")
        if kind != "shipped" or name not in list_platforms():
            raise ValueError(
                f"calibration = '{self.calibration}': write 'shipped:NAME' with NAME one of "
                f"{', '.join(list_platforms())}, or remove the key"
            )

    @property
    def calibrate_as(self) -> str | None:
        """The shipped platform whose calibration this file opted in to, if any."""
        return None if self.calibration is None else self.calibration.partition(":")[2]

    def _check_static_parts(self) -> None:
        parts = self.static_power
        if parts is None:
            if self.static_power_w is None:
                raise ValueError(
                    "no static power: add a [static_power] table of parts (host_w, "
                    "lpddr_w_per_gb, ...) or a fixed static_power_w"
                )
            return
        needs = (
            ("hb_w_per_gb", parts.hb_w_per_gb, "hb" in self.tiers, "a [tiers.hb] table"),
            ("lpddr_w_per_gb", parts.lpddr_w_per_gb, "lpddr" in self.tiers, "[tiers.lpddr]"),
            (
                "logic_die_w_per_pe",
                parts.logic_die_w_per_pe,
                self.logic_die is not None,
                "[logic_die]",
            ),
            ("near_memory_w", parts.near_memory_w, self.near_memory is not None, "[near_memory]"),
        )
        for name, value, present, section in needs:
            if value > 0 and not present:
                raise ValueError(f"static_power.{name} > 0 needs {section}; set it to 0 or add it")

    def _check_cost_parts(self) -> None:
        parts = self.cost
        if parts is None:
            return
        die, near = self.logic_die is not None, self.near_memory is not None
        needs = (
            ("hb_usd_per_gb", parts.hb_usd_per_gb, "hb" in self.tiers, "a [tiers.hb] table"),
            ("lpddr_usd_per_gb", parts.lpddr_usd_per_gb, "lpddr" in self.tiers, "[tiers.lpddr]"),
            ("logic_mm2_per_pe", parts.logic_mm2_per_pe, die, "[logic_die]"),
            ("near_memory_mm2", parts.near_memory_mm2, near, "[near_memory]"),
        )
        for name, value, present, section in needs:
            if value > 0 and not present:
                raise ValueError(f"cost.{name} > 0 needs {section}; set it to 0 or add it")

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
