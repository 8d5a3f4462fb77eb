"""Calibration files and how they are applied to the specs (docs/model.md §9).

A calibration sets the parameters the paper does not state. Each parameter is named by a key
``platform.<name>.<dotted field>``, ``dataset.<name>.<dotted field>`` or ``acceptance.<field>`` and
has a plausible range declared next to its default in the spec file that holds it (``[ranges]``).
Every calibrated value goes back through the spec's validator, which rejects a value outside that
range.

- A dataset key ``dataset.NAME.models.*.FIELD`` sets FIELD for every model of that dataset profile.
- A near-memory unit's compute is one knob: setting ``near_memory.peak_tops.w8a8`` scales its whole
  per-precision table by the same factor (the precisions keep their ratios).
- A calibration applies by explicit mapping, never by a file's name: its keys name shipped specs,
  and ``applies_to`` records the content hash (SHA-256) of each shipped spec file it was fitted
  on (:func:`spec_sha256`). A shipped name gets it; a user's own platform file (a path) is taken
  as written, even when it is a copy of a shipped one, unless it opts in with
  ``calibration = "shipped:NAME"`` (or ``--calibrate-as NAME``): then NAME's calibrated values are
  set on it (:func:`calibrate_platform`). :func:`calibration_notes` says which is which.

A :class:`Calibration` is one parameter draw: every value with its range and source. The package
ships a posterior **ensemble** (``data/ensemble.json``, :class:`Ensemble`, written by ``elmoe-dse
calibrate``: :mod:`elmoe_dse.explore.posterior`), not a point fit; the shipped calibration
(``--calibration shipped``, :func:`load_calibration` without a path) is the ensemble's posterior
median draw: the paper-informed parameters at the draw nearest their posterior medians, every other
free parameter at its prior median (:func:`median_calibration`). ``reproduce``, ``explain``,
``sweep``, ``optimize`` and the plots all read that one set of numbers. A TOML calibration file
(:func:`calibration_toml`) still sets any chosen values.

The free parameters of a set of specs and their priors: :func:`prior_set`.

This module sits beside :mod:`elmoe_dse.specs` and above :mod:`elmoe_dse.overrides` (it sets
fields with :func:`~elmoe_dse.overrides.with_field`), below :mod:`elmoe_dse.scenario` and
:mod:`elmoe_dse.explore`; it imports neither.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field

from elmoe_dse.errors import SpecError
from elmoe_dse.overrides import with_fields
from elmoe_dse.specs._base import DATA_DIR, RangeSpec, Spec, get_number, load_toml, validate
from elmoe_dse.specs.dataset import (
    AcceptanceParams,
    DatasetProfile,
    list_datasets,
    load_acceptance_params,
    load_dataset,
)
from elmoe_dse.specs.platform import PlatformSpec, list_platforms, load_platform

#: The posterior ensemble the package ships; its median draw is ``--calibration shipped``.
SHIPPED_ENSEMBLE = DATA_DIR / "ensemble.json"


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
    #: ``platform.NAME`` / ``dataset.NAME`` -> SHA-256 of the shipped spec file it was fitted on.
    applies_to: dict[str, str] = Field(default_factory=dict)


def spec_sha256(kind: str, name: str) -> str:
    """SHA-256 (hex) of the shipped spec file of ``kind`` (platform, dataset) ``name``."""
    import hashlib

    path = DATA_DIR / f"{kind}s" / f"{name}.toml"
    return hashlib.sha256(path.read_bytes()).hexdigest()


def spec_hashes(platforms: list[str], datasets: list[str]) -> dict[str, str]:
    """``applies_to`` of a calibration fitted on these shipped platforms and datasets."""
    out = {f"platform.{n}": spec_sha256("platform", n) for n in platforms}
    out |= {f"dataset.{n}": spec_sha256("dataset", n) for n in datasets}
    return out


def fitted_on(cal: Calibration) -> dict[str, str]:
    """``applies_to`` of ``cal``, or (a file without it) the shipped specs its keys name, at
    their current hashes."""
    return dict(cal.applies_to) if cal.applies_to else keys_applies_to(list(cal.parameters))


def keys_applies_to(keys: list[str]) -> dict[str, str]:
    """``applies_to`` of calibration ``keys``: the shipped specs they name, at today's hashes."""
    plats = sorted({split_key(k)[1] for k in keys if k.startswith("platform.")})
    dsets = sorted({split_key(k)[1] for k in keys if k.startswith("dataset.")})
    return spec_hashes(plats, dsets)


