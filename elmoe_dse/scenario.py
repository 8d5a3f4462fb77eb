"""One model x platform x dataset, loaded with a calibration applied: the specs every command
evaluates (``explain``, ``sweep``, ``optimize``, the plots).

A calibration is applied to the platform and dataset only where they are the shipped specs of
that name; a user's own spec file is taken as written. Routing is the dataset profile's Zipf skew
for the model (MODEL.md 4).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from elmoe_dse.evaluator import DraftQuality
    from elmoe_dse.explore.calibrate import Calibration
    from elmoe_dse.specs.dataset import ModelProfile
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


def build_scenario(
    model_ref: str, platform_ref: str, dataset_ref: str, calibration: Calibration | None
) -> Scenario:
    """Load the three specs (names or paths) and apply ``calibration`` to the shipped ones."""
    from elmoe_dse.evaluator import DraftQuality
    from elmoe_dse.explore.calibrate import calibrate_shipped
    from elmoe_dse.platforms import load_platform
    from elmoe_dse.routing import expert_probabilities
    from elmoe_dse.specs.dataset import list_datasets, load_acceptance_params, load_dataset
    from elmoe_dse.specs.model import load_model
    from elmoe_dse.specs.platform import list_platforms

    model = load_model(model_ref)
    platform, dataset, params = calibrate_shipped(
        calibration,
        load_platform(platform_ref),
        load_dataset(dataset_ref),
        load_acceptance_params(),
        platform_is_shipped=platform_ref.lower() in list_platforms(),
        dataset_is_shipped=dataset_ref.lower() in list_datasets(),
    )
    profile = dataset.for_model(model.id)
    p = expert_probabilities(
        model.num_experts, model.experts_per_token, "zipf", profile.zipf_exponent
    )
    return Scenario(model, platform, dataset.name, profile, p, DraftQuality(profile, params))


@cache
def load_scenario(
    model_ref: str, platform_ref: str, dataset_ref: str, calibration: str = "none"
) -> Scenario:
    """:func:`build_scenario`, once per process, with ``calibration`` = ``shipped``, ``none`` or
    a calibration file path."""
    from elmoe_dse.explore.calibrate import resolve_calibration

    return build_scenario(model_ref, platform_ref, dataset_ref, resolve_calibration(calibration))
