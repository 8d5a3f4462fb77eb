"""Expert cache in the fast tier: slots, and hit rates of a static hot set, LRU and a random pool.

Model (docs/model.md §5; ELMoE-3D paper, arXiv 2604.14626). ``p_i`` is expert i's selection
probability for one token in one layer (``sum_i p_i = k``); capacities ``C`` are in experts per
layer.

Slots per layer (KV and resident weights have priority)::

    C = clip(floor((capacity - resident - kv - draft) / (L_moe x bytes_per_expert)), 0, E)

Static hot set P = the C most popular experts (Elastic-SD pool)::

    h   = sum_{i in P} p_i / k                                        share of routed selections
    h_U = sum_{i in P} [1 - (1 - p_i)^N] / U(N)                       share of the U(N) unique
                                                                      experts a pass of N tokens
                                                                      touches that are resident

LRU, Che's characteristic-window approximation, in two forms (``granularity``):

- ``"request"`` (classic, as docs/model.md §5 writes it): per-request popularity q_i = p_i / k,
  t_C (in requests) solves ``sum_i [1 - exp(-q_i t_C)] = C``, h = sum_i q_i [1 - exp(-q_i t_C)],
  occupancy o_i = 1 - exp(-q_i t_C). It treats a token's k requests as independent draws.
- ``"token"`` (default): the window is counted in whole tokens, or passes of N tokens, which
  each touch distinct experts. A pass touches expert i with u_i = 1 - (1 - p_i)^N; the window
  tau (passes) solves ``sum_i [1 - S(u_i, tau)] = C`` with
  ``S(u, tau) = (1 - u)^floor(tau) (1 - frac(tau) u)`` (absent from the last tau passes, the
  oldest counted by a random share of its experts); o_i = 1 - S(u_i, tau). For the
  request-by-request hit rate the j-1 earlier experts of the current token are added to the
  window (see :func:`lru_hit_frac`).

Measured against exact LRU simulation on Zipf traces (tests/test_cache.py), the token form stays
within 1 % absolute everywhere tried (E 32-256, k 4-8, a 0-3, C 1-48); the classic form
overestimates the per-request hit rate when C is within a few k (by 0.07 at C = k = 8, up to
0.18 for C < k) and meets 2 % on the tested Zipf traces only for C >= 4 k.

Batch-aware share of the U(N) unique experts of a pass that are resident::

    h_U = sum_i [1 - (1 - p_i)^N] o_i / U(N)

Random pool (ablation baseline): h = C / E.

References: H. Che, Y. Tung, Z. Wang, "Hierarchical Web caching systems: modeling, design and
experimental results", IEEE JSAC 20(7), 2002; C. Fricker, P. Robert, J. Roberts, "A versatile and
accurate approximation for LRU cache performance", arXiv:1202.3974, 2012.

Vectorization: capacities and token counts may be scalars or arrays that broadcast; every
function returns a float64 ``np.ndarray`` of the broadcast shape (0-d for scalars), except
:func:`expert_slots_per_layer` (int64) and the exact simulators :func:`simulate_lru` and
:func:`simulate_pass_lru` (a float each; slow test references).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import numpy.typing as npt

from elmoe_dse.errors import KnobError
from elmoe_dse.routing import (
    FloatArray,
    IntArray,
    as_knob,
    check_probabilities,
    chunk_slices,
    distinct_points,
    integer_k,
    probability_levels,
    row_dot,
    touch_probability,
)

# Newton on the Che equation stops when the relative step is below this (quadratic convergence
# makes the final error far smaller); the iteration cap is never reached in practice.
_CHE_RTOL = 1e-13
_CHE_MAX_ITER = 200

# A slot quotient within this of the next integer counts as that integer, so that rounding in
# the byte arithmetic never drops a slot.
_SLOT_ROUNDING_TOL = 1e-9


def _pool_size(pool_experts: npt.ArrayLike, num_experts: npt.ArrayLike) -> FloatArray:
    """floor(C) clipped to [0, E], as float64 (integer-valued)."""
    c = as_knob(pool_experts, "pool_experts", allow_inf=True)
    return np.asarray(np.clip(np.floor(c), 0.0, num_experts), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Static hot set
# ----------------------------------------------------------------------------------------------


def hot_set_hit_frac(p: npt.ArrayLike, pool_experts: npt.ArrayLike) -> FloatArray:
    """Share of routed selections served by a static hot set of the C most popular experts.

    h = sum_{i in top C} p_i / k, with C = clip(floor(pool_experts), 0, E). h = 0 at C = 0 and
    exactly 1 at C = E; it never decreases with C.

    Args:
        p: (E,) selection probability per expert for one token (sum k); need not be sorted.
        pool_experts: C, experts in the pool per layer; scalar or array.

    Returns:
        float64 ndarray of fractions with the shape of ``pool_experts`` (0-d for a scalar).
    """
    probs = check_probabilities(p)
    c = _pool_size(pool_experts, probs.size).astype(np.intp)
    prefix = np.concatenate(([0.0], np.cumsum(np.sort(probs)[::-1])))
    return np.asarray(prefix[c] / prefix[-1], dtype=np.float64)


def hot_set_unique_hit_frac(
    p: npt.ArrayLike, pool_experts: npt.ArrayLike, n_tokens: npt.ArrayLike
) -> FloatArray:
    """Share of the unique experts a pass of N tokens touches that lie in the static hot set.

    h_U(N) = sum_{i in top C} [1 - (1 - p_i)^N] / U(N), U(N) = sum_i [1 - (1 - p_i)^N], with
    C = clip(floor(pool_experts), 0, E). As N grows the touched set spreads into the tail and
    h_U falls from about h towards C / E (uniform routing: h_U = C / E for every N).

    Args:
        p: (E,) selection probability per expert for one token (sum k); need not be sorted.
        pool_experts: C, experts in the pool per layer.
        n_tokens: N, tokens in the pass (> 0, may be fractional, e.g. B T_eff).

    Returns:
        float64 ndarray of fractions with the broadcast shape of C and N (0-d for scalars).
    """
    probs = check_probabilities(p)
    c = _pool_size(pool_experts, probs.size)
    n = as_knob(n_tokens, "n_tokens", minimum=0.0, strict_minimum=True)
    values, counts = probability_levels(probs)
    if values.size == 1:
        c_b, _ = np.broadcast_arrays(c, n)
        return np.asarray(c_b / probs.size, dtype=np.float64)
    shape, (c_d, n_d), inverse = distinct_points(c, n)
    # Position C in the descending expert order falls in level g, `partial` experts into it.
    starts = np.concatenate(([0.0], np.cumsum(counts)))
    level = np.searchsorted(starts, c_d, side="right") - 1
    level = np.minimum(level, values.size)[:, None]
    partial = (c_d - starts[level[:, 0]])[:, None]
    h = np.empty(c_d.size, dtype=np.float64)
    for sl in chunk_slices(c_d.size, values.size + 1):
        u = touch_probability(n_d[sl], values)
        cum = np.zeros((u.shape[0], values.size + 1), dtype=np.float64)
        np.cumsum(u * counts, axis=1, out=cum[:, 1:])
        u_pad = np.concatenate((u, np.zeros((u.shape[0], 1))), axis=1)
        inside = np.take_along_axis(cum, level[sl], axis=1)
        inside += partial[sl] * np.take_along_axis(u_pad, level[sl], axis=1)
        h[sl] = inside[:, 0] / cum[:, -1]
    return h[inverse].reshape(shape)


# ----------------------------------------------------------------------------------------------
# LRU: characteristic-window (Che) approximations
# ----------------------------------------------------------------------------------------------

LRU_GRANULARITIES = ("token", "request")


def _check_granularity(granularity: str) -> str:
    if granularity not in LRU_GRANULARITIES:
        raise KnobError(
            f"LRU granularity {granularity!r} is unknown; use 'token' (window counted in whole "
            f"tokens or passes, default) or 'request' (classic Che over single expert requests)"
        )
    return granularity


def _positive_levels(probs: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distinct nonzero probabilities v (descending) and their counts m."""
    values, counts = probability_levels(probs)
    keep = values > 0.0
    return values[keep], counts[keep]


