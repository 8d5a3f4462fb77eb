"""A large results table is read reduced to the rows that decide a figure, and the figures are
those of the whole table."""

from __future__ import annotations

from pathlib import Path

import pytest

from elmoe_dse.plots import reduce
from elmoe_dse.plots.figures import build_records
from elmoe_dse.plots.inputs import _read_table, figure_columns, load_run_dir
from elmoe_dse.plots.pareto import pareto_data

QUICK = Path(__file__).resolve().parents[2] / "sweeps" / "quick.toml"


@pytest.fixture(scope="module")
def quick_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sweeps/quick.toml's sweep (2,688 points) with the rounding knob in the groups."""
    from elmoe_dse.explore.figure_tables import write_figure_tables
    from elmoe_dse.explore.sweep import run_sweep, save_sweep
    from elmoe_dse.specs.sweep import load_sweep

    spec = load_sweep(QUICK)
    spec = spec.model_copy(update={"group_by": ["batch_size", "rounding"]})
    out = tmp_path_factory.mktemp("quick")
    save_sweep(run_sweep(spec), out)
    write_figure_tables(out)
    return out


def _figures(folder: Path) -> list[tuple[str, str, str, object, str]]:
    records, _ = build_records(load_run_dir(folder), ("pareto", "speedup", "energy"))
    return [(r.name, r.title, r.caption, r.companions, repr(r.table)) for r in records]


def test_reduced_reading_draws_the_figures_of_the_whole_table(
    quick_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = _figures(quick_dir)
    table = _read_table(quick_dir / "results.parquet")
    monkeypatch.setattr(reduce, "FULL_READ_ROWS", 0)  # every table is "large"
    monkeypatch.setattr(reduce, "BATCH_ROWS", 97)  # many batches: state across them matters
    run = load_run_dir(quick_dir).sweep
    assert run is not None
    frame = run.frame
    assert int(frame[reduce.WEIGHT].sum()) == len(table)
    assert _figures(quick_dir) == whole
    assert repr(pareto_data(frame, group_columns=run.group_by)) == repr(
        pareto_data(table, group_columns=run.group_by)
    )


def test_a_coarse_thinning_grid_keeps_few_rows_and_the_same_panels(
    quick_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(reduce, "BATCH_ROWS", 101)
    table = _read_table(quick_dir / "results.parquet")
    columns = figure_columns(quick_dir / "results.parquet")
    groups = ["knob.batch_size", "knob.rounding"]
    frame = reduce.reduced_results(quick_dir / "results.parquet", columns, groups, cells=8)
    assert len(frame) < len(table) / 3
    assert int(frame[reduce.WEIGHT].sum()) == len(table)
    assert repr(pareto_data(frame, group_columns=groups, thin_cells=8)) == repr(
        pareto_data(table, group_columns=groups, thin_cells=8)
    )


def test_first_new_rows_are_remembered_across_batches_key_by_key() -> None:
    import numpy as np

    seen = reduce._Seen()
    keys = np.array([9, 3, 9, 17, 3, 0])
    assert seen.first_new("t", keys, np.arange(6)).tolist() == [5, 1, 0, 3]
    # Keys 3, 9, 17 and 0 are seen; 8 and 1000 are not (other bytes, a grown bit set).
    later = np.array([3, 8, 1000, 8, 17])
    assert seen.first_new("t", later, np.arange(5)).tolist() == [1, 2]
    assert seen.first_new("t", later, np.arange(5)).tolist() == []
    assert seen.first_new("other", later, np.array([0, 4])).tolist() == [0, 4]


def test_first_best_is_the_first_row_of_the_best_value_per_group() -> None:
    import numpy as np
    import pandas as pd
    from hypothesis import given, settings
    from hypothesis import strategies as st

    values = st.sampled_from([np.nan, np.inf, -np.inf, 0.0, 1.0, 2.0, 2.0])

    @settings(max_examples=200, deadline=None)
    @given(st.lists(st.tuples(st.sampled_from(["a", "b", None]), values), max_size=30))
    def check(rows: list[tuple[str | None, float]]) -> None:
        frame = pd.DataFrame(rows, columns=["g", "v"]).astype({"v": float})
        for largest in (True, False):
            got = sorted(reduce._first_best(frame, ("g",), "v", largest=largest).tolist())
            want = []  # per group with a finite value: nanargmax / nanargmin, the first of ties
            for _, idx in frame.groupby("g", dropna=False).indices.items():
                at = np.asarray(idx)
                v = frame["v"].to_numpy()[at]
                if np.isfinite(v).any():
                    want.append(int(at[np.nanargmax(v) if largest else np.nanargmin(v)]))
            assert got == sorted(want)

    check()
