"""The CLI through typer's CliRunner: JSON contracts, tables, one-line errors with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from elmoe_dse.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


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
    path = Path(__file__).parent / "fixtures" / "hf_configs" / "mixtral-8x7b.json"
    code, out, _ = run("models", "show", str(path), "--json")
    assert code == 0
    assert json.loads(out)["num_experts"] == 8


def test_platforms_list_and_show() -> None:
    code, out, _ = run("platforms", "list", "--json")
    names = {row["name"] for row in json.loads(out)}
    assert code == 0
    assert {
        "xpu",
        "xpu-pim",
        "xpu-logicpim",
        "xpu-nmp",
        "hb-xpu",
        "elmoe3d-4g",
        "elmoe3d-8g",
        "a100-80g",
        "h100",
        "h200",
    } <= names
    code, out, _ = run("platforms", "show", "elmoe3d-8g", "--json")
    assert code == 0
    assert json.loads(out)["tiers"]["hb"]["peak_bw_gb_per_s"] == 1638.4
    code, out, _ = run("platforms", "show", "xpu-pim")
    assert code == 0 and "internal_bw_multiplier" in out


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
        (["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--set", "bogus=1"], "valid keys"),
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


def test_malformed_platform_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "x"\nfamily = "xpu"\n[tiers.lpddr\n')
    code, _, err = run("platforms", "show", str(bad))
    assert code == 2
    assert str(bad) in err and "TOML syntax error" in err
    unknown = tmp_path / "typo.toml"
    text = (Path(__file__).parents[1] / "elmoe_dse/data/platforms/xpu.toml").read_text()
    unknown.write_text(text.replace("static_power_w", "static_power_W"))
    code, _, err = run("platforms", "show", str(unknown))
    assert code == 2 and "static_power_W" in err and "unknown key" in err


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


def test_public_api_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    code = (
        "import sys, elmoe_dse; assert 'numpy' not in sys.modules; "
        "from elmoe_dse import evaluate, Knobs, load_model, load_platform, "
        "expert_probabilities, reproduce; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def test_explain_layering_spec_then_calibration_then_set() -> None:
    """Built-in spec < shipped calibration < --set (ARCHITECTURE rule 8)."""
    args = ["explain", "-m", "qwen3-30b-a3b", "-p", "xpu-pim", "-b", "4", "--json"]
    raw = json.loads(run(*args, "--calibration", "none")[1])
    cal = json.loads(run(*args)[1])
    assert raw["metrics"]["time_per_step_s"] != cal["metrics"]["time_per_step_s"]
    forced = json.loads(run(*args, "--set", "static_power_w=3.0")[1])
    static = forced["energy_by_component_j"]["static"]
    assert static == pytest.approx(3.0 * forced["metrics"]["time_per_step_s"])