def solve_saturating(
    mu: FloatArray, w: FloatArray, target: FloatArray, lower: FloatArray
) -> FloatArray:
    """Solve G(x) = sum_l w_l [1 - exp(-mu_l x)] = target for x, row by row.

    ``mu`` and ``w`` are (rows, L) (or (1, L), shared); rows with ``w_l = 0`` ignore level l.
    Requires G(lower) <= target < sum_l w_l. G is increasing and concave, so the root lies in
    the bracket [max(lower, target / G'(0)), -log(1 - target / W) / mu_min] (from
    G(x) <= x G'(0) and G(x) >= W [1 - exp(-mu_min x)], W = sum w). Newton steps that stay in
    the bracket are taken, others are replaced by bisection in log x; on a concave G Newton
    converges monotonically from below and quadratically near the root. Stops when the relative
    step is below 1e-13.
    """
    rows = target.size
    mu_b = np.broadcast_to(mu, (rows, mu.shape[-1]))
    w_b = np.broadcast_to(w, (rows, w.shape[-1]))
    x_out = np.empty(rows, dtype=np.float64)
    for sl in chunk_slices(rows, mu_b.shape[1]):
        mu_c, w_c, goal = mu_b[sl], w_b[sl], target[sl]
        total = w_c.sum(axis=1)
        mu_min = np.where(w_c > 0.0, mu_c, np.inf).min(axis=1)
        lo = np.maximum(lower[sl], goal / (w_c * mu_c).sum(axis=1))
        hi = np.maximum(lo, -np.log1p(-goal / total) / mu_min)
        x = lo.copy()
        active = np.arange(goal.size)
        for _ in range(_CHE_MAX_ITER):
            xa, mua, wa = x[active], mu_c[active], w_c[active]
            occupied = -np.expm1(-xa[:, None] * mua)
            g = (wa * occupied).sum(axis=1)
            slope = (wa * mua * (1.0 - occupied)).sum(axis=1)
            below = g < goal[active]
            lo[active] = np.where(below, xa, lo[active])
            hi[active] = np.where(below, hi[active], xa)
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = xa + (goal[active] - g) / slope
            la, ha = lo[active], hi[active]
            inside = np.isfinite(newton) & (newton >= la) & (newton <= ha)
            x_new = np.where(inside, newton, np.sqrt(la * ha))
            done = np.abs(x_new - xa) <= _CHE_RTOL * x_new
            x[active] = x_new
            active = active[~done]
            if active.size == 0:
                break
        x_out[sl] = x
    return x_out


