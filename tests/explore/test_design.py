"""Fronts over hardware designs (explore/design.py): the run-time choice per condition is the
brute-force best, aggregation is as stated, designs that cannot serve a condition are dropped,
the dataset is never a design column, and bad [design] sections fail as one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from elmoe_dse.errors import SpecError
from elmoe_dse.explore.design import CONDITIONS_FILE, FRONTS_FILE, run_design, save_design
from elmoe_dse.explore.sweep import run_sweep
from elmoe_dse.specs.sweep import sweep_from_dict
from tests.cli._app import run as cli
from tests.design_spec import design_data as data

HW = ["meta.model", "knob.hb_capacity_gb", "knob.pe_count"]
CONDITION = ["meta.dataset", "knob.batch_size"]


@pytest.fixture(scope="module")
def grid() -> pd.DataFrame:
    spec = sweep_from_dict({k: v for k, v in data().items() if k != "design"})
    return run_sweep(spec).frame


@pytest.fixture(scope="module")
def mean_run() -> Any:
    return run_design(sweep_from_dict(data(aggregate="mean")), chunk_points=5)


def test_the_runtime_choice_is_the_brute_force_best(grid: pd.DataFrame, mean_run: Any) -> None:
    best = grid.groupby([*HW, *CONDITION], observed=True)["metric.throughput_tok_per_s"].max()
    chosen = mean_run.chosen.set_index([*HW, *CONDITION])["metric.throughput_tok_per_s"]
    assert len(chosen) == len(best) == 6 * 4
    assert np.allclose(chosen.sort_index().to_numpy(), best.sort_index().to_numpy())
    assert {"knob.draft_bits", "knob.draft_length"} <= set(mean_run.chosen.columns)


def test_one_row_per_design_with_cost_columns_and_no_dataset(mean_run: Any) -> None:
    designs = mean_run.designs
    assert len(designs) == 6 and not designs.duplicated(HW).any()
    assert "meta.dataset" not in designs.columns and "knob.batch_size" not in designs.columns
    for column in ("metric.logic_area_mm2", "metric.static_power_w", "metric.cost_usd"):
        assert designs[column].notna().all()
    assert (designs["meta.conditions"] == 4).all()
    front = mean_run.front
    assert len(front[["knob.hb_capacity_gb", "knob.pe_count"]].drop_duplicates()) >= 3


@pytest.mark.parametrize("how", ["mean", "geomean", "worst"])
def test_aggregation_over_conditions(how: str) -> None:
    res = run_design(sweep_from_dict(data(aggregate=how)))
    by = res.chosen.groupby(HW, observed=True)
    tput, energy = by["metric.throughput_tok_per_s"], by["metric.energy_per_token_j"]
    if how == "mean":
        expect_t, expect_e = tput.mean(), energy.mean()
    elif how == "geomean":
        expect_t = tput.apply(lambda s: float(np.exp(np.log(s).mean())))
        expect_e = energy.apply(lambda s: float(np.exp(np.log(s).mean())))
    else:  # the lowest throughput, the highest energy per token
        expect_t, expect_e = tput.min(), energy.max()
    got = res.designs.set_index(HW)
    assert np.allclose(got["metric.throughput_tok_per_s"], expect_t.loc[got.index])
    assert np.allclose(got["metric.energy_per_token_j"], expect_e.loc[got.index])
    assert (got["meta.aggregate"] == how).all()


def test_a_design_that_cannot_serve_a_condition_is_dropped(grid: pd.DataFrame) -> None:
    # a throughput floor that the 2 GB designs miss at batch 1 on every run-time setting
    small = grid[(grid["knob.hb_capacity_gb"] == 2) & (grid["knob.batch_size"] == 1)]
    floor = float(small["metric.throughput_tok_per_s"].max()) * 1.01
    res = run_design(sweep_from_dict(data(constraints=[f"metric.throughput_tok_per_s >= {floor}"])))
    assert set(res.designs["knob.hb_capacity_gb"]) == {8.0, 16.0}
    assert sum(res.dropped.values()) == 2
    assert all("conditions" in reason for reason in res.dropped)


def test_outputs_and_run_record(mean_run: Any, tmp_path: Path) -> None:
    out = tmp_path / "run"
    save_design(mean_run, out, sweep_file="x.toml")
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == 6 and table["meta.pareto"].any()
    assert len(pd.read_parquet(out / CONDITIONS_FILE)) == 24
    assert len(pd.read_parquet(out / FRONTS_FILE)) == int(table["meta.pareto"].sum())
    record = json.loads((out / "run.json").read_text())
    assert record["mode"] == "design" and record["points"]["conditions_per_design"] == 4


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"design": {"hardware": ["hb_capacity_gb"], "runtime": ["draft_bits", "draft_length"],
                     "conditions": ["model", "dataset", "batch_size"]}},
         "design", "axis 'pe_count' takes several values but has no role"),
        ({"design": {"hardware": ["hb_capacity_gb", "pe_count"],
                     "runtime": ["draft_bits", "draft_length", "batch_size"],
                     "conditions": ["model", "dataset", "batch_size"]}},
         "design.conditions[2]", "already a runtime axis"),
        ({"group_by": ["pe_count"]}, "group_by[0]", "is not a condition"),
        ({"design": {"hardware": ["hb_capacity_gb", "pe_count"],
                     "runtime": ["draft_bits", "draft_length"],
                     "conditions": ["model", "dataset", "batch_size", "platform"]}},
         "design.conditions[3]", "the platform is always part of the design"),
        ({"objectives": [{"metric": "knob.batch_size", "direction": "minimize"}]},
         "objectives[0].metric", "not a hardware knob"),
    ],
)  # fmt: skip
def test_bad_design_sections_name_the_field(
    change: dict[str, Any], field: str, message: str
) -> None:
    raw = data()
    raw.update(change)
    with pytest.raises(SpecError, match=message) as err:
        sweep_from_dict(raw, path="d.toml")
    assert f"d.toml: field '{field}'" in str(err.value) and "\n" not in str(err.value)


DESIGN_FILE = """schema_version = 1
name = "design-cli"
models = ["deepseek-v2-lite"]
platforms = ["elmoe3d-8g"]
datasets = ["mt-bench", "gsm8k"]
group_by = ["model"]

