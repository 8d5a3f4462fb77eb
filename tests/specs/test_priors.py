"""Priors of the shipped spec files: sourced, centred on the spec default, few paper-informed."""

from __future__ import annotations

import pytest

from elmoe_dse.specs._base import RangeSpec, Spec, get_number
from elmoe_dse.specs.dataset import list_datasets, load_acceptance_params, load_dataset
from elmoe_dse.specs.platform import load_platform

PAPER_PLATFORMS = (
    "xpu",
    "xpu-pim",
    "xpu-logicpim",
    "xpu-nmp",
    "hb-xpu",
    "elmoe3d-4g",
    "elmoe3d-8g",
)
BASELINES = ("xpu", "xpu-pim", "xpu-logicpim", "xpu-nmp", "hb-xpu")
#: The specs ``reproduce`` evaluates (elmoe3d-8g is the proposed design; 4 GB sits beside it).
REPRODUCE_PLATFORMS = ("elmoe3d-8g", *BASELINES)


def priors() -> list[tuple[str, Spec, dict[str, RangeSpec]]]:
    out: list[tuple[str, Spec, dict[str, RangeSpec]]] = []
    for name in PAPER_PLATFORMS:
        spec = load_platform(name)
        out.append((f"platform.{name}", spec, spec.ranges))
    for name in list_datasets():
        profile = load_dataset(name)
        out.append((f"dataset.{name}", profile, profile.expanded_ranges()))
    params = load_acceptance_params()
    out.append(("acceptance", params, params.ranges))
    return out


@pytest.mark.parametrize(("where", "spec", "ranges"), priors(), ids=lambda x: str(x)[:30])
def test_every_prior_is_sourced_and_centred_on_the_default(
    where: str, spec: Spec, ranges: dict[str, RangeSpec]
) -> None:
    assert ranges, where
    for path, rng in ranges.items():
        assert rng.source.strip(), f"{where}: {path}"
        value = get_number(spec, path)
        if rng.center is not None:
            assert rng.min <= rng.center <= rng.max, f"{where}: {path}"
            assert value == pytest.approx(rng.center), f"{where}: {path} default != prior centre"
        else:  # a bare range: the default is its median
            assert value == pytest.approx(float(rng.ppf(0.5))), f"{where}: {path}"


def test_every_platform_part_of_static_power_has_a_prior() -> None:
    for name in PAPER_PLATFORMS:
        spec = load_platform(name)
        assert spec.static_power is not None and spec.static_power_w is None
        for part, value in spec.static_power.model_dump().items():
            if part != "source" and value > 0:
                assert f"static_power.{part}" in spec.ranges, f"{name}: {part}"


def test_baselines_are_never_paper_informed() -> None:
    for name in BASELINES:
        informed = [p for p, r in load_platform(name).ranges.items() if r.paper_informed]
        assert informed == [], f"{name}: {informed}"


def test_few_parameters_are_paper_informed() -> None:
    informed = [
        f"platform.{n}.{p}"
        for n in REPRODUCE_PLATFORMS
        for p, r in load_platform(n).ranges.items()
        if r.paper_informed
    ]
    for name in list_datasets():  # a wildcard entry is one parameter shared by the models
        informed += [
            f"dataset.{name}.{p}" for p, r in load_dataset(name).ranges.items() if r.paper_informed
        ]
    informed += [
        f"acceptance.{p}" for p, r in load_acceptance_params().ranges.items() if r.paper_informed
    ]
    print(f"{len(informed)} paper-informed parameters: {', '.join(informed)}")
    assert 1 <= len(informed) <= 14