def _absent_frac(values: FloatArray, window: FloatArray) -> FloatArray:
    """S(v, tau) = (1 - v)^floor(tau) (1 - frac(tau) v): P(an expert of per-pass probability v
    is absent from the last tau passes), the oldest pass counted by a random share frac(tau) of
    its experts. ``values`` (rows, L), ``window`` (rows,) in [0, inf]; S = 0 at tau = inf.
    """
    finite = np.isfinite(window)
    whole = np.floor(np.where(finite, window, 0.0))[:, None]
    part = np.where(finite, window, 0.0)[:, None] - whole
    absent = np.power(1.0 - values, whole) * (1.0 - part * values)
    return np.where(finite[:, None], absent, 0.0)


def _window_passes(
    values: FloatArray, counts: FloatArray, current_frac: FloatArray, capacity: FloatArray
) -> FloatArray:
    """Characteristic window tau >= 0, in passes, of an LRU cache of C experts.

    Solves D(tau) = sum_l m_l [1 - (1 - f v_l) S(v_l, tau)] = C, where v_l (rows, L) or (1, L)
    is the probability that one pass touches an expert of level l (all in (0, 1]), m_l the
    experts per level and f (rows,) the share of the current pass already requested (its
    experts are the most recent ones). D is continuous, increasing, concave and linear between
    integers; the integer interval comes from the smooth version (equal at integers, solved by
    :func:`solve_saturating`) and tau by exact linear interpolation inside it.
    tau = 0 where C <= D(0) and +inf where C >= sum m.
    """
    rows = capacity.size
    v = np.broadcast_to(values, (rows, values.shape[-1]))
    keep = 1.0 - current_frac[:, None] * v  # P(not among the current pass's earlier requests)
    d0 = row_dot(v * current_frac[:, None], counts)
    d1 = row_dot(1.0 - keep * (1.0 - v), counts)
    e_pos = float(counts.sum())
    tau = np.where(capacity <= d0, 0.0, np.inf)
    first = (capacity > d0) & (capacity < d1)
    tau[first] = (capacity[first] - d0[first]) / (d1[first] - d0[first])
    rest = np.flatnonzero((capacity >= d1) & (capacity < e_pos))
    if rest.size == 0:
        return tau
    vr, kr, cr = v[rest], keep[rest], capacity[rest]
    ones = vr >= 1.0
    mu = -np.log1p(-np.where(ones, 0.0, vr))
    w = np.where(ones, 0.0, counts * kr)
    goal = cr - ((1.0 - kr) * counts).sum(axis=1) - np.where(ones, counts * kr, 0.0).sum(axis=1)
    x = solve_saturating(mu, w, goal, np.ones(rest.size))
    whole = np.maximum(np.floor(x), 1.0)

    def occupied_at(n: FloatArray) -> FloatArray:
        return row_dot(1.0 - kr * np.power(1.0 - vr, n[:, None]), counts)

    d_lo, d_hi = occupied_at(whole), occupied_at(whole + 1.0)
    for _ in range(8):  # the smooth root's floor can be off by one after rounding
        down = (cr < d_lo) & (whole > 1.0)
        up = cr >= d_hi
        if not (down.any() or up.any()):
            break
        whole = whole - down + up
        d_lo, d_hi = occupied_at(whole), occupied_at(whole + 1.0)
    step = d_hi - d_lo
    with np.errstate(divide="ignore", invalid="ignore"):
        part = np.where(step > 0.0, (cr - d_lo) / step, 0.0)
    tau[rest] = whole + np.clip(part, 0.0, 1.0)
    return tau