[knobs]
policy = "elmoe3d"
batch_size = [1, 16]
draft_bits = [2, 4]
draft_length = [2, 4]
hb_capacity_gb = [2, 8, 16]
pe_count = [16, 64]

[design]
hardware = ["hb_capacity_gb", "pe_count"]
runtime = ["draft_bits", "draft_length"]
conditions = ["model", "dataset", "batch_size"]

[[objectives]]
metric = "metric.throughput_tok_per_s"
direction = "maximize"

[[objectives]]
metric = "metric.cost_usd"
direction = "minimize"
"""


def test_sweep_command_writes_the_design_tables(tmp_path: Path) -> None:
    file = tmp_path / "d.toml"
    file.write_text(DESIGN_FILE)
    code, out, err = cli("sweep", str(file), "--out", str(tmp_path / "out"))
    assert code == 0, err
    assert "Pareto-optimal hardware designs per model" in out
    table = pd.read_parquet(tmp_path / "out" / "results.parquet")
    assert len(table) == 6 and "metric.logic_area_mm2" in table.columns
    assert (tmp_path / "out" / FRONTS_FILE).exists()


def test_optimize_over_the_whole_space_finds_the_exhaustive_front(mean_run: Any) -> None:
    from elmoe_dse.explore.design import hypervolume_fractions, optimize_design

    spec = sweep_from_dict(data(aggregate="mean"))
    search, studies = optimize_design(spec, trials=6, seed=0)
    assert studies[0]["designs_evaluated"] == studies[0]["designs_in_space"] == 6
    got = search.designs.set_index(HW)["metric.throughput_tok_per_s"].sort_index()
    want = mean_run.designs.set_index(HW)["metric.throughput_tok_per_s"].sort_index()
    assert np.allclose(got.to_numpy(), want.to_numpy())
    assert hypervolume_fractions(search, mean_run) == {"deepseek-v2-lite": pytest.approx(1.0)}
    partial, _ = optimize_design(spec, trials=2, seed=0)
    assert len(partial.designs) == 2
    assert 0.0 < hypervolume_fractions(partial, mean_run)["deepseek-v2-lite"] <= 1.0


def test_optimize_command_on_a_design_file(tmp_path: Path) -> None:
    file = tmp_path / "d.toml"
    file.write_text(DESIGN_FILE)
    code, out, err = cli("optimize", str(file), "-n", "3", "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert "3 of 6 designs evaluated" in out and "hypervolume" in out
    record = json.loads((tmp_path / "o" / "run.json").read_text())
    assert record["command"] == "optimize" and record["mode"] == "design"
    assert len(pd.read_parquet(tmp_path / "o" / "results.parquet")) == 3
    code, _, err = cli("optimize", str(file), "--workers", "2", "--out", str(tmp_path / "p"))
    assert code == 2 and "--workers is not supported with [design]" in err
    assert not (tmp_path / "p" / "results.parquet").exists()
