"""Fitted GPU presets against their kernel databases, and validate against measured decode.

The kernel databases are a third party's files (NVIDIA aiconfigurator, vLLM 0.14) and are not in
the repository: the folder comes from ELMOE_DSE_SHARED_DATA or ``<repo>/../shared/data``; the
database tests skip with a reason where it is absent.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from elmoe_dse.explore.calibrate_hw import (
    attention_rows,
    fit_error,
    gemm_rows,
    moe_rows,
    read_tables,
)
from elmoe_dse.explore.validate import load_points, summary, validation_table
from elmoe_dse.platforms import load_platform
from tests.cli._app import run

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("ELMOE_DSE_SHARED_DATA", ROOT.parent / "shared" / "data"))
GPUS = {"a100-80g": "a100_sxm", "h100": "h100_sxm", "h200": "h200_sxm"}
#: Median |error| the fitted terms reach on the rows they were fitted on (measured at the fit:
#: 6-12 % per table), and on the MoE shapes held out of the fit (5-8 %); 20 % leaves room for a
#: refit without hiding a broken term.
MEDIAN_BOUND = 0.20


@pytest.mark.parametrize("preset", sorted(GPUS))
def test_fitted_preset_reproduces_its_kernel_database(preset: str) -> None:
    folder = DATA / "gpu-kernels" / GPUS[preset]
    if not folder.is_dir():
        pytest.skip(f"kernel database not found at {folder} (set ELMOE_DSE_SHARED_DATA)")
    spec = load_platform(preset)
    k = spec.kernels.values()  # type: ignore[union-attr]
    tables = read_tables(folder)
    rows = [
        gemm_rows(tables["gemm_perf"], spec),
        attention_rows(tables["generation_attention_perf"], tables["generation_mla_perf"], spec),
        moe_rows(tables["moe_perf"], spec, "fit")[0],
        moe_rows(tables["moe_perf"], spec, "held_out")[0],
    ]
    for r in rows:
        err = fit_error(r, k)
        assert err.rows > 100, r.table
        assert err.median_abs_frac <= MEDIAN_BOUND, (preset, r.table, err)
        shipped = spec.kernels.fit_error[r.table]  # type: ignore[union-attr]
        assert err.median_abs_frac == pytest.approx(shipped.median_abs_frac, abs=2e-3)


def test_validate_median_on_the_shipped_public_set() -> None:
    # Decode step + the chunked-prefill tokens of the serving run, each point with its engine's
    # factors: median 4.9 % over 24 points, worst +28.0 % (TensorRT-LLM 1024x8192 b32, held
    # out: faster than the same engine's 1024x1024 b16 and b64 neighbours allow, see
    # docs/model.md section 11). Bounds: median 6 % (a refit of the kernel terms moves it by a
    # point or so), worst 30 %; the vLLM 8192x1024 points (chunked prefill) within 10 %.
    table = validation_table(load_points())
    s = summary(table)
    assert s["points"] == 24
    assert s["median_abs_error_frac"] <= 0.06
    assert s["worst_abs_error_frac"] < 0.30
    vllm_long = table[table.id.str.contains("vllm018-8192x1024")]
    assert (vllm_long.error_frac.abs() < 0.10).all()  # decode-only: -3 .. -36 %
    # Held out from every end-to-end fit (11 points): median 6.0 %; bound 7 %.
    assert s["median_abs_error_held_out_frac"] <= 0.07


def test_validate_cli_writes_csv_and_png(tmp_path: Path) -> None:
    code, out, _ = run("validate", "--out", str(tmp_path))
    assert code == 0
    assert "median |error|" in out
    assert (tmp_path / "validate.csv").stat().st_size > 0
    assert (tmp_path / "validate.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("bad.json", "{not json"),
        ("empty.json", json.dumps({"points": []})),
        ("missing.json", json.dumps([{"id": "x", "model": "qwen3-30b-a3b"}])),
        ("bad.csv", "id,model\nx,qwen3-30b-a3b\n"),
        ("bad.txt", "hello"),
        (
            "engine.json",
            json.dumps(
                [
                    {
                        "id": "x",
                        "model": "qwen3-30b-a3b",
                        "platform": "a100-80g",
                        "batch": 1,
                        "context": 512.0,
                        "weight_format": "bf16",
                        "measured_ms_per_token": 10.0,
                        "source": "test",
                        "engine": "tgi",
                    }
                ]
            ),
        ),
    ],
)
def test_bad_validate_input_is_one_line_exit_2(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    code, _out, err = run("validate", str(path), "--out", str(tmp_path / "v"))
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error:") and name in err


def test_user_csv_in_the_shipped_format_validates(tmp_path: Path) -> None:
    table = validation_table(load_points())
    csv = tmp_path / "mine.csv"
    pts = load_points()[:2]
    import pandas as pd

    pd.DataFrame([p.model_dump() for p in pts]).to_csv(csv, index=False)
    mine = validation_table(load_points(csv))
    assert list(mine.predicted_ms_per_token) == list(table.predicted_ms_per_token[:2])


def test_calibrate_hw_without_database_is_one_line(tmp_path: Path) -> None:
    code, _, err = run("calibrate-hw", "h200", "--kernels", str(tmp_path / "none"))
    assert code == 2 and len(err.strip().splitlines()) == 1


def test_power_law_rows_touch_the_collectors_experts() -> None:
    # at N = 1 every routing touches exactly k experts; at small N the collector's rounding
    # leaves far fewer than N k; the mean is reproducible (seeded) and at most min(E, N k)
    from elmoe_dse.explore.collector_routing import collector_unique

    assert collector_unique(1, 128, 8, 1.01) == 8.0
    assert collector_unique(1, 8, 2, 1.01) == 2.0
    two = collector_unique(2, 128, 8, 1.01)
    assert 8.0 < two < 12.0  # 16 slots, but most of the 128 Pareto draws round to 0
    assert collector_unique(2, 128, 8, 1.01) == two
    for n in (4, 16, 64, 512):
        u = collector_unique(n, 128, 8, 1.01)
        assert 8.0 <= u <= min(128, 8 * n)
    assert collector_unique(512, 8, 2, 1.2) == pytest.approx(8.0, abs=0.05)


def test_moe_tile_regime_steps_at_more_tokens_than_experts() -> None:
    # vLLM's default fused-MoE tile (BLOCK_SIZE_M 16 while M <= E, 64 above): the efficiency
    # is moe_eta_<fmt>_frac up to M = E and times moe_large_m_factor above
    from elmoe_dse.platforms.gpu import moe_eta

    k = load_platform("h200").kernels.values()  # type: ignore[union-attr]
    base, factor = k["moe_eta_bf16_frac"], k["moe_large_m_factor"]
    assert factor < 1.0
    assert moe_eta(k, "bf16", 0.5) == pytest.approx(base)
    assert moe_eta(k, "bf16", 1.0) == pytest.approx(base)
    assert moe_eta(k, "bf16", 1.5) == pytest.approx(base * factor)
