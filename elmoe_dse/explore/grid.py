"""Grid expansion: a sweep's scenarios x categorical knobs (a loop) x numeric knobs (flat arrays).

The space of a :class:`~elmoe_dse.specs.sweep.SweepSpec` is the Cartesian product of

- **combinations**: models x platforms x datasets x every categorical knob axis (``policy``,
  ``rounding`` ...), each evaluated by its own call of the vectorized evaluator;
- **numeric axes**: every numeric knob axis; their product is enumerated in C order and handed to
  the evaluator as one flat array per knob, in chunks of at most ``chunk_points`` points so memory
  stays bounded whatever the grid size.

Flat point ``i`` of a combination has axis indices ``np.unravel_index(i, shape)``, so chunks are
computed independently and in order.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from elmoe_dse.errors import SpecError
from elmoe_dse.specs.sweep import SCENARIO_AXES, Axis, SweepSpec

#: Points per evaluator call: bounds the memory of one call to tens of MB.
CHUNK_POINTS = 1 << 14
#: The most points of one box of :func:`grid_boxes` (one evaluator call): bounds its memory.
BOX_POINTS = 1 << 16
#: A grid larger than this fails before running (coarsen the axes or use optimize).
MAX_GRID_POINTS = 50_000_000


@dataclass(frozen=True)
class Combination:
    """One categorical combination: scenario names and categorical knob values."""

    model: str
    platform: str
    dataset: str
    knobs: tuple[tuple[str, str], ...]

    @property
    def labels(self) -> dict[str, str]:
        """Scenario and categorical knob values by axis name."""
        return {"model": self.model, "platform": self.platform, "dataset": self.dataset} | dict(
            self.knobs
        )


@dataclass(frozen=True)
class Grid:
    """The expanded space of a sweep (lazy: nothing is materialized until iterated)."""

    combinations: tuple[Combination, ...]
    numeric: tuple[Axis, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        """Lengths of the numeric axes (C order)."""
        return tuple(len(a.values) for a in self.numeric)

    @property
    def points_per_combination(self) -> int:
        return math.prod(self.shape)

    @property
    def size(self) -> int:
        return len(self.combinations) * self.points_per_combination

    def chunks(
        self, chunk_points: int = CHUNK_POINTS
    ) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
        """(first flat index, {knob: values}) of consecutive chunks of the numeric product
        (:func:`chunk_bounds`)."""
        yield from numeric_chunks(self.numeric, chunk_points)


def expand(spec: SweepSpec, *, path: str | None = None) -> Grid:
    """The grid of ``spec``; fails if it exceeds :data:`MAX_GRID_POINTS`."""
    axes = spec.axes()
    categorical = [a for a in axes.values() if a.categorical]
    numeric = tuple(a for a in axes.values() if not a.categorical)
    combos = tuple(
        Combination(
            model=model,
            platform=platform,
            dataset=dataset,
            knobs=tuple((a.name, str(v)) for a, v in zip(categorical, values, strict=True)),
        )
        for model, platform, dataset in itertools.product(
            spec.models, spec.platforms, spec.datasets
        )
        for values in itertools.product(*(a.values for a in categorical))
    )
    grid = Grid(combos, numeric)
    if grid.size > MAX_GRID_POINTS:
        raise SpecError(
            f"the grid has {grid.size:,} points (limit {MAX_GRID_POINTS:,}); coarsen the knob "
            "axes or search the space with 'elmoe-dse optimize'",
            path=path,
            field="knobs",
        )
    return grid


def numeric_chunks(
    axes: tuple[Axis, ...], chunk_points: int = CHUNK_POINTS
) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Chunks of the C-order product of numeric ``axes`` (:func:`chunk_bounds`) as flat float
    arrays (NaN = auto)."""
    for start, stop in chunk_bounds(tuple(len(a.values) for a in axes), chunk_points):
        yield start, numeric_slice(axes, start, stop)


@functools.lru_cache(maxsize=16)
def box_chunks(
    shape: tuple[int, ...], chunk_points: int = CHUNK_POINTS, box_points: int = BOX_POINTS
) -> tuple[tuple[tuple[int, int], ...], ...]:
    """Per box of :func:`grid_boxes` of the C-order grid of ``shape``, in order, its chunks as
    (first, last + 1) flat points: runs of at most ``chunk_points`` points, so no chunk crosses
    a box (a process that costs a box once serves all of its chunks, and the chunks of two
    boxes need not run in the same process)."""
    if chunk_points < 1:
        raise ValueError("chunk_points must be positive")
    out = []
    for box, first in grid_boxes(shape, box_points):
        stop = first + math.prod(hi - lo for lo, hi in box)
        out.append(
            tuple((lo, min(lo + chunk_points, stop)) for lo in range(first, stop, chunk_points))
        )
    return tuple(out)


def chunk_bounds(
    shape: tuple[int, ...], chunk_points: int = CHUNK_POINTS, box_points: int = BOX_POINTS
) -> tuple[tuple[int, int], ...]:
    """(first, last + 1) flat points of the consecutive chunks of the C-order grid of
    ``shape``: :func:`box_chunks`, box after box."""
    return tuple(c for box in box_chunks(shape, chunk_points, box_points) for c in box)


class GridSlice(dict[str, np.ndarray]):
    """The flat arrays of :func:`numeric_slice`, and where they lie in the grid: flat points
    ``start`` to ``stop`` of the C-order product of ``axes`` (so an evaluator may cost the
    slice as open-mesh boxes, :func:`grid_boxes`)."""

    def __init__(
        self, arrays: dict[str, np.ndarray], axes: tuple[Axis, ...], start: int, stop: int
    ) -> None:
        super().__init__(arrays)
        self.axes, self.start, self.stop = axes, start, stop


