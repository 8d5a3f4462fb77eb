"""elmoe-dse: analytical design-space exploration of MoE decoding on memory-centric hardware.

The public API, imported lazily so that ``elmoe-dse --help`` stays fast. The entry point,
:class:`~elmoe_dse.api.Scenario`, gives exactly the numbers ``elmoe-dse explain`` gives (the
shipped calibration, the dataset profile's routing and overlap)::

    from elmoe_dse import Scenario

    sc = Scenario(model="qwen3-30b-a3b", platform="elmoe3d-8g", dataset="mt-bench")
    step = sc.evaluate(batch_size=[1, 4, 16], policy="elmoe3d")
    step.throughput_tok_per_s, step.energy_per_token_j

The layers below (:func:`load_model`, :func:`load_platform`, :func:`expert_probabilities`,
:class:`DraftQuality`, :func:`evaluate`) take specs as loaded, uncalibrated, and every knob.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Scenario": "elmoe_dse.api",
    "evaluate": "elmoe_dse.evaluator",
    "StepCost": "elmoe_dse.evaluator",
    "DraftQuality": "elmoe_dse.speculative",
    "Knobs": "elmoe_dse.knobs",
    "KNOB_INFO": "elmoe_dse.knobs",
    "expert_probabilities": "elmoe_dse.routing",
    "unique_experts": "elmoe_dse.routing",
    "ModelSpec": "elmoe_dse.specs.model",
    "load_model": "elmoe_dse.specs.model",
    "list_models": "elmoe_dse.specs.model",
    "PlatformSpec": "elmoe_dse.specs.platform",
    "load_platform": "elmoe_dse.platforms",
    "list_platforms": "elmoe_dse.specs.platform",
    "load_dataset": "elmoe_dse.specs.dataset",
    "list_datasets": "elmoe_dse.specs.dataset",
    "load_acceptance_params": "elmoe_dse.specs.dataset",
    "Calibration": "elmoe_dse.calibration",
    "load_calibration": "elmoe_dse.calibration",
    "reproduce": "elmoe_dse.explore.reproduce",
    "ElmoeError": "elmoe_dse.errors",
    "SpecError": "elmoe_dse.errors",
    "KnobError": "elmoe_dse.errors",
}

__all__ = ["__version__", *sorted(_EXPORTS)]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'elmoe_dse' has no attribute '{name}'")
