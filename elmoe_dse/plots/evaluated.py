"""Numbers a figure computes with the evaluator when the results directory does not hold them.

Rooflines, energy components of a reproduce run, knob sensitivities and the baselines marked on a
sweep's Pareto fronts are evaluated here, with the specs the run itself used: a reproduce run's
calibration (from its ``run.json``) is applied; a sweep run evaluates the shipped specs, as the
sweep does (:func:`elmoe_dse.scenario.load_scenario`). Routing is the dataset profile's Zipf
skew and overlap, as in both commands. Every function returns plain rows or arrays; no drawing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import DRAFT_LENGTH_TOKENS, ENERGY_PER_TOKEN_J, THROUGHPUT_TOK_PER_S
from elmoe_dse.explore.reproduce import PRIOR, SPECULATIVE, SYSTEMS, best_over_gamma
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.policies import is_speculative

if TYPE_CHECKING:
    import pandas as pd

    from elmoe_dse.evaluator import StepCost
    from elmoe_dse.scenario import Scenario

#: The baselines of the paper, (system, platform, policy), as ``reproduce`` evaluates them.
BASELINES: tuple[tuple[str, str, str], ...] = tuple(s for s in SYSTEMS if s[0] in ("xpu", *PRIOR))
#: Draft lengths a speculative baseline is evaluated at (it runs at its fastest one).
GAMMAS = tuple(range(1, 9))


def calibration_key(calibration: Mapping[str, Any] | None) -> str | None:
    """A hashable form of a calibration record (``run.json``'s ``calibration``)."""
    return None if calibration is None else json.dumps(calibration, sort_keys=True)


@cache
def scenario(model: str, platform: str, dataset: str, calibration: str | None) -> Scenario:
    """Specs of one model x platform x dataset, with ``calibration`` (JSON) applied if given."""
    from elmoe_dse.calibration import Calibration
    from elmoe_dse.scenario import build_scenario

    cal = None if calibration is None else Calibration.model_validate(json.loads(calibration))
    return build_scenario(model, platform, dataset, cal)


def scenario_knobs(sc: Scenario, **values: Any) -> Knobs:
    """Knobs at the scenario's overlap (its dataset profile's rho) plus ``values``."""
    return sc.knobs(**values)


def evaluate_at(sc: Scenario, knobs: Knobs) -> StepCost:
    """The evaluator on a scenario's model, platform, routing and draft quality."""
    from elmoe_dse.evaluator import evaluate

    return evaluate(sc.model, sc.platform, knobs, sc.p, quality=sc.quality)


def knobs_from_row(row: Mapping[str, Any] | pd.Series) -> Knobs:
    """The knobs of a results row (``knob.*`` columns; NaN = auto)."""
    values: dict[str, Any] = {}
    for name, info in KNOB_INFO.items():
        col = f"knob.{name}"
        if col in row:
            values[name] = str(row[col]) if info.choices else float(row[col])
    return Knobs(**values)


def system_rows(
    systems: Iterable[tuple[str, str, str]],
    combos: Iterable[tuple[str, str, float]],
    batches: Iterable[float],
    calibration: str | None,
) -> list[dict[str, Any]]:
    """Rows like ``reproduce``'s systems table: every (system, platform, policy) at every
    (model, dataset, context length) and batch size; a speculative system at its fastest draft
    length in 1..8. Columns: meta.*, knob.batch_size, knob.context_len, metric.* (SI)."""
    b = np.asarray(sorted(set(batches)), dtype=float)
    rows: list[dict[str, Any]] = []
    for model, dataset, context in combos:
        for system, platform, policy in systems:
            sc = scenario(model, platform, dataset, calibration)
            speculative = system in SPECULATIVE or is_speculative(policy)
            gamma: Any = np.asarray(GAMMAS, dtype=float)[None, :] if speculative else 0.0
            knobs = scenario_knobs(
                sc, policy=policy, batch_size=b[:, None], context_len=context, draft_length=gamma
            )
            best = best_over_gamma(evaluate_at(sc, knobs))
            for i, batch in enumerate(b):
                rows.append(
                    {
                        "meta.model": model,
                        "meta.dataset": dataset,
                        "meta.system": system,
                        "meta.platform": platform,
                        "meta.policy": policy,
                        "knob.batch_size": float(batch),
                        "knob.context_len": float(context),
                        THROUGHPUT_TOK_PER_S: float(best[THROUGHPUT_TOK_PER_S][i]),
                        ENERGY_PER_TOKEN_J: float(best[ENERGY_PER_TOKEN_J][i]),
                        DRAFT_LENGTH_TOKENS: float(best[DRAFT_LENGTH_TOKENS][i]),
                    }
                )
    return rows


def energy_components(step: StepCost) -> dict[str, float]:
    """Energy per token of a 0-d step cost, by component key (``read_hb``, ``write_lpddr`` ...)."""
    tokens = float(np.asarray(step.tokens_per_step))
    return {k: float(np.asarray(v)) / tokens for k, v in sorted(step.energy_by_component_j.items())}
