"""Platform families: one :class:`PlatformModel` per family module, and their registry.

Each family module (``xpu``, ``near_memory``, ``hb_xpu``, ``elmoe3d``) exports ``MODEL``; a
platform spec's ``family`` selects the model (:func:`get`, :func:`model_for`). A new family is one
module ending with ``MODEL = PlatformModel(...)`` registered here (or by :func:`register` at run
time) plus its spec files. :func:`load_platform` loads a spec and checks it against its family:
the family exists and the spec has the tiers and sections the family needs.
"""

from __future__ import annotations

from pathlib import Path

from elmoe_dse.errors import SpecError
from elmoe_dse.platforms import elmoe3d, gpu, hb_xpu, near_memory, xpu
from elmoe_dse.platforms._base import (
    Footprint,
    MemoryPlan,
    PlatformKnobs,
    PlatformModel,
)
from elmoe_dse.platforms._resources import static_power_w
from elmoe_dse.specs.platform import DATA_DIR, PlatformSpec, list_platforms
from elmoe_dse.specs.platform import load_platform as load_platform_spec

__all__ = [
    "Footprint",
    "MemoryPlan",
    "PlatformKnobs",
    "PlatformModel",
    "check_spec",
    "families",
    "get",
    "load_platform",
    "model_for",
    "register",
    "static_power_w",
    "unregister",
]

_REGISTRY: dict[str, PlatformModel] = {}


def register(model: PlatformModel) -> None:
    """Register a family's model under its ``family`` name; a duplicate name raises."""
    if model.family in _REGISTRY:
        raise ValueError(f"platform family '{model.family}' is already registered")
    _REGISTRY[model.family] = model


def unregister(family: str) -> None:
    """Remove a family added by :func:`register` (a test's throwaway family)."""
    _REGISTRY.pop(family, None)


def families() -> list[str]:
    """Names of the registered families, sorted."""
    return sorted(_REGISTRY)


def get(family: str) -> PlatformModel:
    """The model of a family; an unknown name raises a one-line :class:`SpecError`."""
    try:
        return _REGISTRY[family]
    except KeyError:
        raise SpecError(
            f"unknown platform family '{family}'; use one of {', '.join(families())}",
            field="family",
        ) from None


def check_spec(spec: PlatformSpec, *, path: str | Path | None = None) -> PlatformModel:
    """The family model of ``spec``, after checking the spec has what the family needs.

    Raises:
        SpecError: naming the file (``path``, else the platform's name), the field and the fix.
    """
    where = str(path) if path is not None else f"platform '{spec.name}'"
    try:
        model = get(spec.family)
    except SpecError as err:
        raise SpecError(str(err).split(": ", 1)[-1], path=where, field="family") from None
    for tier in model.required_tiers:
        if tier not in spec.tiers:
            raise SpecError(
                f"family '{model.family}' needs a [tiers.{tier}] table; add it",
                path=where,
                field=f"tiers.{tier}",
            )
    for section in model.required_sections:
        if getattr(spec, section, None) is None:
            raise SpecError(
                f"family '{model.family}' needs a [{section}] table; add it",
                path=where,
                field=section,
            )
    got, want = set(spec.family_params), set(model.params)
    for key in sorted(want - got):
        raise SpecError(
            f"family '{model.family}' needs family_params.{key}; add it",
            path=where,
            field=f"family_params.{key}",
        )
    for key in sorted(got - want):
        known = ", ".join(model.params) or "none"
        raise SpecError(
            f"family '{model.family}' does not read family_params.{key} (it reads: {known}); "
            "remove it",
            path=where,
            field=f"family_params.{key}",
        )
    return model


def model_for(spec: PlatformSpec) -> PlatformModel:
    """The checked family model of a loaded spec (see :func:`check_spec`)."""
    return check_spec(spec)


def load_platform(name_or_path: str | Path) -> PlatformSpec:
    """Load a platform spec (shipped name or path) and check it against its family."""
    spec = load_platform_spec(name_or_path)
    text = str(name_or_path).strip()
    shipped = text.lower() in list_platforms()
    check_spec(spec, path=DATA_DIR / f"{text.lower()}.toml" if shipped else text)
    return spec


for _module in (xpu, near_memory, hb_xpu, elmoe3d, gpu):
    register(_module.MODEL)