def lru_characteristic_time(p: npt.ArrayLike, capacity_experts: npt.ArrayLike) -> FloatArray:
    """Classic Che characteristic time t_C of an LRU cache of C experts, in expert requests.

    Solves sum_i [1 - exp(-q_i t_C)] = C with q_i = p_i / k, treating the k requests of each
    token as independent draws (independent reference model). Uniform routing:
    t_C = -E log(1 - C/E). t_C = 0 for C <= 0 and +inf once C reaches the number of experts with
    p_i > 0. Fractional C is allowed. Solved by bracketed Newton to a relative step < 1e-13.

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        capacity_experts: C, cached experts per layer; scalar or array (NaN rejected).

    Returns:
        float64 ndarray of requests with the shape of ``capacity_experts`` (0-d for a scalar).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    values, m = _positive_levels(probs)
    q = values / float(values @ m)
    e_pos = float(m.sum())
    shape, (c_d,), inverse = distinct_points(c)
    t = np.where(c_d <= 0.0, 0.0, np.inf)
    inner = (c_d > 0.0) & (c_d < e_pos)
    if q.size == 1:
        t[inner] = -np.log1p(-c_d[inner] / e_pos) / q[0]
    else:
        t[inner] = solve_saturating(q[None, :], m[None, :], c_d[inner], c_d[inner])
    return t[inverse].reshape(shape)


def lru_window_passes(
    p: npt.ArrayLike, capacity_experts: npt.ArrayLike, n_tokens: npt.ArrayLike = 1.0
) -> FloatArray:
    """Characteristic window of an LRU cache of C experts, in passes of N tokens.

    A pass of N tokens touches expert i with probability u_i = 1 - (1 - p_i)^N (N = 1: one
    token, u_i = p_i) and presents its touched experts to the cache in random order. At a pass
    boundary the cache holds about the experts touched in the last tau passes, where tau solves

        sum_i [1 - S(u_i, tau)] = C,   S(u, tau) = (1 - u)^floor(tau) (1 - frac(tau) u),

    S being the probability that expert i is absent from the last tau passes (the oldest pass
    counted by a random share frac(tau) of its experts). This is Che's characteristic-time idea
    applied to whole passes instead of single requests, which keeps the k distinct experts of a
    token (and the U(N) of a pass) together. tau = 0 for C <= 0 and +inf once C reaches the
    number of experts with p_i > 0.

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        capacity_experts: C, cached experts per layer.
        n_tokens: N, tokens per pass (> 0); default 1 (one token per pass).

    Returns:
        float64 ndarray of passes with the broadcast shape of C and N (0-d for scalars).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    n = as_knob(n_tokens, "n_tokens", minimum=0.0, strict_minimum=True)
    values, m = _positive_levels(probs)
    shape, (c_d, n_d), inverse = distinct_points(c, n)
    tau = np.empty(c_d.size, dtype=np.float64)
    for sl in chunk_slices(c_d.size, 4 * values.size):
        u = touch_probability(n_d[sl], values)
        tau[sl] = _window_passes(u, m, np.zeros(u.shape[0]), c_d[sl])
    return tau[inverse].reshape(shape)


