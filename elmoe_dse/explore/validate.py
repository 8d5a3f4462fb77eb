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

**Serving engine.** A point names its ``engine`` (``vllm``, ``sglang``, ``tensorrt-llm``; ''
= the preset's measured engine, vLLM), and is predicted with that engine's factors on the
kernel efficiencies (:mod:`elmoe_dse.specs.kernels`). :func:`fit_engine_terms` fits an engine's
factors per GPU on its headline points at batch <= ``ENGINE_FIT_MAX_BATCH`` (at least
``ENGINE_FIT_MIN_POINTS`` of them, else the priors stay); its larger batches are held out. The
ids of every point that fitted something are stored with the fitted constant (``fit_points``),
so the table marks each point ``fit`` or ``held out`` and the summary reports the held-out
error on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from elmoe_dse.errors import SpecError
from elmoe_dse.explore.lm_fit import levenberg_marquardt
from elmoe_dse.specs._base import DATA_DIR, Spec, read_text, validate
from elmoe_dse.specs.kernels import ENGINE_FACTORS, ENGINES

Array = np.ndarray
SHIPPED_POINTS = DATA_DIR / "measured" / "gpu-decode.json"
DATASET = "benchmark"
HOST_FIT_MAX_BATCH = 4
ENGINE_FIT_MAX_BATCH = 16
ENGINE_FIT_MIN_POINTS = 3
#: Most Levenberg-Marquardt iterations of the engine-factor fit.
ENGINE_FIT_ITERATIONS = 30
HELD_OUT = "held out"


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
    engine: str = Field(
        "", description="serving engine: vllm, sglang or tensorrt-llm ('' = the preset's)"
    )
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

    @model_validator(mode="after")
    def _known_engine(self) -> MeasuredPoint:
        if self.engine and self.engine not in ENGINES:
            raise ValueError(
                f"engine '{self.engine}' is not known; use one of {', '.join(ENGINES)} or leave "
                "it empty"
            )
        return self


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
    return json_points(path)


def json_points(path: Path) -> list[Any]:
    """The raw rows of a measured-points JSON file (a list, or ``{"points": [...]}``)."""
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


def decode_overlap(overlap_frac: float, batch: float, quality: Any) -> float:
    """The reuse rho_B a decode step of ``batch`` sequences runs at (as the evaluator does)."""
    from elmoe_dse import locality
    from elmoe_dse.evaluator.stages import locality_terms

    scale, _ = locality_terms(quality)
    return float(locality.batch_overlap(overlap_frac, batch, scale))


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
    spec = with_engine(sc.platform if platform is None else platform, point.engine)
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
        overlap_frac=decode_overlap(knobs.overlap_frac, point.batch, sc.quality),
    )
    return step + float(extra)


def with_engine(spec: Any, engine: str) -> Any:
    """``spec`` modelling serving engine ``engine`` (a GPU preset's factors; others as they are)."""
    if getattr(spec, "kernels", None) is None:
        return spec
    try:
        kernels = spec.kernels.for_engine(engine)
    except ValueError as err:
        raise SpecError(f"{err} (kernels.engines)", path=spec.name) from None
    return spec.model_copy(update={"kernels": kernels})


def point_role(point: MeasuredPoint) -> str:
    """What the point fitted in its preset (``fit: kernel_gap_s``, ``fit: engine``: its
    engine's factors, or both), from the ids stored with the fitted constants, or ``held out``."""
    from elmoe_dse.platforms import load_platform

    kspec = getattr(load_platform(point.platform), "kernels", None)
    if kspec is None:
        return HELD_OUT
    roles = []
    if point.id in kspec.params["kernel_gap_s"].fit_points:
        roles.append("kernel_gap_s")
    eng = kspec.engines.get(point.engine)
    if eng is not None and any(point.id in q.fit_points for q in eng.params.values()):
        roles.append("engine")
    return "fit: " + " + ".join(roles) if roles else HELD_OUT


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
                "engine": pt.engine,
                "role": point_role(pt),
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
    """Median and worst absolute error over the headline points, over the held-out headline
    points (those that fitted nothing), and over all points."""
    err = table.error_frac.abs()
    head = err[table.headline.astype(bool)]
    held = err[table.headline.astype(bool) & (table.role == HELD_OUT)]
    return {
        "held_out_points": float(len(held)),
        "median_abs_error_held_out_frac": float(held.median()) if len(held) else float("nan"),
        "worst_abs_error_held_out_frac": float(held.max()) if len(held) else float("nan"),
        "points": float(len(table)),
        "headline_points": float(len(head)),
        "median_abs_error_frac": float(head.median()) if len(head) else float("nan"),
        "worst_abs_error_frac": float(head.max()) if len(head) else float("nan"),
        "median_abs_error_all_frac": float(err.median()),
        "worst_abs_error_all_frac": float(err.max()),
    }


