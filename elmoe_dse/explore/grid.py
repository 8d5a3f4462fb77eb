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


def numeric_slice(axes: tuple[Axis, ...], start: int, stop: int) -> dict[str, np.ndarray]:
    """Flat points ``start`` to ``stop`` (excluded) of the C-order product of numeric ``axes``:
    one float array per axis (NaN = auto). Any slice is computed on its own, so a work unit
    (:class:`~elmoe_dse.explore.sweep.WorkUnit`) can be evaluated anywhere."""
    shape = tuple(len(a.values) for a in axes)
    flat = np.arange(start, stop)
    index = np.unravel_index(flat, shape) if axes else ()
    return {a.name: np.asarray(a.values, dtype=float)[i] for a, i in zip(axes, index, strict=True)}


def search_axes(spec: SweepSpec) -> dict[str, tuple[float | str, ...]]:
    """Every axis of the space with its values: scenarios first, then knobs (file order)."""
    out: dict[str, tuple[float | str, ...]] = {
        name: tuple(getattr(spec, f"{name}s")) for name in SCENARIO_AXES
    }
    out.update({name: axis.values for name, axis in spec.axes().items()})
    return out
