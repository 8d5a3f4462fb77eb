"""Running a sweep: nothing is lost (kept + rejected = grid), the vector path equals scalar
evaluations, the Pareto column equals the kernel per group, and outputs are written whole."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from elmoe_dse.evaluator import evaluate
from elmoe_dse.explore.pareto import pareto_mask, to_minimize
from elmoe_dse.explore.sweep import (
    PARETO_COLUMN,
    load_scenario,
    pareto_column,
    pareto_groups,
    run_sweep,
    save_sweep,
)
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.specs.sweep import SweepSpec, sweep_from_dict

OBJECTIVES = [
    {"metric": "metric.throughput_tok_per_s", "direction": "maximize"},
    {"metric": "metric.energy_per_token_j", "direction": "minimize"},
]


def small(**extra: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "schema_version": 1,
        "name": "small",
        "models": ["deepseek-v2-lite"],
        "platforms": ["elmoe3d-8g"],
        "datasets": ["mt-bench", "gsm8k"],
        "knobs": {
            "policy": "elastic-sd",
            "batch_size": [1, 8],
            "draft_bits": {"start": 2, "stop": 8, "step": 2},
            "draft_length": [1, 4],
            "hb_capacity_gb": [2, 8],
            "rounding": ["round", "lsb-augmented"],
        },
        "objectives": OBJECTIVES,
        "constraints": ["metric.latency_per_token_s <= 0.03"],
    }
    data.update(extra)
    return sweep_from_dict(data)


@pytest.fixture(scope="module")
def result() -> Any:
    return run_sweep(small(), chunk_points=7)  # odd chunks: boundaries must not matter


def test_every_point_is_kept_or_counted_with_a_reason(result: Any) -> None:
    s = result.summary
    assert s["grid_points"] == 2 * 2 * (2 * 4 * 2 * 2)
    assert s["kept_points"] + s["rejected_points"] == s["grid_points"]
    assert s["kept_points"] == len(result.frame) > 0
    reasons = s["rejected_by_reason"]
    assert any(r.startswith("violates metric.latency_per_token_s <= 0.03") for r in reasons)
    frame = result.frame
    assert (frame["metric.latency_per_token_s"] <= 0.03).all()
    assert frame["meta.feasible"].all()


def test_columns_are_tidy_and_carry_every_knob(result: Any) -> None:
    frame = result.frame
    assert all(c.split(".", 1)[0] in ("knob", "metric", "meta") for c in frame.columns)
    assert {f"knob.{k}" for k in KNOB_INFO} <= set(frame.columns)
    assert {"meta.model", "meta.platform", "meta.dataset", "meta.policy", PARETO_COLUMN} <= set(
        frame.columns
    )
    # Dataset profile < sweep file: overlap comes from each dataset's profile here.
    for name, rows in frame.groupby("meta.dataset", observed=True):
        profile = load_scenario("deepseek-v2-lite", "elmoe3d-8g", str(name), "shipped").profile
        assert (rows["knob.overlap_frac"] == profile.overlap_frac).all()


def test_vector_path_equals_scalar_evaluations(result: Any) -> None:
    frame = result.frame
    rows = frame.sample(n=min(12, len(frame)), random_state=0)
    for _, row in rows.iterrows():
        sc = load_scenario(row["meta.model"], row["meta.platform"], row["meta.dataset"], "shipped")
        knobs = Knobs(
            **{
                k: (row[f"knob.{k}"] if KNOB_INFO[k].choices else float(row[f"knob.{k}"]))
                for k in KNOB_INFO
            }
        )
        step = evaluate(sc.model, sc.platform, knobs, sc.p, quality=sc.quality)
        for name, value in step.metrics().items():
            assert float(value) == pytest.approx(row[f"metric.{name}"], rel=1e-12)


def test_pareto_column_is_the_kernel_per_batch_size_and_ignores_row_order(result: Any) -> None:
    frame = result.frame
    loss = to_minimize(
        frame[["metric.throughput_tok_per_s", "metric.energy_per_token_j"]].to_numpy(), [-1, 1]
    )
    for _, idx in frame.groupby("knob.batch_size").indices.items():
        np.testing.assert_array_equal(frame[PARETO_COLUMN].to_numpy()[idx], pareto_mask(loss[idx]))
    shuffled = frame.sample(frac=1.0, random_state=1).reset_index(drop=True)
    flags = pareto_column(shuffled, small())
    assert set(shuffled.index[flags]) == set(shuffled.index[shuffled[PARETO_COLUMN].to_numpy()])


def test_invalid_combinations_are_rejected_with_the_evaluators_reason() -> None:
    spec = small(
        platforms=["xpu", "elmoe3d-8g"],
        datasets=["mt-bench"],
        knobs={"policy": ["ar", "elastic-sd"], "batch_size": [1, 4]},
        constraints=[],
    )
    res = run_sweep(spec)
    reasons = res.summary["rejected_by_reason"]
    assert any("needs a fast tier" in r for r in reasons)
    assert res.summary["kept_points"] + res.summary["rejected_points"] == 8
    assert set(res.frame["meta.platform"]) == {"xpu", "elmoe3d-8g"}


def test_all_rejected_gives_an_empty_table_not_an_error(tmp_path: Path) -> None:
    res = run_sweep(small(constraints=["metric.latency_per_token_s <= 1e-9"]))
    assert res.frame.empty and res.summary["kept_points"] == 0
    assert pareto_groups(res.frame, res.spec) == []
    save_sweep(res, tmp_path)
    assert pd.read_parquet(tmp_path / "results.parquet").empty


def test_outputs_are_written_whole_with_the_run_record(result: Any, tmp_path: Path) -> None:
    paths = save_sweep(result, tmp_path / "out", sweep_file="small.toml")
    assert [p.name for p in paths] == ["results.parquet", "run.json"]
    table = pd.read_parquet(paths[0])
    assert len(table) == len(result.frame)
    assert table[PARETO_COLUMN].dtype == bool
    record = json.loads(paths[1].read_text())
    assert record["command"] == "sweep" and record["version"]
    assert record["points"]["rejected_by_reason"] == result.summary["rejected_by_reason"]
    assert set(record["spec_hashes"]) == {"models", "platforms", "datasets"}
    assert record["sweep"]["resolved_axes"]["draft_bits"] == [2.0, 4.0, 6.0, 8.0]
    assert record["seed"] == 0 and "points_per_s" in record["timing"]
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_pareto_groups_sample_distinct_designs(result: Any) -> None:
    groups = pareto_groups(result.frame, result.spec, max_rows=2)
    assert [g.key for g in groups] == [{"knob.batch_size": 1.0}, {"knob.batch_size": 8.0}]
    for g in groups:
        assert 1 <= len(g.rows) <= 2
        assert sum(1 for _ in g.rows) <= g.distinct <= g.pareto_points
        assert "metric.throughput_tok_per_s" in g.columns
        assert "knob.batch_size" not in g.columns