def lru_hit_frac(
    p: npt.ArrayLike, capacity_experts: npt.ArrayLike, *, granularity: str = "token"
) -> FloatArray:
    """Hit rate per expert request of an LRU cache of C experts per layer, one token at a time.

    The request stream is each token's k distinct experts, in random order, token after token
    (what :func:`simulate_lru` replays). h = 0 for C <= 0 and 1 once C reaches the number of
    experts with p_i > 0 (so for C >= E); h never decreases with C.

    ``granularity="token"`` (default): the request at position j (1..k) of a token sees a cache
    whose most recent entries are the token's j - 1 earlier experts, then the experts of the
    last tau_j whole tokens, with tau_j solving

        sum_i [1 - (1 - f_j p_i) S(p_i, tau_j)] = C,   f_j = (j - 1) / k

    (S as in :func:`lru_window_passes`), and h = (1/k) sum_j sum_i (p_i / k) [1 - S(p_i, tau_j)].
    Counting the window in whole tokens keeps each token's experts distinct, which the classic
    form ignores; against exact LRU simulation on Zipf traces (a in 0..3, E in 32..256,
    k in 4..8, C in 1..48) it stays within 1 % absolute.

    ``granularity="request"``: the classic Che approximation over single requests
    (docs/model.md §5): h = sum_i q_i [1 - exp(-q_i t_C)], q_i = p_i / k, t_C from
    :func:`lru_characteristic_time`; uniform routing gives h = C / E. It treats the k requests
    of a token as independent and overestimates h when C is within a few k (by up to 0.07 at
    C = k = 8, E = 128, Zipf a = 1.4), converging to the token form for C >> k.

    Args:
        p: (E,) selection probability per expert for one token (sum k, an integer for "token").
        capacity_experts: C, cached experts per layer; scalar or array.
        granularity: "token" or "request".

    Returns:
        float64 ndarray of fractions with the shape of ``capacity_experts`` (0-d for a scalar).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    _check_granularity(granularity)
    values, m = _positive_levels(probs)
    e_pos = float(m.sum())
    shape, (c_d,), inverse = distinct_points(c)
    h = np.where(c_d <= 0.0, 0.0, 1.0)
    inner = np.flatnonzero((c_d > 0.0) & (c_d < e_pos))
    if granularity == "request":
        q = values / float(values @ m)
        if q.size == 1:
            h[inner] = c_d[inner] / e_pos
        else:
            t = solve_saturating(q[None, :], m[None, :], c_d[inner], c_d[inner])
            h[inner] = row_dot(-np.expm1(-np.multiply.outer(t, q)), m * q)
        return np.clip(h, 0.0, 1.0)[inverse].reshape(shape)
    k = integer_k(probs)
    positions = np.arange(k, dtype=np.float64) / k  # f_j for j = 1..k
    weights = m * values / k
    for sl in chunk_slices(inner.size, k * (values.size + 4)):
        c_rows = np.repeat(c_d[inner[sl]], k)
        f_rows = np.tile(positions, c_rows.size // k)
        tau = _window_passes(values[None, :], m, f_rows, c_rows)
        absent = _absent_frac(np.broadcast_to(values, (tau.size, values.size)), tau)
        h_rows = row_dot(1.0 - absent, weights)
        h[inner[sl]] = h_rows.reshape(-1, k).mean(axis=1)
    return np.clip(h, 0.0, 1.0)[inverse].reshape(shape)


def lru_unique_hit_frac(
    p: npt.ArrayLike,
    capacity_experts: npt.ArrayLike,
    n_tokens: npt.ArrayLike,
    *,
    granularity: str = "token",
) -> FloatArray:
    """Batch-aware LRU hit rate: share of the U(N) unique experts of a pass that are resident.

    A pass of N = B T_eff tokens looks up each expert it touches once, against the cache state
    left by the previous passes: h_U(N) = sum_i [1 - (1 - p_i)^N] o_i / U(N), with o_i the
    stationary probability that expert i is resident at a pass boundary.

    This is how "locality decays as the batch grows" enters the model (docs/model.md §5,
    the ELMoE-3D paper, arXiv 2604.14626): as N grows the touched set U(N) spreads from the
    popular experts (high o_i) into the tail (low o_i), so h_U falls from h_U(1) towards C / E.
    Uniform routing gives h_U = C / E for every N.

    ``granularity="token"`` (default): passes are the cache's unit of reference. Each pass
    touches expert i with u_i = 1 - (1 - p_i)^N in random order, so o_i = 1 - S(u_i, tau_C) with
    the window tau_C in passes from :func:`lru_window_passes`. Against an exact LRU simulation
    of passes (Zipf a 0.6-1.2, E 64-128, k 4-8, N 1-80, C 8-64) it stays within 0.5 % absolute.
    At N = 1 it is the hit rate of a token whose k experts are looked up together, slightly above
    :func:`lru_hit_frac`, where each request can be evicted by the token's earlier ones.

    ``granularity="request"``: Che's stationary occupancy of the per-request stream,
    o_i = 1 - exp(-q_i t_C), q_i = p_i / k, t_C from :func:`lru_characteristic_time` (docs/model.md
    §5 as written). It ignores that a pass's experts arrive together and that a large
    pass itself fills the cache: against the pass simulation it is off by up to ~0.08 (low at
    N = 1 with C near k, high once U(N) approaches C).

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        capacity_experts: C, cached experts per layer.
        n_tokens: N, tokens in the pass (> 0, may be fractional).
        granularity: "token" or "request".

    Returns:
        float64 ndarray of fractions with the broadcast shape of C and N (0-d for scalars).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    n = as_knob(n_tokens, "n_tokens", minimum=0.0, strict_minimum=True)
    _check_granularity(granularity)
    values, m = _positive_levels(probs)
    e_pos = float(m.sum())
    if values.size == 1:
        c_b, _ = np.broadcast_arrays(c, n)
        return np.asarray(np.clip(c_b / e_pos, 0.0, 1.0), dtype=np.float64)
    shape, (c_d, n_d), inverse = distinct_points(c, n)
    h = np.empty(c_d.size, dtype=np.float64)
    if granularity == "request":
        t_d = lru_characteristic_time(probs, c_d)
        q = values / float(values @ m)
        for sl in chunk_slices(c_d.size, 2 * values.size):
            u = touch_probability(n_d[sl], values)
            occupied = -np.expm1(-np.multiply.outer(t_d[sl], q))
            h[sl] = row_dot(u * occupied, m) / row_dot(u, m)
    else:
        for sl in chunk_slices(c_d.size, 4 * values.size):
            u = touch_probability(n_d[sl], values)
            tau = _window_passes(u, m, np.zeros(u.shape[0]), c_d[sl])
            occupied = 1.0 - _absent_frac(u, tau)
            h[sl] = row_dot(u * occupied, m) / row_dot(u, m)
    return np.clip(h, 0.0, 1.0)[inverse].reshape(shape)


