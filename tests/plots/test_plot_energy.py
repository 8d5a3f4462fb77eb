"""Energy breakdown: components per token by equality; re-evaluation matches the run's table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse.plots import energy, style
from elmoe_dse.plots.energy import EnergyData, EnergyPanel, Stack


def table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            energy.PANEL: ["B = 1", "B = 1"],
            energy.BAR: ["fastest", "xPU"],
            "meta.platform": ["elmoe3d-8g", "xpu"],
            "meta.policy": ["elastic-sd", "ar"],
            "metric.tokens_per_step": [2.0, 1.0],
            "metric.energy_read_hb_per_step_j": [0.2, 0.0],
            "metric.energy_read_lpddr_per_step_j": [0.4, 1.0],
            "metric.energy_write_hb_per_step_j": [0.02, 0.0],
            "metric.energy_write_lpddr_per_step_j": [0.02, 0.1],
            "metric.energy_compute_per_step_j": [0.04, 0.02],
            "metric.energy_link_per_step_j": [0.0, 0.0],
            "metric.energy_static_per_step_j": [0.1, 0.5],
            "metric.energy_per_step_j": [0.78, 1.62],
        }
    )


def test_energy_data_by_equality() -> None:
    data = energy.energy_data(table())
    assert data == EnergyData(
        panels=(
            EnergyPanel(
                "B = 1",
                (
                    Stack(
                        "fastest",
                        "elmoe3d-8g",
                        "elastic-sd",
                        (
                            ("read_hb", 0.1),
                            ("read_lpddr", 0.2),
                            ("write", 0.02),
                            ("compute", 0.02),
                            ("static", 0.05),
                        ),
                    ),
                    Stack(
                        "xPU",
                        "xpu",
                        "ar",
                        (
                            ("read_hb", 0.0),
                            ("read_lpddr", 1.0),
                            ("write", 0.1),
                            ("compute", 0.02),
                            ("static", 0.5),
                        ),
                    ),
                ),
            ),
        ),
        components=("read_hb", "read_lpddr", "write", "compute", "static"),
    )
    stack = data.panels[0].stacks[0]
    assert stack.total_j == pytest.approx(0.78 / 2)
    assert stack.share("read_lpddr") == pytest.approx(0.2 / 0.39)


def test_caption() -> None:
    text = energy.caption(energy.energy_data(table()))
    assert text.startswith("lowest energy per token: fastest in 1 of 1 panels; highest: xPU in 1")


def test_reproduce_rows_match_the_runs_table(reproduce_master: Path) -> None:
    systems = pd.read_parquet(reproduce_master / "reproduce" / "systems.parquet")
    table = pd.read_parquet(reproduce_master / "reproduce" / "figure_energy.parquet")
    rows, drift = energy.reproduce_rows(table, systems)
    assert drift < 1e-9
    assert len(rows) == 2 * systems["meta.system"].nunique()
    components = [c for c in rows.columns if energy.ENERGY_COLUMN.match(c)]
    total = rows[components].sum(axis=1) / rows[energy.TOKENS]
    expected = systems.set_index(["meta.system", "knob.batch_size"])["metric.energy_per_token_j"]
    keys = zip(rows["meta.system"], rows["knob.batch_size"], strict=True)
    assert total.to_numpy() == pytest.approx([expected[k] for k in keys], rel=1e-9)


def test_energy_figure_renders() -> None:
    data = energy.energy_data(table())
    with style.style_context():
        assert style.figure_bytes(energy.energy_figure(data), "png").startswith(b"\x89PNG")
        energy.draw_energy_panel(data.panels[0], data.components)
