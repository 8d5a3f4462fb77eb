"""Fit the all-reduce constants of a ``[device_link]`` on a measured all-reduce table.

The table (``custom_allreduce_perf.parquet`` of the ai-dynamo/aiconfigurator kernel database,
Apache-2.0: columns ``num_gpus``, ``message_size`` in bytes, ``latency`` in ms, ``backend``)
times one all-reduce of BF16 messages on 2, 4 and 8 GPUs. The fit is the link model of
:func:`elmoe_dse.parallel.allreduce_time_s`::

    t = t0 + 2 (n - 1) / n x m / (eta x bw)

by least squares on the relative error, over the CUDA-graph rows (decode steps replay graphs)
with ``m`` up to ``max_message_bytes`` (decode messages: tokens x hidden x 2 B, at most a few MB;
larger messages switch algorithm and are not decode's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from elmoe_dse.errors import SpecError

#: Largest message of the fit: 2 MiB = 256 tokens x 4096 hidden x 2 B.
MAX_MESSAGE_BYTES = 2**21


@dataclass(frozen=True)
class AllReduceFit:
    """Fitted ``t0`` (s) and ``eta`` (fraction of ``bw``), and the fit's relative errors."""

    t0_s: float
    eta_frac: float
    rows: int
    median_abs_frac: float
    p90_abs_frac: float
    worst_abs_frac: float


def ring_bytes(message_bytes: np.ndarray, devices: np.ndarray) -> np.ndarray:
    """Bytes per device of a ring all-reduce of ``message_bytes`` over ``devices``."""
    n = np.asarray(devices, dtype=float)
    return 2.0 * (n - 1.0) / n * np.asarray(message_bytes, dtype=float)


def fit_allreduce_table(
    table: pd.DataFrame, bw_bytes_per_s: float, max_message_bytes: int = MAX_MESSAGE_BYTES
) -> AllReduceFit:
    """Fit ``t0`` and ``eta`` on the graph-mode rows of ``table`` up to ``max_message_bytes``."""
    rows = table[(table["backend"] == "vllm_graph") & (table["message_size"] <= max_message_bytes)]
    if rows.empty:
        raise SpecError("no CUDA-graph all-reduce rows at decode message sizes")
    x = ring_bytes(rows["message_size"].to_numpy(), rows["num_gpus"].to_numpy())
    t = rows["latency"].to_numpy(dtype=float) * 1e-3
    design = np.stack([np.ones_like(x), x], axis=1) / t[:, None]
    (t0, slope), *_ = np.linalg.lstsq(design, np.ones_like(t), rcond=None)
    err = np.abs((t0 + slope * x) / t - 1.0)
    return AllReduceFit(
        t0_s=float(t0),
        eta_frac=float(1.0 / (slope * bw_bytes_per_s)),
        rows=len(rows),
        median_abs_frac=float(np.median(err)),
        p90_abs_frac=float(np.quantile(err, 0.9)),
        worst_abs_frac=float(err.max()),
    )


def fit_allreduce(path: str | Path, bw_bytes_per_s: float) -> AllReduceFit:
    """Read a ``custom_allreduce_perf.parquet`` and fit it (see the module docstring)."""
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise SpecError(f"cannot read the all-reduce table: {err}", path=str(path)) from None
    return fit_allreduce_table(table, bw_bytes_per_s)