def _refine(loss: Callable[[float], float], lo: float, hi: float) -> float:
    """The minimizer of a 1-D ``loss`` on [lo, hi]: a 13-point grid, refined three times."""
    a, b, best = lo, hi, lo
    for _ in range(3):
        grid = np.linspace(a, b, 13)
        best = float(grid[int(np.argmin([loss(float(v)) for v in grid]))])
        step = grid[1] - grid[0]
        a, b = max(lo, best - step), min(hi, best + step)
    return best


def _log_sq_error(points: list[MeasuredPoint], platform: Any) -> float:
    """Sum of squared log(predicted / measured) over ``points`` on ``platform``."""
    err = [np.log(predict_s(p, platform=platform) * 1e3 / p.measured_ms_per_token) for p in points]
    return float(np.sum(np.square(err)))


def _updated(kspec: Any, params: dict[str, Any], engines: dict[str, Any] | None = None) -> Any:
    """``kspec`` with ``params`` (and ``engines``) replaced, re-validated."""
    data = kspec.model_dump()
    data["params"] = {k: v.model_dump() for k, v in params.items()}
    if engines is not None:
        data["engines"] = {k: v.model_dump() for k, v in engines.items()}
    return type(kspec).model_validate(data)


def _engines_at_prior(kspec: Any) -> Any:
    """``kspec`` with every engine factor at its prior (no re-validation: priors are in range)."""
    engines = {
        e: spec.model_copy(
            update={
                "params": {
                    n: q.model_copy(update={"value": q.prior}) for n, q in spec.params.items()
                }
            }
        )
        for e, spec in kspec.engines.items()
    }
    return kspec.model_copy(update={"engines": engines})


def fit_host_terms(spec: Any, command: str) -> tuple[Any, str]:
    """``spec.kernels`` with ``kernel_gap_s`` fitted on the shipped points of this GPU at batch
    <= HOST_FIT_MAX_BATCH (least squares on log TPOT, inside its range), and a one-line note.

    The gap between graph-replayed kernels is taken as the GPU's, for every engine; the fit
    runs with every engine's factors at their priors (and returns them so), so it does not
    depend on an earlier engine fit: :func:`fit_engine_terms` runs after it. Without such
    points the gap keeps its prior, and the note says so.
    """
    kspec = _engines_at_prior(spec.kernels)
    spec = spec.model_copy(update={"kernels": kspec})
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
    value = _refine(
        lambda v: _log_sq_error(pts, _with_param(spec, "kernel_gap_s", v)), gap.min, gap.max
    )
    fitted = (
        f"least squares on log TPOT of the measured points at batch <= {HOST_FIT_MAX_BATCH}, "
        f"engine factors at their priors ({', '.join(p.id for p in pts)}); larger batches "
        "held out"
    )
    new = gap.model_copy(
        update={"value": round(value, 9), "fitted_on": fitted, "fit_points": [p.id for p in pts]}
    )
    out = _updated(kspec, {**kspec.params, "kernel_gap_s": new})
    return (
        out,
        f"kernel_gap_s = {value * 1e6:.2f} us fitted on {len(pts)} points at batch <= "
        f"{HOST_FIT_MAX_BATCH}",
    )


def engine_fit_points(
    spec: Any, engine: str, points: list[MeasuredPoint] | None = None
) -> list[MeasuredPoint]:
    """The headline points of ``engine`` on this GPU (of ``points``, default the shipped table)
    that fit its factors: batch <= ENGINE_FIT_MAX_BATCH (the larger batches, where KV reads and
    prompt chunks weigh most, are held out)."""
    return [
        p
        for p in (load_points() if points is None else points)
        if p.platform == spec.name
        and p.engine == engine
        and p.headline
        and p.batch <= ENGINE_FIT_MAX_BATCH
    ]


def _factor_bounds(kspec: Any, engine: str, factor: str) -> tuple[float, float]:
    """The factor's own range, narrowed so that no constant it scales leaves its range."""
    q = kspec.engines[engine].params[factor]
    lo, hi = q.min, q.max
    for t in ENGINE_FACTORS[factor]:
        base = kspec.params[t]
        lo, hi = max(lo, base.min / base.value), min(hi, base.max / base.value)
    return lo, hi


