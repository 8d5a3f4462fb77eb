"""`elmoe-dse models`: list and show as JSON, from an id or a Hugging Face config.json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli._app import run


def test_models_list_and_show_json() -> None:
    code, out, _ = run("models", "list", "--json")
    assert code == 0
    ids = {row["id"] for row in json.loads(out)}
    assert {
        "qwen3-30b-a3b",
        "glm-4.7-flash",
        "deepseek-v2-lite",
        "gpt-oss-20b",
        "mixtral-8x7b",
        "qwen1.5-moe-a2.7b",
        "olmoe-1b-7b",
    } <= ids
    code, out, _ = run("models", "show", "qwen3-30b-a3b", "--json")
    data = json.loads(out)
    assert code == 0
    assert data["total_params"] == pytest.approx(30.5e9, rel=0.03)
    assert data["active_params"] == pytest.approx(3.3e9, rel=0.03)


def test_models_show_takes_a_config_json_path() -> None:
    path = Path(__file__).parents[1] / "fixtures" / "hf_configs" / "mixtral-8x7b.json"
    code, out, _ = run("models", "show", str(path), "--json")
    assert code == 0
    assert json.loads(out)["num_experts"] == 8


def test_models_list_csv_matches_the_json_list() -> None:
    import csv
    import io

    code, out, _ = run("models", "list", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    _, js, _ = run("models", "list", "--json")
    expected = {r["id"]: r for r in json.loads(js)}
    assert code == 0 and [r["id"] for r in rows] == list(expected)
    qwen = next(r for r in rows if r["id"] == "qwen3-30b-a3b")
    assert int(qwen["total_params"]) == expected["qwen3-30b-a3b"]["total_params"]
    assert int(qwen["num_experts"]) == 128 and qwen["attention"] == "gqa"
