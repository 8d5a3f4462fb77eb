"""Pareto fronts: the data record by equality, invariants, and the drawing."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from elmoe_dse.plots import pareto, style
from elmoe_dse.plots.pareto import (
    Baseline,
    Cloud,
    FrontPoint,
    Label,
    ParetoPanel,
)

T, E = pareto.THROUGHPUT, pareto.ENERGY


def frame() -> pd.DataFrame:
    """Five designs at B = 1: (tok/s, J/token); b and c tie; d is dominated by a."""
    return pd.DataFrame(
        {
            "meta.model": ["m"] * 5,
            "meta.dataset": ["d"] * 5,
            "meta.platform": ["elmoe3d-8g"] * 5,
            "meta.policy": ["elastic-sd"] * 5,
            "knob.batch_size": [1.0] * 5,
            "knob.context_len": [1024.0] * 5,
            "knob.draft_bits": [4.0, 3.0, 5.0, 4.0, 2.0],
            "knob.pool_experts": [np.nan, 16.0, 16.0, 32.0, np.nan],
            T: [100.0, 80.0, 80.0, 90.0, 40.0],
            E: [0.05, 0.02, 0.02, 0.06, 0.01],
        }
    )


def baselines() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "meta.system": ["xpu", "xpu-pim"],
            "meta.platform": ["xpu", "xpu-pim"],
            "meta.policy": ["ar", "ar"],
            "meta.model": ["m", "m"],
            "meta.dataset": ["d", "d"],
            "knob.batch_size": [1.0, 1.0],
            "knob.context_len": [1024.0, 1024.0],
            T: [20.0, 200.0],
            E: [0.1, 0.001],
        }
    )


def test_pareto_data_by_equality() -> None:
    (data,) = pareto.pareto_data(frame(), baselines=baselines(), max_labels=8)
    knobs = ("knob.draft_bits", "knob.pool_experts")
    front = (
        FrontPoint(
            1,
            True,
            "elmoe3d-8g",
            0.01,
            40.0,
            1,
            (("knob.draft_bits", 2.0), ("knob.pool_experts", "auto")),
        ),
        FrontPoint(
            2,
            True,
            "elmoe3d-8g",
            0.02,
            80.0,
            2,
            (("knob.draft_bits", 3.0), ("knob.pool_experts", 16.0)),
        ),
        FrontPoint(
            3,
            True,
            "elmoe3d-8g",
            0.05,
            100.0,
            1,
            (("knob.draft_bits", 4.0), ("knob.pool_experts", "auto")),
        ),
    )
    assert data.knob_columns == knobs
    (panel,) = data.panels
    assert panel == ParetoPanel(
        batch_size=1.0,
        group=(),
        points=5,
        clouds=(Cloud("elmoe3d-8g", 5, (0.05, 0.02, 0.06, 0.01), (100.0, 80.0, 90.0, 40.0)),),
        front=front,
        baselines=(
            Baseline("xpu", "xpu", "m", "d", 0.1, 20.0, True),
            Baseline("xpu-pim", "xpu-pim", "m", "d", 0.001, 200.0, False),
        ),
        labels=(Label("1", 0.01, 40.0), Label("2", 0.02, 80.0), Label("3", 0.05, 100.0)),
        xscale="log",
        yscale="log",
    )


def test_the_front_ignores_row_order() -> None:
    shuffled = frame().sample(frac=1.0, random_state=3).reset_index(drop=True)
    a = pareto.pareto_data(frame())[0].panels[0].front
    b = pareto.pareto_data(shuffled)[0].panels[0].front
    assert [(p.energy_j_per_token, p.throughput_tok_per_s, p.designs) for p in a] == [
        (p.energy_j_per_token, p.throughput_tok_per_s, p.designs) for p in b
    ]


def test_the_front_is_the_sweeps_pareto_column(sweep_master: Path) -> None:
    """Same objectives and groups as the sweep: the drawn front is exactly its meta.pareto."""
    table = pd.read_parquet(sweep_master / "results.parquet")
    for data in pareto.pareto_data(table):
        for panel in data.panels:
            rows = table[table["knob.batch_size"] == panel.batch_size]
            flagged = rows[rows["meta.pareto"]]
            expected = sorted(
                {(float(e), float(t)) for e, t in zip(flagged[E], flagged[T], strict=True)}
            )
            got = sorted((p.energy_j_per_token, p.throughput_tok_per_s) for p in panel.front)
            assert got == expected
            assert panel.other_optimal is None


def test_thinning_keeps_one_point_per_cell() -> None:
    x = np.asarray([1.0, 1.0001, 10.0, 100.0])
    y = np.asarray([1.0, 1.0001, 10.0, 100.0])
    assert pareto.thin(x, y, cells=10).tolist() == [0, 2, 3]
    assert pareto.thin(np.zeros(0), np.zeros(0)).tolist() == []


def test_close_front_points_share_a_label() -> None:
    pts = [
        FrontPoint(i + 1, False, "p", e, t, 1, ())
        for i, (e, t) in enumerate([(1.0, 1.0), (1.01, 1.01), (5.0, 5.0)])
    ]
    labels, covered = pareto.front_labels(
        pts, xlim=(1.0, 5.0), ylim=(1.0, 5.0), xscale="linear", yscale="linear"
    )
    assert [lab.text for lab in labels] == ["1-2", "3"]
    assert covered == {1, 2, 3}


def test_front_table_and_caption() -> None:
    (data,) = pareto.pareto_data(frame(), baselines=baselines())
    rows = pareto.front_table(data)
    assert [r["label"] for r in rows] == [1, 2, 3]
    assert rows[1]["designs"] == 2
    assert "3 front points" in pareto.caption(data)
    assert "dominating 1 of 2 baseline points" in pareto.caption(data)


def test_pareto_figure_renders() -> None:
    (data,) = pareto.pareto_data(frame(), baselines=baselines())
    with style.style_context():
        png = style.figure_bytes(pareto.pareto_figure(data), "png")
        ax = pareto.draw_pareto_panel(data.panels[0])
        buf = io.BytesIO()
        ax.figure.savefig(buf, format="png")
    assert png.startswith(b"\x89PNG") and buf.getvalue()
