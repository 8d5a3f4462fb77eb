"""Expert routing: per-expert selection probabilities and the unique experts a pass touches.

Model (docs/model.md §4). For one MoE layer, expert ``i`` is chosen by one token with
probability ``p_i`` and every token chooses exactly ``k`` distinct experts, so ``sum_i p_i = k``
and ``0 <= p_i <= 1``.

- ``uniform``: ``p_i = k / E``.
- ``zipf(a)``: ``p_i ∝ rank_i^-a``, rescaled to sum ``k``; any ``p_i > 1`` is capped at 1 and the
  excess is spread over the uncapped experts in proportion to their weights, until none exceeds 1.
- ``trace``: ``p_i`` = selections of expert ``i`` / tokens, per layer, from a routing trace file.

Unique experts touched by ``N`` independent tokens (expected value)::

    U(N) = sum_i [1 - (1 - p_i)^N]            uniform: U(N) = E [1 - (1 - k/E)^N]

``N`` may be fractional. Tokens of one sequence reuse experts: with overlap fraction ``rho``
(share of a token's ``k`` experts already chosen by the previous token of its sequence) a
sequence contributing ``T`` tokens counts as ``T_eff = 1 + (T - 1)(1 - rho)`` independent tokens,
so a pass over ``B`` sequences touches ``U(B T_eff)`` experts. The evaluator no longer uses this
approximation: :func:`elmoe_dse.locality.correlated_unique` gives the union under the correlated
routing process (T_eff misses it by more than 3 % at rho = 0.8).

The Monte-Carlo reference draws each token's ``k`` distinct experts by systematic (Madow)
sampling, which gives first-order inclusion probabilities exactly ``p_i``: W. G. Madow, "On the
theory of systematic sampling, II", Ann. Math. Statist. 20(3), 1949. The expert order is permuted
per token so that the joint selection is not tied to the expert numbering.

Vectorization: every knob (``n_tokens``, ``sequences`` ...) may be a scalar or an array; arrays
broadcast and the result is a float64 ``np.ndarray`` of the broadcast shape (0-d for scalars).
Work is done once per distinct knob value, over the distinct probability levels of ``p`` (one
level for ``uniform``, which is then the closed form), in chunks of bounded memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import numpy.typing as npt

from elmoe_dse.errors import KnobError, SpecError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

ROUTING_KINDS = ("uniform", "zipf")
TRACE_COLUMNS = ("token", "layer", "expert")

# Elements of a (points x levels) work array per chunk: 2**20 float64 = 8 MB.
_CHUNK_ELEMENTS = 1 << 20


# ----------------------------------------------------------------------------------------------
# Validation helpers (shared with cache.py)
# ----------------------------------------------------------------------------------------------


def check_probabilities(p: npt.ArrayLike) -> FloatArray:
    """Return ``p`` as a 1-D float64 array after checking it is a selection-probability vector.

    Args:
        p: per-expert selection probability for one token, shape (E,), each in [0, 1],
            sum = experts per token k > 0.

    Raises:
        KnobError: if ``p`` is not 1-D, empty, non-finite, outside [0, 1] or sums to 0.
    """
    arr = np.asarray(p, dtype=np.float64)
    fix = "build it with expert_probabilities() or probabilities_from_trace()"
    if arr.ndim != 1 or arr.size == 0:
        raise KnobError(
            f"expert probabilities must be a non-empty 1-D vector (one entry per expert), got "
            f"shape {arr.shape}; {fix}"
        )
    if not np.all(np.isfinite(arr)):
        raise KnobError(f"expert probabilities contain NaN or inf; {fix}")
    if np.any(arr < 0.0) or np.any(arr > 1.0):
        bad = arr[(arr < 0.0) | (arr > 1.0)][0]
        raise KnobError(f"expert probability {bad!r} is outside [0, 1]; {fix}")
    if not arr.sum() > 0.0:
        raise KnobError(f"expert probabilities sum to 0 (no expert is ever chosen); {fix}")
    return arr


def as_knob(
    value: npt.ArrayLike,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_minimum: bool = False,
    allow_inf: bool = False,
) -> FloatArray:
    """Return a knob as a float64 array after checking it is a number in range.

    Args:
        value: scalar or array knob.
        name: the knob's name, used in the error message.
        minimum: lowest allowed value (inclusive unless ``strict_minimum``), or None.
        maximum: highest allowed value (inclusive), or None.
        strict_minimum: require ``value > minimum`` instead of ``>=``.
        allow_inf: accept +-inf (still range-checked); NaN is always rejected.

    Raises:
        KnobError: naming the knob, the offending value and the allowed range.
    """
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise KnobError(f"{name} must be a number or an array of numbers, got {value!r}") from None
    bad_mask = np.isnan(arr) if allow_inf else ~np.isfinite(arr)
    if np.any(bad_mask):
        what = "a number (not NaN)" if allow_inf else "a finite number"
        raise KnobError(f"{name} must be {what}, got {arr[bad_mask].flat[0]!r}")
    if minimum is not None:
        low = arr <= minimum if strict_minimum else arr < minimum
        if np.any(low):
            op = ">" if strict_minimum else ">="
            raise KnobError(f"{name} must be {op} {minimum:g}, got {arr[low].flat[0]!r}")
    if maximum is not None and np.any(arr > maximum):
        raise KnobError(f"{name} must be <= {maximum:g}, got {arr[arr > maximum].flat[0]!r}")
    return arr


def _as_int(value: object, name: str, minimum: int) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise KnobError."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise KnobError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise KnobError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def integer_k(probs: FloatArray) -> int:
    """Experts per token k = sum p_i, checked to be an integer >= 1 (within 1e-9 relative).

    Raises:
        KnobError: if the probabilities do not sum to an integer.
    """
    total = float(probs.sum())
    k = round(total)
    if k < 1 or abs(total - k) > 1e-9 * max(1.0, total):
        raise KnobError(
            f"expert probabilities must sum to an integer k >= 1 (experts per token) here, "
            f"got sum {total!r}; build them with expert_probabilities()"
        )
    return k


def _as_generator(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise KnobError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {rng!r}")
    return rng


def probability_levels(p: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Distinct values of ``p`` in descending order and how many experts share each.

    Every sum over experts in this package is a sum over levels weighted by the counts, so
    ``uniform`` routing costs one term (the closed form) and a trace with ties costs fewer.

    Returns:
        (values, counts): float64 arrays of equal length; ``sum(counts) = E``.
    """
    values, counts = np.unique(p, return_counts=True)
    return values[::-1].copy(), counts[::-1].astype(np.float64)


