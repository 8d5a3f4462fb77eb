"""A sweep on several processes or a Dask cluster writes the table one process writes, byte for
byte: the work units are fixed by the grid, their results merged in grid order. An unreachable
scheduler or one without workers fails in one line before anything is written."""

from __future__ import annotations

import io
import socket
from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse.explore import scale
from elmoe_dse.explore.grid import expand, grid_boxes
from elmoe_dse.explore.scale import DaskCluster, LocalPool, SchedulerError, pool_workers
from elmoe_dse.explore.sweep import (
    Runner,
    SweepRun,
    in_process,
    stream_sweep,
    work_batches,
    work_units,
)
from elmoe_dse.specs.sweep import SweepSpec
from tests.cli._app import run
from tests.explore.test_sweep_stream import multi

#: Small units, so the multi-platform sweep (1,536 points, 32 combinations, some invalid, two
#: column layouts) gives 64 of them, many per worker, with and without kept points.
CHUNK = 24

#: 2 combinations x 10,752 knob settings: 2 work units of the default size, ~1 s to evaluate.
TWO_UNITS = """schema_version = 1
name = "two-units"
models = ["qwen3-30b-a3b"]
platforms = ["elmoe3d-8g"]
datasets = ["mt-bench"]
group_by = ["batch_size"]
constraints = ["metric.latency_per_token_s <= 0.1"]

[knobs]
policy = "elastic-sd"
batch_size = { start = 1, stop = 16 }
hb_capacity_gb = [2, 4, 8, 16]
pool_experts = ["auto", 16, 32]
draft_bits = { start = 2, stop = 8 }
rounding = ["round", "lsb-augmented"]
draft_length = { start = 1, stop = 8 }

[[objectives]]
metric = "metric.throughput_tok_per_s"
direction = "maximize"

[[objectives]]
metric = "knob.hb_capacity_gb"
direction = "minimize"
"""


def swept(spec: SweepSpec, out: Path, runner: Runner) -> tuple[SweepRun, bytes]:
    run_, paths = stream_sweep(spec, out, chunk_points=CHUNK, runner=runner)
    return run_, paths[0].read_bytes()


def assert_same_run(got: SweepRun, expected: SweepRun) -> None:
    assert got.summary == expected.summary
    assert got.group_points == expected.group_points
    assert got.pareto_summary() == expected.pareto_summary()
    pd.testing.assert_frame_equal(got.front, expected.front, check_exact=True)


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> tuple[SweepRun, bytes]:
    """The reference: every unit in this process."""
    return swept(multi(), tmp_path_factory.mktemp("local"), in_process)


def test_units_depend_on_the_grid_only_and_cover_it_in_order() -> None:
    grid = expand(multi())
    units = work_units(grid, CHUNK)
    assert len(units) == len(grid.combinations) * 2  # 48 settings in chunks of 24
    assert sum(u.stop - u.start for u in units) == grid.size
    assert [u.combo for u in units[:3]] == [grid.combinations[0]] * 2 + [grid.combinations[1]]
    assert [(u.start, u.stop) for u in units[:3]] == [(0, 24), (24, 48), (0, 24)]
    assert [(u.start, u.stop) for u in work_units(grid, 40)[:2]] == [(0, 40), (40, 48)]


@pytest.mark.parametrize("box_points", [5, 16, 48, 1 << 16])
def test_batches_hold_the_units_that_start_in_one_grid_box(box_points: int) -> None:
    """A process costs a grid box once for the units of a batch (the box memo), so a pool
    sends batches: in grid order, every unit once, one batch per (combination, box); no unit
    crosses a box, so no box is costed by two processes."""
    grid = expand(multi())
    units = work_units(grid, 8, box_points)
    batches = work_batches(grid, 8, box_points)
    assert [u for batch in batches for u in batch] == units
    firsts = [first for _, first in grid_boxes(grid.shape, box_points)]

    def box_of(start: int) -> int:
        return max(i for i, first in enumerate(firsts) if first <= start)

    assert all(box_of(u.start) == box_of(u.stop - 1) for u in units)  # no unit crosses a box
    keys = [{(u.combo, box_of(u.start)) for u in batch} for batch in batches]
    assert all(len(k) == 1 for k in keys)
    assert len({next(iter(k)) for k in keys}) == len(batches)  # one batch per key
    if box_points >= 48:  # a combination's 48 settings fit one box: one batch per combination
        assert len(batches) == len(grid.combinations)
    else:
        assert len(batches) > len(grid.combinations)


