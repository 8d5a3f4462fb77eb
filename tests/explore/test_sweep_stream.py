"""Streaming a sweep to disk (bounded memory): the table equals the in-memory one column for
column, dtype for dtype; Pareto flags are exact across chunk boundaries; nothing partial is left
behind by an interrupted run."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from elmoe_dse.explore import sweep as sweep_module
from elmoe_dse.explore.grid import expand
from elmoe_dse.explore.pareto import pareto_mask, to_minimize
from elmoe_dse.explore.sweep import (
    PARETO_COLUMN,
    RunningFronts,
    run_sweep,
    save_sweep,
    stream_sweep,
)
from elmoe_dse.specs.sweep import SweepSpec, load_sweep, sweep_from_dict

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
THROUGHPUT, ENERGY, HB = (
    "metric.throughput_tok_per_s",
    "metric.energy_per_token_j",
    "knob.hb_capacity_gb",
)
#: Sidecar fields that legitimately differ between two runs.
VOLATILE = {"timing", "git_commit"}


def multi(**extra: Any) -> SweepSpec:
    """Several models, platforms (one without a fast tier: other metric columns), datasets and
    policies (some combinations invalid), two group columns."""
    data: dict[str, Any] = {
        "schema_version": 1,
        "name": "multi",
        "models": ["deepseek-v2-lite", "qwen3-30b-a3b"],
        "platforms": ["elmoe3d-8g", "xpu"],
        "datasets": ["mt-bench", "gsm8k"],
        "group_by": ["batch_size", "platform"],
        "constraints": ["metric.latency_per_token_s <= 0.05"],
        "knobs": {
            "policy": ["ar", "elastic-sd"],
            "batch_size": [1, 8],
            "draft_bits": [2, 4, 6],
            "draft_length": [1, 4],
            "hb_capacity_gb": [2, 8],
            "pool_experts": ["auto", 16],
            "rounding": ["round", "lsb-augmented"],
        },
        "objectives": [
            {"metric": THROUGHPUT, "direction": "maximize"},
            {"metric": ENERGY, "direction": "minimize"},
        ],
    }
    data.update(extra)
    return sweep_from_dict(data)


def quick() -> SweepSpec:
    return load_sweep(SWEEPS / "quick.toml")


def strip_volatile(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: strip_volatile(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [strip_volatile(v) for v in data]
    return data


def in_memory(spec: SweepSpec, out: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The reference: the whole table built in memory, flagged, written in one go, read back."""
    save_sweep(run_sweep(spec), out)
    return pd.read_parquet(out / "results.parquet"), json.loads((out / "run.json").read_text())


