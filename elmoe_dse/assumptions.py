"""Stated structural assumptions: what the paper leaves unsaid about how its systems work.

ELMoE-3D (arXiv 2604.14626) does not say what HB-xPU keeps in its HB, how operators overlap in
its simulator, which operators its PIM baselines offload, what its NMP is, or at which batch size
ELMoE-3D switches from plain decoding to Elastic-SD. Each such choice is one record of
:data:`ASSUMPTIONS`: a key, its alternatives (each with a one-line meaning), the default, and how
an alternative is applied to the paper's systems (``reproduce``'s system names: ``xpu``,
``xpu-pim``, ``xpu-logicpim``, ``xpu-nmp``, ``hb-xpu``, ``elmoe3d``, ``elastic-sd``,
``eagle-sd``) as platform spec overrides (dotted path -> value) and knob overrides.

:func:`resolve_assumptions` takes ``{key: value}`` choices (the rest at their defaults);
:func:`parse_assumption` reads ``KEY=VALUE``; :func:`apply_platform_overrides` sets a system's
platform overrides on a spec in one re-validation. No file I/O.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.specs._base import validate
from elmoe_dse.specs.platform import PlatformSpec

#: The systems ``reproduce`` evaluates.
SYSTEMS: tuple[str, ...] = (
    "elmoe3d",
    "xpu",
    "xpu-pim",
    "xpu-logicpim",
    "xpu-nmp",
    "hb-xpu",
    "elastic-sd",
    "eagle-sd",
)
NEAR_MEMORY_SYSTEMS: tuple[str, ...] = ("xpu-pim", "xpu-logicpim", "xpu-nmp")

Overrides = dict[str, dict[str, Any]]  # system -> name or dotted path -> value


@dataclass(frozen=True)
class Alternative:
    """One alternative of an assumption and how it is applied, per system."""

    value: str
    meaning: str
    platform: Overrides = field(default_factory=dict)
    knobs: Overrides = field(default_factory=dict)


@dataclass(frozen=True)
class Assumption:
    """A named structural assumption: its alternatives and the default."""

    key: str
    meaning: str
    default: str
    alternatives: tuple[Alternative, ...]

    def alternative(self, value: str) -> Alternative:
        """The alternative ``value``; an unknown one raises a KnobError with a did-you-mean."""
        for alt in self.alternatives:
            if alt.value == value:
                return alt
        names = [a.value for a in self.alternatives]
        raise KnobError(f"assumption {self.key}={value}: {_unknown(value, names)}")

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(a.value for a in self.alternatives)


def _unknown(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown value{hint}; use one of {', '.join(names)}"


def _prior(lo: float, hi: float, center: float, spread: float, source: str) -> dict[str, Any]:
    return {
        "min": lo,
        "max": hi,
        "dist": "lognormal",
        "center": center,
        "spread": spread,
        "paper_informed": False,
        "source": source,
    }


_H2LLM = "H2-LLM (ISCA 2025, leesou/H2-LLM-ISCA-2025 defaults)"
#: Per-bank NMP (H2-LLM style): bandwidth, compute per byte, read energy, units' static power.
PER_BANK_NMP: dict[str, Any] = {
    "near_memory.internal_bw_multiplier": 8.0,
    "near_memory.ops_per_byte": {"w4a8": 12.0, "w8a8": 12.0, "w16a16": 6.0},
    "near_memory.read_energy_pj_per_bit": 0.8,
    "static_power.near_memory_w": 0.5,
    "ranges.near_memory.internal_bw_multiplier": _prior(
        4.0, 16.0, 8.0, 0.35, f"per-bank NMP at about 8x the host channel bandwidth ({_H2LLM})"
    ),
    "ranges.near_memory.ops_per_byte.w8a8": _prior(
        4.0,
        36.0,
        12.0,
        0.4,
        f"per bank 8 FP units x 16 lanes at 600 MHz over 25.6 GB/s = 6 flop/B FP16 ({_H2LLM}),"
        " INT8 at twice the rate",
    ),
    "ranges.near_memory.read_energy_pj_per_bit": _prior(
        0.3,
        2.0,
        0.8,
        0.3,
        "a bank-level read at 0.21 x the host read (Duplex power.h after FGDRAM, MICRO 2017)",
    ),
    "ranges.static_power.near_memory_w": _prior(
        0.03, 5.0, 0.5, 1.0, "assumed: NMP units beside every bank, as bank-level PIM units"
    ),
}


def _all(overrides: dict[str, Any], systems: tuple[str, ...] = SYSTEMS) -> Overrides:
    return {s: dict(overrides) for s in systems}


def _threshold(value: str) -> Alternative:
    b_star = math.nan if value == "auto" else float(value)
    meaning = (
        "per point, the faster of AR and Elastic-SD (design search, not the paper's mechanism)"
        if value == "auto"
        else f"AR below B = {value}, Elastic-SD at or above it"
    )
    return Alternative(value, meaning, knobs={"elmoe3d": {"mode_threshold": b_star}})


ASSUMPTIONS: dict[str, Assumption] = {
    a.key: a
    for a in (
        Assumption(
            "hb_role",
            "what HB-xPU keeps in its HB stack (the paper does not say)",
            "lru",
            (
                Alternative("lru", "non-expert weights, KV and a full-precision expert LRU cache"),
                Alternative(
                    "none",
                    "non-expert weights and KV only; every expert from LPDDR (AR, no cache)",
                    knobs={"hb-xpu": {"policy": "ar"}},
                ),
            ),
        ),
        Assumption(
            "overlap",
            "how a pass's operators overlap in time",
            "operator",
            (
                Alternative("operator", "operators serial, tiers in parallel inside an operator"),
                Alternative(
                    "pass",
                    "whole-pass overlap: a pass takes its busiest resource's time",
                    platform=_all({"overlap": "pass"}),
                ),
            ),
        ),
        Assumption(
            "pim_offload",
            "which operators the PIM / NMP baselines run in memory",
            "faster",
            tuple(
                Alternative(
                    rule,
                    meaning,
                    platform={}
                    if rule == "faster"  # the spec files' own rule
                    else _all({"near_memory.offload": rule}, NEAR_MEMORY_SYSTEMS),
                )
                for rule, meaning in (
                    ("faster", "each operator where it finishes sooner"),
                    ("gemv", "attention and every expert FFN in memory, the rest on the xPU"),
                    ("attention", "attention only in memory, the rest on the xPU (AttAcc)"),
                )
            ),
        ),
        Assumption(
            "nmp_kind",
            "what xPU-NMP's near-memory processor is (the paper does not say)",
            "buffer",
            (
                Alternative("buffer", "buffer-side NMP: about 1.2x the host channel bandwidth"),
                Alternative(
                    "per-bank",
                    "per-bank NMP (H2-LLM style): about 8x the host channel bandwidth",
                    platform={"xpu-nmp": dict(PER_BANK_NMP)},
                ),
            ),
        ),
        Assumption(
            "mode_threshold",
            "batch size B* at and above which ELMoE-3D runs Elastic-SD (AR below)",
            "4",
            tuple(_threshold(v) for v in ("1", "4", "8", "16", "auto")),
        ),
    )
}

#: The default alternative of every assumption.
DEFAULTS: dict[str, str] = {key: a.default for key, a in ASSUMPTIONS.items()}


def assumption(key: str) -> Assumption:
    """The record ``key``; an unknown key raises a KnobError with a did-you-mean."""
    try:
        return ASSUMPTIONS[key]
    except KeyError:
        names = list(ASSUMPTIONS)
        close = difflib.get_close_matches(key, names, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise KnobError(
            f"unknown assumption '{key}'{hint}; use one of {', '.join(names)}"
        ) from None


def parse_assumption(text: str) -> tuple[str, str]:
    """``"KEY=VALUE"`` -> ``(key, value)``, both checked against :data:`ASSUMPTIONS`."""
    if "=" not in text:
        raise KnobError(f"--assume '{text}': write KEY=VALUE, e.g. --assume overlap=pass")
    key, _, value = (part.strip() for part in text.partition("="))
    assumption(key).alternative(value)
    return key, value


@dataclass(frozen=True)
class Resolved:
    """Every assumption's chosen alternative and what it does to each system."""

    choices: dict[str, str]

    def alternatives(self) -> list[Alternative]:
        return [ASSUMPTIONS[k].alternative(v) for k, v in self.choices.items()]

    def platform_overrides(self, system: str) -> dict[str, Any]:
        """Dotted platform spec path -> value for ``system`` (:func:`apply_platform_overrides`)."""
        _check_system(system)
        out: dict[str, Any] = {}
        for alt in self.alternatives():
            out.update(alt.platform.get(system, {}))
        return out

    def knob_overrides(self, system: str) -> dict[str, Any]:
        """Knob name -> value for ``system`` (to pass to ``Knobs``/``Scenario.knobs``)."""
        _check_system(system)
        out: dict[str, Any] = {}
        for alt in self.alternatives():
            out.update(alt.knobs.get(system, {}))
        return out


