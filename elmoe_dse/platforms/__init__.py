"""Platform modules, one per family, each with the same pure entry points, and their registry.

Every module defines ``FAMILY``, ``DEFAULT_CACHE``, ``BIT_NESTED`` (its cache holds MSB
slices), ``memory_plan(spec, knobs, footprint, ...)``
and ``cost_pass(spec, knobs, loads, plan)``. A platform spec's ``family`` selects its module.
"""

from __future__ import annotations

from types import ModuleType

from elmoe_dse.platforms import elmoe3d, hb_xpu, near_memory, xpu

_REGISTRY: dict[str, ModuleType] = {}


def register(module: ModuleType) -> None:
    """Register a platform module under its ``FAMILY``; a duplicate name raises."""
    name = module.FAMILY
    if name in _REGISTRY:
        raise ValueError(f"platform family '{name}' is already registered")
    for attr in ("DEFAULT_CACHE", "BIT_NESTED", "memory_plan", "cost_pass"):
        if not hasattr(module, attr):
            raise ValueError(f"platform module {module.__name__} lacks '{attr}'")
    _REGISTRY[name] = module


def family_module(family: str) -> ModuleType:
    """The module evaluating a family."""
    try:
        return _REGISTRY[family]
    except KeyError:
        raise ValueError(
            f"unknown platform family '{family}'; known: {sorted(_REGISTRY)}"
        ) from None


def families() -> list[str]:
    return sorted(_REGISTRY)


for _m in (xpu, near_memory, hb_xpu, elmoe3d):
    register(_m)
