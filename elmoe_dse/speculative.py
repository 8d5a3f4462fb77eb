"""Speculative decoding: tokens per verify (chain and tree) and the Elastic-SD acceptance model.

Model (docs/model.md §6; ELMoE-3D paper, arXiv 2604.14626).

Tokens committed per sequence per verify pass, chain drafting with draft length gamma and i.i.d.
per-token acceptance alpha (the accepted run is geometric, plus the verify pass's own token)::

    tau = sum_{j=0..gamma} alpha^j = (1 - alpha^(gamma+1)) / (1 - alpha),   tau(1) = gamma + 1

A draft tree with per-depth acceptance a_t (probability that some branch at depth t is accepted,
given depth t-1 was)::

    tau = 1 + sum_{t=1..D} prod_{i<=t} a_i                                 (chain: a_t = alpha)

Acceptance length (the paper's "acceptance length") = accepted draft tokens per verify = tau - 1.

Acceptance of the Elastic-SD self-draft (separable, *assumed*; calibrated per docs/model.md §9)::

    alpha = clip(alpha_max x q_bits(b_d, rounding) x q_experts(coverage), 0, 1)

``alpha_max`` (per model and dataset, from the dataset profile) is the ceiling as both
degradations vanish. A self-draft at full precision with every expert *is* the target, whose
greedy acceptance is 1; ``alpha_max < 1`` lumps what the two factors leave out (how often the
dataset's next-token margins let a small perturbation flip the target's choice, attention and
dense weights of the draft), so the product is meant for the operating region (b_d 3-5,
coverage 0.3-1), not the exact-draft limit.

**Bit axis.** The draft takes the top b bits of each INT8 weight w (step Delta = 2^(8-b) INT8
units; the dropped low part w_lo is uniform on {0, ..., Delta-1}). Draft error e = w_hat - w:

- ``truncate``: w_hat = Delta floor(w / Delta); mean -(Delta - 1)/2, variance (Delta^2 - 1)/12.
- ``round`` (to nearest, ties to even): mean 0, variance (Delta^2 + 2)/12.
- ``lsb-augmented``: w_hat = Delta floor(w / Delta) + Delta/2; mean +1/2, variance
  (Delta^2 - 1)/12.

(b = 8: no dropped bits, e = 0 in every mode.) ``round`` needs a separately rounded copy of the
weights (a carry can reach the MSBs, so the rounded slice is not the stored MSB slice).
``lsb-augmented`` (paper section 5) puts a constant 1 in the first dropped bit position, i.e. the
mid-point of the truncated interval, so the nested MSB slice is used as stored and rounding comes
for free. Its mean-square error equals rounding's exactly; what remains is a half-LSB bias (the
mid-point of {0..Delta-1} is (Delta-1)/2, not Delta/2), which the model keeps: it is the only
difference between the two modes. (``round`` is modelled as an ideal copy: no clipping at the top
code, which a real re-rounded copy would need to handle.)

A bias adds coherently over a dot product y = sum_j w_j x_j of length d: its contribution
mean_e sum_j x_j has power mean_e^2 d^2 mean(x)^2, against the noise's var_e d E[x^2] and the
signal's sigma_w^2 d E[x^2]. The draft's relative output error is therefore::

    NSR^2 = (var_e + c x mean_e^2) / sigma_w^2,      c = d mean(x)^2 / E[x^2]  (``bias_coherence``)
    q_bits = exp(-(NSR / s)^n)

with sigma_w the weight RMS in INT8 units: symmetric absmax quantization with groups of 32 maps
each group's largest |w| to 127, and E[max of 32 |N(0,1)|] = 2.347, so sigma_w = 127 / 2.347 =
54.1 INT8 units (:data:`WEIGHT_RMS_INT8`). The scale s and the exponent n are not parameters
themselves: they are solved from two anchors of a rounded draft, q_4 = ``round_4bit_quality_frac``
and q_2 = ``round_2bit_quality_frac`` (:func:`bits_shape`)::

    n = ln(ln q_2 / ln q_4) / ln(NSR_round(2) / NSR_round(4))
    s = NSR_round(4) / (-ln q_4)^(1/n)

so that every point inside the parameter ranges keeps the paper's observations (a good 4-bit
draft, a collapse below 4 bits). Each dropped bit about doubles NSR, so with n > 1 the loss is
threshold-like: near-lossless at 4 bits, collapsed at 2 (ELMoE-3D paper, arXiv 2604.14626).

**Expert axis.** Expert throttling keeps the router's ranking restricted to the pool (paper 4.3):
out-of-pool choices are replaced by the best in-pool ones. ``coverage`` = share of the routing
mass inside the pool (``cache.hot_set_hit_frac`` for a frequency-chosen pool, C / E for a random
one)::

    q_experts = coverage^beta                         (beta = ``expert_coverage_exponent``)

Baselines: Quant-SD (a separate 4-bit copy of all experts) is approximated by
``elastic_acceptance(alpha_max, 4, "round", 1.0, params)``, so in this model it never accepts
less than Elastic-SD (the paper: more in some conditions); EAGLE-SD and SLM-SD use the profile's
fixed ``eagle_acceptance_frac`` / ``slm_acceptance_frac`` (the caller's choice).
For GPT-OSS the experts are MXFP4 and the bit axis does not apply: pass ``draft_bits = 8``.

Vectorization: every numeric argument may be a scalar or an array; arrays broadcast and the
result is a float64 ``np.ndarray`` of the broadcast shape (0-d for scalars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from elmoe_dse.cache import hot_set_hit_frac, random_pool_hit_frac
from elmoe_dse.errors import KnobError
from elmoe_dse.routing import FloatArray, as_knob, check_probabilities
from elmoe_dse.specs.dataset import AcceptanceParams, ModelProfile

__all__ = [
    "DRAFT_LENGTH_SEARCH",
    "INT8_BITS",
    "ROUNDING_MODES",
    "WEIGHT_RMS_INT8",
    "AcceptanceParams",
    "DraftQuality",
    "accepted_length",
    "accepted_length_ratio_hot_vs_random",
    "bits_quality",
    "bits_shape",
    "depth_acceptance",
    "draft_length_at_edge",
    "draft_noise_to_signal",
    "elastic_acceptance",
    "expert_quality",
    "tau_chain",
    "tau_tree",
    "tau_width_tree",
]

INT8_BITS = 8
ROUNDING_MODES = ("truncate", "round", "lsb-augmented")


@dataclass(frozen=True)
class DraftQuality:
    """What sets acceptance: a dataset profile's rates for one model, and the shape parameters.

    Built by the caller from the dataset and acceptance specs (e.g. :mod:`elmoe_dse.scenario`);
    the model reads no file.
    """

    profile: ModelProfile
    params: AcceptanceParams


#: E[max_{j<=32} |z_j|] for z ~ N(0, 1): the group-32 absmax in units of the weight RMS
#: (numerical integration of 1 - erf(x / sqrt 2)^32 over x >= 0).
GROUP32_ABSMAX_OVER_RMS = 2.347
#: Weight RMS in INT8 units under symmetric absmax G32 quantization: 127 / 2.347 = 54.1.
WEIGHT_RMS_INT8 = 127.0 / GROUP32_ABSMAX_OVER_RMS


# ----------------------------------------------------------------------------------------------
# Tokens per verify
# ----------------------------------------------------------------------------------------------


def tau_chain(acceptance_frac: npt.ArrayLike, draft_length: npt.ArrayLike) -> FloatArray:
    """Tokens committed per sequence per verify pass of a chain draft.

    tau = (1 - alpha^(gamma+1)) / (1 - alpha) = sum_{j=0..gamma} alpha^j (expected length of a
    geometric accepted run capped at gamma, plus the verify pass's own token); exactly gamma + 1
    at alpha = 1 and exactly 1 at gamma = 0 (plain decoding) or alpha = 0. Paper notes 15.5;
    Leviathan et al., "Fast inference from transformers via speculative decoding", ICML 2023.

    Args:
        acceptance_frac: alpha, per-token acceptance probability in [0, 1].
        draft_length: gamma, draft tokens per verify (>= 0; may be fractional).

    Returns:
        float64 ndarray of tokens in [1, gamma + 1] with the broadcast shape.
    """
    alpha = as_knob(acceptance_frac, "acceptance_frac", minimum=0.0, maximum=1.0)
    gamma = as_knob(draft_length, "draft_length", minimum=0.0)
    alpha, gamma = np.broadcast_arrays(alpha, gamma)
    below_one = alpha < 1.0
    denominator = np.where(below_one, 1.0 - alpha, 1.0)
    tau = np.where(below_one, (1.0 - alpha ** (gamma + 1.0)) / denominator, gamma + 1.0)
    return np.asarray(np.clip(tau, 1.0, gamma + 1.0), dtype=np.float64)


def tau_tree(per_depth_accept_frac: npt.ArrayLike) -> FloatArray:
    """Tokens committed per sequence per verify pass of a draft tree.

    tau = 1 + sum_{t=1..D} prod_{i<=t} a_i, with a_t the probability that some branch at depth
    t is accepted given depth t-1 was (ELMoE-3D paper, arXiv 2604.14626). A tree with one
    branch per depth and a_t = alpha equals :func:`tau_chain` (alpha, D).

    Args:
        per_depth_accept_frac: a_t in [0, 1]; the trailing axis is depth (length D >= 0),
            leading axes are design points.

    Returns:
        float64 ndarray of tokens in [1, D + 1], the input's shape without its last axis.
    """
    a = as_knob(per_depth_accept_frac, "per_depth_accept_frac", minimum=0.0, maximum=1.0)
    if a.ndim == 0:
        raise KnobError(
            "per_depth_accept_frac needs a depth axis (last axis = depth); pass e.g. [0.8, 0.7]"
        )
    return np.asarray(1.0 + np.cumprod(a, axis=-1).sum(axis=-1), dtype=np.float64)


def depth_acceptance(acceptance_frac: npt.ArrayLike, draft_width: npt.ArrayLike) -> FloatArray:
    """Per-depth acceptance of a tree with w candidates per depth: a = 1 - (1 - alpha)^w.

    Stated assumption: the w candidates at a depth are accepted independently, each with the
    per-token acceptance alpha (w = 1: a chain, a = alpha).
    """
    alpha = as_knob(acceptance_frac, "acceptance_frac", minimum=0.0, maximum=1.0)
    width = as_knob(draft_width, "draft_width", minimum=1.0)
    return np.asarray(1.0 - (1.0 - alpha) ** width, dtype=np.float64)


def tau_width_tree(
    acceptance_frac: npt.ArrayLike, draft_width: npt.ArrayLike, draft_length: npt.ArrayLike
) -> FloatArray:
    """Tokens committed per verify of a tree of w candidates per depth and gamma depths.

    :func:`tau_tree` with a_t = :func:`depth_acceptance` at every depth, i.e.
    tau_chain(1 - (1 - alpha)^w, gamma) (equal per-depth acceptances), vectorized over the grid.
    """
    return tau_chain(depth_acceptance(acceptance_frac, draft_width), draft_length)


#: Range of draft lengths a search covers (``draft_length`` knob): wide enough that the best
#: length is interior for acceptances up to the paper's ~0.91 (ELMoE-3D, arXiv 2604.14626).
DRAFT_LENGTH_SEARCH = (1, 16)


def draft_length_at_edge(
    chosen: npt.ArrayLike, lo: float = DRAFT_LENGTH_SEARCH[0], hi: float = DRAFT_LENGTH_SEARCH[1]
) -> npt.NDArray[np.bool_]:
    """True where a chosen (best) draft length sits on the edge of its search range [lo, hi].

    An optimum at the edge means the range, not the model, decided it; report such cells.
    NaN (no draft) is never at the edge.
    """
    g = np.asarray(chosen, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.asarray((g <= lo) | (g >= hi))


def accepted_length(acceptance_frac: npt.ArrayLike, draft_length: npt.ArrayLike) -> FloatArray:
    """Accepted draft tokens per verify (the paper's "acceptance length"): tau_chain - 1.

    Args:
        acceptance_frac: alpha in [0, 1].
        draft_length: gamma >= 0.

    Returns:
        float64 ndarray of tokens in [0, gamma].
    """
    return tau_chain(acceptance_frac, draft_length) - 1.0


# ----------------------------------------------------------------------------------------------
# Acceptance model
# ----------------------------------------------------------------------------------------------


def _draft_bits(draft_bits: npt.ArrayLike) -> FloatArray:
    bits = as_knob(draft_bits, "draft_bits", minimum=1.0, maximum=float(INT8_BITS))
    if np.any(bits != np.round(bits)):
        bad = bits[bits != np.round(bits)].flat[0]
        raise KnobError(f"draft_bits must be a whole number of bits in 1..8, got {bad!r}")
    return bits


def _error_moments(bits: FloatArray, rounding: str) -> tuple[FloatArray, FloatArray]:
    """Mean and variance (INT8 units) of the draft weight error for the top ``bits`` bits."""
    step = 2.0 ** (INT8_BITS - bits)  # Delta; 1 at 8 bits (nothing dropped)
    dropped = step > 1.0
    if rounding == "truncate":
        mean = -(step - 1.0) / 2.0
        var = (step**2 - 1.0) / 12.0
    elif rounding == "round":
        mean = np.zeros_like(step)
        var = np.where(dropped, (step**2 + 2.0) / 12.0, 0.0)
    elif rounding == "lsb-augmented":
        mean = np.where(dropped, 0.5, 0.0)
        var = (step**2 - 1.0) / 12.0
    else:
        raise KnobError(f"rounding {rounding!r} is unknown; use one of {', '.join(ROUNDING_MODES)}")
    return mean, var


def draft_noise_to_signal(
    draft_bits: npt.ArrayLike, rounding: str, params: AcceptanceParams
) -> FloatArray:
    """Relative output error of a dot product with top-``draft_bits`` INT8 weights.

    NSR = sqrt(var_e + c mean_e^2) / sigma_w, with the error moments of the module docstring's
    table (INT8 units), c = ``params.bias_coherence`` and sigma_w = :data:`WEIGHT_RMS_INT8`.
    Derived from the quantization error of the MSB slice (ELMoE-3D paper, arXiv 2604.14626); c
    is *assumed*.

    Args:
        draft_bits: b_d, kept bits of each INT8 weight, whole number in 1..8.
        rounding: ``"truncate"``, ``"round"`` or ``"lsb-augmented"``.
        params: acceptance-shape parameters.

    Returns:
        float64 ndarray (dimensionless, >= 0) with the shape of ``draft_bits``; 0 at 8 bits.
    """
    bits = _draft_bits(draft_bits)
    mean, var = _error_moments(bits, rounding)
    return np.asarray(
        np.sqrt(var + params.bias_coherence * mean**2) / WEIGHT_RMS_INT8, dtype=np.float64
    )


def bits_shape(params: AcceptanceParams) -> tuple[Any, Any]:
    """Scale s and exponent n of q_bits = exp(-(NSR / s)^n), solved from the two anchors.

    n = ln(ln q_2 / ln q_4) / ln(NSR_round(2) / NSR_round(4)) and
    s = NSR_round(4) / (-ln q_4)^(1/n), with q_4, q_2 = ``params.round_4bit_quality_frac``,
    ``params.round_2bit_quality_frac`` and NSR_round from :func:`draft_noise_to_signal`
    (independent of ``bias_coherence``: rounding is unbiased). Shipped defaults: s = 0.251,
    n = 2.44.

    Returns:
        (s, n): dimensionless NSR scale and shape exponent (both > 0); arrays of the broadcast
        shape when ``params`` holds arrays (a stack of draws, each solved as alone).
    """
    nsr4 = np.asarray(draft_noise_to_signal(4, "round", params))
    nsr2 = np.asarray(draft_noise_to_signal(2, "round", params))
    q4 = np.asarray(params.round_4bit_quality_frac, dtype=float)
    q2 = np.asarray(params.round_2bit_quality_frac, dtype=float)
    if nsr4.ndim == nsr2.ndim == q4.ndim == q2.ndim == 0:
        return _bits_shape(float(nsr4), float(nsr2), float(q4), float(q2))
    each = np.broadcast(nsr4, nsr2, q4, q2)
    pairs = np.array([_bits_shape(*map(float, row)) for row in each]).reshape(*each.shape, 2)
    return pairs[..., 0], pairs[..., 1]


def _bits_shape(nsr4: float, nsr2: float, q4: float, q2: float) -> tuple[float, float]:
    log_q4, log_q2 = math.log(q4), math.log(q2)
    exponent = math.log(log_q2 / log_q4) / math.log(nsr2 / nsr4)
    scale = nsr4 / (-log_q4) ** (1.0 / exponent)
    return scale, exponent


def bits_quality(draft_bits: npt.ArrayLike, rounding: str, params: AcceptanceParams) -> FloatArray:
    """Factor by which a b_d-bit MSB draft lowers acceptance relative to the full INT8 draft.

    q_bits = exp(-(NSR / s)^n), NSR from :func:`draft_noise_to_signal`, (s, n) from
    :func:`bits_shape`.
    q = 1 at 8 bits; non-decreasing in bits. With the shipped parameters (4 / 3 / 2 bits):
    round 0.930 / 0.676 / 0.120, lsb-augmented 0.919 / 0.666 / 0.118 (its half-LSB residual
    bias), truncate 0.006 at 4 bits (its coherent bias: "truncated MSB slices fail as a draft",
    paper 4.4).
    Shape and parameters *assumed*, chosen to match the paper's observations (ELMoE-3D paper,
    arXiv 2604.14626).

    Args:
        draft_bits: b_d, whole number in 1..8; scalar or array.
        rounding: ``"truncate"``, ``"round"`` or ``"lsb-augmented"``.
        params: acceptance-shape parameters (``load_acceptance_params()``).

    Returns:
        float64 ndarray of fractions in [0, 1] (0 only by underflow of a useless draft) with
        the shape of ``draft_bits``.
    """
    nsr = draft_noise_to_signal(draft_bits, rounding, params)
    scale, exponent = bits_shape(params)
    return np.asarray(np.exp(-((nsr / scale) ** exponent)), dtype=np.float64)


def expert_quality(coverage_frac: npt.ArrayLike, params: AcceptanceParams) -> FloatArray:
    """Factor by which a throttled expert pool lowers acceptance: q_experts = coverage^beta.

    Expert throttling keeps the router's ranking restricted to the pool (paper 4.3), so a
    token whose experts lie outside the pool gets the best in-pool ones instead; the loss grows
    with the routing mass outside the pool. q = 1 at coverage 1, 0 at coverage 0, increasing.
    beta = ``params.expert_coverage_exponent``, *assumed* (fitted to the paper's ~22 % longer
    accepted runs of a frequency-chosen pool over a random one).

    Args:
        coverage_frac: share of the routing mass inside the draft's pool, in [0, 1].
        params: acceptance-shape parameters.

    Returns:
        float64 ndarray of fractions in [0, 1] with the shape of ``coverage_frac``.
    """
    coverage = as_knob(coverage_frac, "coverage_frac", minimum=0.0, maximum=1.0)
    return np.asarray(coverage**params.expert_coverage_exponent, dtype=np.float64)


def elastic_acceptance(
    alpha_max: npt.ArrayLike,
    draft_bits: npt.ArrayLike,
    rounding: str,
    coverage_frac: npt.ArrayLike,
    params: AcceptanceParams,
) -> FloatArray:
    """Per-token acceptance of the Elastic-SD self-draft (docs/model.md §6).

    alpha = clip(alpha_max x q_bits(b_d, rounding) x q_experts(coverage), 0, 1). A fixed
    acceptance override is applied by the caller, not here.

    Args:
        alpha_max: acceptance ceiling of the model on the dataset (profile), in [0, 1].
        draft_bits: b_d, whole number in 1..8 (8 for MXFP4 experts: no bit axis).
        rounding: ``"truncate"``, ``"round"`` or ``"lsb-augmented"``.
        coverage_frac: share of the routing mass inside the pool, in [0, 1].
        params: acceptance-shape parameters.

    Returns:
        float64 ndarray of fractions in [0, 1] with the broadcast shape of the arguments.
    """
    ceiling = as_knob(alpha_max, "alpha_max", minimum=0.0, maximum=1.0)
    alpha = ceiling * bits_quality(draft_bits, rounding, params)
    alpha = alpha * expert_quality(coverage_frac, params)
    return np.asarray(np.clip(alpha, 0.0, 1.0), dtype=np.float64)


def accepted_length_ratio_hot_vs_random(
    p: npt.ArrayLike,
    pool_experts: npt.ArrayLike,
    alpha_max: npt.ArrayLike,
    draft_bits: npt.ArrayLike,
    rounding: str,
    draft_length: npt.ArrayLike,
    params: AcceptanceParams,
) -> FloatArray:
    """Acceptance length of a frequency-chosen pool over a random pool of the same size.

    ratio = (tau_hot - 1) / (tau_random - 1), each tau from :func:`tau_chain` with
    :func:`elastic_acceptance` at coverage ``cache.hot_set_hit_frac(p, C)`` (the C most popular
    experts) and ``cache.random_pool_hit_frac(E, C)`` = C / E. The paper reports about 1.22
    (GLM-4.7-Flash, MT-Bench, expert-axis ablation; ELMoE-3D paper, arXiv 2604.14626).

    Args:
        p: (E,) per-expert selection probability for one token (sum k).
        pool_experts: C, experts per layer in the pool (>= 1).
        alpha_max: acceptance ceiling, in (0, 1].
        draft_bits: b_d, whole number in 1..8.
        rounding: ``"truncate"``, ``"round"`` or ``"lsb-augmented"``.
        draft_length: gamma > 0.
        params: acceptance-shape parameters.

    Returns:
        float64 ndarray (>= 1 for any routing) with the broadcast shape of the numeric
        arguments; NaN where the draft is never accepted (both lengths 0).
    """
    probs = check_probabilities(p)
    pool = as_knob(pool_experts, "pool_experts", minimum=1.0)
    as_knob(alpha_max, "alpha_max", minimum=0.0, maximum=1.0, strict_minimum=True)
    gamma = as_knob(draft_length, "draft_length", minimum=0.0, strict_minimum=True)
    hot = elastic_acceptance(alpha_max, draft_bits, rounding, hot_set_hit_frac(probs, pool), params)
    rand_cov = random_pool_hit_frac(probs.size, pool)
    rand = elastic_acceptance(alpha_max, draft_bits, rounding, rand_cov, params)
    hot_len, rand_len = np.broadcast_arrays(
        accepted_length(hot, gamma), accepted_length(rand, gamma)
    )
    ratio = np.full(hot_len.shape, np.nan)
    np.divide(hot_len, rand_len, out=ratio, where=rand_len > 0.0)
    return ratio
