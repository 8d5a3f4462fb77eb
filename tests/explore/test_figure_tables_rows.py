"""The figure tables of a sweep are computed from its fastest rows, read one row group at a time,
and equal those computed from the whole table."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse.explore import figure_tables as ft

MULTI = Path(__file__).resolve().parents[2] / "sweeps" / "quick.toml"


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from elmoe_dse.explore.sweep import run_sweep, save_sweep
    from elmoe_dse.specs.sweep import load_sweep

    spec = load_sweep(MULTI)
    spec = spec.model_copy(update={"platforms": ["elmoe3d-8g", "elmoe3d-4g"]})
    out = tmp_path_factory.mktemp("multi")
    save_sweep(run_sweep(spec), out)
    return out


def test_fastest_rows_give_the_tables_of_the_whole_table(folder: Path) -> None:
    record = ft._read_record(folder)
    specs = ft.specs_of(record)
    whole = pd.read_parquet(folder / "results.parquet")
    rows = ft.fastest_rows(folder / "results.parquet", batch_rows=61)
    assert 0 < len(rows) < len(whole) / 4
    for name in ("baselines", "energy", "roofline"):
        a = ft.sweep_builds(specs, whole, ft.sweep_context(whole, record, specs))[name]()
        b = ft.sweep_builds(specs, rows, ft.sweep_context(rows, record, specs))[name]()
        assert a.keys() == b.keys()
        for key in a:
            pd.testing.assert_frame_equal(a[key], b[key], check_exact=True)
    assert ft.sweep_context(whole, record, specs) == ft.sweep_context(rows, record, specs)


@pytest.mark.parametrize("chunk_points", [1, 13, 1 << 14])
def test_a_streamed_sweeps_fastest_rows_give_the_tables_of_the_whole_table(
    folder: Path, chunk_points: int, tmp_path: Path
) -> None:
    """The rows a streamed sweep keeps for its figure tables (each group's first fastest row,
    merged block by block) give the tables the whole table gives, and its first row."""
    from elmoe_dse.explore.sweep import stream_sweep
    from elmoe_dse.specs.sweep import load_sweep

    spec = load_sweep(MULTI).model_copy(update={"platforms": ["elmoe3d-8g", "elmoe3d-4g"]})
    run, paths = stream_sweep(spec, tmp_path, chunk_points=chunk_points)
    whole = pd.read_parquet(paths[0])
    rows = run.fastest
    assert rows is not None and 0 < len(rows) < len(whole) / 4
    pd.testing.assert_frame_equal(rows.iloc[:1], whole[list(rows.columns)].iloc[:1])
    record = ft._read_record(tmp_path)
    specs = ft.specs_of(record)
    for name in ("baselines", "energy", "roofline"):
        a = ft.sweep_builds(specs, whole, ft.sweep_context(whole, record, specs))[name]()
        b = ft.sweep_builds(specs, rows, ft.sweep_context(rows, record, specs))[name]()
        for key in a:
            pd.testing.assert_frame_equal(a[key], b[key], check_exact=True)
    assert ft.sweep_context(whole, record, specs) == ft.sweep_context(rows, record, specs)


def test_the_fastest_of_a_group_is_its_first_largest_throughput() -> None:
    """Ties keep the earlier row, NaN never wins, a later block wins only if strictly faster."""
    import numpy as np

    from elmoe_dse.explore.sweep import RunningFronts, block_fastest
    from elmoe_dse.specs.sweep import load_sweep

    def block(values: list[float]) -> dict[str, np.ndarray]:
        n = len(values)
        model = np.broadcast_to(np.array("m", dtype=object), (n,)).copy()
        return {"meta.model": model, "metric.throughput_tok_per_s": np.array(values)}

    fronts = RunningFronts(load_sweep(MULTI))
    fronts.points[("m",)] = 1
    fronts.merge_fastest(block_fastest(block([np.nan, 2.0, 5.0, 5.0])), first_row=0)
    assert fronts.fastest == {("m",): (5.0, 2)}
    fronts.merge_fastest(block_fastest(block([5.0, np.nan])), first_row=4)
    assert fronts.fastest == {("m",): (5.0, 2)}
    assert block_fastest(block([np.nan, np.nan])) == []
    fronts.merge_fastest(block_fastest(block([1.0, 6.0])), first_row=6)
    assert fronts.fastest_rows().tolist() == [0, 7]