def distinct_points(
    *knobs: FloatArray,
) -> tuple[tuple[int, ...], list[FloatArray], IntArray]:
    """Broadcast knobs and reduce them to their distinct value tuples.

    A design grid repeats each knob value many times; the model is evaluated once per distinct
    tuple and scattered back with ``result[inverse].reshape(shape)``.

    Returns:
        (shape, distinct values per knob, inverse index of every flattened point).
    """
    bcast = np.broadcast_arrays(*knobs)
    shape = bcast[0].shape
    codes = []
    uniques = []
    for arr in bcast:
        u, inv = np.unique(arr.ravel(), return_inverse=True)
        uniques.append(u)
        codes.append(inv.astype(np.int64))
    if len(codes) == 1:
        return shape, uniques, codes[0]
    key = codes[0]
    for code, u in zip(codes[1:], uniques[1:], strict=True):
        key = key * np.int64(u.size) + code
    ukey, inverse = np.unique(key, return_inverse=True)
    per_knob: list[FloatArray] = []
    rest = ukey
    for u in reversed(uniques[1:]):
        per_knob.append(u[rest % u.size])
        rest = rest // u.size
    per_knob.append(uniques[0][rest])
    per_knob.reverse()
    return shape, per_knob, inverse.astype(np.int64)


def chunk_slices(n_rows: int, row_elements: int) -> Iterator[slice]:
    """Slices over ``n_rows`` rows so that a (rows x row_elements) work array stays ~8 MB."""
    step = max(1, _CHUNK_ELEMENTS // max(1, row_elements))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def row_dot(rows: FloatArray, weights: FloatArray) -> FloatArray:
    """sum_j rows[i, j] weights[j] for each row i.

    einsum rather than ``@``: its per-row sum does not depend on how many rows are passed, so a
    scalar call and any chunk of a vector call give bit-identical results.
    """
    return np.einsum("ij,j->i", rows, weights)


def log_miss(values: FloatArray) -> FloatArray:
    """``log(1 - v)`` elementwise, ``-inf`` (without a warning) where ``v = 1``."""
    with np.errstate(divide="ignore"):
        return np.log1p(-values)


def touch_probability(n_tokens: FloatArray, values: FloatArray) -> FloatArray:
    """Probability ``1 - (1 - v)^N`` that N independent tokens touch an expert of probability v.

    Computed as ``-expm1(N log1p(-v))`` for accuracy at small ``N v``. Shape (len(N), len(v)).
    ``N`` must be > 0 where ``v = 1`` (callers handle ``N = 0``).
    """
    x = np.multiply.outer(n_tokens, log_miss(values))
    np.expm1(x, out=x)
    np.negative(x, out=x)
    return x


# ----------------------------------------------------------------------------------------------
# Probability vectors
# ----------------------------------------------------------------------------------------------


def expert_probabilities(
    num_experts: int,
    experts_per_token: int,
    kind: str = "uniform",
    zipf_exponent: float = 0.0,
) -> FloatArray:
    """Per-expert selection probability for one token, sorted descending (rank 1 first).

    ``uniform``: p_i = k / E. ``zipf``: p_i = k w_i / sum_j w_j with w_i = rank_i^-a; experts whose
    p_i would exceed 1 are set to 1 and the remaining mass (k - number capped) is spread over the
    uncapped experts in proportion to w_i, repeated until no p_i exceeds 1. ``a = 0`` is uniform.

    Args:
        num_experts: routed experts per layer E (>= 1).
        experts_per_token: experts each token selects k (1 <= k <= E).
        kind: ``"uniform"`` or ``"zipf"``.
        zipf_exponent: Zipf exponent a (>= 0), used by ``zipf`` only.

    Returns:
        float64 array of shape (E,), descending, each in [0, 1], summing to k.

    Raises:
        KnobError: for an unknown kind or an out-of-range E, k or a.
    """
    e = _as_int(num_experts, "num_experts", 1)
    k = _as_int(experts_per_token, "experts_per_token", 1)
    if k > e:
        raise KnobError(
            f"experts_per_token k={k} exceeds num_experts E={e}; a token selects at most E experts"
        )
    if kind == "uniform":
        return np.full(e, k / e, dtype=np.float64)
    if kind != "zipf":
        raise KnobError(f"routing kind {kind!r} is unknown; use one of {', '.join(ROUTING_KINDS)}")
    a = float(as_knob(zipf_exponent, "zipf_exponent", minimum=0.0))
    weights = np.arange(1, e + 1, dtype=np.float64) ** -a
    # Each round caps at least one more expert and never caps k or more (their mass would
    # exceed k), so the loop ends within k rounds with at least one expert uncapped.
    return cap_and_redistribute(weights, k, max_rounds=k + 1)


def cap_and_redistribute(
    weights: npt.ArrayLike, total: float, *, max_rounds: int, tolerance: float = 0.0
) -> FloatArray:
    """Probabilities proportional to ``weights`` summing to ``total``, none above 1.

    Each round sets the members whose share exceeds ``1 + tolerance`` to 1 and spreads what is
    left (``total`` - members capped) over the uncapped ones in proportion to their weights,
    until none exceeds it (at most ``max_rounds`` rounds). Rows of a 2-D ``weights`` are
    independent (shape (n, E)); zero weights stay zero (docs/model.md §4).
    """
    weights = np.asarray(weights, dtype=np.float64)
    capped = np.zeros(weights.shape, dtype=bool)
    q = weights
    for _ in range(max_rounds):
        free = np.where(capped, 0.0, weights)
        free_sum = free.sum(axis=-1, keepdims=True)
        left = np.maximum(total - capped.sum(axis=-1, keepdims=True), 0.0)
        q = np.where(capped, 1.0, left * free / np.where(free_sum > 0, free_sum, 1.0))
        over = q > 1.0 + tolerance
        if not over.any():
            break
        capped |= over
    return np.asarray(np.minimum(q, 1.0), dtype=np.float64)


def capped_pool_probabilities(p: npt.ArrayLike, pool: npt.ArrayLike) -> FloatArray:
    """Selection probabilities when routing is throttled to the C most popular experts.

    The router's ranking is kept inside the pool (paper, arXiv 2604.14626 §4.3), so each token
    still picks min(k, C) experts: p'_i proportional to p_i for i < C, rescaled to sum min(k, C),
    capped at 1 with the excess spread over the uncapped pool members
    (:func:`cap_and_redistribute`).

    Args:
        p: per-expert selection probabilities, shape (E,), sum k.
        pool: pool sizes C, shape (n,) (floored).
    Returns:
        shape (n, E), each row summing to min(k, C), zero outside the pool.
    """
    k = float(np.sum(p))
    ps = np.sort(np.asarray(p, dtype=float))[::-1]
    inside = np.arange(ps.size) < np.floor(np.asarray(pool, dtype=float))[:, None]
    weights = np.where(inside, ps, 0.0)
    # each round caps at least one more member, or stops
    return cap_and_redistribute(weights, k, max_rounds=ps.size + 1, tolerance=1e-12)


def per_draw(fn: Callable[..., FloatArray], p: FloatArray, *grid: npt.ArrayLike) -> FloatArray:
    """``fn(p[s], *grid at s)`` for each row s of an (S, E) routing matrix, stacked on a leading
    axis of S: the arrays of ``grid`` with the most axes carry the sample axis first (of length
    S, or 1 where a value is the same for every draw); those with fewer broadcast from the right
    and are passed whole. Each draw is solved on its own probability levels, as alone."""
    arrays = [np.asarray(x, dtype=float) for x in grid]
    full = max((a.ndim for a in arrays), default=0)
    if full == 0:
        raise KnobError("per-draw routing needs grid arrays with a leading sample axis")

    def at(a: FloatArray, s: int) -> FloatArray:
        return a[s if a.shape[0] > 1 else 0] if a.ndim == full else a

    rows = [np.asarray(fn(p[s], *(at(a, s) for a in arrays))) for s in range(p.shape[0])]
    rows = list(np.broadcast_arrays(*rows))
    lead = (1,) * (full - 1 - rows[0].ndim)
    return np.stack(rows).reshape((len(rows), *lead, *rows[0].shape))


def throttled_unique(
    p: npt.ArrayLike, cache_policy: str, pool: npt.ArrayLike, n_tokens: npt.ArrayLike
) -> FloatArray:
    """Unique pool experts N draft tokens touch when routing is throttled to the pool.

    Hot pool (the C most popular experts): :func:`capped_pool_probabilities`. Random pool
    (``cache_policy == "random"``): its C members alike, p'_i = min(1, k / C).
    U = sum_i [1 - (1 - p'_i)^N]. Evaluated once per distinct (C, N) pair of the grid and
    scattered back.
    """
    if np.ndim(p) == 2:  # (S, E): one routing per draw (elmoe_dse.evaluator.ensemble)
        return per_draw(
            lambda q, c, n: throttled_unique(q, cache_policy, c, n), np.asarray(p), pool, n_tokens
        )
    k = float(np.sum(p))
    shape, (c, n), inverse = distinct_points(
        np.floor(np.asarray(pool, dtype=float)), np.asarray(n_tokens, dtype=float)
    )
    if cache_policy == "random":
        q = np.minimum(1.0, k / np.maximum(c, 1.0))
        u = np.where(c > 0, c * (1.0 - (1.0 - q) ** n), 0.0)
    else:
        q2 = capped_pool_probabilities(p, c)
        u = np.sum(1.0 - (1.0 - q2) ** n[:, None], axis=-1)
    return np.asarray(u[inverse].reshape(shape))


def parse_routing(text: str, num_experts: int, experts_per_token: int) -> FloatArray:
    """Parse a CLI routing string into probabilities: ``uniform`` or ``zipf:A`` (e.g. ``zipf:1.2``).

    Args:
        text: the routing string.
        num_experts: routed experts per layer E.
        experts_per_token: experts per token k.

    Returns:
        The (E,) probability vector of :func:`expert_probabilities`.

    Raises:
        KnobError: naming the accepted forms if ``text`` is not one of them.
    """
    accepted = "write 'uniform' or 'zipf:A' with a Zipf exponent A >= 0 (e.g. 'zipf:1.2')"
    s = str(text).strip().lower()
    if s == "uniform":
        return expert_probabilities(num_experts, experts_per_token, "uniform")
    kind, sep, arg = s.partition(":")
    if kind.strip() == "zipf" and sep:
        try:
            a = float(arg.strip())
        except ValueError:
            bad = arg.strip()
            raise KnobError(f"routing {text!r}: {bad!r} is not a number; {accepted}") from None
        if not math.isfinite(a) or a < 0.0:
            raise KnobError(f"routing {text!r}: exponent must be finite and >= 0; {accepted}")
        return expert_probabilities(num_experts, experts_per_token, "zipf", a)
    raise KnobError(f"routing {text!r} is not understood; {accepted}")


# ----------------------------------------------------------------------------------------------
# Unique experts
# ----------------------------------------------------------------------------------------------


def unique_experts(p: npt.ArrayLike, n_tokens: npt.ArrayLike) -> FloatArray:
    """Expected number of distinct experts touched by N independent tokens in one layer.

    U(N) = sum_i [1 - (1 - p_i)^N]; uniform routing: U(N) = E [1 - (1 - k/E)^N].
    U(0) = 0, U(1) = k, U grows with N towards the number of experts with p_i > 0.

    Args:
        p: (E,) selection probability per expert for one token (sum k).
        n_tokens: N, tokens in the pass (>= 0, may be fractional, e.g. B T_eff); scalar or array.

    Returns:
        float64 ndarray of experts with the shape of ``n_tokens`` (0-d for a scalar).
    """
    probs = check_probabilities(p)
    n = as_knob(n_tokens, "n_tokens", minimum=0.0)
    values, counts = probability_levels(probs)
    if values.size == 1:  # uniform: closed form, no expert axis
        safe = np.where(n > 0.0, n, 1.0)
        u = counts[0] * -np.expm1(safe * log_miss(values[:1])[0])
        return np.asarray(np.where(n > 0.0, u, 0.0), dtype=np.float64)
    shape, (n_distinct,), inverse = distinct_points(n)
    table = np.zeros(n_distinct.size, dtype=np.float64)
    positive = n_distinct > 0.0
    n_pos = n_distinct[positive]
    out = np.empty(n_pos.size, dtype=np.float64)
    for sl in chunk_slices(n_pos.size, values.size):
        out[sl] = row_dot(touch_probability(n_pos[sl], values), counts)
    table[positive] = out
    return table[inverse].reshape(shape)


def effective_tokens(
    sequences: npt.ArrayLike,
    tokens_per_sequence: npt.ArrayLike,
    overlap_frac: npt.ArrayLike,
) -> FloatArray:
    """Independent-token equivalent of a pass over B sequences of T tokens each: N = B T_eff.

    T_eff = 1 + (T - 1)(1 - rho). rho = 0 is independent routing (N = B T); rho = 1 means every
    token of a sequence reuses the first token's experts (N = B).

    Args:
        sequences: B, sequences in the pass (>= 0).
        tokens_per_sequence: T, tokens per sequence in the pass (>= 1, e.g. gamma + 1).
        overlap_frac: rho in [0, 1], share of a token's experts already chosen by the previous
            token of its sequence.

    Returns:
        float64 ndarray of tokens with the broadcast shape of the arguments (0-d for scalars).
    """
    b = as_knob(sequences, "sequences", minimum=0.0)
    t = as_knob(tokens_per_sequence, "tokens_per_sequence", minimum=1.0)
    rho = as_knob(overlap_frac, "overlap_frac", minimum=0.0, maximum=1.0)
    return np.asarray(b * (1.0 + (t - 1.0) * (1.0 - rho)), dtype=np.float64)


# ----------------------------------------------------------------------------------------------
# Monte-Carlo reference sampler
# ----------------------------------------------------------------------------------------------


def _systematic_rows(
    probs: FloatArray, k: int, n_rows: int, rng: np.random.Generator
) -> tuple[npt.NDArray[np.int16 | np.int32], npt.NDArray[np.bool_]]:
    """Draw ``n_rows`` tokens by systematic sampling in a per-token random expert order.

    For one token with experts in order pi and cumulative sums c_j = p_pi(1) + ... + p_pi(j)
    (c_E = k), draw u ~ U[0, 1) and select the experts whose interval [c_{j-1}, c_j) contains one
    of the k points u, u + 1, ..., u + k - 1. Since every p_i <= 1 no interval holds two points,
    so exactly k distinct experts are chosen and P(i selected) = p_i.

    Returns:
        (order, selected): the permuted expert ids (n_rows, E) and a mask (n_rows, E) of which
        positions of ``order`` were selected; every row has exactly k True entries.
    """
    e = probs.size
    dtype = np.int16 if e <= np.iinfo(np.int16).max else np.int32
    base = np.arange(e, dtype=dtype)
    order = rng.permuted(np.broadcast_to(base, (n_rows, e)), axis=1)
    selected = np.zeros((n_rows, e), dtype=bool)
    todo = np.arange(n_rows)
    # A row fails only if rounding puts two points in one interval or k - u rounds down
    # (probability ~1e-16 per row); such rows are redrawn.
    for _ in range(100):
        cum = np.cumsum(probs[order[todo]], axis=1)
        cum[:, -1] = k
        u = rng.random((todo.size, 1))
        edges = np.ceil(cum - u)
        counts = np.diff(edges, axis=1, prepend=0.0)
        selected[todo] = counts > 0.0
        ok = (counts.max(axis=1) <= 1.0) & (counts.sum(axis=1) == k)
        todo = todo[~ok]
        if todo.size == 0:
            return order, selected
        order[todo] = rng.permuted(np.broadcast_to(base, (todo.size, e)), axis=1)
    raise RuntimeError("systematic sampling failed to draw valid rows")  # pragma: no cover


def sample_routing_trace(p: npt.ArrayLike, n_tokens: int, rng: np.random.Generator) -> IntArray:
    """Sample the expert ids chosen by ``n_tokens`` independent tokens in one layer.

    Each token selects exactly k distinct experts with P(expert i selected) = p_i (systematic
    sampling in a per-token random expert order, see :func:`sample_unique_experts`).

    Args:
        p: (E,) selection probabilities summing to an integer k.
        n_tokens: tokens to draw (>= 0).
        rng: numpy Generator (seed it for reproducible traces).

    Returns:
        int64 array (n_tokens, k) of expert ids; each row lists its k distinct experts in the
        token's random order (the order in which a cache sees the requests).
    """
    probs = check_probabilities(p)
    k = integer_k(probs)
    n = _as_int(n_tokens, "n_tokens", 0)
    gen = _as_generator(rng)
    out = np.empty((n, k), dtype=np.int64)
    for sl in chunk_slices(n, probs.size):
        order, selected = _systematic_rows(probs, k, sl.stop - sl.start, gen)
        out[sl] = order[selected].reshape(-1, k)
    return out


def sample_unique_experts(
    p: npt.ArrayLike, n_tokens: int, trials: int, rng: np.random.Generator
) -> IntArray:
    """Monte-Carlo reference for :func:`unique_experts`: distinct experts per pass of N tokens.

    Each token independently selects exactly k distinct experts with first-order inclusion
    probabilities exactly p_i (systematic / Madow sampling over a randomly permuted expert order
    per token). Each trial is one pass of ``n_tokens`` tokens; its result is the number of
    distinct experts selected. The mean over trials estimates U(N).

    Args:
        p: (E,) selection probabilities summing to an integer k.
        n_tokens: N, tokens per pass (>= 0).
        trials: number of independent passes (>= 1).
        rng: numpy Generator.

    Returns:
        int64 array (trials,) of distinct-expert counts.
    """
    probs = check_probabilities(p)
    k = integer_k(probs)
    n = _as_int(n_tokens, "n_tokens", 0)
    n_trials = _as_int(trials, "trials", 1)
    gen = _as_generator(rng)
    e = probs.size
    result = np.zeros(n_trials, dtype=np.int64)
    if n == 0:
        return result
    for sl in chunk_slices(n_trials, n * e):
        rows = (sl.stop - sl.start) * n
        order, selected = _systematic_rows(probs, k, rows, gen)
        touched = np.zeros((rows, e), dtype=bool)
        np.put_along_axis(touched, order.astype(np.intp), selected, axis=1)
        result[sl] = touched.reshape(-1, n, e).any(axis=1).sum(axis=1)
    return result


# ----------------------------------------------------------------------------------------------
# Routing traces
# ----------------------------------------------------------------------------------------------


def _check_trace(trace: npt.ArrayLike) -> IntArray:
    arr = np.asarray(trace)
    if arr.ndim != 2 or arr.shape[1] != 3 or arr.shape[0] == 0:
        raise SpecError(
            f"routing trace must be an array (rows, 3) of token, layer, expert ids, got shape "
            f"{arr.shape}; read it with specs.trace.load_routing_trace()"
        )
    if not np.issubdtype(arr.dtype, np.integer):
        raise SpecError(
            "routing trace ids must be integers; read it with specs.trace.load_routing_trace()"
        )
    arr = arr.astype(np.int64, copy=False)
    if (arr < 0).any():
        raise SpecError("routing trace ids must be >= 0")
    return arr


def _trace_groups(trace: IntArray) -> tuple[IntArray, IntArray, IntArray, int]:
    """Index layers and tokens; check that no (token, layer) selects an expert twice.

    Returns:
        (layer index per row, token index per row, selections per (layer, token) cell as an
        array (layers, tokens), number of distinct expert ids).
    """
    layer_ids, layer_idx = np.unique(trace[:, 1], return_inverse=True)
    token_ids, token_idx = np.unique(trace[:, 0], return_inverse=True)
    n_experts = int(trace[:, 2].max()) + 1
    cell = layer_idx.astype(np.int64) * token_ids.size + token_idx
    if np.unique(cell * n_experts + trace[:, 2]).size != trace.shape[0]:
        raise SpecError(
            "a token selects the same expert twice in one layer; keep one row per selection",
            field="expert",
        )
    per_cell = np.bincount(cell, minlength=layer_ids.size * token_ids.size)
    return (
        layer_idx.astype(np.int64),
        token_idx.astype(np.int64),
        per_cell.reshape(layer_ids.size, token_ids.size),
        n_experts,
    )


def probabilities_from_trace(
    trace_array: npt.ArrayLike, num_experts: int, experts_per_token: int
) -> FloatArray:
    """Per-layer selection probabilities estimated from a routing trace.

    p[l, i] = (selections of expert i in layer l) / (tokens routed in layer l), so each row sums
    to k. Row l is the l-th smallest layer id present in the trace; column i is expert id i (not
    sorted by popularity).

    Args:
        trace_array: (rows, 3) int array of (token, layer, expert), from
            :func:`elmoe_dse.specs.trace.load_routing_trace`.
        num_experts: routed experts per layer E; every expert id must be < E.
        experts_per_token: k; every (token, layer) in the trace must have exactly k selections.

    Returns:
        float64 array (layers, E).

    Raises:
        SpecError: if the trace does not match E and k or repeats a selection.
    """
    e = _as_int(num_experts, "num_experts", 1)
    k = _as_int(experts_per_token, "experts_per_token", 1)
    trace = _check_trace(trace_array)
    if int(trace[:, 2].max()) >= e:
        raise SpecError(
            f"expert id {int(trace[:, 2].max())} >= num_experts {e}; the trace is for another "
            f"model or the ids are not 0-based",
            field="expert",
        )
    layer_idx, _, per_cell, _ = _trace_groups(trace)
    present = per_cell > 0
    if np.any(per_cell[present] != k):
        bad = int(per_cell[present][per_cell[present] != k][0])
        raise SpecError(
            f"a token has {bad} selections in one layer; the model routes each token to "
            f"experts_per_token={k}",
            field="expert",
        )
    n_layers = per_cell.shape[0]
    counts = np.bincount(layer_idx * e + trace[:, 2], minlength=n_layers * e).reshape(n_layers, e)
    tokens = present.sum(axis=1)
    return counts / tokens[:, None]


def trace_unique_experts(
    trace_array: npt.ArrayLike,
    n_tokens: int,
    rng: np.random.Generator,
    trials: int,
    *,
    contiguous: bool = False,
) -> IntArray:
    """Exact distinct-expert counts of groups of ``n_tokens`` real tokens drawn from a trace.

    Each trial draws one group of ``n_tokens`` distinct tokens (the same tokens in every layer)
    and counts, per layer, the distinct experts the group selected. With ``contiguous=False`` the
    group is a uniform random subset (independent requests in a batch); with ``contiguous=True``
    it is a window of consecutive token ids (positions of one sequence), which keeps the trace's
    temporal locality. The mean over trials is the trace's empirical U(N).

    Args:
        trace_array: (rows, 3) int array of (token, layer, expert) from
            :func:`elmoe_dse.specs.trace.load_routing_trace`;
            every token must be routed in every layer with the same number of selections.
        n_tokens: N, tokens per group (1 <= N <= tokens in the trace).
        rng: numpy Generator.
        trials: number of groups drawn (>= 1).
        contiguous: draw windows of consecutive token ids instead of random subsets.

    Returns:
        int64 array (layers, trials); row l is the l-th smallest layer id.

    Raises:
        SpecError: if a token is missing from a layer or selection counts differ.
        KnobError: for N outside [1, tokens in trace] or trials < 1.
    """
    trace = _check_trace(trace_array)
    n_trials = _as_int(trials, "trials", 1)
    gen = _as_generator(rng)
    layer_idx, token_idx, per_cell, n_experts = _trace_groups(trace)
    n_layers, n_tok = per_cell.shape
    if np.any(per_cell == 0):
        raise SpecError(
            "a token is missing from a layer; every token must have its selections in every "
            "layer to count unique experts per group",
            field="layer",
        )
    k = int(per_cell[0, 0])
    if np.any(per_cell != k):
        raise SpecError("tokens have different numbers of selections per layer", field="expert")
    n = _as_int(n_tokens, "n_tokens", 1)
    if n > n_tok:
        raise KnobError(f"n_tokens={n} exceeds the {n_tok} tokens in the trace; use a smaller N")
    # Expert ids per (layer, token), k of them: sel[l, t, :].
    order = np.lexsort((token_idx, layer_idx))
    sel = trace[order, 2].reshape(n_layers, n_tok, k)
    if contiguous:
        starts = gen.integers(0, n_tok - n + 1, size=n_trials)
        groups = starts[:, None] + np.arange(n)[None, :]
    else:
        groups = np.stack([gen.choice(n_tok, size=n, replace=False) for _ in range(n_trials)])
    result = np.empty((n_layers, n_trials), dtype=np.int64)
    for sl in chunk_slices(n_trials, n_layers * max(n * k, n_experts)):
        g = groups[sl]
        m = g.shape[0]
        picked = sel[:, g, :].reshape(n_layers, m, n * k)  # (layers, trials, N k)
        cell = (np.arange(n_layers * m, dtype=np.int64) * n_experts).reshape(n_layers, m, 1)
        hits = np.bincount((cell + picked).ravel(), minlength=n_layers * m * n_experts)
        result[:, sl] = (hits.reshape(n_layers, m, n_experts) > 0).sum(axis=2)
    return result
