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
