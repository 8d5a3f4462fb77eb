"""A large results table read in bounded memory: only the rows some figure can show.

``plot`` and ``report`` of a sweep read its ``results.parquet``. Up to :data:`FULL_READ_ROWS`
rows it is read whole (the figure columns only); above, :func:`reduced_results` streams it twice,
one row group at a time, and keeps the rows that decide a figure, so that the figures are those of
the whole table:

- every row the sweep flags Pareto-optimal (``meta.pareto``);
- per Pareto panel (the sweep's groups and batch size) and platform, the first row of every cell
  of the log-log thinning grid (:func:`elmoe_dse.plots.pareto.thin`, whose cell bounds come from
  the whole table in the first pass) and the rows at the extremes of each axis, so the cloud is
  thinned exactly as from the whole table;
- per panel and row group, the 2-D front (throughput up, energy down): every front row of the
  whole table is on the front of its row group;
- per row group, the fastest row of each workload and platform and the fastest and least-energy
  row of each batch size (the speedup and energy figures);
- the first row of every distinct value of every knob and ``meta`` column, and of every
  workload of a panel (which columns vary; which baselines a panel shows).

Each kept row carries in :data:`WEIGHT` the rows of its cloud it stands for, so panel and cloud
point counts are the whole table's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.explore.pareto import pareto_mask, to_minimize

if TYPE_CHECKING:
    import pandas as pd

#: Tables up to this many rows are read whole (the figure columns only).
FULL_READ_ROWS = 1_000_000
#: Rows per batch of the streaming passes.
BATCH_ROWS = 1 << 17
#: The rows of its cloud (panel x platform) a kept row stands for.
WEIGHT = "plot.rows"

THROUGHPUT = "metric.throughput_tok_per_s"
ENERGY = "metric.energy_per_token_j"
BATCH = "knob.batch_size"
PLATFORM = "meta.platform"
PARETO = "meta.pareto"
WORKLOAD = ("meta.model", "meta.dataset", "knob.context_len")
SYSTEM_KEYS = ("meta.model", "meta.dataset", BATCH, PLATFORM)


def _ok(frame: pd.DataFrame) -> np.ndarray:
    """Rows a Pareto panel draws: finite, positive throughput and energy."""
    x = frame[ENERGY].to_numpy(dtype=float)
    y = frame[THROUGHPUT].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))


def _keys(frame: pd.DataFrame, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    cols = [c for c in columns if c in frame.columns]
    if not cols:
        return [()] * len(frame)
    values = [frame[c].astype(object).where(frame[c].notna(), None).tolist() for c in cols]
    return list(zip(*values, strict=True))


@dataclass
class _Bounds:
    """Pass 1: per cloud (panel key + platform), log10 bounds of energy and throughput and the
    rows it has."""

    lo_x: dict[tuple[Any, ...], float] = field(default_factory=dict)
    hi_x: dict[tuple[Any, ...], float] = field(default_factory=dict)
    lo_y: dict[tuple[Any, ...], float] = field(default_factory=dict)
    hi_y: dict[tuple[Any, ...], float] = field(default_factory=dict)
    rows: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def add(self, frame: pd.DataFrame, clouds: Sequence[str]) -> None:
        ok = _ok(frame)
        part = frame[ok]
        if part.empty:
            return
        lx = np.log10(part[ENERGY].to_numpy(dtype=float))
        ly = np.log10(part[THROUGHPUT].to_numpy(dtype=float))
        keys = _keys(part, clouds)
        for key, idx in _positions(keys).items():
            self.rows[key] = self.rows.get(key, 0) + idx.size
            for store, values, pick in (
                (self.lo_x, lx, min),
                (self.hi_x, lx, max),
                (self.lo_y, ly, min),
                (self.hi_y, ly, max),
            ):
                v = float(pick(values[idx]))
                store[key] = pick(store.get(key, v), v)


def _positions(keys: Sequence[tuple[Any, ...]]) -> dict[tuple[Any, ...], np.ndarray]:
    out: dict[tuple[Any, ...], list[int]] = {}
    for i, key in enumerate(keys):
        out.setdefault(key, []).append(i)
    return {k: np.asarray(v) for k, v in out.items()}


def _cell(values: np.ndarray, lo: float, hi: float, cells: int) -> np.ndarray:
    """As :func:`elmoe_dse.plots.pareto.thin` bins a cloud (same bounds, same rounding)."""
    span = hi - lo if hi > lo else 1.0
    return np.minimum(((values - lo) / span * cells).astype(int), cells - 1)


@dataclass
class _Keeper:
    """Pass 2: which rows of each batch to keep (state: what was seen in earlier batches)."""

    bounds: _Bounds
    panels: tuple[str, ...]
    clouds: tuple[str, ...]
    distinct: tuple[str, ...]
    cells: int
    seen: set[tuple[Any, ...]] = field(default_factory=set)

    def _first(self, tag: str, keys: Sequence[tuple[Any, ...]], rows: np.ndarray) -> list[int]:
        out = []
        for i in rows:
            key = (tag, *keys[i])
            if key not in self.seen:
                self.seen.add(key)
                out.append(int(i))
        return out

    def keep(self, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        mask = np.zeros(n, dtype=bool)
        if PARETO in frame.columns:
            mask |= frame[PARETO].to_numpy(dtype=bool)
        everything = np.arange(n)
        for c in self.distinct:
            mask[self._first(c, _keys(frame, [c]), everything)] = True
        ok = np.flatnonzero(_ok(frame))
        if ok.size:
            mask[self._cloud_rows(frame, ok)] = True
            mask[self._front_rows(frame, ok)] = True
            wl = _keys(frame, (*self.panels, *WORKLOAD))
            mask[self._first("workload", wl, ok)] = True
        mask[_first_best(frame, SYSTEM_KEYS, THROUGHPUT, largest=True)] = True
        mask[_first_best(frame, (BATCH,), THROUGHPUT, largest=True)] = True
        mask[_first_best(frame, (BATCH,), ENERGY, largest=False)] = True
        return mask

    def _cloud_rows(self, frame: pd.DataFrame, ok: np.ndarray) -> list[int]:
        b = self.bounds
        lx = np.log10(frame[ENERGY].to_numpy(dtype=float)[ok])
        ly = np.log10(frame[THROUGHPUT].to_numpy(dtype=float)[ok])
        keys = _keys(frame.iloc[ok], self.clouds)
        out: list[int] = []
        for key, idx in _positions(keys).items():
            cx = _cell(lx[idx], b.lo_x[key], b.hi_x[key], self.cells)
            cy = _cell(ly[idx], b.lo_y[key], b.hi_y[key], self.cells)
            cell_keys = [(*key, int(a), int(c)) for a, c in zip(cx, cy, strict=True)]
            out += [int(ok[idx[i]]) for i in self._first("cell", cell_keys, np.arange(idx.size))]
            for tag, values, edge in (
                ("lo_x", lx, b.lo_x),
                ("hi_x", lx, b.hi_x),
                ("lo_y", ly, b.lo_y),
                ("hi_y", ly, b.hi_y),
            ):
                at = np.flatnonzero(values[idx] == edge[key])
                out += [int(ok[idx[i]]) for i in self._first(tag, [key] * idx.size, at)]
        return out

    def _front_rows(self, frame: pd.DataFrame, ok: np.ndarray) -> list[int]:
        loss = to_minimize(frame[[THROUGHPUT, ENERGY]].to_numpy(dtype=float)[ok], [-1.0, 1.0])
        out: list[int] = []
        for idx in _positions(_keys(frame.iloc[ok], self.panels)).values():
            out += ok[idx[pareto_mask(loss[idx])]].tolist()
        return out


def _first_best(
    frame: pd.DataFrame, keys: Sequence[str], column: str, *, largest: bool
) -> list[int]:
    """Per group of ``keys``, the first row with the largest (smallest) finite ``column``."""
    if column not in frame.columns:
        return []
    values = frame[column].to_numpy(dtype=float)
    out = []
    for idx in _positions(_keys(frame, keys)).values():
        v = values[idx]
        if np.isfinite(v).any():
            out.append(int(idx[int(np.nanargmax(v) if largest else np.nanargmin(v))]))
    return out


def reduced_results(
    path: Path, columns: Sequence[str], groups: Sequence[str], *, cells: int
) -> pd.DataFrame:
    """The rows of the results table at ``path`` that decide a figure (module docstring), with
    ``columns`` only and :data:`WEIGHT`; ``groups``: the sweep's Pareto group columns."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    panels = tuple(dict.fromkeys([*(g for g in groups if g != BATCH), BATCH]))
    clouds = (*panels, PLATFORM)
    distinct = tuple(c for c in columns if c.startswith(("knob.", "meta.")) and c != PARETO)
    bounds = _Bounds()
    pass1 = [c for c in (*clouds, ENERGY, THROUGHPUT) if c in columns]
    with pq.ParquetFile(path, pre_buffer=False) as file:
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=pass1):
            bounds.add(batch.to_pandas(), clouds)
    keeper = _Keeper(bounds, panels, clouds, distinct, cells)
    kept = []
    with pq.ParquetFile(path, pre_buffer=False) as file:
        for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=list(columns)):
            mask = keeper.keep(batch.to_pandas())
            kept.append(pa.Table.from_batches([batch]).filter(pa.array(mask)))
    frame = pa.concat_tables(kept).to_pandas()
    frame[WEIGHT] = _weights(frame, bounds, clouds)
    return frame


def _weights(frame: pd.DataFrame, bounds: _Bounds, clouds: Sequence[str]) -> np.ndarray:
    """1 per kept row, plus on the first kept row of each cloud the cloud's rows not kept."""
    weights = np.ones(len(frame), dtype=np.int64)
    ok = np.flatnonzero(_ok(frame))
    for key, idx in _positions(_keys(frame.iloc[ok], clouds)).items():
        weights[ok[idx[0]]] += bounds.rows.get(key, idx.size) - idx.size
    return weights


def row_count(rows: pd.DataFrame) -> int:
    """The rows of the whole table that ``rows`` (a subset of a reduced table) stand for."""
    if WEIGHT in rows.columns:
        return int(rows[WEIGHT].sum())
    return len(rows)
