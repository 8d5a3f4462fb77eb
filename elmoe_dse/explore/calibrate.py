"""Calibrate the parameters the paper does not state to its four mean targets (MODEL.md 9).

The free parameters are named by keys ``platform.<name>.<dotted field>``,
``dataset.<name>.<dotted field>`` or ``acceptance.<field>``; each has a plausible range declared
next to its default in the spec file that holds it (``[ranges]``), and calibration never leaves
it: every calibrated value goes back through the spec's validator, which rejects a value outside
its range. Static powers are searched at or above the xPU's (every system has its LPDDR and at
least its compute; see :data:`STATIC_BASE_KEY`); HB-xPU's equals ELMoE-3D's (:data:`TIED`).
A seeded Optuna TPE study minimizes the sum over the four fitted targets of
(log(model / paper))^2; the maxima and the SD comparison are checks, not fit targets.

A dataset key ``dataset.NAME.models.*.FIELD`` sets FIELD for every model of that dataset profile
(one routing skew, overlap and acceptance ceiling per dataset: four targets cannot identify
per-model values). A near-memory unit's compute is one knob: setting
``near_memory.peak_tops.w8a8`` scales its whole per-precision table by the same factor (the
precisions keep their ratios).

The calibration file (TOML) records every value with its range and source, the fit error of each
target, the seed, the number of trials and the date; ``reproduce`` reads it. The same seed and
trial count give the same file.
"""

from __future__ import annotations

import datetime as dt
import math
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field

from elmoe_dse.errors import SpecError
from elmoe_dse.overrides import with_field
from elmoe_dse.specs._base import Spec, load_toml, validate
from elmoe_dse.specs.dataset import AcceptanceParams, DatasetProfile, list_datasets, load_dataset
from elmoe_dse.specs.platform import (
    PlatformSpec,
    RangeSpec,
    get_field,
    list_platforms,
    load_platform,
)

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHIPPED_CALIBRATION = DATA_DIR / "calibration.toml"

#: The parameters ``calibrate`` fits. Each must have a range in its spec file.
CALIBRATION_KEYS: tuple[str, ...] = (
    "platform.xpu.static_power_w",
    "platform.elmoe3d-8g.static_power_w",
    "platform.hb-xpu.static_power_w",
    "platform.xpu-pim.static_power_w",
    "platform.xpu-pim.near_memory.internal_bw_multiplier",
    "platform.xpu-pim.near_memory.peak_tops.w8a8",
    "platform.xpu-logicpim.static_power_w",
    "platform.xpu-logicpim.near_memory.internal_bw_multiplier",
    "platform.xpu-logicpim.near_memory.peak_tops.w8a8",
    "platform.xpu-nmp.static_power_w",
    "platform.xpu-nmp.near_memory.internal_bw_multiplier",
    "platform.xpu-nmp.near_memory.peak_tops.w8a8",
    "acceptance.expert_coverage_exponent",
    "acceptance.round_4bit_quality_frac",
    *(
        f"dataset.{name}.models.*.{field}"
        for name in ("mt-bench", "gsm8k", "alpaca", "humaneval")
        for field in ("zipf_exponent", "overlap_frac", "alpha_max")
    ),
)


class CalibratedValue(Spec):
    """One fitted parameter with the range it had to stay in."""

    value: float
    min: float
    max: float
    source: str


class Calibration(Spec):
    """A calibration file: fitted values, their ranges, the fit error, seed, trials, date."""

    schema_version: int = 1
    seed: int
    trials: int
    date: str
    loss: float
    parameters: dict[str, CalibratedValue]
    fit_error: dict[str, float] = Field(default_factory=dict)
    model: dict[str, float] = Field(default_factory=dict)


def _split_key(key: str) -> tuple[str, str, str]:
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
    """The range a free parameter must stay in, from the spec file that declares it."""
    kind, name, path = _split_key(key)
    ranges: dict[str, RangeSpec]
    if kind == "platform":
        ranges = load_platform(name).ranges
    elif kind == "dataset":
        profile = load_dataset(name)
        ranges = {**profile.expanded_ranges(), **profile.ranges}
    else:
        from elmoe_dse.specs.dataset import load_acceptance_params

        ranges = load_acceptance_params().ranges
    if path not in ranges:
        raise SpecError(
            f"calibration key '{key}' has no declared range in its spec file; "
            "declare one under [ranges] before calibrating it"
        )
    return ranges[path]


def _set_platform(spec: PlatformSpec, path: str, value: float) -> PlatformSpec:
    if path.endswith("near_memory.peak_tops.w8a8") and spec.near_memory is not None:
        factor = value / spec.near_memory.peak_tops.w8a8
        for prec in ("w4a8", "w16a16"):
            old = get_field(spec, f"near_memory.peak_tops.{prec}")
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
    """Specs with the calibrated values set (re-validated: a value outside its range fails)."""
    platforms, datasets = dict(platforms), dict(datasets)
    for key, cv in cal.parameters.items():
        kind, name, path = _split_key(key)
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


def resolve_calibration(option: str) -> Calibration | None:
    """The calibration a ``--calibration`` value names: ``shipped``, ``none`` or a file path."""
    if option == "none":
        return None
    return load_calibration(None if option == "shipped" else option)


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