def calibrate_platform(cal: Calibration, spec: PlatformSpec, target: str) -> PlatformSpec:
    """``spec`` with the calibrated values of shipped platform ``target`` set on it."""
    if target not in list_platforms():
        raise SpecError(
            f"calibrate as '{target}': no shipped platform of that name; use one of "
            f"{', '.join(list_platforms())}"
        )
    prefix = f"platform.{target}."
    fields: dict[str, float] = {}
    for key, cv in cal.parameters.items():
        if key.startswith(prefix):
            fields.update(_platform_fields(spec, key[len(prefix) :], cv.value))
    return with_fields(spec, fields, where=f"calibration {spec.name}")


def calibration_notes(
    cal: Calibration, ref: str, spec: PlatformSpec, target: str | None, shipped: bool
) -> list[str]:
    """One-line notes on how ``cal`` reached platform ``ref`` (calibrated as ``target``, or as
    written): an uncalibrated user file, or a spec that differs from the one it was fitted on."""
    fitted = fitted_on(cal)
    if target is None:
        if shipped:
            return []
        return [
            f"platform {ref}: runs uncalibrated (as written); the calibration applies to the "
            f"shipped {', '.join(k.split('.', 1)[1] for k in fitted if k.startswith('platform.'))}"
            f'; to use one, add calibration = "shipped:NAME" to the file or pass --calibrate-as'
            " NAME"
        ]
    want = fitted.get(f"platform.{target}")
    if want is None:
        return [f"platform {ref}: the calibration has no values for '{target}'; runs as written"]
    if shipped:
        have = spec_sha256("platform", target)
        if have != want:
            return [
                f"platform {target}: the calibration was fitted on the file with sha256 "
                f"{want[:12]}, the shipped file is now {have[:12]}; rerun elmoe-dse calibrate"
            ]
        return []
    return [f"platform {ref}: calibrated as the shipped {target} (sha256 {want[:12]}), by opt-in"]


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


def _platform_fields(spec: PlatformSpec, path: str, value: float) -> dict[str, float]:
    """The fields one calibrated platform value sets: a near-memory unit's W8A8 peak scales its
    other precisions' peaks by the same factor."""
    nm = spec.near_memory
    out: dict[str, float] = {}
    if path.endswith("near_memory.peak_tops.w8a8") and nm is not None and nm.peak_tops:
        factor = value / nm.peak_tops.w8a8
        for prec in ("w4a8", "w16a16"):
            field = f"near_memory.peak_tops.{prec}"
            out[field] = get_number(spec, field) * factor
    out[path] = value
    return out


def _dataset_fields(profile: DatasetProfile, path: str, value: float) -> dict[str, float]:
    """The fields one calibrated dataset value sets (``models.*.F``: F of every model)."""
    if path.startswith("models.*."):
        field = path[len("models.*.") :]
        return {f"models.{key}.{field}": value for key in profile.models}
    return {path: value}


