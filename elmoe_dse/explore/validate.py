"""Model vs measured end-to-end GPU decode (``elmoe-dse validate``), and the host-term fit.

A measured point is one published decode time per output token (TPOT) of a MoE model on one GPU
at a batch (concurrency) and context (input + half the output length). The model's answer is the
step time of plain decoding of that batch (one token per sequence per step) on the point's
platform with the ``benchmark`` routing profile (synthetic prompts), plus, where the point gives
its input and output lengths (``isl``, ``osl``: a serving benchmark), the mean time the prompt
tokens of the other requests add to each decode step under chunked prefill (P = (B - 1) ISL /
OSL per step, in chunks of up to ``prefill_chunk_tokens``; :func:`elmoe_dse.platforms.gpu.
mixed_step_extra_s`). Points without ``isl``/``osl`` are decode-only. The shipped table is
``elmoe_dse/data/measured/gpu-decode.json``; a user's JSON (same layout: ``{"points": [...]}``
or a list) or CSV (one row per point, the same field names) works alike.

A point may carry ``headline = false`` with a ``headline_reason``: it is still predicted and
shown, but left out of the headline median and worst (the reason must be about the measurement,
e.g. its methodology, never about the model's error).

:func:`fit_host_terms` sets ``kernel_gap_s`` per GPU by least squares on log TPOT over the
points at batch <= ``HOST_FIT_MAX_BATCH`` (batch 1-4: launch-bound, where the host term shows);
larger batches are held out, so their error checks the kernel terms and the gap together.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field

from elmoe_dse.errors import SpecError
from elmoe_dse.specs._base import DATA_DIR, Spec, read_text, validate

SHIPPED_POINTS = DATA_DIR / "measured" / "gpu-decode.json"
DATASET = "benchmark"
HOST_FIT_MAX_BATCH = 4


class MeasuredPoint(Spec):
    """One measured decode point; the fields a table must have, then its provenance."""

    id: str = Field(min_length=1)
    model: str = Field(min_length=1, description="a shipped model id or a config path")
    platform: str = Field(min_length=1, description="a shipped GPU preset or a platform path")
    batch: int = Field(ge=1)
    context: float = Field(ge=1, description="input length + output length / 2, tokens")
    weight_format: str = Field(min_length=1)
    measured_ms_per_token: float = Field(gt=0)
    source: str = Field(min_length=1)
    framework: str = ""
    routing: str = "uniform"
    metric: str = ""
    precision: str = ""
    isl: int | None = Field(None, ge=0, description="input length of the serving benchmark")
    osl: int | None = Field(None, ge=1, description="output length of the serving benchmark")
    prefill_chunk_tokens: int | None = Field(
        None, ge=1, description="engine's per-step token budget (default: PREFILL_CHUNK_TOKENS)"
    )
    context_rule: str = ""
    confidence: str = ""
    notes: str = ""
    headline: bool = True
    headline_reason: str = ""


def _rows_of(path: Path) -> list[Any]:
    if path.suffix.lower() == ".csv":
        read_text(path)
        try:
            frame = pd.read_csv(path)
        except (ValueError, pd.errors.ParserError) as err:
            raise SpecError(
                f"CSV syntax error: {str(err).splitlines()[0]}", path=str(path)
            ) from None
        records = frame.to_dict(orient="records")
        return [{str(k): v for k, v in r.items() if not pd.isna(v)} for r in records]
    if path.suffix.lower() != ".json":
        raise SpecError("unknown file type; give a .json or .csv table of points", path=str(path))
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise SpecError(f"JSON syntax error: {err}", path=str(path)) from None
    rows = data.get("points") if isinstance(data, dict) else data
    if not isinstance(rows, list) or not rows:
        raise SpecError(
            'expected a non-empty list of points (or {"points": [...]})', path=str(path)
        )
    return rows


def _typed(key: str, value: Any) -> Any:
    """CSV and JSON numbers as the point's field types (3.0 -> 3 for counts, 6 -> 6.0 for times)."""
    counts = ("batch", "isl", "osl", "prefill_chunk_tokens")
    if key in counts and isinstance(value, float) and value.is_integer():
        return int(value)
    if key in ("context", "measured_ms_per_token") and isinstance(value, int):
        return float(value)
    if key == "headline" and isinstance(value, np.bool_):
        return bool(value)
    return value


def load_points(path: str | Path | None = None) -> list[MeasuredPoint]:
    """The measured points of ``path`` (the shipped table by default); one-line errors."""
    p = Path(path) if path is not None else SHIPPED_POINTS
    points = []
    for i, row in enumerate(_rows_of(p)):
        if isinstance(row, dict):
            row = {k: _typed(k, v) for k, v in row.items()}
        points.append(validate(MeasuredPoint, row, path=f"{p} (point {i + 1})"))
    return points


