"""The cost-vs-performance figure of a design sweep: its data per group, front, caption, and the
plot command drawing it (and only it) from a design run's directory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse.explore.design import run_design, save_design
from elmoe_dse.plots.cost import cost_caption, cost_data, cost_figure, cost_front
from elmoe_dse.plots.figures import plot_directory
from elmoe_dse.specs.sweep import sweep_from_dict
from tests.design_spec import design_data


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("design") / "run"
    save_design(run_design(sweep_from_dict(design_data())), out, sweep_file="d.toml")
    return out


def test_cost_data_holds_every_design_by_cost(folder: Path) -> None:
    designs = pd.read_parquet(folder / "results.parquet")
    (panel,) = cost_data(designs, ["meta.model"], "served")
    assert panel.group == (("meta.model", "deepseek-v2-lite"),)
    assert len(panel.designs) == 6
    costs = [d["cost_usd"] for d in panel.designs]
    assert costs == sorted(costs)
    assert panel.hb_values == (2.0, 8.0, 16.0) and panel.pe_values == (16.0, 64.0)
    assert "HB capacity 2, 8, 16 GB x PEs 16, 64" in panel.varied
    front = cost_front(panel)
    tputs = [d["throughput_tok_per_s"] for d in front]
    assert tputs == sorted(tputs) and front[0] == panel.designs[0]
    assert "Pareto-optimal" in cost_caption(panel)
    fig = cost_figure(panel)
    assert len(fig.axes) == 2


def test_plot_draws_the_cost_figure_of_a_design_run(folder: Path) -> None:
    outcome = plot_directory(folder)
    names = sorted(p.name for p in outcome.written)
    assert "cost-deepseek-v2-lite.png" in names
    assert "cost-deepseek-v2-lite_designs.csv" in names
    skipped = dict(outcome.skipped)
    assert "pareto" in skipped and "cost" not in skipped


def test_report_of_a_design_run_shows_the_cost_figure_and_its_numbers(folder: Path) -> None:
    """The report of a design run: every cost figure with its own table (cost, area, power,
    throughput per design), not the Pareto front-point table it does not have."""
    from elmoe_dse.report import write_report

    plot_directory(folder)
    written = write_report(folder)
    md = next(p for p in written if p.suffix == ".md").read_text()
    assert "cost-deepseek-v2-lite.png" in md
    assert "The figure's numbers" in md
    assert "cost usd" in md and "logic area mm2" in md