def test_pool_size_defaults_to_the_cores_on_large_grids_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    grid = expand(multi())
    monkeypatch.setattr(scale, "default_workers", lambda: 4)
    assert pool_workers(grid, None) == 1  # 1,536 points: the pool would cost more than it saves
    assert pool_workers(grid, 3) == 3
    assert pool_workers(grid, 64, chunk_points=1 << 14) == 32  # one batch per combination
    monkeypatch.setattr(scale, "POOL_MIN_POINTS", 1000)
    assert pool_workers(grid, None) == 4


def test_two_processes_write_the_byte_identical_table(
    local: tuple[SweepRun, bytes], tmp_path: Path
) -> None:
    run_, table = swept(multi(), tmp_path / "two", LocalPool(2))
    assert table == local[1]
    assert_same_run(run_, local[0])
    one, table_one = swept(multi(), tmp_path / "one", LocalPool(1))  # --workers 1: in process
    assert table_one == local[1]
    assert_same_run(one, local[0])


def test_a_pool_started_ahead_writes_the_same_table_and_an_unused_one_is_shut_down(
    local: tuple[SweepRun, bytes], tmp_path: Path
) -> None:
    with LocalPool(2).start() as pool:
        assert pool._pool is not None  # the processes are starting
        run_, table = swept(multi(), tmp_path / "two", pool)
        assert pool._pool is None  # the sweep took the pool and shut it down
    assert table == local[1]
    assert_same_run(run_, local[0])
    with LocalPool(2).start() as unused:
        started = unused._pool
    assert unused._pool is None and started is not None and started._shutdown_thread


def test_cli_workers_1_and_2_write_identical_tables(tmp_path: Path) -> None:
    sweep_file = tmp_path / "two_units.toml"
    sweep_file.write_text(TWO_UNITS)
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"w{workers}"
        args = ["sweep", str(sweep_file), "--out", str(out), "--workers", workers]
        code, stdout, stderr = run(*args)
        assert code == 0, stderr
        assert ("2 worker processes" if workers == "2" else "on 1 process") in stdout
        outputs[workers] = out
    one, two = outputs["1"], outputs["2"]
    tables = sorted(p.name for p in one.glob("*.parquet"))
    assert "results.parquet" in tables and len(tables) > 1  # the figure tables too
    for name in tables:
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    pd.testing.assert_frame_equal(
        pd.read_parquet(one / "results.parquet"), pd.read_parquet(two / "results.parquet")
    )


def test_a_two_worker_dask_cluster_writes_the_local_table(
    local: tuple[SweepRun, bytes], tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
        ) as cluster,
        DaskCluster(cluster.scheduler_address) as runner,
    ):
        assert len(runner.client.nthreads()) == 2
        run_, table = swept(multi(), tmp_path / "dask", runner)
    assert table == local[1]
    assert_same_run(run_, local[0])
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "dask" / "results.parquet"),
        pd.read_parquet(io.BytesIO(local[1])),
        check_exact=True,
    )


def test_a_scheduler_without_workers_fails_in_one_line() -> None:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as cluster,
        pytest.raises(SchedulerError, match=r"no worker after 0\.5 s; start one .* 'dask worker"),
    ):
        DaskCluster(cluster.scheduler_address, timeout_s=0.5)


def test_an_unreachable_scheduler_is_one_line_exit_2_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("distributed")
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setattr(scale, "CONNECT_TIMEOUT_S", 0.5)
    sweep_file = tmp_path / "two_units.toml"
    sweep_file.write_text(TWO_UNITS)
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{port}"
    code, stdout, stderr = run("sweep", str(sweep_file), "--out", str(out), "--scheduler", address)
    assert code == 2
    assert stderr.startswith(f"error: cannot reach the Dask scheduler at {address} (")
    assert "'dask scheduler'" in stderr and len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stdout + stderr
    assert not out.exists()


def test_workers_and_scheduler_together_are_a_usage_error(tmp_path: Path) -> None:
    sweep_file = tmp_path / "two_units.toml"
    sweep_file.write_text(TWO_UNITS)
    args = ["sweep", str(sweep_file), "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]
    code, _, stderr = run(*args, "--out", str(tmp_path / "out"))
    assert code == 2 and "exclude each other" in stderr
    assert not (tmp_path / "out").exists()
