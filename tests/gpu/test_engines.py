"""Serving-engine factors: what they scale, their bounds, the fit and its held-out split."""

from __future__ import annotations

from pathlib import Path

import pytest

from elmoe_dse.errors import SpecError
from elmoe_dse.explore.validate import (
    ENGINE_FIT_MAX_BATCH,
    HELD_OUT,
    engine_fit_points,
    fit_engine_terms,
    load_points,
    predict_s,
    summary,
    validation_table,
    with_engine,
)
from elmoe_dse.platforms import load_platform
from elmoe_dse.specs.kernels import KernelSpec
from tests.cli._app import run


def _with_factors(spec, engine: str, **factors: float):  # type: ignore[no-untyped-def]
    k = spec.kernels
    eng = k.engines[engine]
    params = {
        n: q.model_copy(update={"value": factors.get(n, q.value)}) for n, q in eng.params.items()
    }
    kernels = k.model_copy(
        update={"engines": {**k.engines, engine: eng.model_copy(update={"params": params})}}
    )
    return spec.model_copy(update={"kernels": kernels})


def test_factors_scale_only_their_constants_and_only_for_their_engine() -> None:
    spec = load_platform("h200")
    k = spec.kernels
    assert k is not None
    base = k.values()
    trt = k.for_engine("tensorrt-llm").values()
    f = k.engines["tensorrt-llm"].params
    assert trt["attn_eta_bw_frac"] == pytest.approx(
        base["attn_eta_bw_frac"] * f["attn_bw_factor"].value
    )
    assert trt["moe_eta_compute_frac"] == pytest.approx(
        base["moe_eta_compute_frac"] * f["moe_compute_factor"].value
    )
    untouched = set(base) - {"attn_eta_bw_frac", "moe_eta_compute_frac"}
    assert all(trt[n] == base[n] for n in untouched)
    assert k.for_engine("vllm").values() == base == k.for_engine("").values()


def test_a_faster_attention_factor_speeds_up_long_kv_points_most() -> None:
    pts = {p.id: p for p in load_points()}
    long_kv = pts["gptoss120b-h200-tensorrtllm-8192x1024-b64"]
    short = pts["gptoss120b-h200-tensorrtllm-1024x1024-b4"]
    spec = load_platform("h200")
    slow = _with_factors(spec, "tensorrt-llm", attn_bw_factor=1.0, moe_compute_factor=1.0)
    fast = _with_factors(spec, "tensorrt-llm", attn_bw_factor=1.4, moe_compute_factor=1.0)
    gain = {
        p.id: 1 - predict_s(p, platform=fast) / predict_s(p, platform=slow)
        for p in (long_kv, short)
    }
    assert gain[long_kv.id] > 2 * gain[short.id] > 0


def test_engine_factors_leave_vllm_points_alone() -> None:
    spec = load_platform("h200")
    p = next(q for q in load_points() if q.engine == "vllm" and q.platform == "h200")
    other = _with_factors(spec, "tensorrt-llm", attn_bw_factor=1.9, moe_compute_factor=3.0)
    assert predict_s(p, platform=other) == predict_s(p, platform=spec)


def _kernels_data(**update: object) -> dict:  # type: ignore[type-arg]
    k = load_platform("h200").kernels
    assert k is not None
    data = k.model_dump()
    data.update(update)
    return data


def test_a_factor_may_not_push_its_constant_out_of_range() -> None:
    data = _kernels_data()
    data["engines"]["tensorrt-llm"]["params"]["attn_bw_factor"]["value"] = 1.9
    with pytest.raises(ValueError, match="attn_eta_bw_frac"):
        KernelSpec.model_validate(data)


@pytest.mark.parametrize(
    ("update", "message"),
    [
        ({"engine": "tgi"}, "not known"),
        ({"measured_engine": "sglang"}, "measured engine"),
    ],
)
def test_bad_engine_names_are_errors(update: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError, match=message):
        KernelSpec.model_validate(_kernels_data(**update))


def test_selecting_an_engine_without_factors_is_a_one_line_error() -> None:
    spec = load_platform("h200")
    k = spec.kernels
    assert k is not None
    bare = spec.model_copy(update={"kernels": k.model_copy(update={"engines": {}})})
    with pytest.raises(SpecError, match="no kernel factors for engine 'tensorrt-llm'"):
        with_engine(bare, "tensorrt-llm")


def test_shipped_factors_were_fitted_on_the_small_batches_only() -> None:
    spec = load_platform("h200")
    k = spec.kernels
    assert k is not None
    fit = [p.id for p in engine_fit_points(spec, "tensorrt-llm")]
    for q in k.engines["tensorrt-llm"].params.values():
        assert q.fit_points == fit
    batches = {p.id: p.batch for p in load_points()}
    assert all(batches[i] <= ENGINE_FIT_MAX_BATCH for i in fit)
    assert len(fit) >= 3
    # A100 has one TensorRT-LLM point: too few to fit, the priors stay.
    a100 = load_platform("a100-80g").kernels
    assert a100 is not None
    for q in a100.engines["tensorrt-llm"].params.values():
        assert q.value == q.prior and q.fit_points == []


def test_fit_recovers_known_factors_from_synthetic_measurements() -> None:
    # "Measured" = the model's own prediction at known factors; the fit starts at the priors (1).
    spec = load_platform("h200")
    truth = _with_factors(spec, "tensorrt-llm", attn_bw_factor=1.2, moe_compute_factor=1.8)
    start = _with_factors(spec, "tensorrt-llm", attn_bw_factor=1.0, moe_compute_factor=1.0)
    pts = [
        p.model_copy(update={"measured_ms_per_token": predict_s(p, platform=truth) * 1e3})
        for p in load_points()
        if p.engine == "tensorrt-llm" and p.platform == "h200"
    ]
    kspec, _ = fit_engine_terms(start, pts)
    got = kspec.engines["tensorrt-llm"].params
    assert got["attn_bw_factor"].value == pytest.approx(1.2, rel=0.03)
    assert got["moe_compute_factor"].value == pytest.approx(1.8, rel=0.03)
    assert got["attn_bw_factor"].fit_points == [
        p.id for p in pts if p.batch <= ENGINE_FIT_MAX_BATCH
    ]


def test_held_out_points_are_reported_on_their_own(tmp_path: Path) -> None:
    table = validation_table(load_points())
    held = table[table.role == HELD_OUT]
    trt = held[held.engine == "tensorrt-llm"]
    assert set(trt.batch) == {32, 64}  # the TRT-LLM batches above the fit's
    s = summary(table)
    assert s["held_out_points"] == len(held)
    assert s["worst_abs_error_held_out_frac"] == pytest.approx(held.error_frac.abs().max())
    code, out, _ = run("validate", "--out", str(tmp_path))
    assert code == 0 and "held-out" in out
    assert "held_out_point_ids" in (tmp_path / "validate.json").read_text()
