"""What a hardware design costs: logic-die area and dollars, from a platform's ``[cost]`` parts.

Pure functions of a platform spec and the design knobs (docs/model.md §12); no file I/O. The
hardware knobs act where the platform has the part: ``pe_count`` scales the logic-die PE array
(one PE per HB bank, :mod:`elmoe_dse.platforms.elmoe3d`), ``hb_capacity_gb`` the HB stack.

- logic area (mm2) = fixed + xPU compute + near-memory logic + area per PE x PEs;
- cost (USD) = logic area x USD per mm2 + HB USD per GB x HB GB + LPDDR USD per GB x LPDDR GB.

Area is reported in mm2 (``metric.logic_area_mm2``; 1 mm2 = 1e-6 m2), the one non-SI unit of the
results. A platform without a ``[cost]`` section gets NaN for both metrics (an objective or a
constraint on them then drops its points, by reason).
"""

from __future__ import annotations

import numpy as np

from elmoe_dse import units
from elmoe_dse.columns import COST_USD, LOGIC_AREA_MM2
from elmoe_dse.platforms._base import PlatformKnobs
from elmoe_dse.platforms._placement import hb_capacity_bytes
from elmoe_dse.platforms._resources import pe_count
from elmoe_dse.specs.platform import PlatformSpec

Array = np.ndarray


def logic_area_mm2(spec: PlatformSpec, knobs: PlatformKnobs) -> Array:
    """Logic silicon of the design, mm2: fixed + xPU compute + near-memory + per PE x PEs."""
    parts = spec.cost
    if parts is None:
        return np.full(np.shape(knobs.pe_count), np.nan)
    area = parts.logic_fixed_mm2 + parts.xpu_compute_mm2 + parts.near_memory_mm2
    total: Array = np.full(np.shape(knobs.pe_count), area, dtype=float)
    if spec.logic_die is not None:
        total = total + parts.logic_mm2_per_pe * pe_count(spec.logic_die, knobs)
    return np.asarray(total, dtype=float)


def memory_gb(spec: PlatformSpec, knobs: PlatformKnobs) -> dict[str, Array]:
    """Capacity of each costed memory (``hb`` at the knob where set, ``lpddr``), decimal GB."""
    out: dict[str, Array] = {}
    if "hb" in spec.tiers:
        out["hb"] = np.asarray(hb_capacity_bytes(spec, knobs) / units.GB, dtype=float)
    if "lpddr" in spec.tiers:
        out["lpddr"] = np.asarray(spec.tiers["lpddr"].capacity_gb, dtype=float)
    return out


def cost_usd(spec: PlatformSpec, knobs: PlatformKnobs) -> Array:
    """Dollar cost of the design: logic area x USD/mm2 + HB and LPDDR USD/GB x their GB."""
    parts = spec.cost
    area = logic_area_mm2(spec, knobs)
    if parts is None:
        return area  # NaN: no cost parts
    gb = memory_gb(spec, knobs)
    total = area * parts.logic_usd_per_mm2
    total = total + parts.hb_usd_per_gb * gb.get("hb", 0.0)
    total = total + parts.lpddr_usd_per_gb * gb.get("lpddr", 0.0)
    return np.asarray(total, dtype=float)


def cost_columns(spec: PlatformSpec, knobs: PlatformKnobs) -> dict[str, Array]:
    """The cost metric columns: ``metric.logic_area_mm2`` and ``metric.cost_usd``."""
    return {LOGIC_AREA_MM2: logic_area_mm2(spec, knobs), COST_USD: cost_usd(spec, knobs)}
