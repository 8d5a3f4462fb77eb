"""Run a sweep's work units on every core (a process pool) or on many machines (Dask distributed).

A sweep's grid is cut into deterministic work units (:func:`~elmoe_dse.explore.sweep.work_units`:
each combination's numeric knob product in chunks of
:data:`~elmoe_dse.explore.grid.CHUNK_POINTS` points). Each unit is evaluated wherever a
:data:`~elmoe_dse.explore.sweep.Runner` sends it, by
:func:`~elmoe_dse.explore.sweep.run_unit` (the evaluator, dropping rules, Arrow conversion and
the unit's Pareto candidates), the units of one grid box together
(:func:`~elmoe_dse.explore.sweep.work_batches`: the box is costed once); this process merges the
results back in grid order and writes the table, so ``results.parquet`` is byte-identical
whatever runs the units.

- :class:`LocalPool`: ``sweep --workers K``, a ``concurrent.futures`` process pool from the
  ``forkserver`` start method (``spawn`` where there is none; never ``fork``, which would copy
  this process's threads and locks), the package imported once in the fork server.
- :class:`DaskCluster`: ``sweep --scheduler tcp://HOST:8786``, the same units as tasks of a
  Dask distributed cluster. Dask rather than Ray: it installs from pure-Python wheels on PyPI
  (``pip install 'elmoe-dse[distributed]'``), ``distributed.LocalCluster`` runs a real
  multi-process cluster on loopback for the tests, and a cluster is only ``dask scheduler`` on
  one machine and ``dask worker tcp://HOST:8786`` on each other one, with no other daemon or
  object store. Every worker needs the same elmoe-dse installed and, for models, platforms,
  datasets or calibrations given as file paths, the same files at the same paths.

At most a few batches per worker are in flight (:func:`ordered`), so memory stays bounded.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from elmoe_dse.errors import ElmoeError
from elmoe_dse.processes import default_workers, process_pool

if TYPE_CHECKING:  # imported where used: starting a pool (LocalPool.start) imports no model
    from elmoe_dse.explore.grid import Grid
    from elmoe_dse.explore.sweep import UnitResult
    from elmoe_dse.specs.sweep import SweepSpec

#: Batches of work units (:func:`~elmoe_dse.explore.sweep.work_batches`: the units of one grid
#: box) in flight per worker: enough to keep each busy while this process merges.
BATCHES_IN_FLIGHT = 2
#: Seconds to wait for a Dask scheduler to answer, and then for a first worker to join it.
CONNECT_TIMEOUT_S = 10.0
#: Without ``--workers``, a grid smaller than this runs in this process: starting the pool
#: (about a second per worker to import and load the scenarios) would cost more than it saves.
POOL_MIN_POINTS = 1 << 17
#: Imported once in the fork server, so each pool worker starts with the evaluator loaded.
PRELOAD = ["elmoe_dse.explore.sweep", "elmoe_dse.evaluator", "pyarrow"]
#: What this process needs once the last unit is in (the table's writer, the figure tables),
#: imported while the first batches run: about 0.3 s that would otherwise follow the last unit.
AFTER_UNITS = ("pandas", "pyarrow.parquet", "elmoe_dse.explore.figure_tables")


class SchedulerError(ElmoeError):
    """The Dask scheduler of ``--scheduler`` cannot be used (unreachable, no worker, no Dask)."""


def pool_workers(grid: Grid, workers: int | None, chunk_points: int | None = None) -> int:
    """The worker processes ``sweep --workers`` uses: ``workers`` (the cores if None, or 1 for a
    grid under :data:`POOL_MIN_POINTS`), never more than the grid has batches of work units
    (:func:`~elmoe_dse.explore.sweep.work_batches`, units of ``chunk_points`` points,
    :data:`~elmoe_dse.explore.grid.CHUNK_POINTS` if None)."""
    from elmoe_dse.explore.grid import CHUNK_POINTS
    from elmoe_dse.explore.sweep import work_batches

    chunk_points = CHUNK_POINTS if chunk_points is None else chunk_points
    if workers is None:
        workers = default_workers() if grid.size >= POOL_MIN_POINTS else 1
    return max(1, min(workers, len(work_batches(grid, chunk_points))))


def ordered(submit: Callable[[Any], Any], batches: list[Any], window: int) -> Iterator[UnitResult]:
    """Submit ``batches`` of work units (``submit`` returns a future whose ``.result()`` is the
    batch's list of unit results), at most ``window`` outstanding, and yield the unit results
    in grid order. Once the first batches are out, the modules of :data:`AFTER_UNITS` are
    imported. Futures not yet collected are cancelled if the consumer stops early."""
    import importlib

    pending: deque[Any] = deque()
    todo = iter(batches)
    try:
        for batch in todo:
            pending.append(submit(batch))
            if len(pending) >= window:
                break
        for name in AFTER_UNITS:
            importlib.import_module(name)
        while pending:
            results = pending.popleft().result()
            for batch in todo:
                pending.append(submit(batch))
                break
            yield from results
    finally:
        for future in pending:
            future.cancel()


class LocalPool:
    """A :data:`~elmoe_dse.explore.sweep.Runner` on ``workers`` processes of this machine (at
    most one per batch of work units); one worker runs the units in this process, as without a pool.

    :meth:`start` launches the processes ahead of the first sweep (they import the evaluator
    while the caller reads its inputs); used as a context manager, a pool started and not
    used is shut down on exit."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.workers = workers
        self._pool: Any = None

    def start(self) -> LocalPool:
        """Start the worker processes now (nothing to start for one worker)."""
        if self._pool is None and self.workers > 1:
            self._pool = process_pool(self.workers, PRELOAD)
            for _ in range(self.workers):  # a process is spawned per submission
                self._pool.submit(int)
        return self

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, *exc: object) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def __call__(self, spec: SweepSpec, grid: Grid, chunk_points: int) -> Iterator[UnitResult]:
        from elmoe_dse.explore.sweep import in_process, run_batch, work_batches

        batches = work_batches(grid, chunk_points)
        workers = min(self.workers, len(batches))
        pool, self._pool = self._pool, None
        if workers <= 1:
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)
            yield from in_process(spec, grid, chunk_points)
            return
        pool = pool if pool is not None else process_pool(workers, PRELOAD)
        try:

            def submit(batch: Any) -> Any:
                return pool.submit(run_batch, spec, grid.numeric, batch)

            yield from ordered(submit, batches, BATCHES_IN_FLIGHT * workers)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


