"""Knob layering, lowest first: the knob defaults, the dataset profile, then the caller's values."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.errors import KnobError
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.scenario import build_scenario, load_scenario


def test_the_dataset_profile_sets_the_overlap_over_the_default() -> None:
    sc = build_scenario("qwen3-30b-a3b", "elmoe3d-8g", "humaneval", None)
    rho = sc.profile.overlap_frac
    assert rho != Knobs().overlap_frac
    knobs = sc.knobs()
    assert knobs.overlap_frac == rho
    for name in KNOB_INFO:
        if name != "overlap_frac":
            assert getattr(knobs, name) == getattr(Knobs(), name) or (
                np.isnan(getattr(Knobs(), name)) and np.isnan(getattr(knobs, name))
            ), name


def test_the_callers_values_win_over_the_profile() -> None:
    sc = build_scenario("qwen3-30b-a3b", "elmoe3d-8g", "humaneval", None)
    batches = np.asarray([1.0, 16.0])
    knobs = sc.knobs(overlap_frac=0.125, batch_size=batches, policy="ar")
    assert knobs.overlap_frac == 0.125
    assert knobs.batch_size is batches
    assert knobs.policy == "ar"


def test_knob_values_lists_every_knob_in_order() -> None:
    sc = load_scenario("gpt-oss-20b", "xpu", "gsm8k", "shipped")
    values = sc.knob_values(draft_length=2)
    assert list(values) == list(KNOB_INFO)
    assert values["draft_length"] == 2
    assert values["overlap_frac"] == sc.profile.overlap_frac


def test_an_unknown_knob_is_refused() -> None:
    sc = load_scenario("gpt-oss-20b", "xpu", "gsm8k", "none")
    with pytest.raises(KnobError, match="unknown knob 'batch'"):
        sc.knobs(batch=4)


def test_the_api_default_calibration_is_the_clis() -> None:
    """``load_scenario`` and the CLI's ``--calibration shipped`` build the same specs: the shipped
    ensemble's posterior median draw (issue 13: the API used to default to none)."""
    from elmoe_dse.calibration import load_calibration

    api = load_scenario("glm-4.7-flash", "elmoe3d-8g", "mt-bench")
    cli = build_scenario("glm-4.7-flash", "elmoe3d-8g", "mt-bench", load_calibration())
    assert api.platform == cli.platform and api.profile == cli.profile
    assert api.quality.params == cli.quality.params
    assert api.platform != build_scenario("glm-4.7-flash", "elmoe3d-8g", "mt-bench", None).platform
