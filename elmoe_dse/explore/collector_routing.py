"""Distinct experts of a kernel database's ``power_law_<alpha>`` fused-MoE rows.

NVIDIA's aiconfigurator times the fused MoE under synthetic routing. For its ``power_law``
rows (``collector/helper.py``, ``_generate_power_law_distribution``; ``collector/vllm/
collect_moe.py``; ai-dynamo/aiconfigurator, snapshot 095f58a51c4c) it draws one token count per
expert from a bounded Pareto density ``x^-alpha`` on ``[1, 0.8 N]`` (on ``[0.01, 2]`` where
``N k <= E``), scales the counts to sum ``N k``, rounds them (half to even), and adds the
rounding deficit one token at a time to the largest counts (a surplus is taken from the
smallest non-zero, else the largest). The experts, in decreasing count, fill a list of ``N k``
slots read as ``k`` columns of ``N`` tokens; a count above ``N`` gives a token the same expert
twice, and ``torch.topk`` over the one-hot logits then fills the token's missing slots with the
lowest-index experts it does not hold (ties at logit 0). A row's latency is the mean over 5 such
draws.

So the experts a row touches are the non-zero counts plus those tie fills: far fewer than
independent Zipf routing gives at small ``N`` (the rounding zeroes most small counts), more at
large ``N``. :func:`collector_unique` is the mean over ``draws`` seeded draws, the exact input of
the fused-MoE term for those rows (:mod:`elmoe_dse.explore.calibrate_hw`).
"""

from __future__ import annotations

import numpy as np

Array = np.ndarray
#: Draws per row; the collector averages 5 per timing, the mean over 64 is within ~1 % of U.
DRAWS = 64


def _counts(n: int, e: int, k: int, alpha: float, rng: np.random.Generator) -> Array:
    """One draw of tokens per expert (module docstring)."""
    lo, hi = (1.0, 0.8 * n) if n * k > e else (0.01, 2.0)
    a = 1.0 - alpha
    x = ((hi**a - lo**a) * rng.random(e) + lo**a) ** (1.0 / a)
    target = n * k
    c = np.round(x / x.sum() * target).astype(np.int64)
    delta = int(target - c.sum())
    order = np.argsort(-c, kind="stable")
    if delta > 0:
        np.add.at(c, order[np.arange(delta) % e], 1)
    for i in range(-delta):
        j = order[-(i % e) - 1]
        c[j if c[j] > 0 else int(np.argmax(c))] -= 1
    return c


def _distinct(c: Array, n: int, k: int) -> int:
    """Experts of one draw after top-k fills the slots a duplicated expert left (docstring)."""
    order = np.argsort(-c, kind="stable")
    sel = np.repeat(order, c[order]).reshape(k, n).T
    srt = np.sort(sel, axis=1)
    missing = k - (1 + np.count_nonzero(np.diff(srt, axis=1), axis=1))
    used = c > 0
    if missing.max(initial=0) > 0:
        cand = np.arange(int(missing.max()) + k)
        held = (sel[:, :, None] == cand[None, None, :]).any(axis=1)
        rank = np.cumsum(~held, axis=1)
        fills = (~held) & (rank <= missing[:, None])
        used[cand[fills.any(axis=0)]] = True
    return int(used.sum())


def collector_unique(n: int, e: int, k: int, alpha: float, draws: int = DRAWS) -> float:
    """Mean distinct experts of a ``power_law_<alpha>`` row with N tokens, E experts, top-k."""
    rng = np.random.default_rng([n, e, k, round(alpha * 1000)])
    return float(np.mean([_distinct(_counts(n, e, k, alpha, rng), n, k) for _ in range(draws)]))
