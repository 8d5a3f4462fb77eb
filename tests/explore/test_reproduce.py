"""The paper's grid: the fixed-draw reproduction, the prior and cut-posterior bands, and the
regression locks on the tool's own output (never on the paper's numbers).

Regenerate both goldens after an intended model change with ``.venv/bin/python -m
tests.regenerate_golden``; the shipped ensemble with the command recorded in
``elmoe_dse/data/ensemble.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from elmoe_dse.calibration import load_calibration, load_ensemble
from elmoe_dse.cli.main import app
from elmoe_dse.errors import ElmoeError
from elmoe_dse.explore.alternatives import assumption_table
from elmoe_dse.explore.ensemble import paper_priors
from elmoe_dse.explore.reproduce import (
    ELASTIC_SYSTEMS,
    PAPER_TARGETS,
    load_inputs,
    max_elastic_acceptance,
    reproduce,
    save_reproduce,
    system_runs,
    target_rows,
    target_values,
)
from elmoe_dse.results import CELLS_FILE, RUN_FILE, SYSTEMS_CSV_FILE, SYSTEMS_FILE
from tests.regenerate_golden import GOLDEN, golden_bands

BAND_KEYS = {"p5", "p50", "p95"}


@pytest.fixture(scope="module")
def fixed() -> object:
    return reproduce(load_calibration())


def test_golden_per_cell_table(fixed: object) -> None:
    cells = fixed.cells  # type: ignore[attr-defined]
    golden = pd.read_csv(GOLDEN / "reproduce_cells.csv")
    pd.testing.assert_frame_equal(
        cells.reset_index(drop=True), golden, check_dtype=False, rtol=1e-6
    )


def test_golden_seeded_ensemble_summary() -> None:
    """The seeded prior and cut-posterior bands, per alternative and target, are locked."""
    golden = pd.read_csv(GOLDEN / "reproduce_bands.csv")
    pd.testing.assert_frame_equal(golden_bands(), golden, check_dtype=False, rtol=1e-9)


def test_the_lean_target_path_equals_the_table_path(fixed: object) -> None:
    inputs = load_inputs(load_calibration())
    values = target_values(target_rows(inputs, system_runs(inputs)))
    for t in fixed.targets:  # type: ignore[attr-defined]
        assert values[t.name] == pytest.approx(t.model, rel=1e-12), t.name
    assert list(values) == list(PAPER_TARGETS)


def test_the_posterior_median_run_keeps_acceptance_in_the_papers_span(fixed: object) -> None:
    """ELMoE-3D (arXiv 2604.14626) reports Elastic-SD acceptance up to about 0.91; the
    posterior excludes any draw above it, so its median draw has no cell above it."""
    systems = fixed.systems  # type: ignore[attr-defined]
    rows = systems.to_dict("records")
    assert max_elastic_acceptance(rows) <= 0.91
    sd = systems[systems["meta.system"].isin(ELASTIC_SYSTEMS)]
    assert (sd["metric.draft_length_tokens"] > 0).any()


def test_no_baseline_parameter_is_informed_by_the_paper() -> None:
    """The shipped ensemble moves no parameter of xpu, PIM, NMP or HB-xPU."""
    baselines = ("xpu", "xpu-pim", "xpu-logicpim", "xpu-nmp", "hb-xpu")
    for label, post in load_ensemble().posteriors.items():
        for key in post.informed:
            kind, _, rest = key.partition(".")
            assert not (kind == "platform" and rest.split(".")[0] in baselines), (label, key)
            assert key in paper_priors(), key


def test_reproduce_cli_json_contract(tmp_path: Path) -> None:
    args = ["reproduce", "--json", "--out", str(tmp_path), "--draws", "6", "--alt-draws", "3"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert [t["name"] for t in data["targets"]] == list(PAPER_TARGETS)
    for t in data["targets"]:
        assert t["rel_error"] == pytest.approx((t["model"] - t["paper"]) / t["paper"])
        assert t["paper"] == PAPER_TARGETS[t["name"]]
        assert set(t["prior"]) >= BAND_KEYS and set(t["posterior"]) >= BAND_KEYS
        assert t["prior"]["p5"] <= t["prior"]["p50"] <= t["prior"]["p95"]
        assert 0.0 <= t["p_within_10pct_prior"] <= 1.0
    alts = data["bands"]["alternatives"]
    n_alts = 1 + sum(len(a) - 1 for a in assumption_table().alternatives().values())
    assert len(alts) == n_alts
    for alt in alts.values():
        for t in alt["targets"].values():
            assert set(t["prior"]) >= BAND_KEYS and set(t["posterior"]) >= BAND_KEYS
            assert "p_within_10pct_prior" in t
    folder = tmp_path / "reproduce"
    assert (folder / "cells.csv").exists() and (folder / "bands.json").exists()
    run = json.loads((folder / RUN_FILE).read_text())
    assert run["calibration"] == json.loads(load_calibration().model_dump_json())
    assert not list(folder.glob(".*.tmp"))


def test_reproduce_cli_bad_calibration_file(tmp_path: Path) -> None:
    bad = tmp_path / "cal.toml"
    bad.write_text("seed = 1\n")
    result = CliRunner().invoke(
        app, ["reproduce", "--calibration", str(bad), "--out", str(tmp_path), "--draws", "0"]
    )
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "missing" in result.stderr


def test_reproduce_cli_unknown_assumption_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["reproduce", "--assume", "no_such=thing", "--out", str(tmp_path), "--draws", "0"]
    )
    assert result.exit_code == 2
    assert "unknown assumption 'no_such'" in result.stderr


def test_an_unknown_calibration_key_is_refused() -> None:
    from elmoe_dse.calibration import CalibratedValue, Calibration

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


def test_a_value_outside_its_prior_support_is_refused() -> None:
    from elmoe_dse.calibration import CalibratedValue, Calibration, parameter_range

    key = "platform.elmoe3d-8g.static_power.logic_die_w_per_pe"
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


def test_the_fixed_draw_stays_inside_every_prior() -> None:
    cal = load_calibration()
    priors = paper_priors()
    assert set(cal.parameters) == set(priors)  # the ensemble was sampled on today's priors
    for key, cv in cal.parameters.items():
        assert priors[key].min <= cv.value <= priors[key].max, key


@pytest.mark.parametrize("threshold", [1.0, 4.0, 8.0, 16.0, math.nan])
def test_mode_split_equals_the_evaluators_own_switch(threshold: float) -> None:
    """One evaluation of ELMoE-3D with speculation everywhere on draft lengths (0, 1..8), split
    into AR and Elastic-SD per batch, gives bit for bit what the evaluator's mode switch gives at
    every batch threshold B* (and ``auto``), through the memo too."""
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.explore.reproduce import (
        ELMOE,
        GAMMAS,
        PAPER_BATCHES,
        PAPER_CONTEXT,
        DrawMemo,
        SystemRun,
        best_over_gamma,
        evaluate_cell,
        load_inputs,
        system_runs,
    )
    from elmoe_dse.specs.model import load_model

    inputs = load_inputs()
    base = next(r for r in system_runs(inputs) if r.system == "elmoe3d")
    run = SystemRun(
        base.system,
        base.platform_ref,
        base.policy,
        base.platform,
        {**base.knobs, "mode_threshold": threshold},
        base.mode_key,
    )
    other = SystemRun(
        *[getattr(run, f) for f in ("system", "platform_ref", "policy", "platform")],
        {**base.knobs, "mode_threshold": 1.0 if threshold != 1.0 else 16.0},
        base.mode_key,
    )
    memo = DrawMemo()
    evaluate_cell("qwen3-30b-a3b", "gsm8k", inputs, (other,), memo)  # another B* fills the memo
    split = evaluate_cell("qwen3-30b-a3b", "gsm8k", inputs, (run,), memo)
    model = load_model("qwen3-30b-a3b")
    sc = inputs.scenario(model, ELMOE, "gsm8k")
    knobs = sc.knobs(
        batch_size=np.asarray(PAPER_BATCHES, dtype=float)[:, None],
        context_len=PAPER_CONTEXT,
        policy="elmoe3d",
        draft_length=np.asarray(GAMMAS, dtype=float)[None, :],
        **{**base.knobs, "mode_threshold": threshold},
    )
    direct = best_over_gamma(evaluate(sc.model, run.platform, knobs, sc.p, quality=sc.quality))
    assert memo.modes, "the mode-switching run was not memoized"
    for i, row in enumerate(split):
        for column, values in direct.items():
            want = values[i].item() if hasattr(values[i], "item") else values[i]
            both_nan = want != want and row[column] != row[column]
            assert row[column] == want or both_nan, (column, PAPER_BATCHES[i], row[column], want)


def test_speculating_half_of_the_mode_switch_is_elastic_sd_bit_for_bit() -> None:
    """ELMoE-3D's speculating half is Elastic-SD on the same platform, so the memo serves the
    elastic-sd system from the mode-switching run: the same rows as evaluating it directly."""
    from elmoe_dse.explore.reproduce import (
        DrawMemo,
        evaluate_cell,
        load_inputs,
        speculating_half,
        system_runs,
    )

    assert speculating_half("elmoe3d") == "elastic-sd"
    assert speculating_half("elastic-sd") is None
    inputs = load_inputs()
    runs = tuple(r for r in system_runs(inputs) if r.system in ("elmoe3d", "elastic-sd"))
    memo = DrawMemo()
    shared = evaluate_cell("gpt-oss-20b", "mt-bench", inputs, runs, memo)
    direct = evaluate_cell("gpt-oss-20b", "mt-bench", inputs, runs[1:])
    assert len(memo.modes) == 2
    got = [r for r in shared if r["meta.system"] == "elastic-sd"]
    assert len(got) == len(direct) == 4
    for a, b in zip(got, direct, strict=True):
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k] or (a[k] != a[k] and b[k] != b[k]), k