def apply_calibration(
    cal: Calibration,
    platforms: dict[str, PlatformSpec],
    datasets: dict[str, DatasetProfile],
    params: AcceptanceParams,
) -> tuple[dict[str, PlatformSpec], dict[str, DatasetProfile], AcceptanceParams]:
    """Specs with the calibrated values set (each spec re-validated once: a value outside its
    range fails).

    ``platforms`` and ``datasets`` are keyed by shipped name; a key of the calibration that names
    no shipped platform or dataset is refused, one whose spec is not in the dicts is skipped.
    """
    per_platform: dict[str, dict[str, float]] = {}
    per_dataset: dict[str, dict[str, float]] = {}
    acceptance: dict[str, float] = {}
    known = {"platform": list_platforms(), "dataset": list_datasets()}
    for key, cv in cal.parameters.items():
        kind, name, path = split_key(key)
        if kind != "acceptance" and name not in known[kind]:
            raise SpecError(
                f"calibration key '{key}': no shipped {kind} '{name}'; use one of "
                f"{', '.join(known[kind])}"
            )
        if kind == "platform" and name in platforms:
            fields = _platform_fields(platforms[name], path, cv.value)
            per_platform.setdefault(name, {}).update(fields)
        elif kind == "dataset" and name in datasets:
            per_dataset.setdefault(name, {}).update(_dataset_fields(datasets[name], path, cv.value))
        elif kind == "acceptance":
            acceptance[path] = cv.value
    platforms = {
        n: with_fields(s, per_platform.get(n, {}), where=f"calibration {s.name}")
        for n, s in platforms.items()
    }
    datasets = {
        n: with_fields(d, per_dataset.get(n, {}), where=f"calibration {d.name}")
        for n, d in datasets.items()
    }
    return platforms, datasets, with_fields(params, acceptance, where="calibration acceptance")


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
    """Read a calibration: a TOML calibration file, the median draw of an ensemble file (``.json``)
    or, without a path, the median draw of the shipped ensemble."""
    if path is None or Path(path).suffix.lower() == ".json":
        return median_calibration(load_ensemble(path))
    p = Path(path)
    return validate(Calibration, load_toml(p), path=p)


def resolve_calibration(option: str, label: str = "default") -> Calibration | None:
    """The calibration a ``--calibration`` value names: ``shipped`` (the shipped ensemble's
    posterior median draw, of assumption ``label`` if it holds one, else of its defaults),
    ``none``, a calibration TOML file or an ensemble JSON file."""
    if option == "none":
        return None
    if option == "shipped" or option.lower().endswith(".json"):
        ens = load_ensemble(None if option == "shipped" else option)
        return median_calibration(ens, label if label in ens.posteriors else "default")
    return load_calibration(option)