def predict_s(point: MeasuredPoint, *, platform: Any = None) -> float:
    """The model's time per output token of ``point``, seconds: one plain-decode step, plus the
    prompt tokens mixed into it where the point is a serving run (``isl`` and ``osl`` set).

    ``platform``: a platform spec to use instead of the point's (the host-term fit passes one).
    """
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.platforms import PlatformKnobs, model_for
    from elmoe_dse.platforms.gpu import PREFILL_CHUNK_TOKENS, mixed_step_extra_s
    from elmoe_dse.scenario import load_scenario

    sc = load_scenario(point.model, point.platform, DATASET)
    spec = sc.platform if platform is None else platform
    knobs = sc.knobs(
        policy="ar",
        batch_size=point.batch,
        context_len=point.context,
        weight_format=point.weight_format,
        kv_format="bf16",
    )
    step = float(evaluate(sc.model, spec, knobs, sc.p, quality=sc.quality).time_per_step_s)
    if point.isl is None or point.osl is None or model_for(spec).family != "gpu":
        return step
    extra = mixed_step_extra_s(
        sc.model,
        spec,
        PlatformKnobs.of(knobs.validated()),
        sc.p,
        batch=point.batch,
        context_len=point.context,
        isl=point.isl,
        osl=point.osl,
        weight_format=point.weight_format,
        kv_format="bf16",
        chunk_tokens=point.prefill_chunk_tokens or PREFILL_CHUNK_TOKENS,
    )
    return step + float(extra)


def prefill_tokens(point: MeasuredPoint) -> float:
    """Prompt tokens the point's serving run mixes into each decode step (0 for decode-only)."""
    from elmoe_dse.platforms.gpu import prefill_tokens_per_step

    if point.isl is None or point.osl is None:
        return 0.0
    return float(prefill_tokens_per_step(point.batch, point.isl, point.osl))


def validation_table(points: list[MeasuredPoint]) -> pd.DataFrame:
    """Predicted vs measured per point: error = predicted / measured - 1."""
    rows = []
    for pt in points:
        pred_ms = predict_s(pt) * 1e3
        rows.append(
            {
                "id": pt.id,
                "model": pt.model,
                "platform": pt.platform,
                "framework": pt.framework,
                "batch": pt.batch,
                "context": pt.context,
                "prefill_tokens_per_step": round(prefill_tokens(pt), 2),
                "measured_ms_per_token": pt.measured_ms_per_token,
                "predicted_ms_per_token": round(pred_ms, 4),
                "error_frac": round(pred_ms / pt.measured_ms_per_token - 1.0, 4),
                "headline": pt.headline,
                "headline_reason": pt.headline_reason,
                "source": pt.source,
            }
        )
    return pd.DataFrame(rows)


def summary(table: pd.DataFrame) -> dict[str, float]:
    """Median and worst absolute error over the headline points and over all points."""
    err = table.error_frac.abs()
    head = err[table.headline.astype(bool)]
    return {
        "points": float(len(table)),
        "headline_points": float(len(head)),
        "median_abs_error_frac": float(head.median()) if len(head) else float("nan"),
        "worst_abs_error_frac": float(head.max()) if len(head) else float("nan"),
        "median_abs_error_all_frac": float(err.median()),
        "worst_abs_error_all_frac": float(err.max()),
    }


def fit_host_terms(spec: Any, command: str) -> tuple[Any, str]:
    """``spec.kernels`` with ``kernel_gap_s`` fitted on the shipped points of this GPU at batch
    <= HOST_FIT_MAX_BATCH (least squares on log TPOT, inside its range), and a one-line note.

    Without such points the gap keeps its prior, and the note says so.
    """
    kspec = spec.kernels
    pts = [
        p
        for p in load_points()
        if p.platform == spec.name and p.batch <= HOST_FIT_MAX_BATCH and p.headline
    ]
    gap = kspec.params["kernel_gap_s"]
    if not pts:
        return (
            kspec,
            f"kernel_gap_s: no measured points at batch <= {HOST_FIT_MAX_BATCH} for "
            f"{spec.name}; prior kept",
        )

    def loss(value: float) -> float:
        trial = _with_param(spec, "kernel_gap_s", value)
        err = [np.log(predict_s(p, platform=trial) * 1e3 / p.measured_ms_per_token) for p in pts]
        return float(np.sum(np.square(err)))

    lo, hi = gap.min, gap.max
    for _ in range(3):
        grid = np.linspace(lo, hi, 13)
        best = grid[int(np.argmin([loss(v) for v in grid]))]
        step = grid[1] - grid[0]
        lo, hi = max(gap.min, best - step), min(gap.max, best + step)
    value = float(best)
    ids = ", ".join(p.id for p in pts)
    fitted = (
        f"least squares on log TPOT of the measured points at batch <= {HOST_FIT_MAX_BATCH} "
        f"({ids}); larger batches held out"
    )
    new = kspec.params["kernel_gap_s"].model_copy(
        update={"value": round(value, 9), "fitted_on": fitted}
    )
    params = {**kspec.params, "kernel_gap_s": new}
    out = type(kspec).model_validate(
        {**kspec.model_dump(), "params": {k: v.model_dump() for k, v in params.items()}}
    )
    return (
        out,
        f"kernel_gap_s = {value * 1e6:.2f} us fitted on {len(pts)} points at batch <= "
        f"{HOST_FIT_MAX_BATCH}",
    )


def _with_param(spec: Any, name: str, value: float) -> Any:
    """``spec`` with one kernel constant replaced (no re-validation: a trial inside the range)."""
    kspec = spec.kernels
    param = kspec.params[name].model_copy(update={"value": value})
    kernels = kspec.model_copy(update={"params": {**kspec.params, name: param}})
    return spec.model_copy(update={"kernels": kernels})