# ----------------------------------------------------------------------------------------------
# Random pool and slots
# ----------------------------------------------------------------------------------------------


def random_pool_hit_frac(num_experts: npt.ArrayLike, pool_experts: npt.ArrayLike) -> FloatArray:
    """Hit rate of a pool of C experts chosen at random (ablation baseline): h = C / E.

    Args:
        num_experts: E, routed experts per layer (>= 1).
        pool_experts: C, experts in the pool; floored and clipped to [0, E].

    Returns:
        float64 ndarray of fractions with the broadcast shape of E and C (0-d for scalars).
    """
    e = as_knob(num_experts, "num_experts", minimum=1.0)
    c = _pool_size(pool_experts, e)
    return np.asarray(c / e, dtype=np.float64)


def resident_fracs(
    cache_policy: str, p: npt.ArrayLike, slots: npt.ArrayLike, n_tokens: npt.ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """(h, h_U) of a pool or cache of ``slots`` experts replaced by ``cache_policy``.

    h: share of routed selections the pool serves; h_U: share of the unique experts of a pass of
    ``n_tokens`` tokens that are resident. ``hot``, ``lru`` and ``random`` as in the module
    docstring; ``none`` (no pool) gives zeros.
    """
    if cache_policy == "hot":
        return hot_set_hit_frac(p, slots), hot_set_unique_hit_frac(p, slots, n_tokens)
    if cache_policy == "lru":
        return lru_hit_frac(p, slots), lru_unique_hit_frac(p, slots, n_tokens)
    if cache_policy == "random":
        h = np.asarray(random_pool_hit_frac(np.shape(p)[-1], slots))
        return h, h + np.zeros(np.shape(n_tokens))
    zero = np.zeros(np.broadcast_shapes(np.shape(slots), np.shape(n_tokens)))
    return zero, zero


def expert_slots_per_layer(
    capacity_bytes: npt.ArrayLike,
    resident_bytes: npt.ArrayLike,
    kv_bytes: npt.ArrayLike,
    draft_bytes: npt.ArrayLike,
    num_moe_layers: npt.ArrayLike,
    bytes_per_expert: npt.ArrayLike,
    num_experts: npt.ArrayLike,
) -> IntArray:
    """Experts per MoE layer that fit in the fast tier after the weights and data with priority.

    C = clip(floor((capacity - resident - kv - draft) / (L_moe x bytes_per_expert)), 0, E).
    Resident non-expert weights, the batch's KV cache and any separate draft model (weights and
    KV) are placed first *(paper: KV has priority)*; experts get what is left, split evenly over
    the MoE layers. For a bit-nested cache pass the bytes of one MSB slice as
    ``bytes_per_expert``, which about doubles C. A quotient within 1e-9 below an integer counts
    as that integer so that rounding in the byte arithmetic never drops a slot.

    Args:
        capacity_bytes: fast-tier (HB) capacity, bytes.
        resident_bytes: non-expert weights kept in the fast tier, bytes.
        kv_bytes: KV cache of the batch kept in the fast tier, bytes.
        draft_bytes: separate draft model weights and KV in the fast tier, bytes (0 if none).
        num_moe_layers: L_moe, layers with routed experts (>= 1).
        bytes_per_expert: bytes of one cached expert, bytes (> 0).
        num_experts: E, routed experts per layer (>= 1).

    Returns:
        int64 ndarray of experts per layer with the broadcast shape of the arguments.
    """
    cap = as_knob(capacity_bytes, "capacity_bytes", minimum=0.0)
    resident = as_knob(resident_bytes, "resident_bytes", minimum=0.0)
    kv = as_knob(kv_bytes, "kv_bytes", minimum=0.0)
    draft = as_knob(draft_bytes, "draft_bytes", minimum=0.0)
    layers = as_knob(num_moe_layers, "num_moe_layers", minimum=1.0)
    per_expert = as_knob(bytes_per_expert, "bytes_per_expert", minimum=0.0, strict_minimum=True)
    e = as_knob(num_experts, "num_experts", minimum=1.0)
    left = cap - resident - kv - draft
    slots = np.floor(left / (layers * per_expert) + _SLOT_ROUNDING_TOL)
    return np.asarray(np.clip(slots, 0.0, e), dtype=np.int64)


# ----------------------------------------------------------------------------------------------
# Exact LRU simulation (test reference)
# ----------------------------------------------------------------------------------------------


def simulate_lru(trace: npt.ArrayLike, capacity_experts: int, warmup_tokens: int = 0) -> float:
    """Exact hit rate of an LRU cache of C experts over a routing trace of one layer.

    Requests are each token's k expert ids in row order, tokens in order; a hit moves the expert
    to the most-recent end, a miss inserts it and evicts the least recent one beyond C. Requests
    of the first ``warmup_tokens`` tokens update the cache but are not counted. A slow, exact
    reference for :func:`lru_hit_frac`.

    Args:
        trace: (tokens, k) int array of expert ids, e.g. from ``routing.sample_routing_trace``.
        capacity_experts: C, cache size in experts (>= 0).
        warmup_tokens: tokens replayed before counting (0 <= warmup < tokens).

    Returns:
        hits / counted requests, a float in [0, 1].
    """
    arr = np.asarray(trace)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise KnobError(f"trace must be a non-empty (tokens, k) integer array, got {arr.shape}")
    if isinstance(capacity_experts, bool) or not isinstance(capacity_experts, int | np.integer):
        raise KnobError(f"capacity_experts must be an integer, got {capacity_experts!r}")
    if capacity_experts < 0:
        raise KnobError(f"capacity_experts must be >= 0, got {capacity_experts}")
    if not 0 <= warmup_tokens < arr.shape[0]:
        raise KnobError(
            f"warmup_tokens must be in [0, {arr.shape[0]}) for a {arr.shape[0]}-token trace, "
            f"got {warmup_tokens}"
        )
    capacity = int(capacity_experts)
    cache: OrderedDict[int, None] = OrderedDict()
    rows = arr.tolist()
    for row in rows[:warmup_tokens]:
        for expert in row:
            if expert in cache:
                cache.move_to_end(expert)
            else:
                cache[expert] = None
                if len(cache) > capacity:
                    cache.popitem(last=False)
    hits = 0
    for row in rows[warmup_tokens:]:
        for expert in row:
            if expert in cache:
                cache.move_to_end(expert)
                hits += 1
            else:
                cache[expert] = None
                if len(cache) > capacity:
                    cache.popitem(last=False)
    return hits / ((arr.shape[0] - warmup_tokens) * arr.shape[1])


def simulate_pass_lru(
    trace: npt.ArrayLike,
    capacity_experts: int,
    n_tokens: int,
    rng: np.random.Generator,
    warmup_passes: int = 0,
) -> float:
    """Exact LRU hit rate over passes of N tokens, each looking up its unique experts once.

    The trace is cut into passes of ``n_tokens`` consecutive tokens. A pass's unique experts are
    looked up against the cache as it stood before the pass (hits = touched and resident), then
    presented to the LRU in random order (hits move to the most-recent end, misses are inserted
    and evict the least recent beyond C). Passes before ``warmup_passes`` are not counted.
    A slow, exact reference for :func:`lru_unique_hit_frac`.

    Args:
        trace: (tokens, k) int array of expert ids.
        capacity_experts: C, cache size in experts (>= 0).
        n_tokens: N, tokens per pass (>= 1).
        rng: numpy Generator for the order inside a pass.
        warmup_passes: passes replayed before counting (less than the number of passes).

    Returns:
        resident touched experts / touched experts over the counted passes.
    """
    arr = np.asarray(trace)
    if arr.ndim != 2 or arr.size == 0 or not np.issubdtype(arr.dtype, np.integer):
        raise KnobError(f"trace must be a non-empty (tokens, k) integer array, got {arr.shape}")
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int | np.integer) or n_tokens < 1:
        raise KnobError(f"n_tokens must be an integer >= 1, got {n_tokens!r}")
    if isinstance(capacity_experts, bool) or not isinstance(capacity_experts, int | np.integer):
        raise KnobError(f"capacity_experts must be an integer, got {capacity_experts!r}")
    if capacity_experts < 0:
        raise KnobError(f"capacity_experts must be >= 0, got {capacity_experts}")
    n_passes = arr.shape[0] // int(n_tokens)
    if not 0 <= warmup_passes < n_passes:
        raise KnobError(
            f"warmup_passes must be in [0, {n_passes}) for {n_passes} passes, got {warmup_passes}"
        )
    capacity = int(capacity_experts)
    cache: OrderedDict[int, None] = OrderedDict()
    hits = touched_total = 0
    for index in range(n_passes):
        touched = np.unique(arr[index * n_tokens : (index + 1) * n_tokens])
        rng.shuffle(touched)
        keys = touched.tolist()
        if index >= warmup_passes:
            hits += sum(1 for expert in keys if expert in cache)
            touched_total += len(keys)
        for expert in keys:
            if expert in cache:
                cache.move_to_end(expert)
            else:
                cache[expert] = None
                if len(cache) > capacity:
                    cache.popitem(last=False)
    return hits / touched_total
