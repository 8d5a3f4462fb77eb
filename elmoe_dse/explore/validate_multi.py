"""Validate the model on multi-device decode measurements (``data/measured/gpu-multi.json``).

A point has the fields of :class:`~elmoe_dse.explore.validate.MeasuredPoint` plus its parallel
layout (``tp``, ``ep``, ``dp_attention``, ``pp``; 1 when absent). The prediction is one plain
decode step with those layout knobs (:mod:`elmoe_dse.parallel`); error = predicted / measured - 1.
Beside it, the *scaling* error: the predicted over the measured speed-up from the point's
single-device reference (the point of the same model, platform, format and framework with the
fewest devices), which separates the layout model from the one-device kernel model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import Field

from elmoe_dse.explore.validate import DATASET, MeasuredPoint, json_points
from elmoe_dse.specs._base import validate

SHIPPED_MULTI = Path(__file__).resolve().parent.parent / "data" / "measured" / "gpu-multi.json"


class MultiMeasuredPoint(MeasuredPoint):
    """A measured point on ``tp x dp_attention x pp`` devices, ``ep`` expert groups."""

    tp: int = Field(1, ge=1)
    ep: int = Field(1, ge=1)
    dp_attention: int = Field(1, ge=1)
    pp: int = Field(1, ge=1)

    @property
    def devices(self) -> int:
        return self.tp * self.dp_attention * self.pp


def load_multi_points(path: str | Path | None = None) -> list[MultiMeasuredPoint]:
    """The points of ``path`` (the shipped table by default); one-line errors."""
    p = Path(path) if path is not None else SHIPPED_MULTI
    rows = json_points(p)
    return [
        validate(MultiMeasuredPoint, row, path=f"{p} (point {i + 1})") for i, row in enumerate(rows)
    ]


def predict_multi_s(point: MultiMeasuredPoint) -> float:
    """The model's time per output token of ``point`` on its layout, seconds."""
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.scenario import load_scenario

    sc = load_scenario(point.model, point.platform, DATASET)
    knobs = sc.knobs(
        policy="ar",
        batch_size=point.batch,
        context_len=point.context,
        weight_format=point.weight_format,
        kv_format="bf16",
        tp=point.tp,
        ep=point.ep,
        dp_attention=point.dp_attention,
        pp=point.pp,
    )
    return float(evaluate(sc.model, sc.platform, knobs, sc.p, quality=sc.quality).time_per_step_s)


def _series(pt: MultiMeasuredPoint) -> tuple[Any, ...]:
    return (pt.model, pt.platform, pt.weight_format, pt.framework, pt.batch)


def multi_validation_table(points: list[MultiMeasuredPoint]) -> pd.DataFrame:
    """Predicted vs measured per point, and the error of the speed-up over its reference."""
    predicted = {pt.id: predict_multi_s(pt) * 1e3 for pt in points}
    reference: dict[tuple[Any, ...], MultiMeasuredPoint] = {}
    for pt in sorted(points, key=lambda q: q.devices):
        reference.setdefault(_series(pt), pt)
    rows = []
    for pt in points:
        ref = reference[_series(pt)]
        measured_speedup = ref.measured_ms_per_token / pt.measured_ms_per_token
        predicted_speedup = predicted[ref.id] / predicted[pt.id]
        rows.append(
            {
                "id": pt.id,
                "devices": pt.devices,
                "tp": pt.tp,
                "ep": pt.ep,
                "weight_format": pt.weight_format,
                "measured_ms_per_token": pt.measured_ms_per_token,
                "predicted_ms_per_token": round(predicted[pt.id], 4),
                "error_frac": round(predicted[pt.id] / pt.measured_ms_per_token - 1.0, 4),
                "reference": ref.id,
                "speedup_error_frac": round(predicted_speedup / measured_speedup - 1.0, 4),
                "source": pt.source,
            }
        )
    return pd.DataFrame(rows)
