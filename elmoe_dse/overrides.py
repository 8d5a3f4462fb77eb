"""``--set KEY=VALUE`` overrides of knobs, model fields and platform fields.

A key is a knob name (see :data:`elmoe_dse.knobs.KNOB_INFO`), a top-level model field
(``num_experts``), or a dotted platform field path (``tiers.lpddr.peak_bw_gb_per_s``,
``static_power_w``). Overridden specs are re-validated, so an override obeys the same rules
(types, ranges) as a spec file.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, TypeVar

from pydantic import BaseModel

from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.knobs import KNOB_INFO, Knobs, parse_knob_value
from elmoe_dse.specs._base import Spec, validate
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec

S = TypeVar("S", bound=Spec)


def field_paths(obj: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every scalar field of a (nested) spec."""
    out: list[str] = []
    items: dict[str, Any]
    if isinstance(obj, BaseModel):
        items = {k: getattr(obj, k) for k in type(obj).model_fields}
    elif isinstance(obj, dict):
        items = obj
    else:
        return [prefix.rstrip(".")]
    for key, value in items.items():
        if isinstance(value, BaseModel | dict):
            out.extend(field_paths(value, f"{prefix}{key}."))
        else:
            out.append(f"{prefix}{key}")
    return out


def settable_paths(obj: Any) -> list[str]:
    """The dotted paths ``--set`` may change: numeric (or unset optional) fields and the string
    fields that select a behaviour (``near_memory.kind``); never documentation (``source``,
    ``description``), names, the schema version or the declared ranges/priors."""
    data = obj.model_dump() if isinstance(obj, BaseModel) else obj
    out: list[str] = []
    for path in field_paths(obj):
        leaf = path.rsplit(".", 1)[-1]
        if path.startswith("ranges.") or leaf in _DOCUMENTATION:
            continue
        value = _lookup(data, path)
        if value is None or isinstance(value, bool | int | float) or leaf in _CHOICES:
            out.append(path)
    return out


#: Field names that document a spec rather than parametrize it.
_DOCUMENTATION = frozenset(
    {"source", "description", "name", "id", "schema_version", "family", "hf_id", "notes"}
)
#: String fields that select a behaviour and may be set.
_CHOICES = frozenset({"kind", "tier", "weight_format", "kv_format", "attention"})


def _lookup(data: Any, path: str) -> Any:
    try:
        node = data
        for part in split_path(data, path):
            node = node[part]
        return node
    except (KeyError, TypeError):
        return None


def unknown_key_message(key: str, valid: list[str]) -> str:
    """One line for an unknown ``--set`` key: the closest settable keys, and where to list all."""
    near = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    if not near:
        tail = key.rsplit(".", 1)[-1]
        near = [v for v in valid if v.rsplit(".", 1)[-1].startswith(tail[:4])][:3]
    hint = f"did you mean {' or '.join(repr(n) for n in near)}? " if near else ""
    return (
        f"--set: unknown key '{key}'; {hint}list the settable keys with `elmoe-dse knobs` "
        "(knobs) and `elmoe-dse platforms show NAME` / `models show NAME` (spec fields)"
    )


def _parse_scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _set_path(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value


def split_path(data: dict[str, Any], path: str) -> list[str]:
    """Split a dotted path against nested dicts, allowing keys that contain dots (model ids such as
    ``glm-4.7-flash``): at each level the longest key that prefixes the rest wins."""
    parts: list[str] = []
    node: Any = data
    rest = path
    while rest:
        if not isinstance(node, dict):
            raise KeyError(path)
        match = next(
            (
                k
                for k in sorted(node, key=len, reverse=True)
                if rest == k or rest.startswith(k + ".")
            ),
            None,
        )
        if match is None:
            raise KeyError(path)
        parts.append(match)
        node = node[match]
        rest = rest[len(match) + 1 :]
    return parts


def with_field(spec: S, path: str, value: Any, *, where: str = "override") -> S:
    """A re-validated copy of ``spec`` with the field at dotted ``path`` set to ``value``."""
    return with_fields(spec, {path: value}, where=where)


def with_fields(spec: S, values: Mapping[str, Any], *, where: str = "override") -> S:
    """A copy of ``spec`` with every dotted path of ``values`` set, validated once at the end (a
    value outside its range, or a combination the spec's cross-field checks refuse, fails)."""
    if not values:
        return spec
    data = spec.model_dump()
    for path, value in values.items():
        try:
            parts = split_path(data, path)
        except KeyError:
            raise KnobError(f"{where}: '{path}' is not a field of {type(spec).__name__}") from None
        _set_path(data, parts, value)
    return validate(type(spec), data, path=where)


def apply_overrides(
    model: ModelSpec, spec: PlatformSpec, knobs: Knobs, pairs: list[str]
) -> tuple[ModelSpec, PlatformSpec, Knobs]:
    """Apply ``KEY=VALUE`` strings; unknown keys raise a KnobError listing the valid ones."""
    model_fields = set(settable_paths(model))
    platform_paths = set(settable_paths(spec))
    model_data: dict[str, Any] = {}
    platform_data = spec.model_dump()
    platform_touched = False
    knob_updates: dict[str, Any] = {}
    for pair in pairs:
        if "=" not in pair:
            raise KnobError(f"--set '{pair}': write KEY=VALUE, e.g. --set batch_size=8")
        key, _, text = pair.partition("=")
        key, text = key.strip(), text.strip()
        if key in KNOB_INFO:
            knob_updates[key] = parse_knob_value(key, text)
        elif key in model_fields:
            model_data[key] = _parse_scalar(text)
        elif key in platform_paths:
            _set_path(platform_data, split_path(platform_data, key), _parse_scalar(text))
            platform_touched = True
        else:
            valid = sorted(KNOB_INFO) + sorted(model_fields) + sorted(platform_paths)
            raise KnobError(unknown_key_message(key, valid))
    try:
        if model_data:
            model = validate(ModelSpec, {**model.model_dump(), **model_data}, path="--set")
        if platform_touched:
            spec = validate(PlatformSpec, platform_data, path="--set")
    except SpecError as err:
        raise KnobError(str(err)) from None
    return model, spec, replace(knobs, **knob_updates)