def _check_system(system: str) -> None:
    if system not in SYSTEMS:
        raise KnobError(f"unknown system '{system}'; use one of {', '.join(SYSTEMS)}")


def resolve_assumptions(choices: dict[str, str] | None = None) -> Resolved:
    """The defaults with ``choices`` ({key: value}) applied; unknown keys or values raise."""
    chosen = dict(DEFAULTS)
    for key, value in (choices or {}).items():
        assumption(key).alternative(value)
        chosen[key] = value
    return Resolved(chosen)


def _set(data: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    """The dict holding ``path``'s last part and that part; dict keys may contain dots."""
    node, rest = data, path
    while True:
        if rest in node or ("." not in rest and isinstance(node, dict)):
            return node, rest
        match = next(
            (k for k in sorted(node, key=len, reverse=True) if rest.startswith(k + ".")), None
        )
        if match is None or not isinstance(node[match], dict):
            raise KnobError(f"assumption override '{path}' is not a platform field")
        node, rest = node[match], rest[len(match) + 1 :]


def apply_platform_overrides(spec: PlatformSpec, overrides: dict[str, Any]) -> PlatformSpec:
    """``spec`` with every dotted path of ``overrides`` set, re-validated once.

    A ``ranges.<path>`` key replaces that parameter's whole prior (a dict). Raises KnobError.
    """
    if not overrides:
        return spec
    data = spec.model_dump()
    data.setdefault("ranges", {})
    for path, value in overrides.items():
        if path.startswith("ranges."):
            data["ranges"][path[len("ranges.") :]] = dict(value)
            continue
        node, key = _set(data, path)
        node[key] = value
    try:
        return validate(PlatformSpec, data, path=f"assumptions for {spec.name}")
    except SpecError as err:
        raise KnobError(str(err)) from None