class DaskCluster:
    """A :data:`~elmoe_dse.explore.sweep.Runner` on the Dask distributed cluster whose scheduler
    is at ``address`` (``tcp://HOST:8786``). Connects at once (:class:`SchedulerError` if the
    scheduler does not answer or has no worker), so a bad address fails before anything is
    written; use it as a context manager to close the connection."""

    def __init__(self, address: str, *, timeout_s: float | None = None) -> None:
        timeout_s = CONNECT_TIMEOUT_S if timeout_s is None else timeout_s
        self.address = address
        self.client = _connect(address, timeout_s)
        try:
            self.client.wait_for_workers(1, timeout=timeout_s)
        except (OSError, TimeoutError) as err:
            self.close()
            raise SchedulerError(
                f"the Dask scheduler at {address} has no worker after {timeout_s:g} s; start "
                f"one on each machine with 'dask worker {address}'"
            ) from err

    def __enter__(self) -> DaskCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.client.close()

    def __call__(self, spec: SweepSpec, grid: Grid, chunk_points: int) -> Iterator[UnitResult]:
        from elmoe_dse.explore.sweep import run_batch, work_batches

        batches = work_batches(grid, chunk_points)
        threads = sum(self.client.nthreads().values()) or 1
        shared = self.client.scatter(spec, broadcast=True, hash=False)

        def submit(batch: Any) -> Any:
            return self.client.submit(run_batch, shared, grid.numeric, batch, pure=False)

        yield from ordered(submit, batches, BATCHES_IN_FLIGHT * threads)


def _connect(address: str, timeout_s: float) -> Any:
    """A Dask client of the scheduler at ``address``, or :class:`SchedulerError` in one line."""
    try:
        from distributed import Client
    except ImportError as err:
        raise SchedulerError(
            "--scheduler needs Dask distributed: pip install 'elmoe-dse[distributed]'"
        ) from err
    quiet = [logging.getLogger(name) for name in ("distributed", "tornado")]
    levels = [log.level for log in quiet]
    for log in quiet:  # a failed connection is reported once, below, not logged on the way
        log.setLevel(logging.CRITICAL)
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SchedulerError(
            f"cannot reach the Dask scheduler at {address} ({reason}); start one with "
            "'dask scheduler' and pass its address (tcp://HOST:8786) to --scheduler"
        ) from err
    finally:
        for log, level in zip(quiet, levels, strict=True):
            log.setLevel(level)