def numeric_slice(axes: tuple[Axis, ...], start: int, stop: int) -> GridSlice:
    """Flat points ``start`` to ``stop`` (excluded) of the C-order product of numeric ``axes``:
    one float array per axis (NaN = auto). Any slice is computed on its own, so a work unit
    (:class:`~elmoe_dse.explore.sweep.WorkUnit`) can be evaluated anywhere."""
    shape = tuple(len(a.values) for a in axes)
    whole = tuple((0, n) for n in shape)
    arrays = {}
    for name, values in box_mesh(axes, whole).items():
        arrays[name] = np.empty(stop - start)
        copy_points(arrays[name], values, shape, start, stop)
    return GridSlice(arrays, axes, start, stop)


def copy_points(dst: np.ndarray, arr: np.ndarray, shape: tuple[int, ...], lo: int, hi: int) -> None:
    """Write flat points ``lo`` to ``hi`` of ``arr`` broadcast to ``shape`` (C order) into
    ``dst``: one slice of an array of that shape, else run by run (:func:`box_pieces`), never
    materializing the broadcast."""
    if arr.size == 1:
        dst.fill(arr.reshape(()).item() if arr.dtype == object else arr.reshape(()))
    elif arr.shape == shape and arr.flags.c_contiguous:
        dst[:] = arr.reshape(-1)[lo:hi]
    else:
        full = np.broadcast_to(arr, shape)
        pos = 0
        for prefix, (a, b) in box_pieces(shape, lo, hi):
            index: tuple[Any, ...] = (*prefix, slice(a, b))
            run = full[index]
            np.copyto(dst[pos : pos + run.size].reshape(run.shape), run)
            pos += run.size


#: A box of the grid: per axis, the index range [lo, hi) it spans.
Box = tuple[tuple[int, int], ...]


@functools.lru_cache(maxsize=16)
def grid_boxes(shape: tuple[int, ...], max_points: int = BOX_POINTS) -> tuple[tuple[Box, int], ...]:
    """A fixed cover of the whole C-order grid of ``shape`` by disjoint boxes of at most
    ``max_points`` points (at least a run of the last axis), in order, each with the flat index
    of its first point. A box fixes the leading axes, spans a range of one axis and all of the
    later ones, so its own C-order points are consecutive points of the grid; the boxes a slice
    overlaps do not depend on how the grid is chunked (one box serves every chunk it overlaps,
    :func:`box_pieces` copies a chunk's share out)."""
    k = next(i for i in range(len(shape) + 1) if math.prod(shape[i:]) <= max_points)
    if k == 0:
        return ((tuple((0, n) for n in shape), 0),)
    slab = math.prod(shape[k:])
    step = max(max_points // slab, 1)
    rest = tuple((0, n) for n in shape[k:])
    out: list[tuple[Box, int]] = []
    for prefix in itertools.product(*(range(n) for n in shape[: k - 1])):
        for lo in range(0, shape[k - 1], step):
            box = (*((i, i + 1) for i in prefix), (lo, min(lo + step, shape[k - 1])), *rest)
            first = np.ravel_multi_index((*prefix, lo, *(0,) * len(rest)), shape)
            out.append((box, int(first)))
    return tuple(out)


#: A run of consecutive points of a box: its leading indices, a range of the next axis, all of
#: the later axes (:func:`box_pieces`).
Piece = tuple[tuple[int, ...], tuple[int, int]]


@functools.lru_cache(maxsize=64)
def box_pieces(shape: tuple[int, ...], lo: int, hi: int) -> tuple[Piece, ...]:
    """Flat points ``lo`` to ``hi`` (excluded) of a C-order box of ``shape`` (at least one
    axis) as a few runs, each a basic slice of the box (copied out without materializing it)."""
    if lo >= hi:
        return ()
    slab = math.prod(shape[1:])
    i0, r0 = divmod(lo, slab)
    i1, r1 = divmod(hi, slab)
    if i0 == i1:
        return tuple(((i0, *p), r) for p, r in box_pieces(shape[1:], r0, r1))
    out: list[Piece] = []
    if r0:
        out += [((i0, *p), r) for p, r in box_pieces(shape[1:], r0, slab)]
        i0 += 1
    if i1 > i0:
        out.append(((), (i0, i1)))
    if r1:
        out += [((i1, *p), r) for p, r in box_pieces(shape[1:], 0, r1)]
    return tuple(out)


def box_mesh(axes: tuple[Axis, ...], box: Box) -> dict[str, np.ndarray]:
    """The values of each axis over ``box`` as an open mesh: axis ``i`` of shape
    (1, .., hi - lo, .., 1), NaN = auto (they broadcast to the box's points in C order)."""
    ndim = len(axes)
    out = {}
    for i, (axis, (lo, hi)) in enumerate(zip(axes, box, strict=True)):
        shape = (1,) * i + (hi - lo,) + (1,) * (ndim - i - 1)
        out[axis.name] = np.asarray(axis.values, dtype=float)[lo:hi].reshape(shape)
    return out


def search_axes(spec: SweepSpec) -> dict[str, tuple[float | str, ...]]:
    """Every axis of the space with its values: scenarios first, then knobs (file order)."""
    out: dict[str, tuple[float | str, ...]] = {
        name: tuple(getattr(spec, f"{name}s")) for name in SCENARIO_AXES
    }
    out.update({name: axis.values for name, axis in spec.axes().items()})
    return out