@pytest.mark.parametrize("make_spec", [quick, multi], ids=["quick", "multi"])
@pytest.mark.parametrize("chunk_points", [7, 1 << 14])
def test_streamed_table_and_record_equal_the_in_memory_ones(
    make_spec: Any, chunk_points: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = make_spec()
    expected, expected_record = in_memory(spec, tmp_path / "memory")
    monkeypatch.setattr(sweep_module, "ROW_GROUP_ROWS", 100)  # several row groups per file
    run, paths = stream_sweep(spec, tmp_path / "stream", chunk_points=chunk_points)
    assert [p.name for p in paths] == ["results.parquet", "run.json"]
    got = pd.read_parquet(paths[0])
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    assert got["meta.model"].dtype == expected["meta.model"].dtype  # same categories, same order
    assert strip_volatile(json.loads(paths[1].read_text())) == strip_volatile(expected_record)
    reference = run_sweep(spec)
    assert run.summary == reference.summary
    assert run.pareto_summary() == reference.pareto_summary()
    assert repr(run.groups(max_rows=3)) == repr(reference.groups(max_rows=3))  # NaN = auto
    pd.testing.assert_frame_equal(
        run.front.reset_index(drop=True), reference.front.reset_index(drop=True)
    )
    assert sorted(p.name for p in (tmp_path / "stream").iterdir()) == [
        "manifest.json",
        "results.parquet",
        "run.json",
    ]


@pytest.mark.parametrize("memory_bytes", [0, 20_000])
def test_blocks_beyond_the_memory_budget_go_to_a_file_and_give_the_same_table(
    memory_bytes: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every block spilled (budget 0) or only the later ones: the same table, no file left."""
    spec = multi()
    expected, _ = in_memory(spec, tmp_path / "memory")
    monkeypatch.setattr(sweep_module, "SPOOL_MEMORY_BYTES", memory_bytes)
    monkeypatch.setattr(sweep_module, "ROW_GROUP_ROWS", 64)
    spilled: list[int] = []
    original = sweep_module.Spool._spill_file

    def spill(self: Any) -> Any:
        spilled.append(len(self._blocks))
        return original(self)

    monkeypatch.setattr(sweep_module.Spool, "_spill_file", spill)
    _, paths = stream_sweep(spec, tmp_path / "stream", chunk_points=50)
    pd.testing.assert_frame_equal(pd.read_parquet(paths[0]), expected, check_exact=True)
    assert spilled and (spilled[0] == 0) == (memory_bytes == 0)  # later blocks only, or all
    assert sorted(p.name for p in (tmp_path / "stream").iterdir()) == [
        "manifest.json",
        "results.parquet",
        "run.json",
    ]


def test_pareto_flags_are_exact_when_every_point_is_its_own_chunk(tmp_path: Path) -> None:
    """With one point per chunk every point is optimal in its chunk, and each front's points lie
    in different chunks: the flags must still be the kernel on each whole group."""
    spec = multi()
    run, paths = stream_sweep(spec, tmp_path, chunk_points=1)
    frame = pd.read_parquet(paths[0])
    loss = to_minimize(frame[[THROUGHPUT, ENERGY]].to_numpy(), [-1.0, 1.0])
    flags = frame[PARETO_COLUMN].to_numpy()
    sizes = []
    for _, idx in frame.groupby(list(spec.group_columns()), observed=True).indices.items():
        np.testing.assert_array_equal(flags[idx], pareto_mask(loss[idx]))
        sizes.append((int(flags[idx].sum()), idx.size))
    assert any(front >= 2 for front, _ in sizes)  # a front spread over several chunks
    assert any(front < points for front, points in sizes)  # points pruned across chunks
    assert run.summary["pareto_points"] == flags.sum()


def test_a_front_split_across_blocks_keeps_only_the_global_front() -> None:
    """Block 1 holds (throughput, energy) = (5, 1), (3, 0.6), the second optimal only there;
    block 2 holds (4, 0.5), which dominates it, and (2, 0.1). The front is rows 0, 2 and 3."""
    fronts = RunningFronts(multi(group_by=[]))
    fronts.add({THROUGHPUT: np.array([5.0, 3.0]), ENERGY: np.array([1.0, 0.6])}, first_row=0)
    assert fronts.rows[()].tolist() == [0, 1]
    fronts.add({THROUGHPUT: np.array([4.0, 2.0]), ENERGY: np.array([0.5, 0.1])}, first_row=2)
    assert fronts.optimal_rows().tolist() == [0, 2, 3]
    assert fronts.points == {(): 4}


@settings(max_examples=60, deadline=None)
@given(
    values=arrays(
        np.float64, st.tuples(st.integers(1, 60), st.just(3)), elements=st.integers(0, 4)
    ),
    groups=st.lists(st.sampled_from([1.0, 8.0, np.nan]), min_size=60, max_size=60),
    cuts=st.lists(st.integers(0, 60), max_size=6),
    objectives=st.sampled_from([2, 3]),
)
def test_running_fronts_equal_the_kernel_on_whole_groups(
    values: np.ndarray, groups: list[float], cuts: list[int], objectives: int
) -> None:
    """Any split into blocks, ties and NaN group keys included: the candidates left after the
    last block are exactly each group's Pareto front over all rows."""
    n = len(values)
    columns = {
        THROUGHPUT: values[:, 0],
        ENERGY: values[:, 1],
        HB: values[:, 2],
        "knob.batch_size": np.asarray(groups[:n]),
    }
    spec = multi(
        group_by=["batch_size"],
        objectives=[
            {"metric": THROUGHPUT, "direction": "maximize"},
            {"metric": ENERGY, "direction": "minimize"},
            {"metric": HB, "direction": "minimize"},
        ][:objectives],
    )
    fronts = RunningFronts(spec)
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    for lo, hi in itertools.pairwise(bounds):
        fronts.add({k: v[lo:hi] for k, v in columns.items()}, first_row=lo)
    loss = to_minimize(values[:, :objectives], [-1.0, 1.0, 1.0][:objectives])
    expected = np.zeros(n, dtype=bool)
    batch = pd.Series(columns["knob.batch_size"])
    for _, idx in batch.groupby(batch, dropna=False).indices.items():
        expected[idx] = pareto_mask(loss[idx])
    np.testing.assert_array_equal(fronts.optimal_rows(), np.flatnonzero(expected))
    assert sum(fronts.points.values()) == n


def test_progress_counts_every_grid_point(tmp_path: Path) -> None:
    spec = multi()
    ticks: list[int] = []
    stream_sweep(spec, tmp_path, chunk_points=5, progress=ticks.append)
    assert sum(ticks) == expand(spec).size


def test_all_rejected_streams_the_same_empty_table(tmp_path: Path) -> None:
    spec = multi(constraints=["metric.latency_per_token_s <= 1e-9"])
    expected, _ = in_memory(spec, tmp_path / "memory")
    run, paths = stream_sweep(spec, tmp_path / "stream")
    pd.testing.assert_frame_equal(pd.read_parquet(paths[0]), expected)
    assert run.summary["kept_points"] == 0 and run.groups() == [] and run.pareto_summary() == []


class Interrupt(Exception):
    pass


def test_an_interrupted_evaluation_leaves_nothing_behind(tmp_path: Path) -> None:
    out = tmp_path / "out"
    stream_sweep(multi(), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls: list[int] = []

    def stop_after_some_chunks(n: int) -> None:
        calls.append(n)
        if len(calls) == 20:
            raise Interrupt

    with pytest.raises(Interrupt):
        stream_sweep(multi(), out, chunk_points=3, progress=stop_after_some_chunks)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # no spool, old run intact


def test_an_interrupted_write_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = sweep_module._final_column
    calls: list[str] = []

    def fail_in_the_second_row_group(*args: Any) -> Any:
        calls.append(args[0])
        if len(calls) > 60:  # past the first row group's columns
            raise Interrupt
        return original(*args)

    monkeypatch.setattr(sweep_module, "ROW_GROUP_ROWS", 50)
    monkeypatch.setattr(sweep_module, "_final_column", fail_in_the_second_row_group)
    with pytest.raises(Interrupt):
        stream_sweep(multi(), tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_a_string_column_is_coded_alike_whether_its_rows_share_one_object_or_not() -> None:
    """A column that repeats or broadcasts one string skips hashing; equal strings that are distinct
    objects, or several strings, are factorized: the same codes and values either way."""
    import pyarrow as pa

    one = np.broadcast_to(np.array("gsm8k", dtype=object), (5,)).copy()
    view = np.broadcast_to(np.array("gsm8k", dtype=object), (5,))  # a constant, not copied
    assert sweep_module._one_string(one) and sweep_module._one_string(view)
    copies = np.array(["gsm" + "8k"[:i] + "8k"[i:] for i in range(5)], dtype=object)
    assert len({id(v) for v in copies}) > 1
    mixed = np.array(["b", "a", None, "b", "a"], dtype=object)
    block = sweep_module.spool_block({"one": one, "copies": copies, "mixed": mixed, "view": view})
    batch = pa.ipc.open_stream(block.ipc).read_next_batch()
    assert block.strings == {
        "one": ["gsm8k"],
        "copies": ["gsm8k"],
        "mixed": ["b", "a"],
        "view": ["gsm8k"],
    }
    assert batch.column("one").to_pylist() == [0] * 5 == batch.column("copies").to_pylist()
    assert batch.column("view").to_pylist() == [0] * 5
    assert batch.column("mixed").to_pylist() == [0, 1, -1, 0, 1]
    groups = sweep_module.block_groups({"one": view, "mixed": mixed}, ("one", "mixed"))
    assert [(key, idx.tolist()) for key, idx in groups] == [
        (("gsm8k", "b"), [0, 3]),
        (("gsm8k", "a"), [1, 4]),
        (("gsm8k", None), [2]),
    ]
