"""More than one device: a parallel layout, the load of its busiest device, and its collectives.

A design may spread over ``tp x dp x pp`` devices (knobs ``tp``, ``dp_attention``, ``pp``, ``ep``):

- **Attention and dense layers** (QKV and output projections, shared experts, leading dense FFNs,
  the LM head): tensor parallel over ``tp`` devices (each holds ``1 / tp`` of the weights and of the
  heads), replicated over ``dp`` attention data-parallel groups, each of which decodes
  ``ceil(B / dp)`` of the sequences (the busiest group sets the time). The KV cache splits over
  ``min(tp, KV heads)`` (GQA; an MLA latent is replicated over ``tp``) and over the ``dp`` groups.
  The router is replicated.
- **Routed experts**: the ``n = tp x dp`` devices of a stage form ``ep`` expert-parallel groups;
  each group holds ``E / ep`` experts, each expert tensor-sharded over the ``n / ep`` devices of
  its group. Experts are placed by rank round-robin (a load balancer's placement, as DeepSeek's
  EPLB or vLLM's ``--enable-eplb``: expert ranks ``g, g + ep, ...`` on group ``g``). The step waits
  for the busiest group: its expected distinct experts and token-expert pairs
  (:func:`max_group_unique`, :func:`max_group_tokens`).
- **Pipeline stages**: ``pp`` stages each hold ``1 / pp`` of the layers. One decode step of a
  batch runs the stages one after another (no micro-batching), so the step time is that of all
  layers plus ``pp - 1`` sends; ``pp`` cuts bytes held per device, not time.

**Collectives** (:func:`allreduce_time_s`, :func:`p2p_time_s`), each ``t = t0 + bytes / (eta x
bw)`` with the ``[device_link]`` constants (:mod:`elmoe_dse.specs.link`); activations are BF16:

- an all-reduce of ``m = N d x 2`` bytes after each tensor-parallel block (attention output, MoE
  output, dense FFN), ring-equivalent ``2 (n - 1) / n x m`` per device;
- with ``ep > 1``, expert dispatch and combine: each device sends ``(ep - 1) / ep`` of its
  ``N k / n`` token-expert pairs (``d x 2`` bytes each) and receives as many back;
- the LM head's logits all-gathered over ``tp`` (``(tp - 1) / tp x N V x 2`` bytes);
- ``pp - 1`` point-to-point sends of the ``N d x 2`` activations.

**Assumption: communication does not overlap compute** (serial by default): every collective's
time adds to the step (engines such as vLLM run decode collectives on the compute stream).
Energy is per device times the devices (the busiest device's, an upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from elmoe_dse.errors import KnobError

Array = np.ndarray
#: Bytes per activation element on the link (BF16).
ACT_BYTES = 2.0


@dataclass(frozen=True)
class Layout:
    """Devices of a design: tensor (``tp``), attention data (``dp``), expert (``ep``) and pipeline
    (``pp``) parallel degrees, arrays over the grid (dimensionless)."""

    tp: Array
    dp: Array
    ep: Array
    pp: Array

    @property
    def stage_devices(self) -> Array:
        """Devices of one pipeline stage, n = tp x dp."""
        return self.tp * self.dp

    @property
    def devices(self) -> Array:
        """All devices, tp x dp x pp."""
        return self.tp * self.dp * self.pp

    @property
    def trivial(self) -> bool:
        """One device everywhere on the grid."""
        return bool(np.all(self.devices == 1) and np.all(self.ep == 1))


def attention_groups(tp: Array, ep: Array, dp_attention: Array) -> Array:
    """Attention data-parallel groups: the ``dp_attention`` knob, or where it is auto (nan)
    ``ep / tp`` rounded up where ``ep > tp``, else 1."""
    dp = np.asarray(dp_attention, dtype=float)
    auto = np.maximum(1.0, np.ceil(np.asarray(ep, dtype=float) / np.asarray(tp, dtype=float)))
    return np.where(np.isfinite(dp), dp, auto)


def check_layout(layout: Layout, num_layers: int) -> None:
    """Raise a one-line KnobError where the degrees cannot form a layout."""
    n = layout.stage_devices
    if np.any(layout.ep > n):
        raise KnobError(
            "knob 'ep' exceeds tp x dp_attention; raise tp or dp_attention, or lower ep"
        )
    if np.any(np.mod(n, layout.ep) != 0):
        raise KnobError("knob 'ep' must divide tp x dp_attention (whole devices per expert group)")
    if np.any(layout.pp > num_layers):
        raise KnobError(f"knob 'pp' exceeds the model's {num_layers} layers; lower it")


def allreduce_time_s(
    message_bytes: Array, devices: Array, t0_s: float, eta_frac: float, bw_bytes_per_s: float
) -> Array:
    """All-reduce of ``message_bytes`` over ``devices``: t0 + 2 (n - 1) / n m / (eta bw); 0 at
    n = 1."""
    n = np.asarray(devices, dtype=float)
    moved = 2.0 * (n - 1.0) / n * np.asarray(message_bytes, dtype=float)
    return np.where(n > 1, t0_s + moved / (eta_frac * bw_bytes_per_s), 0.0)


def p2p_time_s(
    sent_bytes: Array, t0_s: float, eta_frac: float, bw_bytes_per_s: float, active: Array
) -> Array:
    """A send of ``sent_bytes`` per device: t0 + bytes / (eta bw) where ``active``, else 0."""
    return np.where(active, t0_s + np.asarray(sent_bytes) / (eta_frac * bw_bytes_per_s), 0.0)


def sequence_share(batch: Array, dp: Array) -> Array:
    """Share of the batch the busiest attention group decodes: ceil(B / dp) / B."""
    b = np.maximum(np.asarray(batch, dtype=float), 1.0)
    return np.ceil(b / dp) / b


def _poisson_binomial_cdf(q: Array) -> Array:
    """CDF of the number of successes of independent Bernoulli(q_i), at 0..len(q)."""
    pmf = np.zeros(len(q) + 1)
    pmf[0] = 1.0
    for qi in q:
        pmf[1:] = pmf[1:] * (1.0 - qi) + pmf[:-1] * qi
        pmf[0] *= 1.0 - qi
    return np.cumsum(pmf)


def expected_max_count(groups: list[Array]) -> float:
    """E[max over groups of the successes of independent Bernoulli(q) in each group]:
    sum over c >= 1 of P(max >= c) = 1 - prod_g F_g(c - 1)."""
    size = max(len(g) for g in groups)
    below = np.ones(size + 1)
    for g in groups:
        cdf = _poisson_binomial_cdf(g)
        below *= np.concatenate([cdf, np.ones(size + 1 - len(cdf))])
    return float(np.sum(1.0 - below[:-1]))


def touch_probabilities(p: Array, unique: float) -> Array:
    """Per-expert probability of being touched in a pass with ``unique`` distinct experts:
    q_i = 1 - (1 - p_i)^m, with the effective tokens m solved so that sum q_i = unique (the
    routing model's U, whatever its correlation)."""
    p = np.clip(np.asarray(p, dtype=float), 0.0, 1.0 - 1e-12)
    target = float(np.clip(unique, 0.0, np.sum(p > 0)))
    lo, hi = 0.0, 1.0
    while np.sum(1.0 - (1.0 - p) ** hi) < target - 1e-9 and hi < 1e12:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if np.sum(1.0 - (1.0 - p) ** mid) < target else (lo, mid)
    return np.asarray(1.0 - (1.0 - p) ** hi)


def max_group_unique(p: Array, unique: float, ep: int) -> float:
    """Expected distinct experts of the busiest of ``ep`` groups (rank round-robin placement)
    in a pass that touches ``unique`` distinct experts in all; independent touches."""
    if ep <= 1:
        return float(unique)
    q = touch_probabilities(p, unique)
    return expected_max_count([q[g::ep] for g in range(ep)])


def max_group_tokens(p: Array, tokens: float, ep: int) -> float:
    """Expected token-expert pairs of the busiest of ``ep`` groups for ``tokens`` independent
    tokens: each group's count taken normal (mean N sum p_i, variance N sum p_i (1 - p_i)) and
    independent, E[max] = sum over c >= 1 of 1 - prod_g Phi((c - 1/2 - mu_g) / sigma_g)."""
    p = np.asarray(p, dtype=float)
    if ep <= 1:
        return float(tokens * np.sum(p))
    mu = np.array([tokens * np.sum(p[g::ep]) for g in range(ep)])
    sd = np.sqrt([tokens * np.sum(p[g::ep] * (1.0 - p[g::ep])) for g in range(ep)])
    c = np.arange(1.0, np.ceil(tokens * np.sum(p)) + 1.0)
    z = (c[:, None] - 0.5 - mu[None, :]) / np.maximum(sd[None, :], 1e-12)
    below = np.prod(0.5 * (1.0 + _erf(z / np.sqrt(2.0))), axis=1)
    return float(np.sum(1.0 - below))


def _erf(x: Array) -> Array:
    """Element-wise error function (math.erf)."""
    return np.vectorize(math.erf)(x)


def expert_imbalance(p: Array, unique: Array, ep: Array) -> Array:
    """Busiest group's distinct experts over the mean group's, U_max ep / U (>= 1; 1 at ep = 1),
    element-wise over broadcast ``unique`` and ``ep`` (one solve per distinct pair)."""
    u, e = np.broadcast_arrays(np.asarray(unique, dtype=float), np.asarray(ep, dtype=float))
    out = np.ones(u.shape)
    pairs = {(float(a), int(b)) for a, b in zip(u.ravel(), e.ravel(), strict=True) if b > 1}
    for a, b in pairs:
        value = max_group_unique(p, a, b) * b / a if a > 0 else 1.0
        out[(u == a) & (e == b)] = value
    return out


def token_imbalance(p: Array, tokens: Array, ep: Array) -> Array:
    """Busiest group's token-expert pairs over the mean group's (>= 1; 1 at ep = 1)."""
    n, e = np.broadcast_arrays(np.asarray(tokens, dtype=float), np.asarray(ep, dtype=float))
    out = np.ones(n.shape)
    k = float(np.sum(p))
    pairs = {(float(a), int(b)) for a, b in zip(n.ravel(), e.ravel(), strict=True) if b > 1}
    for a, b in pairs:
        out[(n == a) & (e == b)] = max_group_tokens(p, a, b) * b / (a * k) if a > 0 else 1.0
    return out
