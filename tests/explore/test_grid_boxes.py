"""Open-mesh boxes of a grid (explore.grid): the fixed cover, runs of a box, slices."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from elmoe_dse.explore.grid import box_mesh, box_pieces, copy_points, grid_boxes, numeric_slice
from elmoe_dse.specs.sweep import Axis

SHAPES = [(5, 1, 3, 7), (2, 3, 4), (7,), (1, 1, 6), (4, 5, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("max_points", [1, 5, 12, 40, 10_000])
def test_grid_boxes_tile_the_grid_in_order(shape: tuple[int, ...], max_points: int) -> None:
    total = math.prod(shape)
    covered = np.zeros(total, dtype=int)
    expected_first = 0
    for box, first in grid_boxes(shape, max_points):
        assert first == expected_first
        size = math.prod(hi - lo for lo, hi in box)
        assert size <= max(max_points, shape[-1])
        idx = np.arange(total).reshape(shape)[tuple(slice(lo, hi) for lo, hi in box)]
        # a box's own C-order points are consecutive points of the grid
        assert np.array_equal(idx.reshape(-1), np.arange(first, first + size))
        covered[idx.reshape(-1)] += 1
        expected_first = first + size
    assert (covered == 1).all()


@pytest.mark.parametrize("shape", SHAPES)
def test_box_pieces_and_copy_points_give_the_flat_points(shape: tuple[int, ...]) -> None:
    total = math.prod(shape)
    rng = np.random.default_rng(0)
    full = rng.random(shape)
    # an open-mesh array (broadcast along the first axis) and a full one
    partial = full[:1] if shape[0] > 1 else full[..., :1]
    for lo, hi in itertools.combinations(range(total + 1), 2):
        runs = box_pieces(shape, lo, hi)
        assert sum(math.prod(shape[len(p) + 1 :]) * (b - a) for p, (a, b) in runs) == hi - lo
        for arr in (full, partial, np.asarray(2.5)):
            dst = np.empty(hi - lo)
            copy_points(dst, arr, shape, lo, hi)
            assert np.array_equal(dst, np.broadcast_to(arr, shape).reshape(-1)[lo:hi])


def test_numeric_slice_is_the_c_order_product() -> None:
    axes = (
        Axis("batch_size", (1.0, 2.0, 4.0)),
        Axis("pool_experts", (float("nan"), 16.0)),
        Axis("draft_length", (1.0, 2.0, 3.0, 4.0)),
    )
    grid = list(itertools.product(*(a.values for a in axes)))
    for start, stop in [(0, 24), (5, 17), (23, 24), (0, 1)]:
        got = numeric_slice(axes, start, stop)
        for i, a in enumerate(axes):
            want = np.array([p[i] for p in grid[start:stop]])
            assert np.array_equal(got[a.name], want, equal_nan=True)
    mesh = box_mesh(axes, ((1, 3), (0, 2), (2, 3)))
    assert mesh["batch_size"].shape == (2, 1, 1) and mesh["draft_length"].shape == (1, 1, 1)
