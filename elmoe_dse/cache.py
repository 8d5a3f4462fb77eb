"""Expert cache in the fast tier: slots, and hit rates of a static hot set, LRU and a random pool.

Model (MODEL.md section 5; ELMoE-3D paper notes section 15.6). ``p_i`` is expert i's selection
probability for one token in one layer (``sum_i p_i = k``); capacities ``C`` are in experts per
layer.

Slots per layer (KV and resident weights have priority)::

    C = clip(floor((capacity - resident - kv - draft) / (L_moe x bytes_per_expert)), 0, E)

Static hot set P = the C most popular experts (Elastic-SD pool)::

    h   = sum_{i in P} p_i / k                                        share of routed selections
    h_U = sum_{i in P} [1 - (1 - p_i)^N] / U(N)                       share of the U(N) unique
                                                                      experts a pass of N tokens
                                                                      touches that are resident

LRU (Che approximation) with per-request popularity q_i = p_i / k: the characteristic time t_C
(in expert requests) solves ``sum_i [1 - exp(-q_i t_C)] = C`` and::

    h   = sum_i q_i [1 - exp(-q_i t_C)]
    h_U = sum_i [1 - (1 - p_i)^N] o_i / U(N),   o_i = 1 - exp(-q_i t_C)

Random pool (ablation baseline): h = C / E.

References: H. Che, Y. Tung, Z. Wang, "Hierarchical Web caching systems: modeling, design and
experimental results", IEEE JSAC 20(7), 2002; C. Fricker, P. Robert, J. Roberts, "A versatile and
accurate approximation for LRU cache performance", arXiv:1202.3974, 2012.

Vectorization: capacities and token counts may be scalars or arrays that broadcast; every
function returns a float64 ``np.ndarray`` of the broadcast shape (0-d for scalars), except
:func:`expert_slots_per_layer` (int64) and :func:`simulate_lru` (a float, test reference).
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
    probability_levels,
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
# LRU (Che approximation)
# ----------------------------------------------------------------------------------------------


def _request_levels(probs: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Distinct nonzero per-token probabilities v, their counts m and q = v / k (sum m q = 1)."""
    values, counts = probability_levels(probs)
    keep = values > 0.0
    values, counts = values[keep], counts[keep]
    return values, counts, values / float(values @ counts)


def _che_time(q: FloatArray, m: FloatArray, c: FloatArray) -> FloatArray:
    """Solve f(t) = sum_l m_l [1 - exp(-q_l t)] = c for t, for each c in (0, sum m).

    f is increasing and concave with f(t) <= t (sum m q = 1) and f(t) >= E'(1 - exp(-q_min t)),
    so t lies in the bracket [c, -log(1 - c/E') / q_min]. Newton steps stay inside the bracket
    (a step that leaves it is replaced by bisection in log t); on a concave f Newton converges
    monotonically once below the root, quadratically near it.
    """
    e_pos = float(m.sum())
    if q.size == 1:
        return np.asarray(-np.log1p(-c / e_pos) / q[0], dtype=np.float64)
    mq = m * q
    t_out = np.empty(c.size, dtype=np.float64)
    for sl in chunk_slices(c.size, q.size):
        target = c[sl]
        lo = target.copy()
        hi = -np.log1p(-target / e_pos) / q.min()
        t = lo.copy()
        active = np.arange(target.size)
        for _ in range(_CHE_MAX_ITER):
            ta = t[active]
            occupied = -np.expm1(-np.multiply.outer(ta, q))
            f = occupied @ m
            slope = (1.0 - occupied) @ mq
            below = f < target[active]
            lo[active] = np.where(below, ta, lo[active])
            hi[active] = np.where(below, hi[active], ta)
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = ta + (target[active] - f) / slope
            la, ha = lo[active], hi[active]
            ok = np.isfinite(newton) & (newton >= la) & (newton <= ha)
            t_new = np.where(ok, newton, np.sqrt(la * ha))
            done = np.abs(t_new - ta) <= _CHE_RTOL * t_new
            t[active] = t_new
            active = active[~done]
            if active.size == 0:
                break
        t_out[sl] = t
    return t_out


