"""Worker processes of this machine: a process pool that never forks this process.

Used by ``sweep --workers`` (:mod:`elmoe_dse.explore.scale`) and by ``plot --workers``
(:func:`elmoe_dse.plots.figures.render_all`); it imports nothing of the model itself, so the
figures may use it without reaching the evaluator.
"""

from __future__ import annotations

import os
from typing import Any


def default_workers() -> int:
    """``--workers`` when not given: the machine's cores (1 if unknown)."""
    return os.cpu_count() or 1


def process_pool(workers: int, preload: list[str]) -> Any:
    """A ``concurrent.futures`` process pool of ``workers`` processes from the ``forkserver``
    start method (``spawn`` where there is none; never ``fork``, which would copy this process's
    threads and locks), the modules ``preload`` imported once in the fork server (a process has
    one fork server: the preload of its first pool stands)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if context.get_start_method() == "forkserver":
        context.set_forkserver_preload(preload)
    return ProcessPoolExecutor(workers, mp_context=context)
