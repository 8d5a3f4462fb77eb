"""One correlated routing process for every mechanism: union, LRU, hot pool and its refresh.

Process (docs/model.md §5). For one MoE layer, each sequence routes its tokens in order. The
first token draws k distinct experts with inclusion probabilities p (systematic sampling,
:mod:`elmoe_dse.routing`). Every later token keeps each of the previous token's experts with
probability rho, independently, and draws the k - K experts still missing without replacement
among the experts not kept, with inclusion probabilities proportional to p, scaled to sum
k - K and capped at 1 (:func:`routing.cap_and_redistribute`). At rho = 0 every token's
marginals are exactly p. Sequences of a batch are independent.

**Two-state chain per expert** (the closed forms below). For expert i and one sequence, the
indicator X_t = [i chosen by token t] is modelled as a Markov chain with

    P(X_{t+1} = 1 | X_t = 0) = g_i,     P(X_{t+1} = 1 | X_t = 1) = rho + (1 - rho) g_i,

g_i = min(1, lam p_i) the inclusion probability of a fresh draw (the same scaling lam for every
expert: the draw is proportional to p among those not kept), and stationary marginal
pi_i = g_i / (1 - rho + rho g_i). lam solves sum_i pi_i = k (every token has k experts); lam = 1
and pi = g = p at rho = 0. The chain's lag-1 autocorrelation is lam_1 = rho (1 - g_i). At rho > 0
the stationary marginals are a little flatter than p (a kept expert is not re-drawn, so the
draw's scaling lam > 1 spreads mass into the tail); :func:`chain_marginals` gives them and tests
check them against the sampler.

**Union.** A sequence contributing T tokens (a chain, or a tree whose T - 1 nodes hang on
chains from the root, see :func:`correlated_unique`) leaves expert i untouched with probability
(1 - pi_i)(1 - g_i)^(T-1); B independent sequences: U = sum_i [1 - ((1 - pi_i)(1 - g_i)^(T-1))^B].
rho = 0 gives routing.unique_experts(p, B T).

**LRU** (:func:`lru_resident_frac`). A per-layer LRU of C experts; one pass per decode step
touches the union of the B sequences' T tokens and looks them up against the cache as it stood
before the pass (an LRU holds exactly the C most recently used experts). Che's characteristic
window, counted in passes: expert i is resident iff touched in the last tau passes, where tau
solves sum_i [1 - S_i(tau)] = C and S_i(n) = P(i absent from n consecutive passes)
= A_i R_i^n (n >= 1; S(0) = 1) with A_i = ((1 - pi_i) / (1 - g_i))^B, R_i = (1 - g_i)^(B T);
between integers S is linear (the oldest pass counted by a random share of its experts). The
resident share of a pass is sum_i [u_i - (S_i(tau) - S_i(tau + 1))] / sum_i u_i with
u_i = 1 - S_i(1). At rho = 0 A_i R_i^n = (1 - p_i)^(B T n): Che's pass-level approximation
(cache.lru_unique_hit_frac) is the special case.

**Window hot pool** (:func:`window_pool`). ELMoE-3D's pool is the top-C experts by routing
counts over the previous window of W tokens per sequence (B W routings), not the stationary
popularity. The count c_i of expert i is approximated as Gaussian with the chain's mean B W pi_i
and variance B pi_i (1 - pi_i) [W (1 + l) / (1 - l) - 2 l (1 - l^W) / (1 - l)^2], l = lam_1,
plus a uniform tie-breaking jitter (mean 1/2, variance 1/12). Selection is a threshold theta on
the jittered counts with sum_i P(c_i > theta) = C (Che's idea applied to the pool size). The
routing mass a selected pool serves over the next W tokens adds the window-to-future covariance:
P(i selected and used) = pi_i s_i + kappa_i phi(z_i) / sigma_i, with s_i = Phi(-z_i),
z_i = (theta - mu_i) / sigma_i and kappa_i = pi_i (1 - pi_i) l (1 - l^W)^2 / (W (1 - l)^2)
(Gaussian regression). Experts that change per refresh: sum_i P(c'_i > theta, c_i <= theta)
for two consecutive windows with correlation Cov(c, c') / Var(c), Cov = B pi (1 - pi)
l (1 - l^W)^2 / (1 - l)^2 (bivariate normal by Gauss-Legendre quadrature).

**Locality loss as the batch grows** (:func:`batch_overlap`): the paper's simulator calibrates
its LRU "per model and dataset ... for the loss of locality as the batch grows" (ELMoE-3D, arXiv
2604.14626). Stated term: the process's rho at batch B is rho_B = rho / (1 + (B - 1) / B_loc),
B_loc = the dataset profile's ``batch_locality_scale`` (inf = no loss). The evaluator passes
rho_B to every mechanism alike (union, LRU, hot pool, refresh), whatever the platform.

References: H. Che, Y. Tung, Z. Wang, IEEE JSAC 20(7), 2002; C. Fricker, P. Robert, J. Roberts,
arXiv:1202.3974, 2012 (characteristic time); W. G. Madow, Ann. Math. Statist. 20(3), 1949
(systematic sampling).

Vectorization: rho, B, T, C and W may be scalars or arrays that broadcast; each closed form is
evaluated once per distinct tuple, over the distinct levels of p, and returns float64 arrays of
the broadcast shape. p may also be S draws' routings, an (S, E) matrix: the knobs' first axis is
then the sample axis (of length S, or 1), every row is solved on its own draw's levels (draws
with the same number of levels in one call) and gives the numbers of that draw alone. The
samplers and simulators (``sample_*``, ``simulate_*``) are exact Monte-Carlo references for
tests and the benchmark script.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from elmoe_dse.cache import solve_saturating
from elmoe_dse.errors import KnobError
from elmoe_dse.routing import (
    FloatArray,
    IntArray,
    as_knob,
    cap_and_redistribute,
    check_probabilities,
    distinct_points,
    integer_k,
    probability_levels,
    row_dot,
)

__all__ = [
    "PoolStats",
    "batch_overlap",
    "chain_marginals",
    "correlated_unique",
    "lru_resident_frac",
    "sample_correlated_routing",
    "simulate_correlated_lru",
    "simulate_window_pool",
    "window_pool",
]

#: Root solves (:func:`_root_increasing`): iteration cap and the chain's tolerance on
#: sum_i pi_i = k (relative to k).
_ROOT_MAX_ITER = 200
_CHAIN_TOL = 1e-14
#: Half-width (in ln scale) of the chain's bracket around the previous fixed-point iterate.
_CHAIN_WARM = 0.02
#: ... and the pool threshold's, on the pool size in experts.
_POOL_TOL = 1e-14


# ----------------------------------------------------------------------------------------------
# Locality loss and the per-expert chain
# ----------------------------------------------------------------------------------------------


def batch_overlap(
    overlap_frac: npt.ArrayLike, sequences: npt.ArrayLike, batch_locality_scale: npt.ArrayLike
) -> FloatArray:
    """rho_B = rho / (1 + (B - 1) / B_loc): the process's reuse at batch B (module docstring).

    Args:
        overlap_frac: rho in [0, 1] at B = 1 (the dataset profile's ``overlap_frac``).
        sequences: B >= 1.
        batch_locality_scale: B_loc > 0, batch size at which the reuse halves (inf: no loss).
    """
    rho = as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0)
    b = as_knob(sequences, "sequences", minimum=0.0)
    scale = as_knob(
        batch_locality_scale,
        "batch_locality_scale",
        minimum=0.0,
        strict_minimum=True,
        allow_inf=True,
    )
    return np.asarray(rho / (1.0 + np.maximum(b - 1.0, 0.0) / scale), dtype=np.float64)


def _levels(p: npt.ArrayLike) -> tuple[FloatArray, FloatArray, int]:
    probs = check_probabilities(p)
    k = integer_k(probs)
    values, counts = probability_levels(probs)
    keep = values > 0.0
    return values[keep], counts[keep], k


def _dot(rows: FloatArray, weights: FloatArray) -> FloatArray:
    """:func:`row_dot` with the level counts shared (L,) or one row per row (rows, L): the
    same sum per row either way (einsum's per-row sum does not depend on the layout)."""
    if weights.ndim == 1:
        return row_dot(rows, weights)
    return np.einsum("ij,ij->i", rows, weights)


def _at(weights: FloatArray, rows: IntArray) -> FloatArray:
    """The counts of ``rows`` (all of them when shared)."""
    return weights if weights.ndim == 1 else weights[rows]


@dataclass(frozen=True)
class _Levels:
    """The routing levels a closed form runs on: ``values`` and ``counts`` (L,) of one routing
    (``draw`` None), or (G, L) of G draws with ``draw`` (the draw of every grid point) an int
    array of the knobs' shape; k experts per token."""

    values: FloatArray
    counts: FloatArray
    k: int
    draw: IntArray | None = None


#: A closed form over routing levels: (levels, *knobs) -> array of the knobs' broadcast shape
#: (and any axes it adds after it).
_Core = Callable[..., FloatArray]


def _on_levels(core: _Core, p: npt.ArrayLike, *knobs: FloatArray) -> FloatArray:
    """``core`` on the levels of ``p``: one routing (E,), or S draws' routings (S, E), the knobs'
    first axis then being the sample axis (of length S, or 1 where the same for every draw).
    Draws are solved together, those with the same number of levels in one call, each row on
    its own draw's levels (the same numbers as alone)."""
    arr = np.asarray(p, dtype=np.float64)
    if arr.ndim != 2:
        return core(_Levels(*_levels(arr)), *knobs)
    n = arr.shape[0]
    shape = np.broadcast_shapes(*(np.shape(x) for x in knobs))
    if not shape or shape[0] not in (1, n):
        raise KnobError(f"{n} draws of routing need knobs with a leading sample axis of {n}")
    shape = (n, *shape[1:])
    full = [np.broadcast_to(x, shape) for x in knobs]
    levels = [_levels(row) for row in arr]
    out: FloatArray | None = None
    groups: dict[tuple[int, int], list[int]] = {}
    for s, (values, _, k) in enumerate(levels):
        groups.setdefault((values.size, k), []).append(s)
    for (_, k), idx in groups.items():
        values = np.stack([levels[s][0] for s in idx])
        counts = np.stack([levels[s][1] for s in idx])
        draw = np.broadcast_to(
            np.arange(len(idx)).reshape((-1,) + (1,) * (len(shape) - 1)), (len(idx), *shape[1:])
        )
        part = core(_Levels(values, counts, k, draw), *(x[idx] for x in full))
        if out is None:  # the knobs' shape, and any axes the core adds after it
            out = np.empty((n, *part.shape[1:]), dtype=np.float64)
        out[idx] = part
    assert out is not None
    return out


def _draw_points(
    lv: _Levels, *knobs: FloatArray
) -> tuple[tuple[int, ...], _Levels, list[FloatArray], IntArray]:
    """:func:`distinct_points` of the knobs, and the levels of each distinct point (with its
    draw; shared levels for one routing)."""
    if lv.draw is None:
        shape, points, inverse = distinct_points(*knobs)
        return shape, lv, points, inverse
    shape, (d, *points), inverse = distinct_points(np.asarray(lv.draw, dtype=np.float64), *knobs)
    rows = d.astype(np.int64)
    return shape, _Levels(lv.values[rows], lv.counts[rows], lv.k, rows), points, inverse


@functools.lru_cache(maxsize=64)
def _log_choose(n: int) -> FloatArray:
    """ln C(n, j), j = 0..n (read-only)."""
    out = np.array(
        [math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(n + 1)]
    )
    out.flags.writeable = False
    return out


def _binomial_weights(n: int, rho: FloatArray) -> FloatArray:
    """P(K = j), j = 0..n, for K ~ Binomial(n, rho), rows of ``rho``: shape (rows, n + 1)."""
    j = np.arange(n + 1, dtype=np.float64)
    log_choose = _log_choose(n)
    r = np.clip(rho, 1e-300, 1.0 - 1e-16)[:, None]
    w = np.exp(log_choose + j * np.log(r) + (n - j) * np.log1p(-r))
    w[rho <= 0.0] = np.eye(1, n + 1)[0]
    w[rho >= 1.0] = np.eye(1, n + 1, n)[0]
    return w


def _kept_scaling(values: FloatArray, k: int, n_kept: int, mean_kept: FloatArray) -> FloatArray:
    """(k - K) / (k - K m) v per row, level and K = 0..n_kept: (rows, L, n_kept + 1)."""
    kk = np.arange(n_kept + 1, dtype=np.float64)
    lam = (k - kk) / np.maximum(k - kk * mean_kept[:, None], 1e-12)  # (rows, n + 1)
    per_level = values[None, :, None] if values.ndim == 1 else values[:, :, None]
    return lam[:, None, :] * per_level


def _fresh(scaled: FloatArray, weights: FloatArray, scale: FloatArray) -> FloatArray:
    """E_K[min(1, s (k - K) / (k - K m) v)] over K ~ Binomial(n_kept, rho): (rows, L), from
    :func:`_kept_scaling` and :func:`_binomial_weights` (both fixed while s is solved for)."""
    q = np.minimum(1.0, scale[:, None, None] * scaled)
    return np.einsum("rlj,rj->rl", q, weights)


def _root_increasing(
    f: Callable[[FloatArray, IntArray], FloatArray],
    lo: FloatArray,
    hi: FloatArray,
    tol: float,
    guess: FloatArray | None = None,
    width: float = 0.0,
) -> FloatArray:
    """x in [lo, hi] with f(x, rows) = 0 per row, f increasing (vectorized Illinois false
    position; ``f`` evaluates the rows ``rows`` at ``x``, one value each).

    A row whose f does not change sign returns the end nearer the root (lo if f(lo) >= 0, hi if
    f(hi) < 0), as a bisection would. A row stops when |f| <= tol or its bracket is narrower than
    1e-15 of its scale; superlinear, about a dozen evaluations instead of bisection's 40-80.
    With ``guess``, the bracket [guess - width, guess + width] is tried first (rows where it does
    not bracket the root fall back to [lo, hi]).
    """
    every = np.arange(lo.size)
    if guess is None:
        f_lo, f_hi = f(lo, every), f(hi, every)
    else:
        full_lo, full_hi = lo, hi
        lo, hi = np.maximum(lo, guess - width), np.minimum(hi, guess + width)
        f_lo, f_hi = f(lo, every), f(hi, every)
        bad = np.flatnonzero(~((f_lo < 0.0) & (f_hi >= 0.0)))
        if bad.size:
            lo[bad], hi[bad] = full_lo[bad], full_hi[bad]
            f_lo[bad], f_hi[bad] = f(lo[bad], bad), f(hi[bad], bad)
    x = np.where(f_lo >= 0.0, lo, hi).astype(np.float64)
    todo = np.flatnonzero((f_lo < 0.0) & (f_hi >= 0.0))
    a, b, fa, fb = lo[todo], hi[todo], f_lo[todo], f_hi[todo]
    side = np.zeros(todo.size, dtype=np.int8)
    for _ in range(_ROOT_MAX_ITER):
        if todo.size == 0:
            break
        with np.errstate(invalid="ignore", divide="ignore"):
            c = (a * fb - b * fa) / (fb - fa)
        c = np.where(np.isfinite(c) & (c > a) & (c < b), c, 0.5 * (a + b))
        value = f(c, todo)
        below = value < 0.0
        a, fa = np.where(below, c, a), np.where(below, value, fa)
        b, fb = np.where(below, b, c), np.where(below, fb, value)
        # Illinois: halve the stale end's value when the same end is kept twice in a row
        fb = np.where(below & (side == 1), 0.5 * fb, fb)
        fa = np.where(~below & (side == -1), 0.5 * fa, fa)
        side = np.where(below, 1, -1).astype(np.int8)
        x[todo] = c
        keep = (np.abs(value) > tol) & (b - a > 1e-15 * np.maximum(np.abs(b), 1.0))
        todo, a, b, fa, fb, side = todo[keep], a[keep], b[keep], fa[keep], fb[keep], side[keep]
    return x


@dataclass(frozen=True)
class _Chain:
    """Two-state chain per level, (rows, L): stationary pi, fresh-draw g0 (expert not chosen by
    the previous token) and lag-1 autocorrelation lag = rho + (1 - rho) g1 - g0."""

    pi: FloatArray
    g0: FloatArray
    lag: FloatArray


#: Memo of :func:`_chain` by its inputs' bytes: the same routing levels and reuse recur across
#: the systems, policies and passes of one evaluation (a pure function of its arguments).
_CHAIN_MEMO: dict[tuple[object, ...], _Chain] = {}
_CHAIN_MEMO_SIZE = 512


def _chain(values: FloatArray, counts: FloatArray, k: int, rho: FloatArray) -> _Chain:
    """The chain of every level at every rho (module docstring), memoized; each distinct rho is
    solved once (rows are independent, so repeated rows get the same numbers). ``values`` and
    ``counts`` are (L,), or (rows, L): a routing per row (:func:`_on_levels`)."""
    if values.ndim == 2:
        return _chain_rows(values, counts, k, rho)
    levels, back = np.unique(rho, return_inverse=True)
    key = (values.tobytes(), counts.tobytes(), k, levels.tobytes())
    hit = _CHAIN_MEMO.get(key)
    if hit is None:
        if len(_CHAIN_MEMO) >= _CHAIN_MEMO_SIZE:
            _CHAIN_MEMO.clear()
        hit = _CHAIN_MEMO[key] = _solve_chain(values, counts, k, levels)
    if levels.size == rho.size and np.array_equal(levels, rho):
        return hit
    back = back.reshape(-1)
    return _Chain(hit.pi[back], hit.g0[back], hit.lag[back])


def _chain_rows(values: FloatArray, counts: FloatArray, k: int, rho: FloatArray) -> _Chain:
    """:func:`_chain` with a routing per row: each distinct (routing, rho) solved once."""
    table = np.column_stack([values, counts, rho])
    uniq, first, back = np.unique(table, axis=0, return_index=True, return_inverse=True)
    key = (uniq.tobytes(), k, values.shape[1])
    hit = _CHAIN_MEMO.get(key)
    if hit is None:
        if len(_CHAIN_MEMO) >= _CHAIN_MEMO_SIZE:
            _CHAIN_MEMO.clear()
        hit = _CHAIN_MEMO[key] = _solve_chain(values[first], counts[first], k, rho[first])
    back = back.reshape(-1)
    return _Chain(hit.pi[back], hit.g0[back], hit.lag[back])


def _solve_chain(values: FloatArray, counts: FloatArray, k: int, rho: FloatArray) -> _Chain:
    """The chain of every level at every rho (module docstring); ``values`` and ``counts``
    (L,), or (rows, L) with a routing per row."""
    r = rho[:, None]
    if values.ndim == 1:
        mean_kept = np.full(rho.size, float(values**2 @ counts) / k)
        top = np.full(rho.size, -np.log(values.min()) + np.log(2.0))
    else:  # each row as alone
        mean_kept = np.array([float(v**2 @ c) / k for v, c in zip(values, counts, strict=True)])
        top = np.array([-np.log(v.min()) + np.log(2.0) for v in values])
    w0, w1 = _binomial_weights(k, rho), _binomial_weights(k - 1, rho)
    goal = float(k)
    every = np.arange(rho.size)

    def solve(
        scale: FloatArray, rows: IntArray, s0: FloatArray, s1: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        if rows.size < rho.size:  # the rows still being solved (a copy)
            s0, s1 = s0[rows], s1[rows]
            a0, a1, rr = w0[rows], w1[rows], r[rows]
        else:
            a0, a1, rr = w0, w1, r
        g0 = _fresh(s0, a0, scale)
        g1 = _fresh(s1, a1, scale)
        stay = rr + (1.0 - rr) * g1
        return g0 / np.maximum(1.0 - stay + g0, 1e-300), g0, g1

    root: FloatArray | None = None
    for _ in range(3):  # mean p of a kept expert depends on pi: fixed point
        s0 = _kept_scaling(values, k, k, mean_kept)
        s1 = _kept_scaling(values, k, k - 1, mean_kept)

        def excess(
            x: FloatArray, rows: IntArray, s0: FloatArray = s0, s1: FloatArray = s1
        ) -> FloatArray:
            return _dot(solve(np.exp(x), rows, s0, s1)[0], _at(counts, rows)) - goal

        lo = np.full(rho.size, np.log(1e-3))
        hi = top.copy()
        root = _root_increasing(excess, lo, hi, _CHAIN_TOL * goal, root, _CHAIN_WARM)
        scale = np.where(rho > 0.0, np.exp(root), 1.0)
        pi, g0, g1 = solve(scale, every, s0, s1)
        mean_kept = _dot(pi * values, counts) / k
    pi = np.where(r > 0.0, pi, values)
    g0 = np.where(r > 0.0, g0, values)
    lag = np.where(r > 0.0, r + (1.0 - r) * g1 - g0, 0.0)
    return _Chain(pi, g0, lag)


def chain_marginals(p: npt.ArrayLike, overlap_frac: float) -> tuple[FloatArray, FloatArray]:
    """Per expert (in the order of ``p``): stationary marginal pi and fresh-draw probability g.

    pi = p and g = p at rho = 0. See the module docstring.
    """
    probs = check_probabilities(p)
    k = integer_k(probs)
    rho = as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0).reshape(1)
    values, counts = probability_levels(probs)
    chain = _chain(values, counts, k, rho)
    index = np.searchsorted(-values, -probs)
    return chain.pi[0, index], chain.g0[0, index]


# ----------------------------------------------------------------------------------------------
# Union
# ----------------------------------------------------------------------------------------------


def _absent_pass(pi: FloatArray, g: FloatArray, b: FloatArray, t: FloatArray) -> FloatArray:
    """P(expert untouched by one pass of B sequences x T tokens), (rows, L)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        first = np.log1p(-np.minimum(pi, 1.0))
        rest = (t[:, None] - 1.0) * np.log1p(-np.minimum(g, 1.0))
        log_absent = first + np.where(t[:, None] > 1.0, rest, 0.0)
        out = np.exp(b[:, None] * log_absent)
    return np.where(np.isfinite(log_absent), out, 0.0)


def correlated_unique(
    p: npt.ArrayLike,
    overlap_frac: npt.ArrayLike,
    sequences: npt.ArrayLike,
    tokens_per_sequence: npt.ArrayLike,
) -> FloatArray:
    """Expected unique experts per layer of a pass of B sequences x T tokens under the process.

    U = sum_i [1 - ((1 - pi_i)(1 - g_i)^(T - 1))^B]. For a chain of T tokens this is the chain
    model; for a tree (root + T - 1 nodes on chains hanging from the root) the chains are
    independent given the root, which gives the same expression. rho = 0: U(B T).
    ``p`` may be S draws' routings (S, E); the knobs' first axis is then the draws'.
    """
    rho = as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0)
    b = as_knob(sequences, "sequences", minimum=0.0)
    t = as_knob(tokens_per_sequence, "tokens_per_sequence", minimum=1.0)
    return _on_levels(_unique_core, p, rho, b, t)


def _unique_core(lv: _Levels, rho: FloatArray, b: FloatArray, t: FloatArray) -> FloatArray:
    shape, at, (rho_d, b_d, t_d), inverse = _draw_points(lv, rho, b, t)
    chain = _chain(at.values, at.counts, at.k, rho_d)
    u = _dot(1.0 - _absent_pass(chain.pi, chain.g0, b_d, t_d), at.counts)
    return np.asarray(u[inverse].reshape(shape), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# LRU
# ----------------------------------------------------------------------------------------------


def _interp_absent(a: FloatArray, r: FloatArray, tau: FloatArray) -> FloatArray:
    """S(tau): 1 at 0, A R^n at integers n >= 1, linear in between; 0 at tau = inf."""
    finite = np.isfinite(tau)
    tt = np.where(finite, tau, 0.0)[:, None]
    n = np.floor(tt)

    def at(m: FloatArray) -> FloatArray:
        with np.errstate(invalid="ignore", divide="ignore"):
            val = a * np.power(r, m)
        return np.where(m < 0.5, 1.0, np.nan_to_num(val))

    lo, hi = at(n), at(n + 1.0)
    return np.where(finite[:, None], lo - (tt - n) * (lo - hi), 0.0)


def _lru_window(a: FloatArray, r: FloatArray, m: FloatArray, capacity: FloatArray) -> FloatArray:
    """Characteristic window tau (passes): sum_l m_l [1 - S_l(tau)] = C, S from _interp_absent."""
    d1 = _dot(1.0 - a * r, m)
    e_pos = float(m.sum()) if m.ndim == 1 else m.sum(axis=1)
    tau = np.where(capacity <= 0.0, 0.0, np.inf)
    first = (capacity > 0.0) & (capacity < d1)
    tau[first] = capacity[first] / d1[first]
    rest = np.flatnonzero((capacity >= d1) & (capacity < e_pos))
    if rest.size == 0:
        return tau
    ar, rr, cr = a[rest], r[rest], capacity[rest]
    m = _at(m, rest)
    zero = rr <= 0.0
    mu = -np.log(np.where(zero, 0.5, rr))
    w = np.where(zero, 0.0, m * ar)
    goal = cr - np.where(zero, m, m * (1.0 - ar)).sum(axis=1)
    x = solve_saturating(mu, w, goal, np.ones(rest.size))

    def occupied(n: FloatArray) -> FloatArray:
        return _dot(1.0 - _interp_absent(ar, rr, n), m)

    whole = np.maximum(np.floor(x), 1.0)
    d_lo, d_hi = occupied(whole), occupied(whole + 1.0)
    for _ in range(8):  # the smooth root's floor can be off by one
        down, up = (cr < d_lo) & (whole > 1.0), cr >= d_hi
        if not (down.any() or up.any()):
            break
        whole = whole - down + up
        d_lo, d_hi = occupied(whole), occupied(whole + 1.0)
    step = d_hi - d_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(step > 0.0, (cr - d_lo) / step, 0.0)
    tau[rest] = whole + np.clip(part, 0.0, 1.0)
    return tau


def lru_resident_frac(
    p: npt.ArrayLike,
    overlap_frac: npt.ArrayLike,
    sequences: npt.ArrayLike,
    capacity_experts: npt.ArrayLike,
    tokens_per_sequence: npt.ArrayLike = 1.0,
) -> tuple[FloatArray, FloatArray]:
    """(h, h_U) of a per-layer LRU of C experts under the correlated process (module docstring).

    h_U: share of the unique experts a pass of B sequences x T tokens touches that were
    resident before it; h: the same weighted by selections (share of routed selections served),
    sum_i pi_i r_i / k with r_i the resident share of expert i when touched. ``p`` may be S
    draws' routings (S, E); the knobs' first axis is then the draws'.
    """
    rho = as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0)
    b = as_knob(sequences, "sequences", minimum=1.0)
    c = np.clip(np.floor(as_knob(capacity_experts, "capacity_experts", allow_inf=True)), 0, None)
    t = as_knob(tokens_per_sequence, "tokens_per_sequence", minimum=1.0)
    both = _on_levels(_lru_core, p, rho, b, c, t)
    return np.asarray(both[..., 0]), np.asarray(both[..., 1])


def _lru_core(
    lv: _Levels, rho: FloatArray, b: FloatArray, c: FloatArray, t: FloatArray
) -> FloatArray:
    """(h, h_U) of :func:`lru_resident_frac`, stacked on a last axis of 2."""
    shape, at, (rho_d, b_d, c_d, t_d), inverse = _draw_points(lv, rho, b, c, t)
    counts, k = at.counts, at.k
    chain = _chain(at.values, counts, k, rho_d)
    pi, g = chain.pi, chain.g0
    with np.errstate(divide="ignore"):
        ratio = np.where(g < 1.0, (1.0 - pi) / np.where(g < 1.0, 1.0 - g, 1.0), 0.0)
    a = np.power(ratio, b_d[:, None])
    r = np.power(np.maximum(1.0 - g, 0.0), (b_d * t_d)[:, None])
    tau = _lru_window(a, r, counts, c_d)
    u = 1.0 - a * r
    missed = _interp_absent(a, r, tau) - _interp_absent(a, r, tau + 1.0)
    resident = np.clip(u - missed, 0.0, None)
    h_u = _dot(resident, counts) / _dot(u, counts)
    share = np.where(u > 0.0, resident / np.where(u > 0.0, u, 1.0), 0.0)
    h = _dot(pi * share, counts) / k
    pair = np.stack([np.clip(h, 0.0, 1.0), np.clip(h_u, 0.0, 1.0)], axis=-1)
    return np.asarray(pair[inverse].reshape((*shape, 2)))


# ----------------------------------------------------------------------------------------------
# Window hot pool
# ----------------------------------------------------------------------------------------------


def _erf(x: FloatArray) -> FloatArray:
    """erf by Abramowitz & Stegun 7.1.26 (absolute error < 1.5e-7)."""
    # sign(x) (1 - t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) exp(-x^2)), t = 1 / (1 + p|x|):
    # the same operations in the same order, in place (no temporary per step)
    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x, out=np.empty(x.shape))
    t = np.multiply(ax, 0.3275911, out=np.empty(x.shape))
    t += 1.0
    np.divide(1.0, t, out=t)
    poly = np.multiply(t, 1.061405429, out=np.empty(x.shape))
    for a in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        poly += a
        poly *= t
    np.multiply(ax, ax, out=ax)
    np.negative(ax, out=ax)
    poly *= np.exp(ax, out=ax)
    np.subtract(1.0, poly, out=poly)
    poly *= np.sign(x)
    return poly


def norm_cdf(x: npt.ArrayLike) -> FloatArray:
    """Standard normal CDF Phi(x)."""
    arr = np.asarray(x, dtype=np.float64)
    return np.asarray(0.5 * (1.0 + _erf(arr / np.sqrt(2.0))))


def _norm_pdf(x: FloatArray) -> FloatArray:
    return np.exp(-0.5 * x * x) / np.sqrt(2.0 * np.pi)


_GL_X, _GL_W = np.polynomial.legendre.leggauss(48)


def _upper_orthant(z: FloatArray, corr: FloatArray) -> FloatArray:
    """P(X > z, Y > z) for a standard bivariate normal with correlation ``corr`` (same shape)."""
    top = np.maximum(z, 0.0) + 9.0
    half = 0.5 * (top - z)
    xs = z[..., None] + half[..., None] * (_GL_X + 1.0)
    rc = np.clip(corr, 0.0, 0.999)[..., None]
    inner = norm_cdf((rc * xs - z[..., None]) / np.sqrt(1.0 - rc * rc))
    return np.asarray((_norm_pdf(xs) * inner * _GL_W).sum(axis=-1) * half)


@dataclass(frozen=True)
class PoolStats:
    """What a window-chosen pool of C experts per layer serves (arrays of the broadcast shape).

    Attributes:
        hit_frac: share of routed selections inside the pool (the draft's coverage).
        resident_unique_frac: share of the unique experts of a pass of B x T tokens in the pool.
        refresh_experts: experts per layer that enter the pool at one refresh.
    """

    hit_frac: FloatArray
    resident_unique_frac: FloatArray
    refresh_experts: FloatArray


def _count_moments(
    pi: FloatArray, lag_1: FloatArray, b: FloatArray, w: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """(mean, sd, future covariance kappa, window-to-window covariance) of jittered counts."""
    lag = np.clip(lag_1, 0.0, 0.999999)
    v = pi * (1.0 - pi)
    ww = w[:, None]
    geo = (1.0 - lag**ww) / (1.0 - lag)
    var = b[:, None] * v * (ww * (1.0 + lag) / (1.0 - lag) - 2.0 * lag * geo / (1.0 - lag))
    mean = b[:, None] * ww * pi + 0.5
    sd = np.sqrt(np.maximum(var, 0.0) + 1.0 / 12.0)
    kappa = v * lag * geo**2 / ww
    return mean, sd, kappa, b[:, None] * v * lag * geo**2


def _threshold(mean: FloatArray, sd: FloatArray, m: FloatArray, c: FloatArray) -> FloatArray:
    """theta per row with sum_l m_l Phi((mean_l - theta) / sd_l) = C (:func:`_root_increasing`
    on C - size, which increases with theta)."""

    def short(theta: FloatArray, rows: IntArray) -> FloatArray:
        return c[rows] - _dot(norm_cdf((mean[rows] - theta[:, None]) / sd[rows]), _at(m, rows))

    lo = (mean - 12.0 * sd).min(axis=1)
    hi = (mean + 12.0 * sd).max(axis=1)
    return _root_increasing(short, lo, hi, _POOL_TOL)


def window_pool(
    p: npt.ArrayLike,
    overlap_frac: npt.ArrayLike,
    sequences: npt.ArrayLike,
    window_tokens: npt.ArrayLike,
    pool_experts: npt.ArrayLike,
    tokens_per_sequence: npt.ArrayLike = 1.0,
) -> PoolStats:
    """Hit rates and refresh churn of the top-C pool by counts over a window (module docstring).

    Args:
        p: (E,) selection probabilities (sum k).
        overlap_frac: rho of the process (after the locality loss, :func:`batch_overlap`).
        sequences: B, sequences whose routing is counted and served.
        window_tokens: W, tokens per sequence in the counting window (>= 1).
        pool_experts: C, experts per layer in the pool (floored, clipped to [0, E]).
        tokens_per_sequence: T of the pass whose unique experts ``resident_unique_frac`` covers.

    ``p`` may be S draws' routings (S, E); the knobs' first axis is then the draws'.
    """
    e = float(np.asarray(p).shape[-1])
    rho = as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0)
    b = as_knob(sequences, "sequences", minimum=1.0)
    w = as_knob(window_tokens, "window_tokens", minimum=1.0)
    c = np.clip(np.floor(as_knob(pool_experts, "pool_experts", allow_inf=True)), 0.0, e)
    t = as_knob(tokens_per_sequence, "tokens_per_sequence", minimum=1.0)
    out = _on_levels(functools.partial(_pool_core, e=e), p, rho, b, w, c, t)
    return PoolStats(out[..., 0], out[..., 1], out[..., 2])


def _pool_core(
    lv: _Levels,
    rho: FloatArray,
    b: FloatArray,
    w: FloatArray,
    c: FloatArray,
    t: FloatArray,
    *,
    e: float,
) -> FloatArray:
    """:func:`window_pool`'s (hit, resident, changes), stacked on a last axis of 3."""
    shape, at, (rho_d, b_d, w_d, c_d, t_d), inverse = _draw_points(lv, rho, b, w, c, t)
    counts, k, d = at.counts, at.k, at.draw
    # The pool (threshold, selection, churn) does not depend on T: solve it once per (rho, B,
    # W, C) and expand to the rows (row-independent numbers, so the same as row by row).
    keys = [rho_d, b_d, w_d, c_d] if d is None else [d.astype(np.float64), rho_d, b_d, w_d, c_d]
    _, first, per = np.unique(np.stack(keys), axis=1, return_index=True, return_inverse=True)
    per = per.reshape(-1)
    pool_values, pool_counts = (
        (at.values, counts) if d is None else (at.values[first], counts[first])
    )
    chain = _chain(pool_values, pool_counts, k, rho_d[first])
    pi_p = chain.pi
    mean, sd, kappa, cov_next = _count_moments(pi_p, chain.lag, b_d[first], w_d[first])
    theta = _threshold(mean, sd, pool_counts, c_d[first])
    z = (theta[:, None] - mean) / sd
    sel = norm_cdf(-z)
    used = np.minimum(pi_p * sel + kappa * _norm_pdf(z) / sd, pi_p)
    share = np.where(pi_p > 0.0, used / pi_p, 0.0)[per]
    changes = _dot(np.clip(sel - _upper_orthant(z, cov_next / sd**2), 0.0, None), pool_counts)
    changes = changes[per]
    used = used[per]
    pi, g = chain.pi[per], chain.g0[per]
    touched = 1.0 - _absent_pass(pi, g, b_d, t_d)
    full, empty = c_d >= e, c_d <= 0.0
    hit = np.where(full, 1.0, np.where(empty, 0.0, _dot(used, counts) / k))
    res = _dot(touched * share, counts) / _dot(touched, counts)
    res = np.where(full, 1.0, np.where(empty, 0.0, res))
    changes = np.where(full | empty, 0.0, changes)
    stats = np.stack([np.minimum(hit, 1.0), np.minimum(res, 1.0), changes], axis=-1)
    return np.asarray(np.clip(stats, 0.0, None)[inverse].reshape((*shape, 3)), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Exact Monte-Carlo references
# ----------------------------------------------------------------------------------------------


def _systematic_masks(q: FloatArray, totals: FloatArray, rng: np.random.Generator) -> FloatArray:
    """Rows of q (each summing to its total, entries <= 1): a systematic sample per row in a
    random expert order; returns a bool mask (rows, E) with exactly ``total`` True per row."""
    rows, e = q.shape
    out = np.zeros((rows, e), dtype=bool)
    todo = np.arange(rows)
    for _ in range(100):
        order = np.argsort(rng.random((todo.size, e)), axis=1)
        qo = np.take_along_axis(q[todo], order, axis=1)
        cum = np.cumsum(qo, axis=1)
        cum[:, -1] = totals[todo]
        u = rng.random((todo.size, 1))
        picks = np.diff(np.ceil(cum - u), axis=1, prepend=0.0)
        chosen = np.zeros((todo.size, e), dtype=bool)
        np.put_along_axis(chosen, order, picks > 0.0, axis=1)
        ok = (picks.max(axis=1, initial=0.0) <= 1.0) & (chosen.sum(axis=1) == totals[todo])
        out[todo[ok]] = chosen[ok]
        todo = todo[~ok]
        if todo.size == 0:
            return out
    raise RuntimeError("systematic sampling failed to draw valid rows")  # pragma: no cover


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise KnobError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def sample_correlated_routing(
    p: npt.ArrayLike, overlap_frac: float, sequences: int, steps: int, rng: np.random.Generator
) -> npt.NDArray[np.bool_]:
    """Exact sampler of the process: masks (steps, sequences, E) of each token's k experts.

    Token 0 of each sequence draws k experts with inclusion probabilities p; token t + 1 keeps
    each expert of token t with probability rho and draws the rest as in the module docstring.
    """
    probs = check_probabilities(p)
    k = integer_k(probs)
    rho = float(as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0))
    n_seq = _check_int(sequences, "sequences", 1)
    n_steps = _check_int(steps, "steps", 1)
    if not isinstance(rng, np.random.Generator):
        raise KnobError("rng must be a numpy Generator (np.random.default_rng(seed))")
    e = probs.size
    out = np.zeros((n_steps, n_seq, e), dtype=bool)
    weights = np.broadcast_to(probs, (n_seq, e))
    out[0] = _systematic_masks(np.array(weights), np.full(n_seq, float(k)), rng)
    for step in range(1, n_steps):
        kept = out[step - 1] & (rng.random((n_seq, e)) < rho)
        left = k - kept.sum(axis=1).astype(np.float64)
        q = cap_and_redistribute(np.where(kept, 0.0, weights), left[:, None], max_rounds=k + 1)
        out[step] = kept | _systematic_masks(q, left, rng)
    return out


def simulate_correlated_lru(
    p: npt.ArrayLike,
    overlap_frac: float,
    sequences: int,
    capacity_experts: int,
    steps: int,
    rng: np.random.Generator,
    *,
    warmup_steps: int = 0,
    tokens_per_sequence: int = 1,
    layers: int = 1,
) -> float:
    """Exact resident share of a per-layer LRU of C experts with B interleaved sequences.

    One pass per step: the pass touches the union of its B sequences' T tokens, looks them up
    against the cache before the pass, then marks them used in random order. An LRU of C
    experts holds exactly the C most recently used ones, so the state is a last-use stamp per
    expert. ``layers`` independent layers are simulated side by side and pooled.
    """
    c = _check_int(capacity_experts, "capacity_experts", 0)
    t = _check_int(tokens_per_sequence, "tokens_per_sequence", 1)
    n_passes = _check_int(steps, "steps", 1)
    if not 0 <= warmup_steps < n_passes:
        raise KnobError(f"warmup_steps must be in [0, {n_passes}), got {warmup_steps}")
    n_layers = _check_int(layers, "layers", 1)
    masks = sample_correlated_routing(p, overlap_frac, sequences * n_layers, n_passes * t, rng)
    e = masks.shape[-1]
    per_pass = np.asarray(masks.reshape(n_passes, t, n_layers, sequences, e).any(axis=(1, 3)))
    stamps = np.full((n_layers, e), -np.inf)
    hits = touched_total = 0
    for index in range(n_passes):
        touched = per_pass[index]
        if c >= e:
            resident = np.isfinite(stamps)
        elif c == 0:
            resident = np.zeros_like(touched)
        else:
            cut = np.partition(stamps, e - c, axis=1)[:, e - c : e - c + 1]
            resident = (stamps >= cut) & np.isfinite(stamps)
        if index >= warmup_steps:
            hits += int((touched & resident).sum())
            touched_total += int(touched.sum())
        stamps = np.where(touched, index + rng.random(stamps.shape), stamps)
    return hits / touched_total


def simulate_window_pool(
    p: npt.ArrayLike,
    overlap_frac: float,
    sequences: int,
    window_tokens: int,
    pool_experts: int,
    refreshes: int,
    rng: np.random.Generator,
    *,
    warmup_tokens: int = 50,
) -> tuple[float, float, float]:
    """Monte-Carlo of the window pool: (hit_frac, resident share of single-token passes,
    experts entering per refresh).

    The pool for window j + 1 is the top-C experts by counts over window j (B W routings, ties
    broken at random); hit_frac counts routed selections of window j + 1 inside it.
    """
    w = _check_int(window_tokens, "window_tokens", 1)
    c = _check_int(pool_experts, "pool_experts", 0)
    n_ref = _check_int(refreshes, "refreshes", 2)
    steps = warmup_tokens + w * (n_ref + 1)
    masks = sample_correlated_routing(p, overlap_frac, sequences, steps, rng)[warmup_tokens:]
    e = masks.shape[-1]
    hits = sel = res = touched_n = changes = 0.0
    previous = None
    for j in range(n_ref):
        window = masks[j * w : (j + 1) * w]
        counts = window.sum(axis=(0, 1)) + rng.random(e)
        pool = np.zeros(e, dtype=bool)
        pool[np.argsort(-counts)[:c]] = True
        served = masks[(j + 1) * w : (j + 2) * w]
        hits += float((served & pool).sum())
        sel += float(served.sum())
        touched = served.any(axis=1)
        res += float((touched & pool).sum())
        touched_n += float(touched.sum())
        if previous is not None:
            changes += float((pool & ~previous).sum())
        previous = pool
    return hits / sel, res / touched_n, changes / (n_ref - 1)
