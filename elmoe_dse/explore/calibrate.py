"""Fit the parameters the paper does not state to its four mean targets (docs/model.md §9).

The search only: the calibration file type, its loader and how it is applied to the specs live in
:mod:`elmoe_dse.calibration`. The free parameters (:data:`CALIBRATION_KEYS`) each have a plausible
range in the spec file that holds them, and the search never leaves it. Static powers are searched
at or above the xPU's (every system has its LPDDR and at least its compute; see
:data:`STATIC_BASE_KEY`); HB-xPU's equals ELMoE-3D's (:data:`TIED`). A seeded Optuna TPE study
minimizes the sum over the four fitted targets of (log(model / paper))^2; the maxima and the SD
comparison are checks, not fit targets.

A dataset key ``dataset.NAME.models.*.FIELD`` sets FIELD for every model of that dataset profile
(one routing skew, overlap and acceptance ceiling per dataset: four targets cannot identify
per-model values). The same seed, trial count and start give the same calibration.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from elmoe_dse.calibration import CalibratedValue, Calibration, parameter_range
from elmoe_dse.explore.reproduce import FIT_TARGETS, PAPER_TARGETS, reproduce
from elmoe_dse.specs._base import RangeSpec

#: The parameters ``calibrate`` fits. Each must have a range in its spec file.
CALIBRATION_KEYS: tuple[str, ...] = (
    "acceptance.expert_coverage_exponent",
    "acceptance.round_4bit_quality_frac",
    *(
        f"dataset.{name}.models.*.{field}"
        for name in ("mt-bench", "gsm8k", "alpaca", "humaneval")
        for field in ("alpha_max",)
    ),
)


#: Every shipped system holds the xPU's 64 GB LPDDR and a compute die at least as large as the
#: xPU's (PIM/NMP units, an HB stack, a logic die come on top), so its static power is at least
#: the xPU's: the search samples the others above it.
STATIC_BASE_KEY = "platform.xpu.static_power_w"

#: Parameters set equal to another rather than fitted. HB-xPU and ELMoE-3D 8 GB hold the same
#: memories (8 GB HB stack, 64 GB LPDDR) and the same 524 TOPS of W8A8 compute (an xPU, or the
#: logic die's PEs), so their static power is one figure; the targets alone cannot pin HB-xPU's.
TIED: dict[str, str] = {"platform.hb-xpu.static_power_w": "platform.elmoe3d-8g.static_power_w"}


def sample_values(trial: Any, ranges: dict[str, RangeSpec]) -> dict[str, float]:
    """One trial's parameter values, each inside its range; static powers >= the xPU's.

    A constrained static power is sampled as a fraction of its feasible interval
    [max(min, xPU's), max], which keeps the search space a fixed box for the sampler.
    """
    values: dict[str, float] = {}
    base = None
    if STATIC_BASE_KEY in ranges:
        r = ranges[STATIC_BASE_KEY]
        base = trial.suggest_float(STATIC_BASE_KEY, r.min, r.max, log=r.min > 0)
        values[STATIC_BASE_KEY] = base
    for key, r in ranges.items():
        if key == STATIC_BASE_KEY or key in TIED:
            continue
        if base is not None and key.endswith(".static_power_w"):
            lo = min(max(r.min, base), r.max)
            frac = trial.suggest_float(f"{key}:frac_above_xpu", 0.0, 1.0)
            values[key] = lo + frac * (r.max - lo)
        else:
            values[key] = trial.suggest_float(key, r.min, r.max, log=r.min > 0)
    for key, source in TIED.items():
        if key in ranges and source in values:
            values[key] = min(max(values[source], ranges[key].min), ranges[key].max)
    return {key: values[key] for key in ranges if key in values}


def start_params(start: Calibration, ranges: dict[str, RangeSpec]) -> dict[str, float]:
    """A previous calibration as the sampler's first trial: its values clipped into today's ranges
    and constraints, in the sampler's own parametrization (see :func:`sample_values`)."""
    values = {
        k: min(max(start.parameters[k].value, r.min), r.max)
        for k, r in ranges.items()
        if k in start.parameters
    }
    params: dict[str, float] = {}
    base = values.get(STATIC_BASE_KEY)
    for key, value in values.items():
        r = ranges[key]
        if key in TIED:
            continue
        if base is not None and key != STATIC_BASE_KEY and key.endswith(".static_power_w"):
            lo = min(max(r.min, base), r.max)
            frac = (value - lo) / (r.max - lo) if r.max > lo else 0.0
            params[f"{key}:frac_above_xpu"] = min(max(frac, 0.0), 1.0)
        else:
            params[key] = value
    return params


def calibrate(
    trials: int,
    seed: int,
    *,
    date: str | None = None,
    progress: Any = None,
    start: Calibration | None = None,
) -> Calibration:
    """Fit :data:`CALIBRATION_KEYS` to the four mean targets with a seeded TPE study.

    ``start`` (a previous calibration) is evaluated first, so a refit is never worse than it; the
    result depends only on the seed, the trial count and the start.
    """
    import optuna

    ranges = {key: parameter_range(key) for key in CALIBRATION_KEYS}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=min(20, max(1, trials // 4)), multivariate=True
    )
    study = optuna.create_study(direction="minimize", sampler=sampler)
    if start is not None:
        study.enqueue_trial(start_params(start, ranges))

    def as_calibration(
        values: dict[str, float], loss: float, model: dict[str, float]
    ) -> Calibration:
        return Calibration(
            seed=seed,
            trials=trials,
            date=date or dt.date.today().isoformat(),
            loss=loss,
            parameters={
                k: CalibratedValue(
                    value=v,
                    min=ranges[k].min,
                    max=ranges[k].max,
                    source=f"fitted by elmoe-dse calibrate; range: {ranges[k].source}",
                )
                for k, v in values.items()
            },
            fit_error={t: (model[t] - PAPER_TARGETS[t]) / PAPER_TARGETS[t] for t in FIT_TARGETS},
            model=model,
        )

    def objective(trial: Any) -> float:
        values = sample_values(trial, ranges)
        trial.set_user_attr("values", values)
        cal = as_calibration(values, 0.0, dict.fromkeys(FIT_TARGETS, 1.0))
        result = reproduce(cal)
        model = {t.name: t.model for t in result.targets}
        trial.set_user_attr("model", model)
        loss = sum(math.log(model[t] / PAPER_TARGETS[t]) ** 2 for t in FIT_TARGETS)
        if progress is not None:
            progress(trial.number + 1, trials, loss)
        return loss

    study.optimize(objective, n_trials=trials)
    best = study.best_trial
    model_all: dict[str, float] = best.user_attrs["model"]
    best_values: dict[str, float] = best.user_attrs["values"]
    loss = best.value if best.value is not None else math.inf
    return as_calibration(best_values, float(loss), model_all)
