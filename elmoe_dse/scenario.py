"""The specs every command evaluates, calibrated, and the knobs layered on them.

One path builds calibrated specs, :func:`resolve_inputs`: ``explain``, ``sweep``, ``optimize``,
``reproduce`` and the plots all go through it (:func:`build_scenario` and :func:`load_scenario`
for one model x platform x dataset). A calibration applies by explicit mapping: a shipped name
gets it; a user's own spec file is taken as written (with a note) unless a platform file opts in
with ``calibration = "shipped:NAME"`` (or ``calibrate_as``). Routing is the
dataset profile's Zipf skew for the model (docs/model.md §4).

Knob layering, lowest first, lives in :meth:`Scenario.knob_values`: the knob defaults
(:class:`~elmoe_dse.knobs.Knobs`), then the dataset profile (``overlap_frac``), then what the
caller gives (a sweep file's axes, command-line flags).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from elmoe_dse.calibration import Calibration
    from elmoe_dse.evaluator import DraftQuality
    from elmoe_dse.knobs import Knobs
    from elmoe_dse.specs.dataset import AcceptanceParams, DatasetProfile, ModelProfile
    from elmoe_dse.specs.model import ModelSpec
    from elmoe_dse.specs.platform import PlatformSpec


@dataclass(frozen=True)
class Scenario:
    """The loaded specs of one model x platform x dataset, and the routing they imply."""

    model: ModelSpec
    platform: PlatformSpec
    dataset: str
    profile: ModelProfile
    p: np.ndarray
    quality: DraftQuality
    #: How the calibration reached the platform, when not as a shipped name (one line each).
    notes: tuple[str, ...] = ()

    def knob_values(self, **values: Any) -> dict[str, Any]:
        """Every knob's value: defaults < the dataset profile (``overlap_frac``) < ``values``.

        Keys in :data:`~elmoe_dse.knobs.KNOB_INFO` order; ``values`` may hold arrays.
        """
        from elmoe_dse.errors import KnobError
        from elmoe_dse.knobs import KNOB_INFO, Knobs

        unknown = sorted(set(values) - set(KNOB_INFO))
        if unknown:
            raise KnobError(f"unknown knob '{unknown[0]}'; use one of {', '.join(KNOB_INFO)}")
        defaults = Knobs()
        layered: dict[str, Any] = {name: getattr(defaults, name) for name in KNOB_INFO}
        layered["overlap_frac"] = self.profile.overlap_frac
        layered.update(values)
        return layered

    def knobs(self, **values: Any) -> Knobs:
        """The knobs of :meth:`knob_values` as a record."""
        from elmoe_dse.knobs import Knobs

        return Knobs(**self.knob_values(**values))


@dataclass(frozen=True)
class Inputs:
    """Calibrated specs, keyed by the reference (name or path) they were asked for, and the
    acceptance shape."""

    platforms: dict[str, PlatformSpec]
    datasets: dict[str, DatasetProfile]
    params: AcceptanceParams
    #: One line per platform the calibration did not reach as a user might expect
    #: (:func:`~elmoe_dse.calibration.calibration_notes`).
    notes: tuple[str, ...] = ()

    def scenario(self, model: ModelSpec, platform_ref: str, dataset_ref: str) -> Scenario:
        """``model`` on one of the platforms and dataset profiles, with its routing."""
        from elmoe_dse.evaluator import DraftQuality
        from elmoe_dse.routing import expert_probabilities

        dataset = self.datasets[dataset_ref]
        profile = dataset.for_model(model.id)
        p = expert_probabilities(
            model.num_experts, model.experts_per_token, "zipf", profile.zipf_exponent
        )
        quality = DraftQuality(profile, self.params)
        notes = tuple(n for n in self.notes if n.startswith(f"platform {platform_ref}:"))
        spec = self.platforms[platform_ref]
        notes += tuple(n for n in self.notes if n.startswith(f"platform {spec.name}:"))
        return Scenario(model, spec, dataset.name, profile, p, quality, tuple(dict.fromkeys(notes)))


def _is_shipped(ref: str, names: list[str]) -> bool:
    return ref.strip().lower() in names


def resolve_inputs(
    platforms: Iterable[str],
    datasets: Iterable[str],
    calibration: Calibration | None,
    calibrate_as: str | None = None,
) -> Inputs:
    """Load platforms and dataset profiles (names or paths) and the acceptance shape, and apply
    ``calibration`` by explicit mapping (re-validated, so every value stays inside its range).

    Layering, lowest first: the spec file, then the calibration. A shipped name gets the
    calibration of that name; a user's platform file (a path) is taken as written, even when it
    is a copy of a shipped one, unless it opts in (``calibration = "shipped:NAME"`` in the file,
    or ``calibrate_as`` = NAME for every path given here). A user's dataset file is taken as
    written. :attr:`Inputs.notes` says how each platform was treated.
    """
    from elmoe_dse.calibration import apply_calibration, calibrate_platform, calibration_notes
    from elmoe_dse.platforms import load_platform
    from elmoe_dse.specs.dataset import list_datasets, load_acceptance_params, load_dataset
    from elmoe_dse.specs.platform import list_platforms

    plats = {ref: load_platform(ref) for ref in platforms}
    dsets = {ref: load_dataset(ref) for ref in datasets}
    params = load_acceptance_params()
    if calibration is None:
        return Inputs(plats, dsets, params)
    shipped_plats, shipped_dsets = list_platforms(), list_datasets()
    cal_plats, cal_dsets, params = apply_calibration(
        calibration,
        {s.name: s for ref, s in plats.items() if _is_shipped(ref, shipped_plats)},
        {s.name: s for ref, s in dsets.items() if _is_shipped(ref, shipped_dsets)},
        params,
    )
    out_plats: dict[str, PlatformSpec] = {}
    notes: list[str] = []
    for ref, spec in plats.items():
        shipped = _is_shipped(ref, shipped_plats)
        target = spec.name if shipped else (calibrate_as or spec.calibrate_as)
        if shipped:
            out_plats[ref] = cal_plats[spec.name]
        else:
            out_plats[ref] = (
                spec if target is None else calibrate_platform(calibration, spec, target)
            )
        notes += calibration_notes(calibration, ref, spec, target, shipped)
    return Inputs(
        out_plats,
        {
            ref: cal_dsets[s.name] if _is_shipped(ref, shipped_dsets) else s
            for ref, s in dsets.items()
        },
        params,
        tuple(notes),
    )


def build_scenario(
    model_ref: str,
    platform_ref: str,
    dataset_ref: str,
    calibration: Calibration | None,
    calibrate_as: str | None = None,
) -> Scenario:
    """Load the three specs (names or paths) and apply ``calibration`` (:func:`resolve_inputs`)."""
    from elmoe_dse.specs.model import load_model

    model = load_model(model_ref)
    inputs = resolve_inputs([platform_ref], [dataset_ref], calibration, calibrate_as)
    return inputs.scenario(model, platform_ref, dataset_ref)


@cache
def load_scenario(
    model_ref: str, platform_ref: str, dataset_ref: str, calibration: str = "shipped"
) -> Scenario:
    """:func:`build_scenario`, once per process, with ``calibration`` = ``shipped`` (the default,
    as on the command line: the shipped ensemble's posterior median draw), ``none`` or a
    calibration file path."""
    return build_scenario(model_ref, platform_ref, dataset_ref, _calibration(calibration))


@cache
def _calibration(option: str) -> Calibration | None:
    """:func:`~elmoe_dse.calibration.resolve_calibration`, once per process: a sweep's scenarios
    share it (the shipped ensemble's median draw takes ~0.1 s, in every worker process)."""
    from elmoe_dse.calibration import resolve_calibration

    return resolve_calibration(option)
