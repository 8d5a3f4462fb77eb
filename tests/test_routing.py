"""Tests for elmoe_dse.routing: probabilities, U(N) closed forms, Monte Carlo, traces."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.routing import (
    effective_tokens,
    expert_probabilities,
    parse_routing,
    probabilities_from_trace,
    sample_routing_trace,
    sample_unique_experts,
    trace_unique_experts,
    unique_experts,
)
from elmoe_dse.specs.trace import load_routing_trace

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True)


@st.composite
def routings(draw: st.DrawFn) -> np.ndarray:
    """A uniform or Zipf probability vector with E in 1..64."""
    e = draw(st.integers(1, 64))
    k = draw(st.integers(1, e))
    a = draw(st.sampled_from([0.0, 0.4, 0.8, 1.2, 2.0, 3.0]))
    return expert_probabilities(e, k, "zipf", a)


# ---------------------------------------------------------------------------------------------
# Probability vectors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("e,k", [(1, 1), (8, 2), (64, 6), (128, 8), (256, 8)])
def test_uniform_probabilities_are_k_over_e(e: int, k: int) -> None:
    p = expert_probabilities(e, k)
    assert p.shape == (e,)
    np.testing.assert_array_equal(p, np.full(e, k / e))


@pytest.mark.parametrize("e,k,a", [(64, 4, 0.8), (128, 8, 1.2), (32, 8, 1.0), (256, 8, 0.6)])
def test_zipf_sums_to_k_capped_and_descending(e: int, k: int, a: float) -> None:
    p = expert_probabilities(e, k, "zipf", a)
    assert p.sum() == pytest.approx(k, rel=1e-12)
    assert np.all(p <= 1.0) and np.all(p > 0.0)
    assert np.all(np.diff(p) <= 0.0)


def test_zipf_cap_redistributes_excess() -> None:
    """a = 3, k = 8: the raw Zipf shares exceed 1 for the top experts; they are capped at 1 and
    the rest keep the Zipf shape among themselves."""
    e, k, a = 64, 8, 3.0
    raw = k * np.arange(1, e + 1) ** -a / np.sum(np.arange(1, e + 1) ** -a)
    assert raw[0] > 1.0  # the case exercises the cap
    p = expert_probabilities(e, k, "zipf", a)
    capped = p == 1.0
    assert 1 < capped.sum() < k
    assert p.sum() == pytest.approx(k, rel=1e-12)
    assert np.all(p <= 1.0) and np.all(np.diff(p) <= 0.0)
    free = ~capped
    ranks = np.arange(1, e + 1)[free]
    np.testing.assert_allclose(p[free] / p[free][0], (ranks / ranks[0]) ** -a, rtol=1e-12)


def test_zipf_exponent_zero_is_uniform_and_k_equal_e_is_all_ones() -> None:
    np.testing.assert_allclose(expert_probabilities(16, 4, "zipf", 0.0), np.full(16, 0.25))
    np.testing.assert_array_equal(expert_probabilities(8, 8, "zipf", 2.0), np.ones(8))


@pytest.mark.parametrize(
    "args",
    [
        (0, 1, "uniform", 0.0),
        (8, 0, "uniform", 0.0),
        (8, 9, "uniform", 0.0),
        (8, 2, "zipf", -1.0),
        (8, 2, "pareto", 1.0),
        (8.0, 2, "uniform", 0.0),
        (8, 2, "zipf", float("nan")),
    ],
)
def test_expert_probabilities_rejects_bad_knobs(args: tuple) -> None:
    with pytest.raises(KnobError):
        expert_probabilities(*args)


def test_parse_routing_accepts_the_cli_forms() -> None:
    np.testing.assert_array_equal(parse_routing("uniform", 64, 4), expert_probabilities(64, 4))
    np.testing.assert_array_equal(
        parse_routing(" Zipf:1.2 ", 64, 4), expert_probabilities(64, 4, "zipf", 1.2)
    )


@pytest.mark.parametrize("text", ["", "zipf", "zipf:", "zipf:abc", "zipf:-1", "zipf:inf", "lru"])
def test_parse_routing_names_accepted_forms(text: str) -> None:
    with pytest.raises(KnobError, match="'uniform' or 'zipf:A'"):
        parse_routing(text, 64, 4)


# ---------------------------------------------------------------------------------------------
# Unique experts: closed forms
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a", [0.0, 0.8, 1.2, 3.0])
@pytest.mark.parametrize("e,k", [(32, 2), (64, 4), (128, 8)])
def test_unique_experts_at_zero_and_one_token(e: int, k: int, a: float) -> None:
    p = expert_probabilities(e, k, "zipf", a)
    assert unique_experts(p, 0.0) == 0.0
    assert unique_experts(p, 1) == pytest.approx(k, rel=1e-13)


@pytest.mark.parametrize("e,k", [(32, 2), (64, 4), (128, 8), (256, 8), (8, 8)])
def test_unique_experts_uniform_closed_form(e: int, k: int) -> None:
    n = np.array([0.0, 0.3, 1.0, 2.0, 4.0, 16.0, 80.0, 1000.0])
    expected = e * (1.0 - (1.0 - k / e) ** n)
    np.testing.assert_allclose(unique_experts(expert_probabilities(e, k), n), expected, rtol=1e-12)


def test_unique_experts_returns_array_of_knob_shape() -> None:
    p = expert_probabilities(64, 4, "zipf", 1.0)
    scalar = unique_experts(p, 3)
    assert isinstance(scalar, np.ndarray) and scalar.shape == ()
    assert unique_experts(p, np.ones((3, 1, 2))).shape == (3, 1, 2)
    assert unique_experts(expert_probabilities(64, 4), np.ones((2, 5))).shape == (2, 5)


def test_unique_experts_vector_equals_scalar_reference() -> None:
    """One array call equals a plain Python loop of sum_i 1 - (1 - p_i)^N (to 1e-12)."""
    for p in (expert_probabilities(64, 4, "zipf", 1.0), expert_probabilities(32, 8, "zipf", 3.0)):
        n = np.array([[0.0, 0.01, 0.5, 1.0], [2.0, 7.5, 40.0, 333.0]])
        got = unique_experts(p, n)
        for idx, n_val in np.ndenumerate(n):
            ref = sum(1.0 - (1.0 - float(pi)) ** float(n_val) for pi in p)
            assert got[idx] == pytest.approx(ref, rel=1e-12, abs=1e-12)
            assert unique_experts(p, float(n_val)) == got[idx]


@SETTINGS
@given(p=routings(), n1=st.floats(1.0, 500.0), n2=st.floats(1.0, 500.0))
def test_unique_experts_grows_with_n_within_k_and_e(p: np.ndarray, n1: float, n2: float) -> None:
    lo, hi = sorted((n1, n2))
    u_lo, u_hi = unique_experts(p, lo), unique_experts(p, hi)
    k = p.sum()
    assert u_lo <= u_hi + 1e-12
    assert k * (1 - 1e-12) <= u_lo and u_hi <= p.size * (1 + 1e-12)


@pytest.mark.parametrize("bad", [-1.0, float("nan"), float("inf")])
def test_unique_experts_rejects_bad_token_counts(bad: float) -> None:
    with pytest.raises(KnobError, match="n_tokens"):
        unique_experts(expert_probabilities(8, 2), [1.0, bad])


@pytest.mark.parametrize(
    "p", [[0.5, -0.1, 0.6], [1.2, 0.8], [[0.5, 0.5]], [], [float("nan"), 1.0], [0.0, 0.0]]
)
def test_bad_probability_vectors_raise(p: list) -> None:
    with pytest.raises(KnobError, match="probabilit"):
        unique_experts(p, 2.0)


def test_effective_tokens() -> None:
    assert effective_tokens(4, 5, 0.0) == 20.0  # independent routing: B T
    assert effective_tokens(4, 5, 1.0) == 4.0  # full reuse: one token per sequence
    np.testing.assert_allclose(effective_tokens(2, 5, 0.25), 2 * (1 + 4 * 0.75))
    out = effective_tokens(np.array([1, 8])[:, None], np.array([1, 4, 8]), 0.5)
    assert out.shape == (2, 3)
    np.testing.assert_allclose(out[1], 8 * (1 + (np.array([1, 4, 8]) - 1) * 0.5))
    for args in [(1, 4, 1.5), (1, 0.5, 0.0), (-1, 4, 0.0)]:
        with pytest.raises(KnobError):
            effective_tokens(*args)


# ---------------------------------------------------------------------------------------------
# Monte-Carlo reference
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a", [0.0, 0.8, 1.2])
@pytest.mark.parametrize("e", [32, 64, 128])
@pytest.mark.parametrize("k", [2, 4, 8])
def test_unique_experts_matches_monte_carlo(e: int, k: int, a: float) -> None:
    p = expert_probabilities(e, k, "zipf", a)
    rng = np.random.default_rng([e, k, int(10 * a)])
    for n in (1, 4, 16, 80):
        expected = float(unique_experts(p, n))
        # A pilot run sizes the trials so that 4 standard errors fit in the 1 % tolerance.
        pilot = sample_unique_experts(p, n, 200, rng)
        trials = max(200, math.ceil((4 * pilot.std() / (0.01 * expected)) ** 2 * 2.0))
        counts = np.concatenate([pilot, sample_unique_experts(p, n, trials - 200 + 1, rng)])
        stderr = counts.std(ddof=1) / math.sqrt(counts.size)
        assert 4 * stderr <= 0.01 * expected  # the check below has statistical power
        assert abs(counts.mean() - expected) <= 0.01 * expected, (n, counts.mean(), expected)


def test_sampler_picks_exactly_k_distinct_experts_with_marginals_p() -> None:
    p = expert_probabilities(64, 8, "zipf", 1.2)
    rng = np.random.default_rng(11)
    trace = sample_routing_trace(p, 40_000, rng)
    assert trace.shape == (40_000, 8) and trace.dtype == np.int64
    assert np.all(np.sort(trace, axis=1)[:, 1:] != np.sort(trace, axis=1)[:, :-1])
    assert trace.min() >= 0 and trace.max() < 64
    freq = np.bincount(trace.ravel(), minlength=64) / 40_000
    np.testing.assert_allclose(freq, p, atol=0.01)
    np.testing.assert_array_equal(sample_unique_experts(p, 1, 20, rng), np.full(20, 8))
    np.testing.assert_array_equal(sample_unique_experts(p, 0, 3, rng), np.zeros(3))


def test_sampler_is_reproducible_and_validates() -> None:
    p = expert_probabilities(32, 4, "zipf", 0.8)
    a = sample_routing_trace(p, 100, np.random.default_rng(5))
    b = sample_routing_trace(p, 100, np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    with pytest.raises(KnobError, match="integer k"):
        sample_routing_trace(np.full(4, 0.3), 10, np.random.default_rng(0))
    with pytest.raises(KnobError, match="Generator"):
        sample_unique_experts(p, 4, 10, 7)  # type: ignore[arg-type]
    with pytest.raises(KnobError, match="trials"):
        sample_unique_experts(p, 4, 0, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# Routing traces
# ---------------------------------------------------------------------------------------------


def _write_trace(path: Path, layers: int, p: np.ndarray, tokens: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rows = []
    for layer in range(layers):
        ids = sample_routing_trace(p, tokens, rng)
        tok = np.repeat(np.arange(tokens), ids.shape[1])
        rows.append(np.column_stack([tok, np.full(tok.size, layer + 1), ids.ravel()]))
    data = np.concatenate(rows)
    np.savetxt(path, data, fmt="%d", delimiter=",", header="token,layer,expert", comments="")
    return data


def test_trace_round_trip_and_probabilities(tmp_path: Path) -> None:
    p = expert_probabilities(32, 4, "zipf", 1.0)
    data = _write_trace(tmp_path / "t.csv", 3, p, 2000, seed=1)
    trace = load_routing_trace(tmp_path / "t.csv")
    np.testing.assert_array_equal(trace, data)
    probs = probabilities_from_trace(trace, 32, 4)
    assert probs.shape == (3, 32)
    np.testing.assert_allclose(probs.sum(axis=1), 4.0, rtol=1e-12)
    layer1 = data[data[:, 1] == 1]
    np.testing.assert_array_equal(probs[0], np.bincount(layer1[:, 2], minlength=32) / 2000)
    np.testing.assert_allclose(probs, np.broadcast_to(p, probs.shape), atol=0.04)


def test_trace_columns_in_any_order(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("expert,token,layer\n3,0,0\n1,0,0\n2,1,0\n0,1,0\n")
    np.testing.assert_array_equal(
        load_routing_trace(path), [[0, 0, 3], [0, 0, 1], [1, 0, 2], [1, 0, 0]]
    )


def test_trace_unique_experts_match_u_of_the_trace(tmp_path: Path) -> None:
    p = expert_probabilities(64, 4, "zipf", 0.8)
    trace = _write_trace(tmp_path / "t.csv", 2, p, 4000, seed=2)
    probs = probabilities_from_trace(trace, 64, 4)
    rng = np.random.default_rng(3)
    for n in (1, 8, 32):
        counts = trace_unique_experts(trace, n, rng, 400)
        assert counts.shape == (2, 400)
        if n == 1:
            np.testing.assert_array_equal(counts, 4)
        for layer in range(2):
            assert counts[layer].mean() == pytest.approx(unique_experts(probs[layer], n), rel=0.02)
    windows = trace_unique_experts(trace, 16, rng, 50, contiguous=True)
    assert windows.shape == (2, 50) and np.all((windows >= 4) & (windows <= 64))


@pytest.mark.parametrize(
    "text,match",
    [
        ("", "header"),
        ("token,layer\n0,0\n", "header"),
        ("token,layer,expert\n", "no rows"),
        ("token,layer,expert\n0,0,1\n0,0,x\n", "line 3.*'x' is not an integer"),
        ("token,layer,expert\n0,0,1\n0,0\n", "line 3 has 2 values"),
        ("token,layer,expert\n0,0,-2\n", "ids must be >= 0"),
    ],
)
def test_bad_trace_files_raise_spec_error(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(SpecError, match=match) as info:
        load_routing_trace(path)
    assert info.value.path == str(path)


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not found"):
        load_routing_trace(tmp_path / "nope.csv")


def test_trace_that_does_not_match_the_model() -> None:
    trace = np.array([[0, 0, 1], [0, 0, 2], [1, 0, 0], [1, 0, 5]])
    np.testing.assert_allclose(probabilities_from_trace(trace, 8, 2)[0, :3], [0.5, 0.5, 0.5])
    with pytest.raises(SpecError, match="num_experts"):
        probabilities_from_trace(trace, 4, 2)
    with pytest.raises(SpecError, match="experts_per_token=3"):
        probabilities_from_trace(trace, 8, 3)
    with pytest.raises(SpecError, match="twice"):
        probabilities_from_trace(np.array([[0, 0, 1], [0, 0, 1]]), 8, 2)
    with pytest.raises(KnobError, match="exceeds"):
        trace_unique_experts(trace, 3, np.random.default_rng(0), 5)
    with pytest.raises(SpecError, match="missing"):
        trace_unique_experts(np.array([[0, 0, 1], [1, 1, 1]]), 1, np.random.default_rng(0), 5)


def test_cap_and_redistribute_rows_are_independent_and_capped() -> None:
    """Weights 4:2:1:1 scaled to sum 2 give 1, 0.5, 0.25, 0.25 with no cap; to sum 3 the first
    caps at 1 and the other 2 spreads as 2:1:1 -> 1, 1, 0.5, 0.5 (the second reaches 1 exactly)."""
    from elmoe_dse.routing import cap_and_redistribute

    w = np.array([[4.0, 2.0, 1.0, 1.0], [4.0, 2.0, 1.0, 1.0]])
    two = cap_and_redistribute(w[:1], 2.0, max_rounds=5)
    np.testing.assert_allclose(two, [[1.0, 0.5, 0.25, 0.25]], rtol=1e-15)
    three = cap_and_redistribute(w[:1], 3.0, max_rounds=5)
    np.testing.assert_allclose(three, [[1.0, 1.0, 0.5, 0.5]], rtol=1e-15)
    both = cap_and_redistribute(w, np.array([[2.0], [3.0]]), max_rounds=5)  # type: ignore[arg-type]
    np.testing.assert_allclose(both, np.vstack([two, three]), rtol=1e-15)


def test_capped_pool_uses_the_zipf_cap_rule() -> None:
    """The whole pool (C = E) is the router's own vector: the same cap rule as zipf."""
    from elmoe_dse.routing import capped_pool_probabilities

    p = expert_probabilities(16, 4, "zipf", 2.0)  # its top experts are capped at 1
    assert p[0] == 1.0
    np.testing.assert_allclose(capped_pool_probabilities(p, np.array([16.0]))[0], p, rtol=1e-12)
