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

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import ENERGY_PER_TOKEN_J as ENERGY
from elmoe_dse.columns import PARETO, PLATFORM
from elmoe_dse.columns import THROUGHPUT_TOK_PER_S as THROUGHPUT
from elmoe_dse.explore.pareto import pareto_mask, to_minimize

if TYPE_CHECKING:
    import pandas as pd

#: Tables up to this many rows are read whole (the figure columns only).
FULL_READ_ROWS = 1_000_000
#: Rows per batch of the streaming passes.
BATCH_ROWS = 1 << 17
#: The rows of its cloud (panel x platform) a kept row stands for.
WEIGHT = "plot.rows"

BATCH = "knob.batch_size"
WORKLOAD = ("meta.model", "meta.dataset", "knob.context_len")
SYSTEM_KEYS = ("meta.model", "meta.dataset", BATCH, PLATFORM)


def drawn_rows(frame: pd.DataFrame) -> np.ndarray:
    """Rows a Pareto panel draws: finite, positive throughput and energy."""
    x = frame[ENERGY].to_numpy(dtype=float)
    y = frame[THROUGHPUT].to_numpy(dtype=float)
    with np.errstate(invalid="ignore"):
        return np.asarray(np.isfinite(x) & np.isfinite(y) & (x > 0) & (y > 0))


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class _Ids:
    """Integer ids of row keys (a row's values in some columns, NaN as None), the same id for an
    equal key in every batch: the per-row work is numpy's, only the distinct keys meet a dict."""

    def __init__(self) -> None:
        self._ids: dict[tuple[Any, ...], int] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def of(self, frame: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
        """Each row's key id over ``columns`` (those ``frame`` has; one key if it has none)."""
        import pandas as pd

        n = len(frame)
        combined = np.zeros(n, dtype=np.int64)
        levels: list[tuple[np.ndarray, list[Any]]] = []
        for c in (c for c in columns if c in frame.columns):
            codes, uniques = pd.factorize(frame[c], use_na_sentinel=False)
            values = [None if _missing(v) else v for v in uniques.tolist()]
            combined = combined * max(len(values), 1) + codes
            if levels:  # renumbered densely, so the combined code stays below n
                combined = np.unique(combined, return_inverse=True)[1].reshape(-1)
            levels.append((codes, values))
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        ids = [
            self._ids.setdefault(
                tuple(values[codes[i]] for codes, values in levels), len(self._ids)
            )
            for i in first.tolist()
        ]
        return np.asarray(ids, dtype=np.int64)[inverse.reshape(-1)]


def _grown(values: np.ndarray, size: int, fill: Any) -> np.ndarray:
    """``values`` extended with ``fill`` to at least ``size`` entries."""
    if len(values) >= size:
        return values
    return np.concatenate([values, np.full(max(size, 2 * len(values)) - len(values), fill)])


_NO_BITS = np.zeros(0, dtype=np.uint8)


class _Seen:
    """Which keys (integer ids) have had their first row, per tag, across batches: a bit per
    key (the thinning cells of every cloud are millions of keys on a 10 M point table)."""

    def __init__(self) -> None:
        self._bits: dict[str, np.ndarray] = {}

    def first_new(self, tag: str, keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Of ``rows`` (ascending positions), those holding the first row of a key in ``keys``
        (per row of the batch) not seen before; their keys become seen."""
        if not rows.size:
            return rows
        distinct, first = np.unique(keys[rows], return_index=True)
        need = (int(distinct[-1]) >> 3) + 1
        bits = self._bits[tag] = _grown(self._bits.get(tag, _NO_BITS), need, np.uint8(0))
        byte, bit = distinct >> 3, (distinct & 7).astype(np.uint8)
        new = (bits[byte] >> bit) & 1 == 0
        np.bitwise_or.at(bits, byte[new], np.left_shift(1, bit[new], dtype=np.uint8))
        return rows[first[new]]


@dataclass
class _Bounds:
    """Pass 1: per cloud (panel key + platform, by :class:`_Ids` id), log10 bounds of energy and
    throughput and the rows it has."""

    ids: _Ids = field(default_factory=_Ids)
    lo_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hi_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    lo_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    hi_y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def add(self, frame: pd.DataFrame, clouds: Sequence[str]) -> None:
        ok = drawn_rows(frame)
        part = frame[ok]
        if part.empty:
            return
        lx = np.log10(part[ENERGY].to_numpy(dtype=float))
        ly = np.log10(part[THROUGHPUT].to_numpy(dtype=float))
        cloud = self.ids.of(part, clouds)
        size = len(self.ids)
        self.lo_x, self.lo_y = (_grown(a, size, np.inf) for a in (self.lo_x, self.lo_y))
        self.hi_x, self.hi_y = (_grown(a, size, -np.inf) for a in (self.hi_x, self.hi_y))
        self.rows = _grown(self.rows, size, 0)
        np.minimum.at(self.lo_x, cloud, lx)
        np.maximum.at(self.hi_x, cloud, lx)
        np.minimum.at(self.lo_y, cloud, ly)
        np.maximum.at(self.hi_y, cloud, ly)
        np.add.at(self.rows, cloud, 1)


def _cell(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, cells: int) -> np.ndarray:
    """As :func:`elmoe_dse.plots.pareto.thin` bins a cloud (same bounds, same rounding), with
    each value's cloud bounds ``lo`` and ``hi``."""
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.minimum(((values - lo) / span * cells).astype(int), cells - 1)


@dataclass
class _Keeper:
    """Pass 2: which rows of each batch to keep (state: what was seen in earlier batches)."""

    bounds: _Bounds
    panels: tuple[str, ...]
    clouds: tuple[str, ...]
    distinct: tuple[str, ...]
    cells: int
    ids: _Ids = field(default_factory=_Ids)
    seen: _Seen = field(default_factory=_Seen)

    def keep(self, frame: pd.DataFrame) -> np.ndarray:
        n = len(frame)
        mask = np.zeros(n, dtype=bool)
        if PARETO in frame.columns:
            mask |= frame[PARETO].to_numpy(dtype=bool)
        everything = np.arange(n)
        for c in self.distinct:
            mask[self.seen.first_new(c, self.ids.of(frame, [c]), everything)] = True
        ok = np.flatnonzero(drawn_rows(frame))
        if ok.size:
            mask[self._cloud_rows(frame, ok)] = True
            mask[self._front_rows(frame, ok)] = True
            workload = self.ids.of(frame, (*self.panels, *WORKLOAD))
            mask[self.seen.first_new("workload", workload, ok)] = True
        mask[_first_best(frame, SYSTEM_KEYS, THROUGHPUT, largest=True)] = True
        mask[_first_best(frame, (BATCH,), THROUGHPUT, largest=True)] = True
        mask[_first_best(frame, (BATCH,), ENERGY, largest=False)] = True
        return mask

    def _cloud_rows(self, frame: pd.DataFrame, ok: np.ndarray) -> np.ndarray:
        b = self.bounds
        lx = np.log10(frame[ENERGY].to_numpy(dtype=float)[ok])
        ly = np.log10(frame[THROUGHPUT].to_numpy(dtype=float)[ok])
        cloud = b.ids.of(frame.iloc[ok], self.clouds)
        cx = _cell(lx, b.lo_x[cloud], b.hi_x[cloud], self.cells)
        cy = _cell(ly, b.lo_y[cloud], b.hi_y[cloud], self.cells)
        cell = (cloud * self.cells + cx) * self.cells + cy
        out = [self.seen.first_new("cell", cell, np.arange(ok.size))]
        for tag, values, edge in (
            ("lo_x", lx, b.lo_x),
            ("hi_x", lx, b.hi_x),
            ("lo_y", ly, b.lo_y),
            ("hi_y", ly, b.hi_y),
        ):
            out.append(self.seen.first_new(tag, cloud, np.flatnonzero(values == edge[cloud])))
        return ok[np.concatenate(out)]

    def _front_rows(self, frame: pd.DataFrame, ok: np.ndarray) -> np.ndarray:
        loss = to_minimize(frame[[THROUGHPUT, ENERGY]].to_numpy(dtype=float)[ok], [-1.0, 1.0])
        out = [np.zeros(0, dtype=np.int64)]
        for idx in _groups(self.ids.of(frame.iloc[ok], self.panels)):
            out.append(ok[idx[pareto_mask(loss[idx])]])
        return np.concatenate(out)


def _groups(keys: np.ndarray) -> list[np.ndarray]:
    """Row positions of each distinct key, ascending within a group."""
    order = np.argsort(keys, kind="stable")
    starts = np.flatnonzero(np.diff(keys[order], prepend=-1))
    return np.split(order, starts[1:])


def _first_best(
    frame: pd.DataFrame, keys: Sequence[str], column: str, *, largest: bool
) -> np.ndarray:
    """Per group of ``keys`` with a finite ``column``, its first row with the largest
    (smallest) ``column`` (NaN never wins; infinities compete)."""
    if column not in frame.columns:
        return np.zeros(0, dtype=np.int64)
    values = frame[column].to_numpy(dtype=float)
    group = _Ids().of(frame, keys)
    # Sorted by group, then best value first, then row: each group's first is its answer.
    rank = np.where(np.isnan(values), -np.inf if largest else np.inf, values)
    order = np.lexsort((np.arange(len(values)), -rank if largest else rank, group))
    firsts = order[np.flatnonzero(np.diff(group[order], prepend=-1))]
    finite = np.zeros(int(group.max()) + 1 if group.size else 0, dtype=bool)
    finite[group[np.isfinite(values)]] = True
    return firsts[finite[group[firsts]]]


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
    table = pa.concat_tables(kept)
    del kept
    # Each column's Arrow memory is let go once converted: the peak is about one copy.
    frame = table.to_pandas(split_blocks=True, self_destruct=True)
    del table
    pa.default_memory_pool().release_unused()  # the allocator keeps freed pages otherwise
    frame[WEIGHT] = _weights(frame, bounds, clouds)
    return frame


def _weights(frame: pd.DataFrame, bounds: _Bounds, clouds: Sequence[str]) -> np.ndarray:
    """1 per kept row, plus on the first kept row of each cloud the cloud's rows not kept."""
    weights = np.ones(len(frame), dtype=np.int64)
    ok = np.flatnonzero(drawn_rows(frame))
    cloud = bounds.ids.of(frame.iloc[ok], clouds)
    for idx in _groups(cloud):
        key = int(cloud[idx[0]])
        total = int(bounds.rows[key]) if key < len(bounds.rows) else idx.size
        weights[ok[idx[0]]] += total - idx.size
    return weights


def row_count(rows: pd.DataFrame) -> int:
    """The rows of the whole table that ``rows`` (a subset of a reduced table) stand for."""
    if WEIGHT in rows.columns:
        return int(rows[WEIGHT].sum())
    return len(rows)
