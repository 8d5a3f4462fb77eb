"""The paper's headline numbers: regression lock on the calibrated reproduction.

Regenerate the golden table after an intended model change with::

    .venv/bin/python -m tests.regenerate_golden

and the shipped calibration (a refit starting from it) with::

    .venv/bin/elmoe-dse calibrate --trials 800 --seed 20260417 \
        --start elmoe_dse/data/calibration.toml --out elmoe_dse/data/calibration.toml
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from elmoe_dse.calibration import (
    CalibratedValue,
    Calibration,
    calibration_toml,
    load_calibration,
    parameter_range,
)
from elmoe_dse.cli.main import app
from elmoe_dse.errors import ElmoeError
from elmoe_dse.explore.calibrate import CALIBRATION_KEYS, calibrate
from elmoe_dse.explore.reproduce import (
    FIT_TARGETS,
    PAPER_TARGETS,
    load_inputs,
    reproduce,
    save_reproduce,
)
from elmoe_dse.results import CELLS_FILE, RUN_FILE, SYSTEMS_CSV_FILE, SYSTEMS_FILE

GOLDEN = Path(__file__).parents[1] / "golden" / "reproduce_cells.csv"


@pytest.fixture(scope="module")
def calibrated() -> object:
    return reproduce(load_calibration())


REACHED = ("speedup_vs_xpu_mean", "energy_vs_xpu_mean", "energy_vs_best_prior_mean")


@pytest.mark.xfail(
    strict=True,
    reason="with literature priors on the baselines (no fit to ELMoE-3D's margin) and static"
    " power from parts, the shipped calibration no longer reaches the paper's means"
    " (docs/calibration.md)",
)
def test_mean_targets_within_10_percent_of_the_paper(calibrated: object) -> None:
    """ELMoE-3D (arXiv 2604.14626) abstract: 6.6x speedup and 4.4x energy efficiency over xPU,
    2.2x and 1.4x over the best prior accelerator, means over 4 models x 4 datasets x B 1-16.

    Three of the four fitted means are reached inside the parameter ranges; the speedup over the
    best prior accelerator is not (see the next test)."""
    targets = {t.name: t for t in calibrated.targets}  # type: ignore[attr-defined]
    assert set(REACHED) < set(FIT_TARGETS)
    for name in REACHED:
        assert targets[name].model == pytest.approx(PAPER_TARGETS[name], rel=0.10), name


@pytest.mark.xfail(
    strict=True,
    reason="with literature priors on the baselines (no fit to ELMoE-3D's margin) and static"
    " power from parts, the shipped calibration no longer reaches the paper's means"
    " (docs/calibration.md)",
)
def test_speedup_over_best_prior_gap_comes_from_low_batch(calibrated: object) -> None:
    """The reported gap: the contract's HB-xPU (docs/model.md §7) keeps a full-precision LRU expert
    cache in the same 8 GB, 1.6 TB/s HB. At B = 1 a full-precision hit removes all of an expert's
    LPDDR traffic while a bit-nested hit still streams the LSB half from LPDDR, so ELMoE-3D leads
    HB-xPU by little at B = 1 and by about the paper's 2.2x only at B = 16. The mean therefore
    stays below 2.2x (-23 % with the shipped calibration) without leaving any range."""
    cells = calibrated.cells  # type: ignore[attr-defined]
    by_b = cells.groupby("knob.batch_size")["metric.speedup_vs_best_prior"].mean()
    assert (cells[cells["knob.batch_size"] == 1]["meta.best_prior_speed"] == "hb-xpu").all()
    assert by_b.loc[1] < 1.4
    assert by_b.loc[16] > 2.0
    assert list(by_b.to_numpy()) == sorted(by_b.to_numpy())  # the lead grows with the batch


def test_shipped_calibration_stays_inside_every_range() -> None:
    cal = load_calibration()
    assert set(cal.parameters) <= set(CALIBRATION_KEYS)  # entries outside the priors dropped
    for key, cv in cal.parameters.items():
        rng = parameter_range(key)
        assert rng.min <= cv.value <= rng.max, key
        assert (cv.min, cv.max) == (rng.min, rng.max), key


def test_unknown_calibration_key_is_refused() -> None:
    bad = Calibration(
        seed=0,
        trials=0,
        date="2026-01-01",
        loss=0.0,
        parameters={
            "platform.nonexistent.static_power_w": CalibratedValue(
                value=1.0, min=0.0, max=2.0, source="test"
            )
        },
    )
    with pytest.raises(ElmoeError, match="no shipped platform 'nonexistent'"):
        load_inputs(bad)


def test_golden_per_cell_table(calibrated: object) -> None:
    cells = calibrated.cells  # type: ignore[attr-defined]
    golden = pd.read_csv(GOLDEN)
    pd.testing.assert_frame_equal(
        cells.reset_index(drop=True), golden, check_dtype=False, rtol=1e-6
    )


def test_a_value_outside_its_range_is_refused() -> None:
    key = "platform.xpu-pim.near_memory.internal_bw_multiplier"
    rng = parameter_range(key)
    bad = Calibration(
        seed=0,
        trials=0,
        date="2026-01-01",
        loss=0.0,
        parameters={
            key: CalibratedValue(value=rng.max * 2, min=rng.min, max=rng.max, source="test")
        },
    )
    with pytest.raises(ElmoeError, match="outside its stated range"):
        load_inputs(bad)


def test_calibrate_is_deterministic_for_a_seed() -> None:
    a = calibration_toml(calibrate(3, seed=7, date="2026-01-01"))
    b = calibration_toml(calibrate(3, seed=7, date="2026-01-01"))
    assert a == b
    assert "fit_error" in a and "acceptance.round_4bit_quality_frac" in a


def test_reproduce_cli_json_contract(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["reproduce", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    names = [t["name"] for t in data["targets"]]
    assert names == [
        "speedup_vs_xpu_mean",
        "speedup_vs_xpu_max",
        "energy_vs_xpu_mean",
        "energy_vs_xpu_max",
        "speedup_vs_best_prior_mean",
        "speedup_vs_best_prior_max",
        "energy_vs_best_prior_mean",
        "energy_vs_best_prior_max",
        "elastic_vs_eagle_mean",
        "elastic_vs_eagle_max",
    ]
    for t in data["targets"]:
        assert t["rel_error"] == pytest.approx((t["model"] - t["paper"]) / t["paper"])
    assert (tmp_path / "reproduce" / "cells.csv").exists()
    assert not list((tmp_path / "reproduce").glob(".*.tmp"))


def test_reproduce_cli_bad_calibration_file(tmp_path: Path) -> None:
    bad = tmp_path / "cal.toml"
    bad.write_text("seed = 1\n")
    result = CliRunner().invoke(
        app, ["reproduce", "--calibration", str(bad), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "missing" in result.stderr


def test_a_refit_starts_from_the_given_calibration() -> None:
    """With --start, trial 0 is the previous calibration: one trial gives it back."""
    shipped = load_calibration()
    again = calibrate(1, seed=3, date="2026-01-01", start=shipped)
    for key, cv in shipped.parameters.items():
        assert again.parameters[key].value == pytest.approx(cv.value, rel=1e-9, abs=1e-12), key
    assert again.loss == pytest.approx(shipped.loss, rel=1e-9)


def test_save_reproduce_writes_the_tables_and_the_sidecar(tmp_path: Path) -> None:
    cal = load_calibration()
    result = reproduce(cal, models=("gpt-oss-20b",), datasets=("mt-bench",))
    out = tmp_path / "reproduce"
    written = save_reproduce(result, out)
    assert [p.name for p in written] == [CELLS_FILE, SYSTEMS_CSV_FILE, SYSTEMS_FILE, RUN_FILE]
    pd.testing.assert_frame_equal(pd.read_parquet(out / SYSTEMS_FILE), result.systems)
    pd.testing.assert_frame_equal(
        pd.read_csv(out / CELLS_FILE), result.cells, check_dtype=False, rtol=1e-9
    )
    record = json.loads((out / RUN_FILE).read_text())
    assert record["command"] == "reproduce"
    assert record["calibration"] == json.loads(cal.model_dump_json())
    assert record["elapsed_s"] == result.elapsed_s > 0
    assert record["targets"] == [t.as_dict() for t in result.targets]
    assert not list(out.glob(".*.tmp"))
