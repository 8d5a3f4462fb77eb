"""Shared fixtures: shipped models and platforms, routing vectors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from elmoe_dse.evaluator import DraftQuality, StepCost, evaluate
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import get as platform_model
from elmoe_dse.routing import expert_probabilities
from elmoe_dse.specs.dataset import load_acceptance_params, load_dataset
from elmoe_dse.specs.model import ModelSpec, list_models, load_model
from elmoe_dse.specs.platform import PlatformSpec, list_platforms, load_platform

PAPER_MODELS = ("qwen3-30b-a3b", "glm-4.7-flash", "deepseek-v2-lite", "gpt-oss-20b")


@pytest.fixture(params=list_platforms())
def any_platform(request: pytest.FixtureRequest) -> PlatformSpec:
    return load_platform(request.param)


@pytest.fixture(params=list_models())
def any_model(request: pytest.FixtureRequest) -> ModelSpec:
    return load_model(request.param)


def uniform(model: ModelSpec) -> np.ndarray:
    return expert_probabilities(model.num_experts, model.experts_per_token, "uniform")


def zipf(model: ModelSpec, a: float = 1.0) -> np.ndarray:
    return expert_probabilities(model.num_experts, model.experts_per_token, "zipf", a)


def spec_with(spec: PlatformSpec, values: dict[str, float]) -> PlatformSpec:
    """``spec`` with the dotted fields of ``values`` set, its priors' ranges dropped: a scaled
    constant in a model test is a thought experiment, not a design the ranges are meant to
    admit (user overrides keep the ranges: elmoe_dse.overrides.with_fields)."""
    data: dict[str, Any] = spec.model_dump()
    data.pop("ranges", None)
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return PlatformSpec.model_validate(data)


def mt_bench_quality(model: ModelSpec) -> DraftQuality:
    """The shipped MT-Bench profile of ``model`` and the shipped acceptance shape."""
    return DraftQuality(load_dataset("mt-bench").for_model(model.id), load_acceptance_params())


def evaluate_mt_bench(
    model: ModelSpec,
    spec: PlatformSpec,
    knobs: Knobs,
    p: np.ndarray,
    *,
    quality: DraftQuality | None = None,
) -> StepCost:
    """:func:`evaluate` with the shipped MT-Bench quality of ``model`` unless one is given."""
    return evaluate(model, spec, knobs, p, quality=quality or mt_bench_quality(model))


def fast_tier_platforms() -> list[str]:
    """The shipped platforms whose family has a fast tier (an expert pool or cache)."""
    return [p for p in list_platforms() if platform_model(load_platform(p).family).fast_tier]


def one_platform_per_family() -> list[str]:
    """The first shipped platform of every registered family that has one."""
    first: dict[str, str] = {}
    for name in list_platforms():
        first.setdefault(load_platform(name).family, name)
    return [first[f] for f in sorted(first)]
