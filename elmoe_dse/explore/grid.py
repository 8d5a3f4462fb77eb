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

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from elmoe_dse.errors import SpecError
from elmoe_dse.specs.sweep import SCENARIO_AXES, Axis, SweepSpec

#: Points per evaluator call: bounds the memory of one call to tens of MB.
CHUNK_POINTS = 1 << 14
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
        """(first flat index, {knob: values}) of consecutive chunks of the numeric product."""
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
    """Chunks of the C-order product of numeric ``axes`` as flat float arrays (NaN = auto)."""
    if chunk_points < 1:
        raise ValueError("chunk_points must be positive")
    total = math.prod(len(a.values) for a in axes)
    for start in range(0, total, chunk_points):
        yield start, numeric_slice(axes, start, min(start + chunk_points, total))


class GridSlice(dict[str, np.ndarray]):
    """The flat arrays of :func:`numeric_slice`, and where they lie in the grid: flat points
    ``start`` to ``stop`` of the C-order product of ``axes`` (so an evaluator may cost the
    slice as open-mesh boxes, :func:`boxes`)."""

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
    flat = np.arange(start, stop)
    index = np.unravel_index(flat, shape) if axes else ()
    arrays = {
        a.name: np.asarray(a.values, dtype=float)[i] for a, i in zip(axes, index, strict=True)
    }
    return GridSlice(arrays, axes, start, stop)


#: A box of the grid: per axis, the index range [lo, hi) it spans.
Box = tuple[tuple[int, int], ...]
#: What one more box costs, in points (an evaluator call's fixed work): :func:`boxes` covers a
#: slice with fewer, larger boxes where splitting would save fewer points than this.
BOX_OVERHEAD_POINTS = 16384


def boxes(
    shape: tuple[int, ...], start: int, stop: int, overhead: int = BOX_OVERHEAD_POINTS
) -> list[tuple[Box, int]]:
    """Boxes covering flat points ``start`` to ``stop`` of a C-order grid of ``shape``, in order,
    each with the flat index of its first point. A box fixes the leading axes, spans a range of
    one axis and all of the later ones, so its own C-order points are consecutive points of the
    grid; the cover minimizes the points costed plus ``overhead`` per box (a box may hold points
    outside the slice: drop them)."""
    cover = _cover(shape, start, stop, overhead)[1]
    out = []
    for box in cover:
        first = tuple(lo for lo, _ in box)
        out.append((box, int(np.ravel_multi_index(first, shape)) if shape else 0))
    return out


def _cover(shape: tuple[int, ...], lo: int, hi: int, overhead: int) -> tuple[int, list[Box]]:
    """(cost, boxes) of the cheapest cover of flat points [lo, hi) of ``shape`` (lo < hi)."""
    if not shape:
        return 1 + overhead, [()]
    slab = math.prod(shape[1:])
    i0, i1 = lo // slab, (hi - 1) // slab
    rest = tuple((0, n) for n in shape[1:])
    if i0 == i1:
        cost, inner = _cover(shape[1:], lo - i0 * slab, hi - i0 * slab, overhead)
        return cost, [((i0, i0 + 1), *box) for box in inner]
    whole = ((i1 - i0 + 1) * slab + overhead, [((i0, i1 + 1), *rest)])
    head_lo = i0 if lo == i0 * slab else i0 + 1
    tail_hi = i1 + 1 if hi == (i1 + 1) * slab else i1
    cost, parts = 0, list[Box]()
    if head_lo > i0:
        c, b = _cover(shape, lo, (i0 + 1) * slab, overhead)
        cost, parts = cost + c, parts + b
    if tail_hi > head_lo:
        cost, parts = (
            cost + (tail_hi - head_lo) * slab + overhead,
            [*parts, ((head_lo, tail_hi), *rest)],
        )
    if tail_hi <= i1:
        c, b = _cover(shape, i1 * slab, hi, overhead)
        cost, parts = cost + c, parts + b
    return min(whole, (cost, parts), key=lambda x: x[0])


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
