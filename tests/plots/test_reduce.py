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
