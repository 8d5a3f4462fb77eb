"""One results vocabulary: sweep and reproduce name the same quantity alike, with its unit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    BOUND,
    DRAFT_LENGTH_TOKENS,
    ENERGY_PER_TOKEN_J,
    FEASIBLE,
    HIT_RATE_FRAC,
    INFEASIBLE_REASON,
    META,
    METRIC,
    POOL_EXPERTS_PER_LAYER,
    SYSTEM,
    TAU_TOKENS,
    THROUGHPUT_TOK_PER_S,
    TIME_PER_STEP_S,
    is_metric_column,
    knob_column,
)
from elmoe_dse.evaluator import evaluate
from elmoe_dse.explore.reproduce import PAPER_BATCHES, reproduce
from elmoe_dse.explore.sweep import run_sweep
from elmoe_dse.results import step_columns
from elmoe_dse.scenario import build_scenario
from elmoe_dse.specs.sweep import check_column, check_references, sweep_from_dict

#: Quantities both tables hold, by the one name they share.
SHARED = (
    THROUGHPUT_TOK_PER_S,
    ENERGY_PER_TOKEN_J,
    TIME_PER_STEP_S,
    DRAFT_LENGTH_TOKENS,
    ACCEPTANCE_FRAC,
    TAU_TOKENS,
    POOL_EXPERTS_PER_LAYER,
    HIT_RATE_FRAC,
    BOUND,
    FEASIBLE,
)


@pytest.fixture(scope="module")
def systems() -> pd.DataFrame:
    return reproduce(None, models=("deepseek-v2-lite",), datasets=("mt-bench",)).systems


@pytest.fixture(scope="module")
def sweep_frame() -> pd.DataFrame:
    """The elastic-sd system of the reproduction, swept over the draft lengths it chose from."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "models": ["deepseek-v2-lite"],
        "platforms": ["elmoe3d-8g"],
        "datasets": ["mt-bench"],
        "calibration": "none",
        "knobs": {
            "policy": "elastic-sd",
            "batch_size": list(PAPER_BATCHES),
            "context_len": 1024,
            "draft_length": {"start": 1, "stop": 8},
        },
        "objectives": [{"metric": THROUGHPUT_TOK_PER_S, "direction": "maximize"}],
    }
    return run_sweep(check_references(sweep_from_dict(data))).frame


def test_reproduce_and_sweep_share_the_column_names(
    systems: pd.DataFrame, sweep_frame: pd.DataFrame
) -> None:
    for column in SHARED:
        assert column in systems.columns, column
        assert column in sweep_frame.columns, column
    for old in ("acceptance", "hit_rate", "draft_length", "tau", "bound", "feasible"):
        assert f"{METRIC}{old}" not in systems.columns


def test_the_shared_columns_hold_the_same_values(
    systems: pd.DataFrame, sweep_frame: pd.DataFrame
) -> None:
    """At the draft length reproduce chose, the sweep's row has the same numbers."""
    batch = knob_column("batch_size")
    rows = systems[systems[SYSTEM] == "elastic-sd"]
    assert len(rows) == len(PAPER_BATCHES)
    for _, row in rows.iterrows():
        match = sweep_frame[
            (sweep_frame[batch] == row[batch])
            & (sweep_frame[knob_column("draft_length")] == row[DRAFT_LENGTH_TOKENS])
        ]
        assert len(match) == 1
        swept = match.iloc[0]
        for column in SHARED:
            if column == BOUND:
                assert str(swept[column]) == str(row[column])
            else:
                assert float(swept[column]) == pytest.approx(float(row[column]), rel=1e-12)


def test_every_column_a_step_writes_is_in_the_vocabulary() -> None:
    sc = build_scenario("glm-4.7-flash", "elmoe3d-8g", "gsm8k", None)
    step = evaluate(
        sc.model, sc.platform, sc.knobs(batch_size=np.asarray([1.0, 8.0])), sc.p, quality=sc.quality
    )
    for column in step_columns(step):
        if column.startswith(META):
            assert column in (BOUND, FEASIBLE, INFEASIBLE_REASON), column
        else:
            assert is_metric_column(column), column


def test_a_sweep_objective_may_name_any_metric_reproduce_writes(systems: pd.DataFrame) -> None:
    metrics = [c for c in systems.columns if c.startswith(METRIC)]
    assert DRAFT_LENGTH_TOKENS in metrics
    for column in metrics:
        check_column(column, field="objectives[0].metric")
