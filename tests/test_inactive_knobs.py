"""Knobs that cannot act at a design point are reported, per point (``meta.inactive_knobs``),
never silently swallowed."""

from __future__ import annotations

import numpy as np

from elmoe_dse.evaluator import evaluate
from elmoe_dse.scenario import load_scenario


def _names(platform: str, **knobs: object) -> list[str]:
    sc = load_scenario("qwen3-30b-a3b", platform, "mt-bench")
    k = sc.knobs(**knobs)
    step = evaluate(sc.model, sc.platform, k, sc.p, quality=sc.quality)
    return list(np.ravel(step.inactive_knobs(k, sc.platform)))


def test_hb_capacity_on_a_platform_without_hb_is_inactive_per_point() -> None:
    assert _names("xpu", batch_size=np.array([1, 4]), hb_capacity_gb=8.0) == [
        "hb_capacity_gb",
        "hb_capacity_gb",
    ]
    assert _names("elmoe3d-8g", policy="ar-cache", hb_capacity_gb=np.array([4.0, 8.0])) == [
        "",
        "",
    ]


def test_draft_knobs_under_plain_decoding_are_inactive_and_defaults_are_not_reported() -> None:
    assert _names("xpu", policy="ar") == [""]
    assert _names("xpu", policy="ar", draft_bits=3, draft_length=6) == ["draft_length,draft_bits"]
    # the self-draft uses both; a bit-nested cache under plain decoding uses draft_bits
    assert _names("elmoe3d-8g", policy="elastic-sd", batch_size=8, draft_bits=3) == [""]
    assert _names("elmoe3d-8g", policy="ar-cache", draft_bits=3) == [""]


def test_the_column_matches_explains_warnings() -> None:
    from elmoe_dse.explain import explain_point

    data = explain_point("qwen3-30b-a3b", "xpu", sets=["draft_bits=3", "hb_capacity_gb=4"])
    assert sorted(data["inactive_knobs"]) == sorted(
        _names("xpu", draft_bits=3, hb_capacity_gb=4.0)[0].split(",")
    )