def lru_characteristic_time(p: npt.ArrayLike, capacity_experts: npt.ArrayLike) -> FloatArray:
    """Che characteristic time t_C of an LRU cache of C experts, in expert requests.

    Solves sum_i [1 - exp(-q_i t_C)] = C with q_i = p_i / k (requests are the k selections of
    each token, in sequence). Uniform routing: t_C = -E log(1 - C/E). t_C = 0 for C <= 0 and
    +inf when C reaches the number of experts with p_i > 0. Fractional C is allowed (the
    equation is continuous in C). Solved to a relative tolerance far below 1e-10.

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        capacity_experts: C, cached experts per layer; scalar or array (NaN rejected).

    Returns:
        float64 ndarray of requests with the shape of ``capacity_experts`` (0-d for a scalar).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    _, m, q = _request_levels(probs)
    e_pos = float(m.sum())
    shape, (c_d,), inverse = distinct_points(c)
    t = np.where(c_d <= 0.0, 0.0, np.inf)
    inner = (c_d > 0.0) & (c_d < e_pos)
    t[inner] = _che_time(q, m, c_d[inner])
    return t[inverse].reshape(shape)


def lru_hit_frac(p: npt.ArrayLike, capacity_experts: npt.ArrayLike) -> FloatArray:
    """Hit rate of an LRU cache of C experts per layer (Che approximation), per request.

    h = sum_i q_i [1 - exp(-q_i t_C)], q_i = p_i / k, t_C from :func:`lru_characteristic_time`.
    h = 0 for C <= 0, h = 1 once C reaches the number of experts with p_i > 0 (so for C >= E),
    uniform routing gives h = C / E. h never decreases with C.

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        capacity_experts: C, cached experts per layer; scalar or array.

    Returns:
        float64 ndarray of fractions with the shape of ``capacity_experts`` (0-d for a scalar).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    _, m, q = _request_levels(probs)
    e_pos = float(m.sum())
    if q.size == 1:
        return np.asarray(np.clip(c / e_pos, 0.0, 1.0), dtype=np.float64)
    shape, (c_d,), inverse = distinct_points(c)
    h = np.where(c_d <= 0.0, 0.0, 1.0)
    inner = (c_d > 0.0) & (c_d < e_pos)
    t = _che_time(q, m, c_d[inner])
    h[inner] = -np.expm1(-np.multiply.outer(t, q)) @ (m * q)
    return h[inverse].reshape(shape)


def lru_unique_hit_frac(
    p: npt.ArrayLike, capacity_experts: npt.ArrayLike, n_tokens: npt.ArrayLike
) -> FloatArray:
    """Batch-aware LRU hit rate: share of the U(N) unique experts of a pass that are resident.

    h_U(N) = sum_i [1 - (1 - p_i)^N] o_i / U(N), with Che's stationary occupancy
    o_i = 1 - exp(-q_i t_C) of expert i in an LRU cache of C experts (q_i = p_i / k).

    This is how "locality decays as the batch grows" enters the model (MODEL.md section 5, paper
    notes section 15.6): a pass of N = B T_eff tokens fetches each touched expert once, and as N
    grows the touched set U(N) spreads from the popular experts (high o_i) into the tail (low
    o_i), so h_U falls from h_U(1) towards the mean occupancy C / E. Uniform routing gives
    h_U = C / E for every N.

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        capacity_experts: C, cached experts per layer.
        n_tokens: N, tokens in the pass (> 0, may be fractional).

    Returns:
        float64 ndarray of fractions with the broadcast shape of C and N (0-d for scalars).
    """
    probs = check_probabilities(p)
    c = as_knob(capacity_experts, "capacity_experts", allow_inf=True)
    n = as_knob(n_tokens, "n_tokens", minimum=0.0, strict_minimum=True)
    values, m, q = _request_levels(probs)
    e_pos = float(m.sum())
    if q.size == 1:
        c_b, _ = np.broadcast_arrays(c, n)
        return np.asarray(np.clip(c_b / e_pos, 0.0, 1.0), dtype=np.float64)
    shape, (c_d, n_d), inverse = distinct_points(c, n)
    c_u, c_inv = np.unique(c_d, return_inverse=True)
    t_u = np.where(c_u <= 0.0, 0.0, np.inf)
    inner = (c_u > 0.0) & (c_u < e_pos)
    t_u[inner] = _che_time(q, m, c_u[inner])
    t_d = t_u[c_inv]
    h = np.empty(c_d.size, dtype=np.float64)
    for sl in chunk_slices(c_d.size, 2 * q.size):
        u = touch_probability(n_d[sl], values)
        occupied = -np.expm1(-np.multiply.outer(t_d[sl], q))
        h[sl] = ((u * occupied) @ m) / (u @ m)
    return np.minimum(h, 1.0)[inverse].reshape(shape)


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


def simulate_lru(
    trace: npt.ArrayLike, capacity_experts: int, warmup_tokens: int = 0
) -> float:
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
