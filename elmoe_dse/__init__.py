"""elmoe-dse: analytical design-space exploration of MoE decoding on memory-centric hardware.

The public API, imported lazily so that ``elmoe-dse --help`` stays fast::

    from elmoe_dse import DraftQuality, Knobs, evaluate, expert_probabilities, load_dataset
    from elmoe_dse import load_acceptance_params, load_model, load_platform

    model, hw = load_model("qwen3-30b-a3b"), load_platform("elmoe3d-8g")
    p = expert_probabilities(model.num_experts, model.experts_per_token, "zipf", 0.8)
    quality = DraftQuality(load_dataset("mt-bench").for_model(model.id), load_acceptance_params())
    step = evaluate(model, hw, Knobs(batch_size=[1, 4, 16]), p, quality=quality)
    step.throughput_tok_per_s, step.energy_per_token_j
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
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
