"""Calibration files and how they are applied to the specs (docs/model.md §9).

A calibration sets the parameters the paper does not state. Each parameter is named by a key
``platform.<name>.<dotted field>``, ``dataset.<name>.<dotted field>`` or ``acceptance.<field>`` and
has a plausible range declared next to its default in the spec file that holds it (``[ranges]``).
Every calibrated value goes back through the spec's validator, which rejects a value outside that
range.

- A dataset key ``dataset.NAME.models.*.FIELD`` sets FIELD for every model of that dataset profile.
- A near-memory unit's compute is one knob: setting ``near_memory.peak_tops.w8a8`` scales its whole
  per-precision table by the same factor (the precisions keep their ratios).
- A calibration applies to the shipped specs of the names it lists. A user's own spec file is
  taken as written, even when it is a copy of a shipped one (:func:`calibrate_shipped`).

The calibration file (TOML) records every value with its range and source, the fit error of each
target, the seed, the number of trials and the date. ``elmoe-dse calibrate`` writes it (the search
is :mod:`elmoe_dse.explore.calibrate`); ``reproduce``, ``explain``, ``sweep``, ``optimize`` and the
plots read it.

This module sits beside :mod:`elmoe_dse.specs` and above :mod:`elmoe_dse.overrides` (it sets
fields with :func:`~elmoe_dse.overrides.with_field`), below :mod:`elmoe_dse.scenario` and
:mod:`elmoe_dse.explore`; it imports neither.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field

from elmoe_dse.errors import SpecError
from elmoe_dse.overrides import with_field
from elmoe_dse.specs._base import DATA_DIR, RangeSpec, Spec, get_number, load_toml, validate
from elmoe_dse.specs.dataset import (
    AcceptanceParams,
    DatasetProfile,
    list_datasets,
    load_acceptance_params,
    load_dataset,
)
from elmoe_dse.specs.platform import PlatformSpec, list_platforms, load_platform

#: The calibration the package ships (``--calibration shipped``).
SHIPPED_CALIBRATION = DATA_DIR / "calibration.toml"


class CalibratedValue(Spec):
    """One fitted parameter with the range it had to stay in."""

    value: float
    min: float
    max: float
    source: str


class Calibration(Spec):
    """A calibration file: fitted values, their ranges, the fit error, seed, trials, date."""

    schema_version: int = Field(1, ge=1, le=1)
    seed: int
    trials: int
    date: str
    loss: float
    parameters: dict[str, CalibratedValue]
    fit_error: dict[str, float] = Field(default_factory=dict)
    model: dict[str, float] = Field(default_factory=dict)


def split_key(key: str) -> tuple[str, str, str]:
    """``(kind, name, path)`` of a calibration key: ``platform.xpu.static_power_w`` gives
    ``("platform", "xpu", "static_power_w")``; an acceptance key has no name."""
    kind, _, rest = key.partition(".")
    if kind == "acceptance":
        return kind, "", rest
    name, _, path = rest.partition(".")
    if kind not in ("platform", "dataset") or not name or not path:
        raise SpecError(
            f"calibration key '{key}': write platform.NAME.FIELD, dataset.NAME.FIELD "
            "or acceptance.FIELD"
        )
    return kind, name, path


def parameter_range(key: str) -> RangeSpec:
    """The range a free parameter must stay in, from the shipped spec file that declares it."""
    kind, name, path = split_key(key)
    ranges: dict[str, RangeSpec]
    if kind == "platform":
        ranges = load_platform(name).ranges
    elif kind == "dataset":
        profile = load_dataset(name)
        ranges = {**profile.expanded_ranges(), **profile.ranges}
    else:
        ranges = load_acceptance_params().ranges
    if path not in ranges:
        raise SpecError(
            f"calibration key '{key}' has no declared range in its spec file; "
            "declare one under [ranges] before calibrating it"
        )
    return ranges[path]


def _set_platform(spec: PlatformSpec, path: str, value: float) -> PlatformSpec:
    nm = spec.near_memory
    if path.endswith("near_memory.peak_tops.w8a8") and nm is not None and nm.peak_tops:
        factor = value / nm.peak_tops.w8a8
        for prec in ("w4a8", "w16a16"):
            old = get_number(spec, f"near_memory.peak_tops.{prec}")
            spec = with_field(
                spec,
                f"near_memory.peak_tops.{prec}",
                old * factor,
                where=f"calibration {spec.name}",
            )
    return with_field(spec, path, value, where=f"calibration {spec.name}")


def _set_dataset(profile: DatasetProfile, path: str, value: float) -> DatasetProfile:
    if path.startswith("models.*."):
        field = path[len("models.*.") :]
        for key in profile.models:
            profile = with_field(
                profile, f"models.{key}.{field}", value, where=f"calibration {profile.name}"
            )
        return profile
    return with_field(profile, path, value, where=f"calibration {profile.name}")


def apply_calibration(
    cal: Calibration,
    platforms: dict[str, PlatformSpec],
    datasets: dict[str, DatasetProfile],
    params: AcceptanceParams,
) -> tuple[dict[str, PlatformSpec], dict[str, DatasetProfile], AcceptanceParams]:
    """Specs with the calibrated values set (re-validated: a value outside its range fails).

    ``platforms`` and ``datasets`` are keyed by shipped name; a key of the calibration that names
    no shipped platform or dataset is refused, one whose spec is not in the dicts is skipped.
    """
    platforms, datasets = dict(platforms), dict(datasets)
    for key, cv in cal.parameters.items():
        kind, name, path = split_key(key)
        known = list_platforms() if kind == "platform" else list_datasets()
        if kind != "acceptance" and name not in known:
            raise SpecError(
                f"calibration key '{key}': no shipped {kind} '{name}'; use one of "
                f"{', '.join(known)}"
            )
        if kind == "platform":
            if name in platforms:
                platforms[name] = _set_platform(platforms[name], path, cv.value)
        elif kind == "dataset":
            if name in datasets:
                datasets[name] = _set_dataset(datasets[name], path, cv.value)
        else:
            params = with_field(params, path, cv.value, where="calibration acceptance")
    return platforms, datasets, params


def calibrate_shipped(
    cal: Calibration | None,
    platform: PlatformSpec,
    dataset: DatasetProfile,
    params: AcceptanceParams,
    *,
    platform_is_shipped: bool,
    dataset_is_shipped: bool,
) -> tuple[PlatformSpec, DatasetProfile, AcceptanceParams]:
    """Apply ``cal`` to a platform and dataset only where they are the shipped specs of that name
    (a user's own file is taken as written), and to the acceptance shape."""
    if cal is None:
        return platform, dataset, params
    plats = {platform.name: platform} if platform_is_shipped else {}
    dsets = {dataset.name: dataset} if dataset_is_shipped else {}
    plats, dsets, params = apply_calibration(cal, plats, dsets, params)
    return plats.get(platform.name, platform), dsets.get(dataset.name, dataset), params


def load_calibration(path: str | Path | None = None) -> Calibration:
    """Read a calibration file (default: the shipped one)."""
    p = Path(path) if path is not None else SHIPPED_CALIBRATION
    return validate(Calibration, load_toml(p), path=p)


def resolve_calibration(option: str) -> Calibration | None:
    """The calibration a ``--calibration`` value names: ``shipped``, ``none`` or a file path."""
    if option == "none":
        return None
    return load_calibration(None if option == "shipped" else option)


def calibration_toml(cal: Calibration) -> str:
    """The calibration as TOML text (stable order, so equal calibrations give equal files)."""
    lines = [
        "# Written by `elmoe-dse calibrate`; read by `elmoe-dse reproduce`.",
        "# Refit the shipped file: elmoe-dse calibrate --trials 800 --seed 20260417 --start",
        "#   elmoe_dse/data/calibration.toml --out elmoe_dse/data/calibration.toml",
        f"schema_version = {cal.schema_version}",
        f"seed = {cal.seed}",
        f"trials = {cal.trials}",
        f'date = "{cal.date}"',
        f"loss = {cal.loss!r}",
        "",
        "[fit_error]",
        *[f'"{k}" = {v!r}' for k, v in cal.fit_error.items()],
        "",
        "[model]",
        *[f'"{k}" = {v!r}' for k, v in cal.model.items()],
    ]
    for key, cv in cal.parameters.items():
        src = cv.source.replace("\\", "\\\\").replace('"', '\\"')
        lines += [
            "",
            f'[parameters."{key}"]',
            f"value = {cv.value!r}",
            f"min = {cv.min!r}",
            f"max = {cv.max!r}",
            f'source = "{src}"',
        ]
    text = "\n".join(lines) + "\n"
    tomllib.loads(text)  # round-trip check: the file we write must parse
    return text
