"""The Pareto kernel and the hypervolume routine: closed forms, a brute-force reference,
invariance under shuffling, and the normalization used to compare searches."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from elmoe_dse.explore.pareto import (
    HVScale,
    hypervolume,
    hypervolume_history,
    normalized_hypervolume,
    pareto_mask,
    to_minimize,
)


def brute_force_front(values: np.ndarray) -> np.ndarray:
    """Reference: a row is optimal iff no row is <= in every column and < in one."""
    le = np.all(values[:, None, :] <= values[None, :, :], axis=2)  # [j, i]: j <= i
    lt = np.any(values[:, None, :] < values[None, :, :], axis=2)
    return ~np.any(le & lt, axis=0)


@pytest.mark.parametrize("m", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [1, 2, 17, 300])
def test_mask_equals_brute_force_with_ties(m: int, n: int) -> None:
    rng = np.random.default_rng(42 + n * m)
    values = rng.integers(0, 6, size=(n, m)).astype(float)  # many ties and duplicates
    np.testing.assert_array_equal(pareto_mask(values), brute_force_front(values))


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 40), st.integers(2, 4)), elements=st.integers(0, 4))
)
def test_mask_property_matches_reference_and_ignores_row_order(values: np.ndarray) -> None:
    mask = pareto_mask(values)
    np.testing.assert_array_equal(mask, brute_force_front(values))
    perm = np.random.default_rng(0).permutation(len(values))
    np.testing.assert_array_equal(pareto_mask(values[perm]), mask[perm])


def test_identical_points_are_all_optimal_and_nan_rows_never() -> None:
    values = np.array([[1.0, 1.0], [1.0, 1.0], [2.0, 0.0], [np.nan, -5.0], [2.0, 2.0]])
    np.testing.assert_array_equal(pareto_mask(values), [True, True, True, False, False])


def test_maximized_objectives_are_negated_once() -> None:
    # throughput (max), energy (min): (10, 1) dominates (5, 2); (20, 3) trades off.
    raw = np.array([[10.0, 1.0], [5.0, 2.0], [20.0, 3.0]])
    np.testing.assert_array_equal(pareto_mask(to_minimize(raw, [-1.0, 1.0])), [True, False, True])


@pytest.mark.parametrize("n", [1, 3, 10])
def test_staircase_hypervolume_closed_form(n: int) -> None:
    # Points (i, n - i) for i = 1..n with reference (n + 1, n + 1): area = n(n + 1) / 2.
    i = np.arange(1, n + 1, dtype=float)
    pts = np.column_stack([i, n + 1 - i])
    ref = np.array([n + 1.0, n + 1.0])
    assert hypervolume(pts, ref) == pytest.approx(n * (n + 1) / 2)


def test_hypervolume_ignores_dominated_points_order_and_points_beyond_the_reference() -> None:
    rng = np.random.default_rng(7)
    pts = rng.random((60, 3))
    ref = np.full(3, 1.0)
    hv = hypervolume(pts, ref)
    front = pts[pareto_mask(pts)]
    assert hypervolume(front, ref) == pytest.approx(hv)
    assert hypervolume(pts[::-1], ref) == pytest.approx(hv)
    beyond = np.vstack([pts, [[0.5, 0.5, 2.0]]])
    assert hypervolume(beyond, ref) == pytest.approx(hv)
    assert hypervolume(np.empty((0, 3)), ref) == 0.0
    with pytest.raises(ValueError):
        hypervolume(pts, [np.nan, 1.0, 1.0])


def test_single_box_volume() -> None:
    assert hypervolume([[0.0, 0.0, 0.0]], [2.0, 3.0, 4.0]) == pytest.approx(24.0)


def test_normalized_hypervolume_of_the_reference_front_and_of_a_subset() -> None:
    front = np.array([[0.0, 10.0], [5.0, 5.0], [10.0, 0.0]])
    scale = HVScale.of_front(front)
    assert scale.ideal == (0.0, 0.0) and scale.nadir == (10.0, 10.0)
    full = normalized_hypervolume(front, scale)
    # Normalized points (0, 1), (.5, .5), (1, 0), reference (1.1, 1.1), swept along the first
    # objective: 0.5 x 0.1 + 0.5 x 0.6 + 0.1 x 1.1 = 0.46.
    assert full == pytest.approx(0.46)
    assert normalized_hypervolume(front[:2], scale) < full
    assert normalized_hypervolume(front * 2.0 + 100.0, HVScale.of_front(front * 2.0 + 100.0)) == (
        pytest.approx(full)
    )


def test_hypervolume_history_is_monotone_and_ends_at_the_total() -> None:
    rng = np.random.default_rng(3)
    pts = rng.random((50, 2))
    pts[5] = np.nan  # a rejected trial keeps the previous value
    scale = HVScale.of_front(pts[~np.isnan(pts).any(axis=1)])
    history = hypervolume_history(pts, scale)
    assert np.all(np.diff(history) >= -1e-12)
    assert history[5] == history[4]
    finite = pts[~np.isnan(pts).any(axis=1)]
    assert history[-1] == pytest.approx(normalized_hypervolume(finite, scale))


def test_a_one_point_front_scales_by_its_own_magnitude() -> None:
    scale = HVScale.of_front(np.array([[-200.0, 0.05]]))
    assert normalized_hypervolume(np.array([[-200.0, 0.05]]), scale) == pytest.approx(1.1 * 1.1)
    # Span = 10 % of the value: 5 % less throughput maps to 0.5, 25 % less is beyond 1.1.
    assert normalized_hypervolume(np.array([[-190.0, 0.05]]), scale) == pytest.approx(0.6 * 1.1)
    assert normalized_hypervolume(np.array([[-150.0, 0.05]]), scale) == 0.0
