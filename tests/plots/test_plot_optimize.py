"""Optimize figures: hypervolume lines and importances by equality; importances from storage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from elmoe_dse.plots import optimize, style
from elmoe_dse.plots.optimize import (
    HypervolumeData,
    HypervolumeLine,
    ImportanceData,
    ImportancePanel,
)


def test_hypervolume_data_by_equality() -> None:
    studies = [
        {
            "study": "s[batch_size=1]",
            "group": {"knob.batch_size": 1.0},
            "hypervolume_history": [0.1, 0.2, 0.2],
            "grid_hypervolume": 0.25,
            "normalization": "grid front",
        },
        {"study": "s[batch_size=4]", "group": {"knob.batch_size": 4.0}},  # no history: left out
    ]
    data = optimize.hypervolume_data(studies)
    assert data == HypervolumeData(
        (HypervolumeLine("s[batch_size=1]", "B = 1", (0.1, 0.2, 0.2), 0.25, "grid front"),)
    )
    assert optimize.hypervolume_caption(data) == (
        "B = 1: 0.2 after 3 trials (80% of the exhaustive grid's front, 90 % not reached)."
    )


def test_importance_data_orders_params_by_importance() -> None:
    data = optimize.importance_data(
        [
            (
                "B = 1",
                {
                    "metric.throughput_tok_per_s": {"a": 0.2, "b": 0.8},
                    "metric.energy_per_token_j": {"a": 0.9, "b": 0.1},
                },
            )
        ]
    )
    assert data == ImportanceData(
        (
            ImportancePanel(
                "B = 1",
                ("metric.throughput_tok_per_s", "metric.energy_per_token_j"),
                ("a", "b"),
                ((0.2, 0.8), (0.9, 0.1)),
            ),
        )
    )
    assert "throughput: b (80%)" in optimize.importance_caption(data)


def test_importances_from_the_study_storage(optimize_master: Path) -> None:
    record = json.loads((optimize_master / "run.json").read_text())
    objectives = [o["metric"] for o in record["sweep"]["objectives"]]
    per_study = optimize.study_importances(record["storage"], record["studies"], objectives)
    assert per_study
    for _, per_objective in per_study:
        for imp in per_objective.values():
            assert sum(imp.values()) == pytest.approx(1.0)


def test_optimize_figures_render() -> None:
    hv = optimize.hypervolume_data(
        [{"study": "s", "group": {"knob.batch_size": 1.0}, "hypervolume_history": [0.1, 0.3]}]
    )
    imp = optimize.importance_data([("B = 1", {"metric.energy_per_token_j": {"x": 1.0}})])
    with style.style_context():
        assert style.figure_bytes(optimize.hypervolume_figure(hv), "png").startswith(b"\x89PNG")
        assert style.figure_bytes(optimize.importance_figure(imp), "svg").startswith(b"<?xml")
