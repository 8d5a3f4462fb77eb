"""The one Pareto kernel and the one hypervolume routine; everything here minimizes.

Maximized objectives are negated once, at the boundary (:func:`to_minimize`), so every other
function sees loss values where smaller is better in every column.

- :func:`pareto_mask`: ``x`` is Pareto-optimal iff no other point ``y`` has ``y <= x`` in every
  objective and ``y < x`` in at least one. Identical points are all optimal (neither dominates).
  Two objectives: one sort and a running minimum, O(n log n). More: distinct points in
  lexicographic order can only be dominated by earlier ones; blocks of them are compared with the
  front found so far, O(n x front).
- :func:`hypervolume`: the Lebesgue measure of the region dominated by the points and bounded by
  a reference point, computed by Optuna's exact routine (``optuna._hypervolume``: a 2-D sweep,
  WFG above). Points not strictly better than the reference in every objective add nothing.
- :class:`HVScale` and :func:`normalized_hypervolume`: objectives in different units are mapped
  affinely so that a reference front's ideal point is 0 and its nadir is 1 in every objective; the
  reference point is then ``1 + margin`` (default 1.1) in every objective. Two fronts compared
  with the same scale and margin give a meaningful hypervolume ratio.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Reference point of the normalized hypervolume, per objective (nadir = 1).
REFERENCE_MARGIN = 0.1


def to_minimize(values: np.ndarray, signs: Sequence[float]) -> np.ndarray:
    """Loss values: column ``j`` times ``signs[j]`` (+1 minimize, -1 maximize); shape (n, m)."""
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2 or arr.shape[1] != len(signs):
        raise ValueError(f"values must have shape (n, {len(signs)}); got {arr.shape}")
    return arr * np.asarray(signs, dtype=float)


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean mask of the Pareto-optimal rows of ``values`` (n, m), every column minimized.

    Rows with NaN are never optimal and never dominate. ``-inf``/``+inf`` compare as numbers.
    """
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 2:
        raise ValueError(f"values must be 2-D (points x objectives); got shape {arr.shape}")
    n, m = arr.shape
    mask = np.zeros(n, dtype=bool)
    valid = ~np.isnan(arr).any(axis=1)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return mask
    pts = arr[idx]
    if m == 1:
        mask[idx[pts[:, 0] == pts[:, 0].min()]] = True
        return mask
    if m == 2:
        mask[idx[_pareto_2d(pts)]] = True
        return mask
    mask[idx[_pareto_nd(pts)]] = True
    return mask


def _pareto_2d(pts: np.ndarray) -> np.ndarray:
    """2-D front: sort by (f0, f1); a point is optimal iff its f1 is the least of its f0 tie group
    and strictly below every f1 seen at a smaller f0."""
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    f0, f1 = pts[order, 0], pts[order, 1]
    first = np.ones(f0.size, dtype=bool)
    first[1:] = f0[1:] != f0[:-1]
    group = np.cumsum(first) - 1
    group_min = f1[first]  # sorted by f1 within a group: the first is the least
    best_before = np.concatenate(([np.inf], np.minimum.accumulate(group_min)[:-1]))
    optimal = (f1 == group_min[group]) & (group_min[group] < best_before[group])
    out = np.zeros(f0.size, dtype=bool)
    out[order] = optimal
    return out


