"""Tests for elmoe_dse.cache: slots, hot set, LRU (window and classic Che) and random pool."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elmoe_dse.cache import (
    expert_slots_per_layer,
    hot_set_hit_frac,
    hot_set_unique_hit_frac,
    lru_characteristic_time,
    lru_hit_frac,
    lru_unique_hit_frac,
    lru_window_passes,
    random_pool_hit_frac,
    simulate_lru,
    simulate_pass_lru,
)
from elmoe_dse.errors import KnobError
from elmoe_dse.routing import expert_probabilities, sample_routing_trace, unique_experts

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)
GRANULARITIES = ("token", "request")


@st.composite
def routings(draw: st.DrawFn) -> np.ndarray:
    """A uniform or Zipf probability vector with E in 2..64."""
    e = draw(st.integers(2, 64))
    k = draw(st.integers(1, min(e, 8)))
    a = draw(st.sampled_from([0.0, 0.5, 1.0, 1.5, 3.0]))
    return expert_probabilities(e, k, "zipf", a)


def _absent(v: float, tau: float) -> float:
    """S(v, tau) = (1 - v)^floor(tau) (1 - frac(tau) v), scalar reference."""
    whole = math.floor(tau)
    return (1.0 - v) ** whole * (1.0 - (tau - whole) * v)


def _che_time_reference(p: np.ndarray, c: float) -> float:
    """Scalar bisection on sum_i 1 - exp(-q_i t) = C to the last bit."""
    q = [float(x) / float(p.sum()) for x in p]
    lo, hi = 0.0, 1.0
    while sum(1 - math.exp(-qi * hi) for qi in q) < c:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if sum(1 - math.exp(-qi * mid) for qi in q) < c:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------------------------
# Slots
# ---------------------------------------------------------------------------------------------


def test_expert_slots_worked_example() -> None:
    """8 GB HB, 1.3 GB resident weights, 48 MoE layers, MSB4 slices of 2.505 MB, E = 128."""
    gb = 1e9
    slots = expert_slots_per_layer(8 * gb, 1.3 * gb, [0.0, 1 * gb, 7 * gb], 0.0, 48, 2.505e6, 128)
    left = np.array([6.7, 5.7, -0.3]) * gb
    np.testing.assert_array_equal(slots, np.clip(np.floor(left / (48 * 2.505e6)), 0, 128))
    assert slots.dtype == np.int64 and slots[2] == 0  # KV has priority: nothing left
    assert expert_slots_per_layer(1e12, 0, 0, 0, 2, 1e6, 64) == 64  # clipped to E


def test_expert_slots_exact_fit_survives_rounding() -> None:
    per_expert, layers = 0.1 * 3, 7  # float products that do not round-trip exactly
    capacity = 0.7 + 0.2 + 0.05 + 5 * layers * per_expert
    assert expert_slots_per_layer(capacity, 0.7, 0.2, 0.05, layers, per_expert, 64) == 5


def test_expert_slots_broadcast_and_validate() -> None:
    out = expert_slots_per_layer(np.array([4e9, 8e9])[:, None], 1e9, 0, [0, 1e9, 2e9], 24, 1e7, 64)
    assert out.shape == (2, 3)
    assert np.all(np.diff(out, axis=1) <= 0)  # a draft model takes slots away
    good: dict[str, float] = {
        "capacity_bytes": 8e9,
        "resident_bytes": 1e9,
        "kv_bytes": 0.0,
        "draft_bytes": 0.0,
        "num_moe_layers": 24,
        "bytes_per_expert": 1e7,
        "num_experts": 64,
    }
    for name, value in [("bytes_per_expert", 0.0), ("num_moe_layers", 0), ("kv_bytes", -1.0)]:
        with pytest.raises(KnobError, match=name):
            expert_slots_per_layer(**{**good, name: value})


# ---------------------------------------------------------------------------------------------
# Static hot set and random pool
# ---------------------------------------------------------------------------------------------


def test_hot_set_closed_cases() -> None:
    p = expert_probabilities(64, 4, "zipf", 1.1)
    np.testing.assert_array_equal(hot_set_hit_frac(p, [0, 64, -3, 1e9, np.inf]), [0, 1, 0, 1, 1])
    assert hot_set_hit_frac(p, 5.9) == hot_set_hit_frac(p, 5)  # C is floored
    assert hot_set_hit_frac(p, 3) == pytest.approx(p[:3].sum() / 4, rel=1e-15)
    uniform = expert_probabilities(64, 4)
    np.testing.assert_allclose(hot_set_hit_frac(uniform, np.arange(65)), np.arange(65) / 64)
    shuffled = np.random.default_rng(0).permutation(p)  # order of p does not matter
    assert hot_set_hit_frac(shuffled, 7) == pytest.approx(hot_set_hit_frac(p, 7), rel=1e-15)
    with pytest.raises(KnobError, match="pool_experts"):
        hot_set_hit_frac(p, float("nan"))


def test_random_pool() -> None:
    np.testing.assert_allclose(
        random_pool_hit_frac(64, [0, 16, 16.7, 64, 100, -2]), [0, 0.25, 0.25, 1, 1, 0]
    )
    assert random_pool_hit_frac(np.array([32, 64])[:, None], [8, 16]).shape == (2, 2)
    with pytest.raises(KnobError, match="num_experts"):
        random_pool_hit_frac(0, 4)


@pytest.mark.parametrize("e,k,a", [(64, 4, 1.0), (128, 8, 1.2)])
def test_hot_set_matches_sampled_selections(e: int, k: int, a: float) -> None:
    """Fraction of sampled selections that fall in the top C = formula, within 1 % absolute."""
    p = expert_probabilities(e, k, "zipf", a)
    trace = sample_routing_trace(p, 50_000, np.random.default_rng(21))
    for c in (4, 8, 16, 32):
        sampled = np.mean(trace < c)  # expert ids are ranks: top C = ids 0..C-1
        assert abs(sampled - hot_set_hit_frac(p, c)) <= 0.01


def test_hot_set_unique_matches_sampled_passes() -> None:
    """Resident share of the unique experts of sampled passes = formula, within 1 % absolute."""
    p = expert_probabilities(128, 8, "zipf", 1.2)
    rng = np.random.default_rng(4)
    for n in (1, 4, 16):
        trace = sample_routing_trace(p, 2000 * n, rng).reshape(2000, n * 8)
        touched = np.zeros((2000, 128), dtype=bool)
        np.put_along_axis(touched, trace, True, axis=1)
        for c in (8, 32):
            sampled = touched[:, :c].sum() / touched.sum()
            assert abs(sampled - hot_set_unique_hit_frac(p, c, n)) <= 0.01


def test_hot_set_unique_closed_cases() -> None:
    p = expert_probabilities(64, 4, "zipf", 1.1)
    n = np.array([0.5, 1.0, 4.0, 80.0])
    np.testing.assert_array_equal(hot_set_unique_hit_frac(p, 0, n), 0.0)
    np.testing.assert_array_equal(hot_set_unique_hit_frac(p, 64, n), 1.0)
    uniform = expert_probabilities(64, 4)
    np.testing.assert_allclose(
        hot_set_unique_hit_frac(uniform, np.arange(65)[:, None], n),
        np.broadcast_to(np.arange(65)[:, None] / 64, (65, 4)),
    )
    # Locality decays as the pass grows: the share in the hot set falls with N.
    assert np.all(np.diff(hot_set_unique_hit_frac(p, 8, n)) < 0)
    assert hot_set_unique_hit_frac(p, 8, 1.0) == pytest.approx(np.sum(p[:8] ** 1) / 4, rel=1e-12)
    with pytest.raises(KnobError, match="n_tokens"):
        hot_set_unique_hit_frac(p, 8, 0.0)


@SETTINGS
@given(p=routings(), c1=st.integers(-2, 70), c2=st.integers(-2, 70), n=st.floats(0.01, 300))
def test_hot_set_monotone_and_bounded(p: np.ndarray, c1: int, c2: int, n: float) -> None:
    lo, hi = sorted((c1, c2))
    assert hot_set_hit_frac(p, lo) <= hot_set_hit_frac(p, hi)
    assert hot_set_hit_frac(p, 0) == 0.0 and hot_set_hit_frac(p, p.size) == 1.0
    h_lo, h_hi = hot_set_unique_hit_frac(p, lo, n), hot_set_unique_hit_frac(p, hi, n)
    assert 0.0 <= h_lo <= h_hi <= 1.0


# ---------------------------------------------------------------------------------------------
# LRU: equations and closed cases
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a", [0.0, 0.6, 1.4, 3.0])
def test_che_time_solves_its_equation(a: float) -> None:
    p = expert_probabilities(128, 8, "zipf", a)
    c = np.array([0.25, 1.0, 7.0, 32.0, 100.0, 127.0, 127.999])
    t = lru_characteristic_time(p, c)
    q = p / 8
    occupied = np.sum(-np.expm1(-np.multiply.outer(t, q)), axis=1)
    np.testing.assert_allclose(occupied, c, rtol=1e-11)
    np.testing.assert_array_equal(
        lru_characteristic_time(p, [-1, 0, 128, 500, np.inf]), [0, 0, np.inf, np.inf, np.inf]
    )


def test_che_time_and_hit_uniform_closed_form() -> None:
    p = expert_probabilities(64, 4)
    c = np.arange(1, 64, dtype=float)
    np.testing.assert_allclose(lru_characteristic_time(p, c), -64 * np.log1p(-c / 64), rtol=1e-13)
    np.testing.assert_allclose(lru_hit_frac(p, c, granularity="request"), c / 64, rtol=1e-13)
    np.testing.assert_allclose(lru_unique_hit_frac(p, c, 7.0), c / 64, rtol=1e-13)


@pytest.mark.parametrize("a", [0.0, 1.0, 3.0])
def test_window_solves_its_equation(a: float) -> None:
    p = expert_probabilities(64, 8, "zipf", a)
    for n in (1.0, 3.0, 16.0):
        c = np.array([0.5, 4.0, 8.0, 30.0, 63.0])
        tau = lru_window_passes(p, c, n)
        u = 1 - (1 - p) ** n
        for ci, ti in zip(c, tau, strict=True):
            assert sum(1 - _absent(float(ui), float(ti)) for ui in u) == pytest.approx(
                ci, rel=1e-11
            )
    assert lru_window_passes(p, 64, 2.0) == np.inf and lru_window_passes(p, 0, 2.0) == 0.0


@pytest.mark.parametrize("granularity", GRANULARITIES)
def test_lru_closed_cases(granularity: str) -> None:
    p = expert_probabilities(64, 4, "zipf", 1.0)
    np.testing.assert_array_equal(
        lru_hit_frac(p, [-1, 0, 64, 1e6, np.inf], granularity=granularity), [0, 0, 1, 1, 1]
    )
    np.testing.assert_array_equal(
        lru_unique_hit_frac(p, [0, 64], 5.0, granularity=granularity), [0, 1]
    )
    # Experts that are never chosen need no slot: C = 3 holds all of p = (1, 1, 1, 0).
    assert lru_hit_frac([1.0, 1.0, 1.0, 0.0], 3, granularity=granularity) == 1.0


def test_lru_token_window_is_exact_for_a_single_level_of_certain_experts() -> None:
    """k = E: every token requests all experts in random order. Position j hits iff the expert
    was among the last C - (j - 1) of the previous token (window model: share
    (C - (j - 1)) / (E - (j - 1)) of the previous token)."""
    e, c = 8, 5
    expected = np.mean([max(c - j, 0) / (e - j) for j in range(e)])
    assert lru_hit_frac(np.ones(e), c) == pytest.approx(expected, rel=1e-13)


def test_lru_rejects_bad_arguments() -> None:
    p = expert_probabilities(64, 4, "zipf", 1.0)
    with pytest.raises(KnobError, match="granularity"):
        lru_hit_frac(p, 8, granularity="block")
    with pytest.raises(KnobError, match="capacity_experts"):
        lru_hit_frac(p, [8, float("nan")])
    with pytest.raises(KnobError, match="n_tokens"):
        lru_unique_hit_frac(p, 8, -1.0)
    with pytest.raises(KnobError, match="integer k"):
        lru_hit_frac(np.full(8, 0.3), 4)
    assert lru_hit_frac(np.full(8, 0.3), 4, granularity="request") == pytest.approx(0.5)


@SETTINGS
@given(p=routings(), c1=st.floats(-1, 70), c2=st.floats(-1, 70), n=st.floats(0.01, 300))
def test_lru_monotone_and_bounded(p: np.ndarray, c1: float, c2: float, n: float) -> None:
    lo, hi = sorted((c1, c2))
    for g in GRANULARITIES:
        h_lo, h_hi = lru_hit_frac(p, lo, granularity=g), lru_hit_frac(p, hi, granularity=g)
        assert 0.0 <= h_lo <= h_hi + 1e-12 and h_hi <= 1.0
        u_lo = lru_unique_hit_frac(p, lo, n, granularity=g)
        u_hi = lru_unique_hit_frac(p, hi, n, granularity=g)
        assert 0.0 <= u_lo <= u_hi + 1e-12 and u_hi <= 1.0


# ---------------------------------------------------------------------------------------------
# LRU against exact simulation
# ---------------------------------------------------------------------------------------------

WARMUP_TOKENS, COUNTED_TOKENS = 10_000, 50_000


@pytest.mark.parametrize("a", [0.6, 1.0, 1.4])
@pytest.mark.parametrize("e,k", [(64, 4), (128, 8)])
def test_lru_matches_exact_simulation(e: int, k: int, a: float) -> None:
    """Token-window LRU vs exact LRU on a seeded Zipf trace: within 2 % absolute for every C.
    Classic Che (request granularity) meets 2 % only once C >= 4 k; below it overestimates."""
    p = expert_probabilities(e, k, "zipf", a)
    trace = sample_routing_trace(p, WARMUP_TOKENS + COUNTED_TOKENS, np.random.default_rng(7))
    capacities = [8, 16, 32, 48]
    token = lru_hit_frac(p, capacities)
    classic = lru_hit_frac(p, capacities, granularity="request")
    for c, h_token, h_classic in zip(capacities, token, classic, strict=True):
        exact = simulate_lru(trace, c, warmup_tokens=WARMUP_TOKENS)
        assert abs(h_token - exact) <= 0.02, (c, h_token, exact)
        if c >= 4 * k:
            assert abs(h_classic - exact) <= 0.02, (c, h_classic, exact)
        assert h_classic >= exact - 0.01  # classic Che never falls far below exact LRU here


@pytest.mark.parametrize("e,k,a", [(128, 8, 1.2), (64, 4, 0.6)])
def test_lru_unique_matches_pass_simulation(e: int, k: int, a: float) -> None:
    """Batch-aware LRU vs an exact LRU over passes of N tokens: within 2 % absolute."""
    p = expert_probabilities(e, k, "zipf", a)
    rng = np.random.default_rng(12)
    for n, passes in ((1, 20_000), (4, 6_000), (16, 2_000)):
        trace = sample_routing_trace(p, n * passes, rng)
        for c in (8, 32):
            exact = simulate_pass_lru(trace, c, n, rng, warmup_passes=passes // 10)
            model = lru_unique_hit_frac(p, c, n)
            assert abs(model - exact) <= 0.02, (n, c, model, exact)


def test_lru_unique_decays_with_batch() -> None:
    p = expert_probabilities(128, 8, "zipf", 1.2)
    h = lru_unique_hit_frac(p, 32, np.array([1, 2, 4, 8, 16, 64, 256]))
    assert np.all(np.diff(h) < 0) and h[-1] == pytest.approx(32 / 128, abs=0.01)


def test_simulate_lru_by_hand() -> None:
    # C = 2: 0 m, 1 m, 0 h, 2 m (evict 1), 1 m (evict 0), 0 m (evict 2) -> 1 hit of 6
    trace = np.array([[0, 1], [0, 2], [1, 0]])
    assert simulate_lru(trace, 2) == pytest.approx(1 / 6)
    assert simulate_lru(trace, 0) == 0.0
    assert simulate_lru(trace, 3) == pytest.approx(3 / 6)
    assert simulate_lru(trace, 3, warmup_tokens=2) == 1.0
    with pytest.raises(KnobError, match="warmup_tokens"):
        simulate_lru(trace, 2, warmup_tokens=3)


# ---------------------------------------------------------------------------------------------
# Vector path equals scalar references
# ---------------------------------------------------------------------------------------------


def test_vector_path_equals_scalar_loop() -> None:
    """Each function on a (C x N) grid equals a loop of scalar calls (to 1e-12) and the plain
    formula written with Python floats."""
    p = expert_probabilities(32, 4, "zipf", 1.3)
    k = 4.0
    c = np.array([0.0, 1.0, 3.0, 7.0, 16.0, 31.0, 32.0])[:, None]
    n = np.array([0.25, 1.0, 5.0, 40.0])[None, :]
    order = np.argsort(-p)
    grids = {
        "hot": hot_set_hit_frac(p, c),
        "hot_u": hot_set_unique_hit_frac(p, c, n),
        "che_t": lru_characteristic_time(p, c),
        "che_h": lru_hit_frac(p, c, granularity="request"),
        "tok_h": lru_hit_frac(p, c),
        "che_u": lru_unique_hit_frac(p, c, n, granularity="request"),
        "tok_u": lru_unique_hit_frac(p, c, n),
        "tau": lru_window_passes(p, c, n),
    }
    for (i, j), n_val in np.ndenumerate(np.broadcast_to(n, (c.size, n.size))):
        cv, nv = float(c[i, 0]), float(n_val)
        scalar = {
            "hot": hot_set_hit_frac(p, cv),
            "hot_u": hot_set_unique_hit_frac(p, cv, nv),
            "che_t": lru_characteristic_time(p, cv),
            "che_h": lru_hit_frac(p, cv, granularity="request"),
            "tok_h": lru_hit_frac(p, cv),
            "che_u": lru_unique_hit_frac(p, cv, nv, granularity="request"),
            "tok_u": lru_unique_hit_frac(p, cv, nv),
            "tau": lru_window_passes(p, cv, nv),
        }
        for name, grid in grids.items():
            value = grid[i, 0] if grid.shape[1] == 1 else grid[i, j]
            assert scalar[name] == pytest.approx(value, rel=1e-12, abs=1e-12), name
            assert isinstance(scalar[name], np.ndarray) and scalar[name].shape == ()
        # Plain formulas.
        top = [float(p[o]) for o in order[: int(cv)]]
        u_all = [1 - (1 - float(x)) ** nv for x in p]
        u_top = [1 - (1 - x) ** nv for x in top]
        assert grids["hot"][i, 0] == pytest.approx(sum(top) / k, rel=1e-12, abs=1e-12)
        assert grids["hot_u"][i, j] == pytest.approx(sum(u_top) / sum(u_all), rel=1e-12, abs=1e-12)
        if 0 < cv < 32:
            t = _che_time_reference(p, cv)
            assert grids["che_t"][i, 0] == pytest.approx(t, rel=1e-12)
            h = sum(float(x) / k * (1 - math.exp(-float(x) / k * t)) for x in p)
            assert grids["che_h"][i, 0] == pytest.approx(h, rel=1e-12)
            occ = [1 - math.exp(-float(x) / k * t) for x in p]
            h_u = sum(a * b for a, b in zip(u_all, occ, strict=True)) / sum(u_all)
            assert grids["che_u"][i, j] == pytest.approx(h_u, rel=1e-12)
            tau = float(grids["tau"][i, j])
            occ_tok = [1 - _absent(x, tau) for x in u_all]
            h_tok = sum(a * b for a, b in zip(u_all, occ_tok, strict=True)) / sum(u_all)
            assert grids["tok_u"][i, j] == pytest.approx(h_tok, rel=1e-12)


def test_unique_hit_at_one_token_is_the_lookup_together_rate() -> None:
    """h_U(1) under the token window = hit rate of a token whose k experts are looked up
    together: sum_i (p_i / k) o_i with o_i from the window at a token boundary."""
    p = expert_probabilities(64, 4, "zipf", 1.0)
    tau = float(lru_window_passes(p, 12, 1.0))
    expected = sum(float(x) / 4 * (1 - _absent(float(x), tau)) for x in p)
    assert lru_unique_hit_frac(p, 12, 1.0) == pytest.approx(expected, rel=1e-12)
    assert lru_unique_hit_frac(p, 12, 1.0) > lru_hit_frac(p, 12)
    assert float(unique_experts(p, 1.0)) == pytest.approx(4.0)


def test_resident_fracs_dispatch_by_replacement_policy() -> None:
    """Uniform routing: h_U = C / E for hot, LRU and random pools, and h = C / E for the static
    ones (LRU's per-request h is lower: a token's own earlier experts take part of its window);
    no pool serves nothing."""
    from elmoe_dse.cache import resident_fracs

    p = np.full(64, 4 / 64)
    slots, n = np.array([8.0, 16.0, 32.0]), np.array([1.0, 4.0, 16.0])
    for policy in ("hot", "lru", "random"):
        h, h_u = resident_fracs(policy, p, slots, n)
        np.testing.assert_allclose(h_u, slots / 64, rtol=1e-9, err_msg=policy)
        if policy != "lru":
            np.testing.assert_allclose(h, slots / 64, rtol=1e-9, err_msg=policy)
        else:
            np.testing.assert_array_equal(h, lru_hit_frac(p, slots))
    h, h_u = resident_fracs("none", p, slots, n)
    np.testing.assert_array_equal(h, 0.0)
    np.testing.assert_array_equal(h_u, 0.0)
