"""`elmoe-dse sweep` and `elmoe-dse optimize` through typer's CliRunner: outputs, tables, and bad
input as one line with exit code 2 and nothing written."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from elmoe_dse.cli.optimize import optimize
from elmoe_dse.cli.sweep import sweep

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.command("sweep")(sweep)
app.command("optimize")(optimize)
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


TINY = """schema_version = 1
name = "tiny"
models = ["deepseek-v2-lite"]
platforms = ["elmoe3d-8g"]

[knobs]
policy = "elastic-sd"
batch_size = [1, 8]
draft_bits = [3, 4, 5]
draft_length = [2, 4]
{extra}

[[objectives]]
metric = "metric.throughput_tok_per_s"
direction = "maximize"

[[objectives]]
metric = "metric.energy_per_token_j"
direction = "minimize"
"""


def tiny(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY.replace("{extra}", extra))
    return path


def test_sweep_quick_writes_outputs_and_prints_the_pareto_designs(tmp_path: Path) -> None:
    code, out, err = run("sweep", str(SWEEPS / "quick.toml"), "--out", str(tmp_path / "q"))
    assert code == 0, err
    assert "Pareto-optimal designs per batch_size" in out
    assert "throughput" in out and "tok/s" in out
    assert "Rejected design points" in out and "violates metric.latency_per_token_s" in out
    table = pd.read_parquet(tmp_path / "q" / "results.parquet")
    record = json.loads((tmp_path / "q" / "run.json").read_text())
    assert len(table) == record["points"]["kept_points"] > 0
    assert table["meta.pareto"].sum() == record["points"]["pareto_points"]


def test_sweep_default_output_folder_is_results_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep_file = tiny(tmp_path)
    monkeypatch.chdir(tmp_path)
    code, out, err = run("sweep", str(sweep_file))
    assert code == 0, err
    assert (tmp_path / "results" / "tiny" / "results.parquet").exists()
    assert "wrote results/tiny/run.json" in out


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("draft_bitz = 3", "field 'knobs.draft_bitz': unknown knob; did you mean 'draft_bits'"),
        ("hb_capacity_gb = [2, 4096]", "field 'knobs.hb_capacity_gb': 4096 is above"),
        ('rounding = "nearest"', "field 'knobs.rounding': 'nearest' is not a choice"),
        ("pool_experts = [", "TOML syntax error"),
    ],
)
def test_bad_sweep_file_is_one_line_exit_2_nothing_written(
    tmp_path: Path, extra: str, expected: str
) -> None:
    sweep_file = tiny(tmp_path, extra)
    for command in ("sweep", "optimize"):
        out_dir = tmp_path / f"out-{command}"
        code, out, err = run(command, str(sweep_file), "--out", str(out_dir))
        assert code == 2
        assert err.startswith(f"error: {sweep_file}: ")
        assert expected in err
        assert err.count("\n") == 1 and out == ""
        assert not out_dir.exists()


def test_unknown_model_names_the_list_entry(tmp_path: Path) -> None:
    path = tiny(tmp_path)
    path.write_text(path.read_text().replace('"deepseek-v2-lite"', '"deepseek-v9"'))
    code, _, err = run("sweep", str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and "field 'models[0]': unknown model 'deepseek-v9'" in err


def test_unwritable_out_is_one_line_and_nothing_runs(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    for command in ("sweep", "optimize"):
        code, out, err = run(command, str(tiny(tmp_path)), "--out", str(blocker / "out"))
        assert code == 2 and out == ""
        assert "cannot create output directory" in err and "--out" in err
        assert err.count("\n") == 1


def test_optimize_runs_prints_studies_and_resumes(tmp_path: Path) -> None:
    sweep_file, out_dir = tiny(tmp_path), tmp_path / "opt"
    code, out, err = run("optimize", str(sweep_file), "--trials", "6", "--out", str(out_dir))
    assert code == 0, err
    assert "tiny[batch_size=1]" in out and "fraction of grid" in out
    assert "Best designs found" in out
    assert f"optuna-dashboard sqlite:///{out_dir / 'study.db'}" in out
    record = json.loads((out_dir / "run.json").read_text())
    assert record["points"]["complete_trials"] == 12
    assert 0.0 < record["hypervolume_fraction_of_grid"] <= 1.0 + 1e-9
    # Asking for more continues the same studies.
    code, _, err = run("optimize", str(sweep_file), "--trials", "9", "--out", str(out_dir))
    assert code == 0, err
    record = json.loads((out_dir / "run.json").read_text())
    assert record["points"]["complete_trials"] == 18
    assert [s["complete_trials"] for s in record["studies"]] == [9, 9]


def test_optimize_flag_errors_are_one_line(tmp_path: Path) -> None:
    sweep_file = tiny(tmp_path)
    code, _, err = run("optimize", str(sweep_file), "--sampler", "cmaes", "--out", str(tmp_path))
    assert code == 2 and err == "error: --sampler cmaes: use tpe or random\n"
    code, _, err = run(
        "optimize", str(sweep_file), "--storage", "nosuchdb://x", "--out", str(tmp_path / "o")
    )
    assert code == 2 and err.startswith("error: --storage nosuchdb://x: cannot open the storage")
    assert err.count("\n") == 1