def calibration_toml(cal: Calibration) -> str:
    """The calibration as TOML text (stable order, so equal calibrations give equal files)."""
    lines = [
        "# One parameter draw; read by `elmoe-dse reproduce --calibration FILE` (and explain,",
        "# sweep, optimize). The shipped numbers: median draw of elmoe_dse/data/ensemble.json.",
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


# ----------------------------------------------------------------------------------------------
# The prior set and the posterior ensemble
# ----------------------------------------------------------------------------------------------


#: Platform prior paths of the hardware cost parts (``[cost]``): not evaluator parameters, so
#: neither calibrated nor sampled by the ensembles (elmoe_dse.costs reads them).
COST_PREFIX = "cost."


def prior_set(
    platforms: tuple[str, ...], datasets: tuple[str, ...], models: tuple[str, ...]
) -> dict[str, RangeSpec]:
    """The prior of every free parameter of the shipped ``platforms`` and ``datasets`` (and the
    acceptance shape), keyed by calibration key, in a stable order.

    A dataset's ``models.*.FIELD`` prior is expanded to one independent parameter per model of
    ``models`` (``dataset.NAME.models.MODEL.FIELD``; a model without its own table uses the
    ``default`` table): each router keeps its own value. An exact per-model prior wins over the
    wildcard (:meth:`~elmoe_dse.specs.dataset.DatasetProfile.expanded_ranges`).
    """
    out: dict[str, RangeSpec] = {}
    for name in platforms:
        for path, rng in load_platform(name).ranges.items():
            if path.startswith(COST_PREFIX):
                continue  # area and dollars: no evaluator output depends on them
            out[f"platform.{name}.{path}"] = rng
    for name in datasets:
        profile = load_dataset(name)
        ranges = profile.expanded_ranges()
        keys = dict.fromkeys(m if m in profile.models else "default" for m in models)
        for path, rng in ranges.items():
            if not path.startswith("models.") or any(path.startswith(f"models.{k}.") for k in keys):
                out[f"dataset.{name}.{path}"] = rng
    for path, rng in load_acceptance_params().ranges.items():
        out[f"acceptance.{path}"] = rng
    return out


def prior_median(rng: RangeSpec) -> float:
    """The median of a prior (the value at quantile 0.5)."""
    return float(rng.ppf(0.5))


class Observation(Spec):
    """A reported number used as a noisy observation: ln(model) ~ N(ln(paper), sigma_log^2)."""

    paper: float = Field(gt=0)
    sigma_log: float = Field(gt=0)


class Posterior(Spec):
    """Posterior draws of the paper-informed parameters under one choice of the structural
    assumptions, with the sampler's diagnostics."""

    command: str
    seed: int
    assumptions: dict[str, str] = Field(default_factory=dict)
    groups: list[str] = Field(default_factory=list)
    informed: list[str]
    fixed: dict[str, float]
    draws: list[list[float]]
    log_prob: list[float]
    median_draw: int = Field(ge=0)
    walkers: int = Field(ge=0)
    steps: int = Field(ge=0)
    burn_in: int = Field(ge=0)
    thin: int = Field(ge=1)
    acceptance_fraction: float
    autocorr_time_steps: dict[str, float | None] = Field(default_factory=dict)

    def values(self, index: int) -> dict[str, float]:
        """The paper-informed values of draw ``index``."""
        return dict(zip(self.informed, self.draws[index], strict=True))


class Ensemble(Spec):
    """An ensemble file: how it was sampled, the observations, and one :class:`Posterior` per
    assumption label (``default`` for the assumptions' defaults)."""

    schema_version: int = Field(1, ge=1, le=1)
    command: str
    date: str
    seed: int
    sampler: str
    cut: str
    models: list[str]
    datasets: list[str]
    observations: dict[str, Observation]
    acceptance_max_frac: float = Field(gt=0, le=1)
    posteriors: dict[str, Posterior]
    #: ``platform.NAME`` / ``dataset.NAME`` -> SHA-256 of the shipped spec file sampled on
    #: (:func:`spec_hashes`; an older file without it: the shipped specs its keys name).
    applies_to: dict[str, str] = Field(default_factory=dict)

    def posterior(self, label: str = "default") -> Posterior:
        """The posterior of an assumption label."""
        if label not in self.posteriors:
            raise SpecError(
                f"ensemble has no posterior '{label}'; use one of {', '.join(self.posteriors)}"
            )
        return self.posteriors[label]


def load_ensemble(path: str | Path | None = None) -> Ensemble:
    """Read an ensemble file (default: the shipped one)."""
    from elmoe_dse.specs._base import load_json

    p = Path(path) if path is not None else SHIPPED_ENSEMBLE
    return validate(Ensemble, load_json(p), path=p)


def draw_calibration(
    values: dict[str, float], priors: dict[str, RangeSpec], how: str
) -> Calibration:
    """One parameter draw as a calibration: each value with its prior's support and source."""
    return Calibration(
        seed=0,
        trials=0,
        date="",
        loss=0.0,
        parameters={
            k: CalibratedValue(
                value=float(v),
                min=priors[k].min,
                max=priors[k].max,
                source=f"{how}; prior: {priors[k].source}",
            )
            for k, v in values.items()
        },
    )


def median_calibration(ens: Ensemble, label: str = "default") -> Calibration:
    """The posterior median draw: the paper-informed parameters at the posterior draw nearest
    their component-wise posterior medians (a real draw, so it meets the acceptance constraint),
    every other free parameter at its prior median (the plug-in of the cut posterior)."""
    post = ens.posterior(label)
    priors = {k: parameter_range(k) for k in [*post.fixed, *post.informed]}
    values = {k: prior_median(priors[k]) for k in post.fixed}
    stale = [k for k, v in post.fixed.items() if abs(values[k] - v) > 1e-9 * max(1.0, abs(v))]
    if stale:
        raise SpecError(
            f"ensemble: prior of '{stale[0]}' changed since the ensemble was sampled; rerun "
            "elmoe-dse calibrate (its command is in the file)"
        )
    values.update(post.values(post.median_draw))
    cal = draw_calibration(values, priors, "posterior median draw of the elmoe-dse ensemble")
    update = {"seed": ens.seed, "trials": len(post.draws), "date": ens.date}
    return cal.model_copy(update={**update, "applies_to": dict(ens.applies_to)})
