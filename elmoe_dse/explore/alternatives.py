"""Named structural assumptions the paper does not state, and what each alternative changes per
system of the reproduction grid (docs/calibration.md, "Ensemble").

The table itself lives in :mod:`elmoe_dse.assumptions` (HB-xPU's HB role, operator overlap, the
PIM offload rule, ...); this module is the narrow interface the reproduction reads,
:class:`AssumptionTable`, and its adapter :func:`assumption_table`. A *choice* maps every
assumption key to one of its alternatives; its *label* names the alternatives that differ from the
defaults (``default`` when none does).

Shape read from :mod:`elmoe_dse.assumptions`: ``ASSUMPTIONS`` maps a key to a record with
``default`` and ``alternatives`` (records with a ``value``, or plain names), and
``resolve_assumptions(choice)`` returns an object whose ``platform_overrides(system)`` and
``knob_overrides(system)`` give, for a reproduction system (``elmoe3d``, ``xpu``, ``hb-xpu``, ...),
the platform-field and knob values the choice sets; ``apply_platform_overrides(spec, overrides)``
sets the platform fields in one re-validation (a ``ranges.<path>`` key replaces that parameter's
prior). A module with ``system_overrides(choice, system)`` returning ``(platform, knobs)`` works
too.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from elmoe_dse.errors import KnobError

if TYPE_CHECKING:
    from elmoe_dse.specs.platform import PlatformSpec


@dataclass(frozen=True)
class SystemOverrides:
    """What an assumption choice sets for one system: platform fields (dotted path -> value) and
    knobs (name -> value)."""

    platform: Mapping[str, Any] = field(default_factory=dict)
    knobs: Mapping[str, Any] = field(default_factory=dict)


class AssumptionTable(Protocol):
    """The structural assumptions and their per-system effects."""

    def alternatives(self) -> dict[str, tuple[str, ...]]:
        """Each assumption key's alternatives, the default first."""
        ...

    def overrides(self, choice: Mapping[str, str], system: str) -> SystemOverrides:
        """What ``choice`` sets for ``system``."""
        ...

    def apply_platform(self, spec: PlatformSpec, fields: Mapping[str, Any]) -> PlatformSpec:
        """``spec`` with the platform ``fields`` of an override set (re-validated)."""
        ...


def set_fields(spec: PlatformSpec, fields: Mapping[str, Any]) -> PlatformSpec:
    """``spec`` with dotted ``fields`` set one by one (each re-validated)."""
    from elmoe_dse.overrides import with_field

    for path, value in fields.items():
        spec = with_field(spec, path, value, where=f"assumption for {spec.name}")
    return spec


class NoAssumptions:
    """The table when :mod:`elmoe_dse.assumptions` is absent: no assumption, nothing set."""

    def alternatives(self) -> dict[str, tuple[str, ...]]:
        return {}

    def overrides(self, choice: Mapping[str, str], system: str) -> SystemOverrides:
        return SystemOverrides()

    def apply_platform(self, spec: PlatformSpec, fields: Mapping[str, Any]) -> PlatformSpec:
        return set_fields(spec, fields)


def _names(entry: Any) -> tuple[str, ...]:
    if isinstance(entry, tuple | list):
        return tuple(str(x) for x in entry)
    alts = tuple(str(getattr(x, "value", x)) for x in entry.alternatives)
    default = str(getattr(entry, "default", alts[0]))
    return (default, *(a for a in alts if a != default))


class ModuleAssumptions:
    """Adapter of a module with ``ASSUMPTIONS`` and ``system_overrides`` (or ``overrides``)."""

    def __init__(self, module: ModuleType) -> None:
        self._module = module
        self._table = {str(k): _names(v) for k, v in module.ASSUMPTIONS.items()}

    def alternatives(self) -> dict[str, tuple[str, ...]]:
        return dict(self._table)

    def apply_platform(self, spec: PlatformSpec, fields: Mapping[str, Any]) -> PlatformSpec:
        fn = getattr(self._module, "apply_platform_overrides", None)
        return set_fields(spec, fields) if fn is None else fn(spec, dict(fields))

    def overrides(self, choice: Mapping[str, str], system: str) -> SystemOverrides:
        resolve = getattr(self._module, "resolve_assumptions", None)
        if resolve is not None:
            r = resolve(dict(choice))
            return SystemOverrides(r.platform_overrides(system), r.knob_overrides(system))
        out = self._module.system_overrides(dict(choice), system)
        if isinstance(out, SystemOverrides):
            return out
        if isinstance(out, tuple):
            return SystemOverrides(dict(out[0]), dict(out[1]))
        return SystemOverrides(dict(out.platform), dict(out.knobs))


def assumption_table() -> AssumptionTable:
    """The package's assumption table (:class:`NoAssumptions` if it ships none)."""
    try:
        module = importlib.import_module("elmoe_dse.assumptions")
    except ModuleNotFoundError:
        return NoAssumptions()
    return ModuleAssumptions(module)


def defaults(table: AssumptionTable) -> dict[str, str]:
    """Every assumption at its default."""
    return {key: alts[0] for key, alts in table.alternatives().items()}


def parse_assume(pairs: list[str], table: AssumptionTable) -> dict[str, str]:
    """The choice of ``--assume KEY=VALUE`` pairs over the defaults."""
    choice = defaults(table)
    alts = table.alternatives()
    for pair in pairs:
        key, sep, value = (s.strip() for s in pair.partition("="))
        if not sep:
            raise KnobError(f"--assume '{pair}': write KEY=VALUE")
        if key not in alts:
            known = ", ".join(alts) or "none (this build ships no structural assumption)"
            raise KnobError(f"--assume: unknown assumption '{key}'; use one of {known}")
        if value not in alts[key]:
            raise KnobError(
                f"--assume {key}: unknown alternative '{value}'; use one of {', '.join(alts[key])}"
            )
        choice[key] = value
    return choice


def label(choice: Mapping[str, str], table: AssumptionTable) -> str:
    """``default``, or the non-default alternatives as ``key=value`` joined by commas."""
    base = defaults(table)
    diff = [f"{k}={v}" for k, v in choice.items() if base.get(k) != v]
    return ",".join(diff) or "default"


def one_at_a_time(table: AssumptionTable) -> list[dict[str, str]]:
    """Every choice that moves one assumption off its default (the side-by-side table)."""
    base = defaults(table)
    return [{**base, key: alt} for key, alts in table.alternatives().items() for alt in alts[1:]]
