"""`elmoe-dse sweep` streams its table to disk: what it writes equals the in-memory sweep, and the
output folder holds the two results files only."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import typer
from typer.testing import CliRunner

from elmoe_dse.cli.sweep import sweep
from elmoe_dse.explore.sweep import run_sweep, save_sweep
from elmoe_dse.specs.sweep import load_sweep

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.command("sweep")(sweep)


@app.callback()
def main() -> None:
    """A group, so that ``sweep`` is a subcommand as in the real app."""


MULTI = """schema_version = 1
name = "multi"
models = ["deepseek-v2-lite", "qwen3-30b-a3b"]
platforms = ["elmoe3d-8g", "xpu"]
datasets = ["mt-bench"]
group_by = ["batch_size", "platform"]

[knobs]
policy = ["ar", "elastic-sd"]
batch_size = [1, 8]
draft_bits = [3, 5]
hb_capacity_gb = [2, 8]

[[objectives]]
metric = "metric.throughput_tok_per_s"
direction = "maximize"

[[objectives]]
metric = "metric.energy_per_token_j"
direction = "minimize"
"""


def test_cli_sweep_writes_the_in_memory_table_and_nothing_else(tmp_path: Path) -> None:
    sweep_file = tmp_path / "multi.toml"
    sweep_file.write_text(MULTI)
    result = CliRunner().invoke(app, ["sweep", str(sweep_file), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.stderr
    assert "Pareto-optimal designs per batch_size, platform" in result.stdout
    written = sorted(p.name for p in (tmp_path / "cli").iterdir())
    # besides the figure tables (figure_*.parquet, figures.json; explore/figure_tables.py)
    assert [n for n in written if not n.startswith("figure")] == [
        "manifest.json",
        "results.parquet",
        "run.json",
    ]

    spec = load_sweep(sweep_file)
    save_sweep(run_sweep(spec), tmp_path / "memory", sweep_file=str(sweep_file))
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "cli" / "results.parquet"),
        pd.read_parquet(tmp_path / "memory" / "results.parquet"),
        check_exact=True,
    )
    cli = json.loads((tmp_path / "cli" / "run.json").read_text())
    memory = json.loads((tmp_path / "memory" / "run.json").read_text())
    for key in ("points", "pareto", "sweep", "spec_hashes", "sweep_file"):
        assert cli[key] == memory[key]
    assert cli["timing"].keys() == memory["timing"].keys()
