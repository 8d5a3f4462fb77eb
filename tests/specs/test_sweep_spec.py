"""Sweep files: the shipped ones load; values are checked against KNOB_INFO; every bad input fails
with one line naming the file, the field and the fix; the grid enumerates the product once."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from elmoe_dse.errors import SpecError
from elmoe_dse.explore.grid import expand, numeric_chunks
from elmoe_dse.specs.sweep import load_sweep, sweep_from_dict

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"


def base(**extra: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "schema_version": 1,
        "models": ["deepseek-v2-lite"],
        "platforms": ["elmoe3d-8g"],
        "objectives": [{"metric": "metric.throughput_tok_per_s", "direction": "maximize"}],
    }
    data.update(extra)
    return data


@pytest.mark.parametrize("name", ["paper", "quick", "platforms"])
def test_shipped_sweeps_load_and_stay_small(name: str) -> None:
    spec = load_sweep(SWEEPS / f"{name}.toml")
    assert spec.name == name
    grid = expand(spec)
    assert 0 < grid.size <= 2_500_000  # the paper grid runs in well under a minute


def test_paper_sweep_is_the_papers_space() -> None:
    spec = load_sweep(SWEEPS / "paper.toml")
    axes = spec.axes()
    assert set(spec.models) == {"qwen3-30b-a3b", "glm-4.7-flash", "deepseek-v2-lite", "gpt-oss-20b"}
    assert set(spec.datasets) == {"mt-bench", "gsm8k", "alpaca", "humaneval"}
    assert axes["draft_bits"].values == tuple(float(b) for b in range(2, 9))
    assert axes["draft_length"].values == tuple(float(g) for g in range(1, 9))
    assert axes["hb_capacity_gb"].values == (2.0, 4.0, 8.0, 16.0)
    assert {"pool_experts", "rounding", "pe_count", "mode_threshold"} <= set(axes)
    directions = {o.metric: o.direction for o in spec.objectives}
    assert directions["metric.throughput_tok_per_s"] == "maximize"
    assert directions["metric.energy_per_token_j"] == "minimize"


def test_ranges_lists_scalars_and_auto() -> None:
    spec = sweep_from_dict(
        base(
            knobs={
                "draft_bits": {"start": 2, "stop": 8, "step": 2},
                "hb_capacity_gb": {"start": 2, "stop": 16, "num": 4, "log": True},
                "overlap_frac": {"start": 0.0, "stop": 0.5, "num": 3},
                "pool_experts": ["auto", 16],
                "rounding": "round",
                "batch_size": 4,
            }
        )
    )
    axes = spec.axes()
    assert axes["draft_bits"].values == (2.0, 4.0, 6.0, 8.0)
    assert axes["hb_capacity_gb"].values == (2.0, 4.0, 8.0, 16.0)
    assert axes["overlap_frac"].values == (0.0, 0.25, 0.5)
    assert math.isnan(float(axes["pool_experts"].values[0]))
    assert axes["rounding"].values == ("round",) and axes["rounding"].categorical
    assert axes["batch_size"].values == (4.0,)


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"knobs": {"draft_bitz": 3}}, "knobs.draft_bitz", "did you mean 'draft_bits'"),
    ({"knobs": {"draft_bits": {"start": 2, "stop": 9}}}, "knobs.draft_bits", "above"),
    ({"knobs": {"draft_bits": [2.5]}}, "knobs.draft_bits", "whole number"),
    ({"knobs": {"draft_bits": True}}, "knobs.draft_bits", "not a knob value"),
    ({"knobs": {"draft_bits": "auto"}}, "knobs.draft_bits", "no auto"),
    ({"knobs": {"draft_bits": [2, 2]}}, "knobs.draft_bits", "twice"),
    ({"knobs": {"draft_bits": []}}, "knobs.draft_bits", "empty"),
    ({"knobs": {"draft_bits": {"start": 2, "stop": 8, "by": 1}}}, "knobs.draft_bits", "by"),
    ({"knobs": {"hb_capacity_gb": {"start": 2, "stop": 16}}}, "knobs.hb_capacity_gb", "step"),
    ({"knobs": {"rounding": ["round", "nearest"]}}, "knobs.rounding", "lsb-augmented"),
    ({"knobs": {"rounding": {"start": 1, "stop": 2}}}, "knobs.rounding", "names"),
    ({"group_by": ["batch"]}, "group_by[0]", "batch_size"),
    ({"constraints": ["latency < 1"]}, "constraints[0]", "COLUMN <= NUMBER"),
    ({"constraints": ["metric.latency <= 1"]}, "constraints[0]", "latency_per_token_s"),
    (
        {"objectives": [{"metric": "metric.troughput_tok_per_s", "direction": "maximize"}]},
        "objectives[0].metric",
        "throughput_tok_per_s",
    ),
    (
        {"objectives": [{"metric": "metric.tokens_per_step", "direction": "up"}]},
        "objectives.0.direction",
        "maximize",
    ),
    ({"objectives": []}, "objectives", "at least 1"),
    ({"modles": ["x"]}, "modles", "unknown key"),
    ({"models": ["deepseek-v2-lite", "deepseek-v2-lite"]}, "models", "twice"),
]


@pytest.mark.parametrize(("extra", "field", "fix"), BAD, ids=[b[1] for b in BAD])
def test_bad_values_name_the_file_field_and_fix(
    extra: dict[str, Any], field: str, fix: str
) -> None:
    with pytest.raises(SpecError) as info:
        sweep_from_dict(base(**extra), path="my.toml")
    message = str(info.value)
    assert message.startswith("my.toml: ")
    assert f"'{field}'" in message
    assert fix in message
    assert "\n" not in message


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return path


HEADER = """schema_version = 1
models = ["deepseek-v2-lite"]
platforms = ["elmoe3d-8g"]
"""
OBJECTIVE = """
[[objectives]]
metric = "metric.throughput_tok_per_s"
direction = "maximize"
"""


def test_file_errors_unknown_model_misplaced_key_and_bad_toml(tmp_path: Path) -> None:
    path = write(tmp_path, HEADER.replace("deepseek-v2-lite", "deepseek-v9") + OBJECTIVE)
    with pytest.raises(SpecError, match=r"s\.toml: field 'models\[0\]': unknown model"):
        load_sweep(path)
    path = write(tmp_path, HEADER + OBJECTIVE + 'constraints = ["metric.time_per_step_s <= 1"]\n')
    with pytest.raises(SpecError, match=r"top-level key.*move it above the first"):
        load_sweep(path)
    path = write(tmp_path, HEADER + "[knobs\n")
    with pytest.raises(SpecError, match="TOML syntax error"):
        load_sweep(path)
    with pytest.raises(SpecError, match="file not found"):
        load_sweep(tmp_path / "missing.toml")


def test_name_defaults_to_the_file_stem_and_relative_paths_resolve(tmp_path: Path) -> None:
    spec = load_sweep(write(tmp_path, HEADER + OBJECTIVE))
    assert spec.name == "s"


def test_chunks_enumerate_the_product_once_in_c_order() -> None:
    spec = sweep_from_dict(
        base(
            knobs={
                "batch_size": [1, 2, 4],
                "draft_bits": {"start": 2, "stop": 5},
                "draft_length": [1, 3],
                "rounding": ["round", "truncate"],
            },
            datasets=["mt-bench", "gsm8k"],
        )
    )
    grid = expand(spec)
    assert len(grid.combinations) == 2 * 2  # datasets x rounding
    assert grid.shape == (3, 4, 2)
    assert grid.size == 4 * 24
    whole = dict(next(iter(numeric_chunks(grid.numeric, 10_000)))[1])
    parts = [c for _, c in numeric_chunks(grid.numeric, 5)]
    for name in whole:
        np.testing.assert_array_equal(np.concatenate([p[name] for p in parts]), whole[name])
    rows = set(
        zip(*(whole[n].tolist() for n in ("batch_size", "draft_bits", "draft_length")), strict=True)
    )
    assert len(rows) == 24
    assert whole["draft_length"][:2].tolist() == [1.0, 3.0]  # last axis varies fastest
