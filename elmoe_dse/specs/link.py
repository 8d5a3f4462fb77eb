"""The ``[device_link]`` section of a platform: the link between devices of a parallel layout.

Read by :mod:`elmoe_dse.parallel` when a design spreads over more than one device (the ``tp``,
``ep`` and ``pp`` knobs). Every collective costs ``t = t0 + bytes / (eta x bw)`` with ``bw`` the
link's datasheet bandwidth per direction per device (``bw_gb_per_s``). Constants, each a table
with ``value``, ``prior``, ``[min, max]``, ``source`` and ``fitted_on`` (as ``[kernels]``):

- ``allreduce_t0_s``, ``allreduce_eta_frac``: an all-reduce of ``m`` bytes over ``n`` devices
  moves ``2 (n - 1) / n x m`` bytes per device (ring-equivalent); fitted where a measured
  all-reduce table exists (``fit_error``), else priors;
- ``p2p_t0_s``, ``p2p_eta_frac``: a point-to-point send (pipeline stages) and each half of an
  all-to-all (expert dispatch and combine);
- ``energy_pj_per_bit``: energy per bit crossing the link.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from elmoe_dse import units
from elmoe_dse.specs._base import Spec
from elmoe_dse.specs.kernels import FitError, KernelParam

#: The constants a ``[device_link]`` section must hold.
LINK_PARAMS: tuple[str, ...] = (
    "allreduce_t0_s",
    "allreduce_eta_frac",
    "p2p_t0_s",
    "p2p_eta_frac",
    "energy_pj_per_bit",
)


class DeviceLinkSpec(Spec):
    """The device-to-device link: bandwidth, and the constants of its collectives."""

    kind: str = Field(min_length=1, description="NVLink 3, NVLink 4, PCIe 5.0 x16, ...")
    bw_gb_per_s: float = Field(gt=0, description="datasheet bandwidth per direction, GB/s")
    source: str = Field(min_length=1)
    params: dict[str, KernelParam]
    fit_error: FitError | None = None

    @model_validator(mode="after")
    def _complete(self) -> DeviceLinkSpec:
        missing = [k for k in LINK_PARAMS if k not in self.params]
        if missing:
            raise ValueError(f"device_link.params.{missing[0]} is missing; add it (value, ...)")
        extra = sorted(set(self.params) - set(LINK_PARAMS))
        if extra:
            raise ValueError(
                f"device_link.params.{extra[0]} is not a link constant; use one of "
                f"{', '.join(LINK_PARAMS)}"
            )
        for name in ("allreduce_eta_frac", "p2p_eta_frac"):
            if not 0.0 < self.params[name].value <= 1.0:
                raise ValueError(f"device_link.params.{name} must lie in (0, 1]")
        return self

    def value(self, name: str) -> float:
        """The value of constant ``name``."""
        return self.params[name].value

    @property
    def bw_bytes_per_s(self) -> float:
        return self.bw_gb_per_s * units.GB

    @property
    def energy_j_per_bit(self) -> float:
        return self.value("energy_pj_per_bit") * units.PJ
