"""`elmoe-dse explain`: the JSON contract, the table, --set overrides, layering, and bad input
as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli._app import run


def test_explain_json_contract() -> None:
    code, out, err = run(
        "explain",
        "--model",
        "qwen3-30b-a3b",
        "--platform",
        "elmoe3d-8g",
        "--batch",
        "4",
        "--routing",
        "zipf:0.8",
        "--json",
    )
    assert code == 0, err
    data = json.loads(out)
    for key in (
        "time_per_step_s",
        "tokens_per_step",
        "throughput_tok_per_s",
        "latency_per_token_s",
        "energy_per_step_j",
        "energy_per_token_j",
    ):
        assert data["metrics"][key] > 0
    ps = data["passes"][0]
    for key in (
        "kind",
        "tokens",
        "unique_experts_per_layer",
        "time_s",
        "energy_j",
        "bytes_by_tier",
        "operators",
    ):
        assert key in ps
    assert set(ps["bytes_by_tier"]) == {"hb", "lpddr"}
    assert {op["name"] for op in ps["operators"]} >= {"qkv_proj", "attention", "routed_experts"}
    assert data["metrics"]["tokens_per_step"] == pytest.approx(4 * data["speculative"]["tau"])
    assert data["calibration"] == "shipped"


def test_explain_table_renders() -> None:
    code, out, _ = run("explain", "-m", "deepseek-v2-lite", "-p", "xpu-pim", "-b", "16")
    assert code == 0
    assert "routed_experts" in out and "Step totals" in out


def test_explain_set_overrides_knob_model_and_platform_fields() -> None:
    base = json.loads(run("explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--json")[1])
    faster = json.loads(
        run(
            "explain",
            "-m",
            "qwen3-30b-a3b",
            "-p",
            "xpu",
            "--json",
            "--set",
            "tiers.lpddr.peak_bw_gb_per_s=204.8",
        )[1]
    )
    assert faster["metrics"]["time_per_step_s"] < 0.55 * base["metrics"]["time_per_step_s"]
    bf16 = json.loads(
        run("explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--json", "--set", "weight_format=bf16")[
            1
        ]
    )
    assert bf16["metrics"]["time_per_step_s"] > 1.7 * base["metrics"]["time_per_step_s"]
    fewer = json.loads(
        run("explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--json", "--set", "num_experts=64")[1]
    )
    assert fewer["passes"][0]["unique_experts_per_layer"] == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["explain", "-m", "nope", "-p", "xpu"], "unknown model"),
        (["explain", "-m", "qwen3-30b-a3b", "-p", "nope"], "unknown platform"),
        (["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--set", "bogus=1"], "unknown key"),
        (["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--set", "batch_size"], "KEY=VALUE"),
        (["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--routing", "zipf:x"], "zipf"),
        (["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--batch", "0"], "batch_size"),
        (
            ["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--set", "static_power_w=-1"],
            "static_power_w",
        ),
        (["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--set", "policy=ar-cache"], "fast tier"),
    ],
)
def test_bad_input_one_line_exit_2(args: list[str], needle: str) -> None:
    code, out, err = run(*args)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_explain_speculative_json_lists_every_draft_and_the_verify_pass() -> None:
    code, out, err = run(
        "explain",
        "-m",
        "glm-4.7-flash",
        "-p",
        "elmoe3d-8g",
        "-b",
        "8",
        "--json",
        "--set",
        "policy=elastic-sd",
        "--set",
        "draft_length=3",
        "--set",
        "draft_bits=4",
        "--set",
        "pool_experts=20",
        "--set",
        "acceptance=0.8",
    )
    assert code == 0, err
    data = json.loads(out)
    assert [p["kind"] for p in data["passes"]] == ["draft", "draft", "draft", "verify"]
    sp = data["speculative"]
    assert sp["acceptance"] == pytest.approx(0.8)
    assert sp["draft_length"] == 3
    assert sp["tau"] == pytest.approx((1 - 0.8**4) / (1 - 0.8))
    assert data["cache"]["pool_experts_per_layer"] == 20
    assert 0 < data["cache"]["hit_rate"] < 1
    assert data["metrics"]["tokens_per_step"] == pytest.approx(8 * sp["tau"])
    assert data["passes"][-1]["tokens"] == 8 * 4
    code, out, _ = run(
        "explain",
        "-m",
        "glm-4.7-flash",
        "-p",
        "elmoe3d-8g",
        "-b",
        "8",
        "--set",
        "policy=elastic-sd",
    )
    assert code == 0 and "draft pass (x4" in out and "acceptance alpha" in out


def test_explain_layering_spec_then_calibration_then_set() -> None:
    """Built-in spec < shipped calibration < --set (ARCHITECTURE rule 8)."""
    args = ["explain", "-m", "qwen3-30b-a3b", "-p", "elmoe3d-8g", "-d", "gsm8k", "-b", "4"]
    args.append("--json")
    raw = json.loads(run(*args, "--calibration", "none")[1])
    cal = json.loads(run(*args)[1])
    assert raw["metrics"]["throughput_tok_per_s"] != cal["metrics"]["throughput_tok_per_s"]
    forced = json.loads(run(*args, "--set", "static_power_w=3.0")[1])
    static = forced["energy_by_component_j"]["static"]
    assert static == pytest.approx(3.0 * forced["metrics"]["time_per_step_s"])


def test_explain_policy_option_is_set_policy() -> None:
    code, by_option, _ = run(
        "explain",
        "-m",
        "glm-4.7-flash",
        "-p",
        "elmoe3d-8g",
        "-b",
        "8",
        "--policy",
        "elastic-sd",
        "--json",
    )
    assert code == 0
    code, by_set, _ = run(
        "explain",
        "-m",
        "glm-4.7-flash",
        "-p",
        "elmoe3d-8g",
        "-b",
        "8",
        "--set",
        "policy=elastic-sd",
        "--json",
    )
    assert code == 0 and json.loads(by_option) == json.loads(by_set)
    assert json.loads(by_option)["speculative"]["policy"] == "elastic-sd"
    code, _, err = run("explain", "-m", "glm-4.7-flash", "-p", "xpu", "--policy", "nope")
    assert code == 2 and "elastic-sd" in err


def test_explain_csv_is_the_operator_table_with_a_step_total() -> None:
    import csv
    import io

    args = ("explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "-b", "4")
    code, out, _ = run(*args, "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    data = json.loads(run(*args, "--json")[1])
    ops = [op for ps in data["passes"] for op in ps["operators"]]
    assert [r["operator"] for r in rows[:-1]] == [op["name"] for op in ops]
    assert rows[-1]["operator"] == "step total"
    assert float(rows[-1]["time_s"]) == data["metrics"]["time_per_step_s"]
    assert "lpddr_read_bytes" in rows[0]


@pytest.mark.parametrize(
    ("args", "knob", "needle"),
    [
        (["-p", "xpu", "--set", "hb_capacity_gb=4"], "hb_capacity_gb", "no HB tier"),
        (["-p", "xpu", "--set", "pe_count=16"], "pe_count", "no logic die"),
        (["-p", "xpu", "--set", "draft_bits=3"], "draft_bits", "does not act here"),
        (["-p", "elmoe3d-8g", "--policy", "ar-cache"], "draft_bits", "cache precision"),
        (["-p", "hb-xpu", "--policy", "ar", "--set", "draft_length=6"], "draft_length", "plainly"),
    ],
)
def test_knobs_that_do_not_act_are_reported(args: list[str], knob: str, needle: str) -> None:
    code, out, err = run("explain", "-m", "qwen3-30b-a3b", *args)
    assert code == 0
    assert f"warning: knob {knob}" in err and needle in err
    code, out, _ = run("explain", "-m", "qwen3-30b-a3b", *args, "--json")
    assert needle in json.loads(out)["inactive_knobs"][knob]


def test_knobs_that_act_are_not_reported() -> None:
    code, out, _ = run(
        "explain",
        "-m",
        "qwen3-30b-a3b",
        "-p",
        "elmoe3d-8g",
        "-b",
        "8",
        "--policy",
        "elastic-sd",
        "--set",
        "draft_bits=3",
        "--set",
        "hb_capacity_gb=4",
        "--json",
    )
    assert code == 0 and json.loads(out)["inactive_knobs"] == {}


def test_explain_notes_an_uncalibrated_copy_and_takes_calibrate_as(tmp_path: Path) -> None:
    from elmoe_dse.specs._base import DATA_DIR

    copy = tmp_path / "mine.toml"
    text = (DATA_DIR / "platforms" / "elmoe3d-8g.toml").read_text()
    copy.write_text(text.replace('name = "elmoe3d-8g"', 'name = "mine"'))
    base = ("explain", "-m", "qwen3-30b-a3b", "-b", "4")
    code, _, err = run(*base, "-p", str(copy))
    assert code == 0 and "note: platform" in err and "runs uncalibrated" in err
    shipped = json.loads(run(*base, "-p", "elmoe3d-8g", "--json")[1])["metrics"]
    mine = json.loads(run(*base, "-p", str(copy), "--calibrate-as", "elmoe3d-8g", "--json")[1])
    assert mine["metrics"] == shipped
