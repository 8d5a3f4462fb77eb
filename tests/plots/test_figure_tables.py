"""Figure tables: computed once from the run's recorded specs, read back unchanged by the plots;
a user's own spec file (a path) works because the figures never reload specs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elmoe_dse.explore.figure_steps import Specs, evaluate_at
from elmoe_dse.explore.figure_tables import (
    FigureTableError,
    analyze_directory,
    baselines_table,
    specs_of,
    write_figure_tables,
)
from elmoe_dse.plots import sensitivity
from elmoe_dse.plots.figures import build_records, plot_directory
from elmoe_dse.plots.inputs import load_run_dir
from elmoe_dse.results import FIGURE_ACCEPTANCE_FILE, FIGURE_BASELINES_FILE, FIGURES_FILE
from elmoe_dse.specs.model import MODELS_DIR
from tests.plots.conftest import SMALL_SWEEP


def test_a_figure_table_round_trips(sweep_master: Path) -> None:
    """The written table is what the data function draws, value for value."""
    table = pd.read_parquet(sweep_master / FIGURE_ACCEPTANCE_FILE)
    data = sensitivity.heatmap_data(table)
    grid = np.asarray(data.acceptance)
    assert grid.shape == (len(data.draft_bits), len(data.pool_experts))
    assert grid.ravel().tolist() == table["metric.acceptance_frac"].tolist()
    record = json.loads((sweep_master / FIGURES_FILE).read_text())
    assert record["run_command"] == "sweep" and record["skipped"] == {}
    assert FIGURE_ACCEPTANCE_FILE in record["tables"]


def test_baselines_are_the_evaluator_at_the_runs_specs(sweep_master: Path) -> None:
    frame = pd.read_parquet(sweep_master / "results.parquet")
    written = pd.read_parquet(sweep_master / FIGURE_BASELINES_FILE)
    record = json.loads((sweep_master / "run.json").read_text())
    pd.testing.assert_frame_equal(written, baselines_table(specs_of(record), frame))
    xpu = written[(written["meta.system"] == "xpu") & (written["knob.batch_size"] == 1.0)]
    sc = Specs(specs_of(record).calibration).scenario("deepseek-v2-lite", "xpu", "mt-bench")
    step = evaluate_at(sc, sc.knobs(policy="ar", batch_size=1.0, draft_length=0.0))
    assert float(xpu["metric.throughput_tok_per_s"].iloc[0]) == pytest.approx(
        float(np.asarray(step.throughput_tok_per_s)), rel=1e-12
    )


def test_a_users_model_file_is_plotted_from_the_tables(tmp_path: Path) -> None:
    from elmoe_dse.explore.sweep import run_sweep, save_sweep
    from elmoe_dse.specs.sweep import check_references, sweep_from_dict

    text = (MODELS_DIR / "deepseek-v2-lite.toml").read_text()
    own = tmp_path / "my-moe.toml"
    own.write_text(text.replace('id = "deepseek-v2-lite"', 'id = "my-moe"'))
    assert 'id = "my-moe"' in own.read_text()
    spec = check_references(sweep_from_dict({**SMALL_SWEEP, "models": [str(own)]}))
    out = tmp_path / "run"
    save_sweep(run_sweep(spec), out)
    write_figure_tables(out)
    assert json.loads((out / FIGURES_FILE).read_text())["skipped"] == {}
    own.unlink()  # the figures never reload it
    outcome = plot_directory(out)
    assert {r.family for r in outcome.records} >= {
        "pareto",
        "speedup",
        "energy",
        "roofline",
        "acceptance",
        "hit_rate",
        "draft_length",
    }
    assert pd.read_parquet(out / FIGURE_BASELINES_FILE)["meta.model"].unique().tolist() == [
        "my-moe"
    ]


def test_tables_of_a_moved_model_are_skipped_with_the_reason(sweep_dir: Path) -> None:
    table = pd.read_parquet(sweep_dir / "results.parquet")
    table["meta.model"] = "my-model"
    table.to_parquet(sweep_dir / "results.parquet")
    (sweep_dir / "manifest.json").unlink()  # as an older elmoe-dse wrote it (no manifest)
    write_figure_tables(sweep_dir)
    skipped = json.loads((sweep_dir / FIGURES_FILE).read_text())["skipped"]
    assert "unknown model 'my-model'" in skipped["roofline"]
    assert not (sweep_dir / "figure_roofline_points.parquet").exists()
    records, why = build_records(load_run_dir(sweep_dir))
    reasons = dict(why)
    assert "figure_roofline_points.parquet was not computed" in reasons["roofline"]
    assert "pareto" in {r.family for r in records}


def test_analyze_needs_a_run(tmp_path: Path, reproduce_master: Path) -> None:
    with pytest.raises(FigureTableError, match=r"no run\.json"):
        analyze_directory(tmp_path)
    dest = tmp_path / "copy"
    shutil.copytree(reproduce_master, dest)
    for table in (dest / "reproduce").glob("figure_*.parquet"):
        table.unlink()
    written = analyze_directory(dest)
    assert {p.name for p in written} >= {"figure_energy.parquet", "figures.json"}


def test_report_reuses_the_plots_png(sweep_dir: Path) -> None:
    from elmoe_dse.report import write_report

    plot_directory(sweep_dir)
    png = sweep_dir / "plots" / "roofline.png"
    png.write_bytes(png.read_bytes() + b"kept")  # a marker: a re-rendered PNG would drop it
    (sweep_dir / "plots" / "acceptance.png").unlink()
    written = write_report(sweep_dir)
    assert png.read_bytes().endswith(b"kept")
    assert [p.name for p in written if p.suffix == ".png"] == ["acceptance.png"]