#: Every shipped system holds the xPU's 64 GB LPDDR and a compute die at least as large as the
#: xPU's (PIM/NMP units, an HB stack, a logic die come on top), so its static power is at least
#: the xPU's: the search samples the others above it.
STATIC_BASE_KEY = "platform.xpu.static_power_w"

#: Parameters set equal to another rather than fitted. HB-xPU and ELMoE-3D 8 GB hold the same
#: memories (8 GB HB stack, 64 GB LPDDR) and the same 524 TOPS of W8A8 compute (an xPU, or the
#: logic die's PEs), so their static power is one figure; the targets alone cannot pin HB-xPU's.
TIED: dict[str, str] = {"platform.hb-xpu.static_power_w": "platform.elmoe3d-8g.static_power_w"}


def sample_values(trial: Any, ranges: dict[str, RangeSpec]) -> dict[str, float]:
    """One trial's parameter values, each inside its range; static powers >= the xPU's.

    A constrained static power is sampled as a fraction of its feasible interval
    [max(min, xPU's), max], which keeps the search space a fixed box for the sampler.
    """
    values: dict[str, float] = {}
    base = None
    if STATIC_BASE_KEY in ranges:
        r = ranges[STATIC_BASE_KEY]
        base = trial.suggest_float(STATIC_BASE_KEY, r.min, r.max, log=r.min > 0)
        values[STATIC_BASE_KEY] = base
    for key, r in ranges.items():
        if key == STATIC_BASE_KEY or key in TIED:
            continue
        if base is not None and key.endswith(".static_power_w"):
            lo = min(max(r.min, base), r.max)
            frac = trial.suggest_float(f"{key}:frac_above_xpu", 0.0, 1.0)
            values[key] = lo + frac * (r.max - lo)
        else:
            values[key] = trial.suggest_float(key, r.min, r.max, log=r.min > 0)
    for key, source in TIED.items():
        if key in ranges and source in values:
            values[key] = min(max(values[source], ranges[key].min), ranges[key].max)
    return {key: values[key] for key in ranges if key in values}


def start_params(start: Calibration, ranges: dict[str, RangeSpec]) -> dict[str, float]:
    """A previous calibration as the sampler's first trial: its values clipped into today's ranges
    and constraints, in the sampler's own parametrization (see :func:`sample_values`)."""
    values = {
        k: min(max(start.parameters[k].value, r.min), r.max)
        for k, r in ranges.items()
        if k in start.parameters
    }
    params: dict[str, float] = {}
    base = values.get(STATIC_BASE_KEY)
    for key, value in values.items():
        r = ranges[key]
        if key in TIED:
            continue
        if base is not None and key != STATIC_BASE_KEY and key.endswith(".static_power_w"):
            lo = min(max(r.min, base), r.max)
            frac = (value - lo) / (r.max - lo) if r.max > lo else 0.0
            params[f"{key}:frac_above_xpu"] = min(max(frac, 0.0), 1.0)
        else:
            params[key] = value
    return params


def calibrate(
    trials: int,
    seed: int,
    *,
    date: str | None = None,
    progress: Any = None,
    start: Calibration | None = None,
) -> Calibration:
    """Fit :data:`CALIBRATION_KEYS` to the four mean targets with a seeded TPE study.

    ``start`` (a previous calibration) is evaluated first, so a refit is never worse than it; the
    result depends only on the seed, the trial count and the start.
    """
    import optuna

    from elmoe_dse.explore.reproduce import FIT_TARGETS, PAPER_TARGETS, reproduce

    ranges = {key: parameter_range(key) for key in CALIBRATION_KEYS}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=min(20, max(1, trials // 4)), multivariate=True
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    if start is not None:
        study.enqueue_trial(start_params(start, ranges))

    def as_calibration(
        values: dict[str, float], loss: float, model: dict[str, float]
    ) -> Calibration:
        return Calibration(
            seed=seed,
            trials=trials,
            date=date or dt.date.today().isoformat(),
            loss=loss,
            parameters={
                k: CalibratedValue(
                    value=v,
                    min=ranges[k].min,
                    max=ranges[k].max,
                    source=f"fitted by elmoe-dse calibrate; range: {ranges[k].source}",
                )
                for k, v in values.items()
            },
            fit_error={t: (model[t] - PAPER_TARGETS[t]) / PAPER_TARGETS[t] for t in FIT_TARGETS},
            model=model,
        )

    def objective(trial: Any) -> float:
        values = sample_values(trial, ranges)
        trial.set_user_attr("values", values)
        cal = as_calibration(values, 0.0, dict.fromkeys(FIT_TARGETS, 1.0))
        result = reproduce(cal)
        model = {t.name: t.model for t in result.targets}
        trial.set_user_attr("model", model)
        loss = sum(math.log(model[t] / PAPER_TARGETS[t]) ** 2 for t in FIT_TARGETS)
        if progress is not None:
            progress(trial.number + 1, trials, loss)
        return loss

    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    model_all: dict[str, float] = best.user_attrs["model"]
    best_values: dict[str, float] = best.user_attrs["values"]
    loss = best.value if best.value is not None else math.inf
    return as_calibration(best_values, float(loss), model_all)