def _pareto_nd(pts: np.ndarray, work: int = 1 << 22) -> np.ndarray:
    """Front of m >= 3 objectives. Identical points share one verdict, so work on the distinct
    points in lexicographic order (:func:`_distinct_rows`): a point can then only be dominated
    by an earlier one, and an earlier point dominates it iff it is no worse in every objective
    (being distinct, it is better in one). Blocks of points are checked against the front found
    so far, then the survivors against each other, each in vectorized comparisons of at most
    ``work`` pairs (a point dominated by a dominated point is dominated by the front too)."""
    uniq, inverse = _distinct_rows(pts)
    front = np.empty((0, uniq.shape[1]))
    optimal = np.zeros(len(uniq), dtype=bool)
    start = 0
    while start < len(uniq):
        cand = uniq[start : start + max(1, min(256, work // max(len(front), 1)))]
        alive = ~_covered(front, cand, work)
        survivors = np.flatnonzero(alive)
        if survivors.size > 1:
            alive[survivors[_covered(cand[survivors], cand[survivors], work, skip_self=True)]] = (
                False
            )
        optimal[start : start + len(cand)] = alive
        front = np.vstack([front, cand[alive]])
        start += len(cand)
    return optimal[inverse]


def _distinct_rows(pts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``pts`` (n, m) in lexicographic order and, per row, its index among
    them: ``np.unique(pts, axis=0, return_inverse=True)`` by one lexsort."""
    order = np.lexsort(pts.T[::-1])
    ranked = pts[order]
    first = np.ones(len(ranked), dtype=bool)
    first[1:] = np.any(ranked[1:] != ranked[:-1], axis=1)
    inverse = np.empty(len(ranked), dtype=np.intp)
    inverse[order] = np.cumsum(first) - 1
    return ranked[first], inverse


def _covered(
    front: np.ndarray, cand: np.ndarray, work: int, *, skip_self: bool = False
) -> np.ndarray:
    """For each row of ``cand``, whether some row of ``front`` is no worse in every column
    (other than itself, with ``skip_self``: ``front`` is ``cand``), in slices of ``work`` pairs."""
    out = np.zeros(len(cand), dtype=bool)
    if not len(front):
        return out
    step = max(1, work // len(front))
    for lo in range(0, len(cand), step):
        part = cand[lo : lo + step]
        le = front[None, :, 0] <= part[:, None, 0]
        for j in range(1, front.shape[1]):
            le &= front[None, :, j] <= part[:, None, j]
        if skip_self:
            rows = np.arange(le.shape[0])
            le[rows, lo + rows] = False
        out[lo : lo + step] = le.any(axis=1)
    return out


def hypervolume(values: np.ndarray, reference: Sequence[float] | np.ndarray) -> float:
    """Hypervolume of loss values (n, m) w.r.t. ``reference`` (m,), every column minimized."""
    arr = np.asarray(values, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if ref.ndim != 1 or not np.all(np.isfinite(ref)):
        raise ValueError(f"reference must be a finite 1-D point; got {ref!r}")
    if arr.size == 0:
        return 0.0
    if arr.ndim != 2 or arr.shape[1] != ref.size:
        raise ValueError(f"values must have shape (n, {ref.size}); got {arr.shape}")
    arr = arr[~np.isnan(arr).any(axis=1)]
    arr = arr[np.all(arr < ref, axis=1)]
    if arr.size == 0:
        return 0.0
    if np.isinf(arr).any():
        return float("inf")
    arr = arr[pareto_mask(arr)]
    from optuna._hypervolume import compute_hypervolume

    return float(compute_hypervolume(arr, ref, assume_pareto=True))


@dataclass(frozen=True)
class HVScale:
    """Affine map of loss values to a common scale: ``(v - ideal) / (nadir - ideal)``.

    Where a front does not spread in an objective (nadir == ideal, e.g. a one-point front) the
    span is ``margin x |ideal|`` (``margin`` at 0), so the reference point lies (1 + margin) x
    margin = 11 % beyond the best value.
    """

    ideal: tuple[float, ...]
    nadir: tuple[float, ...]
    margin: float = REFERENCE_MARGIN

    @classmethod
    def of_front(cls, values: np.ndarray, *, margin: float = REFERENCE_MARGIN) -> HVScale:
        """The scale of the Pareto front of loss values (n, m): its ideal and nadir points."""
        arr = np.asarray(values, dtype=float)
        arr = arr[np.all(np.isfinite(arr), axis=1)]
        if arr.size == 0:
            raise ValueError("no finite points to scale by")
        front = arr[pareto_mask(arr)]
        return cls(tuple(front.min(axis=0).tolist()), tuple(front.max(axis=0).tolist()), margin)

    def apply(self, values: np.ndarray) -> np.ndarray:
        ideal, nadir = np.asarray(self.ideal), np.asarray(self.nadir)
        flat = self.margin * np.where(ideal != 0.0, np.abs(ideal), 1.0)
        span = np.where(nadir > ideal, nadir - ideal, flat)
        return (np.asarray(values, dtype=float) - ideal) / span

    @property
    def reference(self) -> np.ndarray:
        return np.full(len(self.ideal), 1.0 + self.margin)


def normalized_hypervolume(values: np.ndarray, scale: HVScale) -> float:
    """Hypervolume of loss values (n, m) after :meth:`HVScale.apply`, reference 1 + margin."""
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return 0.0
    return hypervolume(scale.apply(arr), scale.reference)


def hypervolume_history(values: np.ndarray, scale: HVScale) -> np.ndarray:
    """Normalized hypervolume of the first ``i + 1`` rows of ``values``, for every ``i``.

    Recomputed only where a row enters the running front, so n rows cost one hypervolume per
    front change.
    """
    arr = scale.apply(np.asarray(values, dtype=float))
    out = np.zeros(len(arr))
    ref = scale.reference
    front = np.empty((0, arr.shape[1] if arr.ndim == 2 else 0))
    current = 0.0
    for i, row in enumerate(arr):
        if np.all(np.isfinite(row)) and np.all(row < ref):
            dominated = bool(
                front.size and np.any(np.all(front <= row, axis=1) & np.any(front < row, axis=1))
            )
            if not dominated:
                front = np.vstack([front, row])
                front = front[pareto_mask(front)]
                current = hypervolume(front, ref)
        out[i] = current
    return out
