"""Fronts per workload and knobs that do not act: the dataset (a workload column) is a condition
of the fronts, never a design column; a front table marks a knob that does not act at a point
(the draft knobs where the point decodes plainly), at its default value too."""

from __future__ import annotations

import numpy as np
import pandas as pd

from elmoe_dse.plots import pareto
from elmoe_dse.report import NOT_ACTING, _designs_table

T, E = pareto.THROUGHPUT, pareto.ENERGY


def _frame() -> pd.DataFrame:
    """Two datasets at B = 1. On 'easy' every design is faster than any on 'hard': a front
    across datasets would keep only 'easy' designs. Design 'p*' decodes plainly (draft length
    0): the sweep lists draft_length as inactive only where it is off its default (4)."""
    n = 6
    return pd.DataFrame(
        {
            "meta.model": ["m"] * n,
            "meta.dataset": ["easy"] * 3 + ["hard"] * 3,
            "meta.platform": ["elmoe3d-8g"] * n,
            "meta.policy": ["elmoe3d"] * n,
            "meta.draft": ["self"] * n,
            "meta.cache_policy": ["hot"] * n,
            "knob.batch_size": [1.0] * n,
            "knob.context_len": [1024.0] * n,
            "knob.draft_length": [4.0, 2.0, 6.0, 4.0, 2.0, 6.0],
            "knob.pe_count": [16.0, 32.0, 64.0, 16.0, 32.0, 64.0],
            "metric.draft_length_tokens": [0.0, 2.0, 0.0, 0.0, 2.0, 0.0],
            "meta.inactive_knobs": ["", "", "draft_length", "", "", "draft_length"],
            T: [100.0, 120.0, 130.0, 50.0, 60.0, 65.0],
            E: [0.05, 0.06, 0.07, 0.10, 0.12, 0.14],
        }
    )


def test_a_varying_dataset_splits_the_fronts_and_is_no_design_column() -> None:
    datas = pareto.pareto_data(_frame(), group_columns=("meta.model", "knob.batch_size"))
    assert [d.panels[0].group for d in datas] == [
        (("meta.model", "m"), ("meta.dataset", "easy")),
        (("meta.model", "m"), ("meta.dataset", "hard")),
    ]
    for data in datas:
        assert "meta.dataset" not in data.knob_columns
        assert len(data.panels[0].front) == 3  # every design is on its dataset's front
    rows = pareto.front_table(datas[1])
    assert {r["meta.dataset"] for r in rows} == {"hard"}


def test_a_knob_that_does_not_act_is_marked_at_its_default_too() -> None:
    (_, hard) = pareto.pareto_data(_frame())
    front = hard.panels[0].front
    by_pe = {dict(p.knobs)["knob.pe_count"]: p.inactive for p in front}
    # pe 16: plain at the default draft length (the sweep's column is empty there)
    assert by_pe == {16.0: ("knob.draft_length",), 32.0: (), 64.0: ("knob.draft_length",)}
    assert pareto.idle_knobs(_frame()) == {
        "elmoe3d-8g|elmoe3d|self|hot|plain": frozenset({"draft_length"})
    }


def test_the_design_table_marks_idle_knobs_and_says_the_condition_once() -> None:
    (_, hard) = pareto.pareto_data(_frame())
    table = _designs_table(pareto.front_table(hard), "t")
    assert "dataset hard" in table.fixed and "dataset" not in table.columns
    col = table.columns.index("draft length")
    assert sorted(r[col] for r in table.rows) == ["2", NOT_ACTING, NOT_ACTING]
    assert NOT_ACTING in table.note


def test_a_table_over_several_datasets_shows_them_as_conditions_before_the_designs() -> None:
    rows = [r for d in pareto.pareto_data(_frame()) for r in pareto.front_table(d)]
    table = _designs_table(rows, "t")
    assert table.columns[:3] == ("B", "dataset", "front point")
    assert [r[1] for r in table.rows] == ["easy"] * 3 + ["hard"] * 3


def test_without_the_acting_columns_nothing_is_marked() -> None:
    frame = _frame().drop(columns=["meta.draft", "meta.inactive_knobs"])
    for data in pareto.pareto_data(frame):
        assert all(p.inactive == () for p in data.panels[0].front)
    assert np.all(frame["metric.draft_length_tokens"].notna())
