"""The gpu family's cost formulas: closed forms, the fixed cost per layer, monotonicity."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.evaluator import evaluate
from elmoe_dse.kernels import launches_per_pass
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import load_platform
from elmoe_dse.platforms.gpu import eta_bw, gemm_time_s
from elmoe_dse.scenario import load_scenario
from elmoe_dse.specs.model import load_model
from elmoe_dse.units import GB


def test_eta_bw_ramps_to_its_maximum() -> None:
    e = eta_bw(np.array([1e3, 1e6, 1e9, 1e12]), 0.8, 1e6)
    assert np.all(np.diff(e) > 0)
    assert e[2] == pytest.approx(0.8 * 1e9 / (1e9 + 1e6))
    assert e[-1] == pytest.approx(0.8, rel=1e-5)


def test_gemm_closed_form_memory_and_compute_bound() -> None:
    k = load_platform("h200").kernels.values()  # type: ignore[union-attr]
    bw, peak = 4800 * GB, 989e12
    small = float(gemm_time_s(k, np.array(1e8), np.array(1e6), peak, bw))
    eff = k["gemm_eta_bw_max_frac"] * 1e8 / (1e8 + k["gemm_bw_half_bytes"])
    assert small == pytest.approx(k["t0_kernel_s"] + 1e8 / (eff * bw))
    big = float(gemm_time_s(k, np.array(1e6), np.array(1e15), peak, bw))
    assert big == pytest.approx(k["t0_kernel_s"] + 1e15 / (k["gemm_eta_compute_frac"] * peak))


def test_step_pays_every_kernel_floor_and_gap() -> None:
    model, spec = load_model("qwen3-30b-a3b"), load_platform("a100-80g")
    k = spec.kernels.values()  # type: ignore[union-attr]
    sc = load_scenario("qwen3-30b-a3b", "a100-80g", "benchmark")
    knobs = Knobs(batch_size=1, weight_format="bf16", policy="ar")
    step = evaluate(model, spec, knobs, sc.p, quality=sc.quality)
    floor = launches_per_pass(model) * (k["t0_kernel_s"] + k["kernel_gap_s"])
    assert float(step.time_per_step_s) > floor


def test_step_time_grows_with_batch_and_context() -> None:
    model, spec = load_model("gpt-oss-120b"), load_platform("h200")
    sc = load_scenario("gpt-oss-120b", "h200", "benchmark")
    b = np.array([1, 4, 16, 64])
    knobs = Knobs(batch_size=b, weight_format="bf16", policy="ar")
    t = evaluate(model, spec, knobs, sc.p, quality=sc.quality)
    assert np.all(np.diff(t.time_per_step_s) > 0)
    ctx = np.array([512, 4096, 32768])
    knobs = Knobs(batch_size=8, context_len=ctx, weight_format="bf16")
    t = evaluate(model, spec, knobs, sc.p, quality=sc.quality)
    assert np.all(np.diff(t.time_per_step_s) > 0)