def _engine_priors_kept(spec: Any, engine: str, found: int) -> tuple[Any, str]:
    """``spec.kernels`` with ``engine``'s factors at their priors (too few points to fit)."""
    kspec = spec.kernels
    eng = kspec.engines[engine]
    why = (
        f"fewer than {ENGINE_FIT_MIN_POINTS} headline {engine} points at batch <= "
        f"{ENGINE_FIT_MAX_BATCH} on {spec.name} ({found}): prior kept"
    )
    params = {
        n: q.model_copy(update={"value": q.prior, "fit_points": [], "fitted_on": why})
        for n, q in eng.params.items()
    }
    new = eng.model_copy(update={"params": params})
    return _updated(kspec, kspec.params, {**kspec.engines, engine: new}), (
        f"{engine}: {found} points at batch <= {ENGINE_FIT_MAX_BATCH}; priors kept"
    )


def _fit_one_engine(spec: Any, engine: str, points: list[MeasuredPoint] | None) -> tuple[Any, str]:
    """The engine's factors by Levenberg-Marquardt on log TPOT over its fit points, over the
    log factors inside their bounds (no prior term: a handful of points would be outweighed by
    any prior), or its priors kept."""
    kspec = spec.kernels
    eng = kspec.engines[engine]
    pts = engine_fit_points(spec, engine, points)
    if len(pts) < ENGINE_FIT_MIN_POINTS:
        return _engine_priors_kept(spec, engine, len(pts))
    values = {n: q.prior for n, q in eng.params.items()}

    def at(vals: dict[str, float]) -> Any:
        params = {n: q.model_copy(update={"value": vals[n]}) for n, q in eng.params.items()}
        engines = {**kspec.engines, engine: eng.model_copy(update={"params": params})}
        trial = kspec.model_copy(update={"engines": engines})
        return spec.model_copy(update={"kernels": trial})

    names = tuple(ENGINE_FACTORS)
    bounds = [_factor_bounds(kspec, engine, n) for n in names]
    lo_v = [np.ceil(b[0] * 1e4) / 1e4 for b in bounds]
    hi_v = [np.floor(b[1] * 1e4) / 1e4 for b in bounds]

    def residuals(theta: Array) -> Array:
        trial = at({n: float(np.exp(t)) for n, t in zip(names, theta, strict=True)})
        pred = np.array([predict_s(p, platform=trial) * 1e3 for p in pts])
        return np.log(pred / np.array([p.measured_ms_per_token for p in pts]))

    start = np.log([values[n] for n in names])
    theta = levenberg_marquardt(
        residuals, start, np.log(lo_v), np.log(hi_v), iterations=ENGINE_FIT_ITERATIONS
    )
    values = {
        n: float(np.clip(round(float(np.exp(t)), 4), a, b))
        for n, t, a, b in zip(names, theta, lo_v, hi_v, strict=True)
    }
    ids = [p.id for p in pts]
    rms = float(np.sqrt(_log_sq_error(pts, at(values)) / len(pts)))
    fitted = (
        f"least squares on log TPOT of the {len(pts)} headline {engine} points on {spec.name} "
        f"at batch <= {ENGINE_FIT_MAX_BATCH} ({', '.join(ids)}), rms log error {rms:.3f}; "
        "larger batches held out"
    )
    params = {
        n: q.model_copy(update={"value": values[n], "fitted_on": fitted, "fit_points": ids})
        for n, q in eng.params.items()
    }
    new = eng.model_copy(update={"params": params})
    note = ", ".join(f"{n} = {values[n]:.3f}" for n in ENGINE_FACTORS)
    return _updated(kspec, kspec.params, {**kspec.engines, engine: new}), (
        f"{engine}: {note} fitted on {len(pts)} points at batch <= {ENGINE_FIT_MAX_BATCH}"
    )


def fit_engine_terms(spec: Any, points: list[MeasuredPoint] | None = None) -> tuple[Any, str]:
    """``spec.kernels`` with every listed engine's factors fitted on ``points`` (default the
    shipped table), or their priors kept."""
    notes = []
    for engine in spec.kernels.engines:
        kspec, note = _fit_one_engine(spec, engine, points)
        spec = spec.model_copy(update={"kernels": kspec})
        notes.append(note)
    return spec.kernels, "; ".join(notes) if notes else "no engine factors listed"


def _with_param(spec: Any, name: str, value: float) -> Any:
    """``spec`` with one kernel constant replaced (no re-validation: a trial inside the range)."""
    kspec = spec.kernels
    param = kspec.params[name].model_copy(update={"value": value})
    kernels = kspec.model_copy(update={"params": {**kspec.params, name: param}})
    return spec.model_copy(update={"kernels": kernels})
