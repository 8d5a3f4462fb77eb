"""The data behind ``elmoe-dse explain --vary KEY=V1,V2,...``: one row of step totals per value
(the cross product of every ``--vary``), answering "what do I need?" at one workload.

A key is anything ``--set`` takes (a knob, a model field, a platform field), and each value is
checked the way ``--set`` checks it, with errors that name ``--vary``. Numeric knobs are varied
as flat arrays in one call of the vectorized evaluator per combination of the other keys
(categorical knobs such as ``policy``, and spec fields, which change the specs themselves).
Rows come in cross-product order, the first ``--vary`` slowest. Values are SI, JSON-ready.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from elmoe_dse.errors import ElmoeError, KnobError
from elmoe_dse.knobs import KNOB_INFO, Knobs, parse_knob_value

#: Rows of one ``--vary`` table; a larger cross product fails before anything is evaluated.
MAX_VARY_ROWS = 256
#: Ensemble evaluations (rows x draws) ``--vary`` with ``--bands`` may ask for (~60 ms each).
MAX_BAND_EVALUATIONS = 1024


@dataclass(frozen=True)
class VaryAxis:
    """One ``--vary KEY=V1,V2,...``: the key and its value texts, in the order given."""

    key: str
    texts: tuple[str, ...]

    @property
    def vectorized(self) -> bool:
        """A numeric knob: varied as an array inside one evaluator call."""
        return self.key in KNOB_INFO and not KNOB_INFO[self.key].choices


def parse_vary(items: Sequence[str]) -> list[VaryAxis]:
    """The axes of ``--vary`` options; a malformed or repeated one, or a cross product of more
    than :data:`MAX_VARY_ROWS` rows, raises a one-line :class:`KnobError`."""
    axes: list[VaryAxis] = []
    for item in items:
        key, eq, rest = item.partition("=")
        key = key.strip()
        texts = tuple(t.strip() for t in rest.split(","))
        if not eq or not key or not all(texts):
            raise KnobError(
                f"--vary '{item}': write KEY=V1,V2,... (values comma-separated, none empty), "
                "e.g. --vary hb_capacity_gb=4,8,16"
            )
        if any(a.key == key for a in axes):
            raise KnobError(f"--vary {key} is given twice; list all its values in one --vary")
        axes.append(VaryAxis(key, tuple(dict.fromkeys(texts))))
    rows = int(np.prod([len(a.texts) for a in axes]))
    if rows > MAX_VARY_ROWS:
        sizes = " x ".join(str(len(a.texts)) for a in axes)
        raise KnobError(
            f"--vary: {sizes} = {rows} rows, above {MAX_VARY_ROWS}; give fewer values (or run a "
            "sweep file for a larger grid)"
        )
    return axes


def _as_vary_error(err: KnobError, key: str, text: str) -> KnobError:
    message = str(err)
    if message.startswith("--set"):
        return KnobError("--vary" + message[len("--set") :])
    return KnobError(f"--vary {key}={text}: {message}")


def _check_values(sc: Any, base: Knobs, sets: list[str], axes: Sequence[VaryAxis]) -> None:
    """Every value of every axis applied alone on top of ``--set``, as ``--set`` would."""
    from elmoe_dse.overrides import apply_overrides

    for axis in axes:
        for text in axis.texts:
            try:
                _, _, knobs = apply_overrides(
                    sc.model, sc.platform, base, [*sets, f"{axis.key}={text}"]
                )
                knobs.validated()
            except KnobError as err:
                raise _as_vary_error(err, axis.key, text) from None


def _value(key: str, text: str) -> Any:
    """The value of one text as the row shows it: a knob's parsed value, else the JSON scalar."""
    if key in KNOB_INFO:
        value = parse_knob_value(key, text)
        return None if isinstance(value, float) and np.isnan(value) else value
    try:
        return float(text)
    except ValueError:
        return text


def _cell(x: Any, i: int, shape: tuple[int, ...]) -> Any:
    value = np.broadcast_to(np.asarray(x), shape).ravel()[i]
    value = value.item() if isinstance(value, np.generic) else value
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _point_row(step: Any, i: int, shape: tuple[int, ...], inactive: np.ndarray) -> dict[str, Any]:
    """Point ``i`` of a flat evaluated grid as one row (metrics None where it does not fit)."""
    feasible = bool(_cell(step.feasible, i, shape))
    metrics = {k: _cell(v, i, shape) if feasible else None for k, v in step.metrics().items()}
    sp, cache = step.speculative, step.cache
    gamma = _cell(sp.draft_length_tokens, i, shape)
    pooled = cache.policy != "none"
    return {
        "feasible": feasible,
        "infeasible_reason": None if feasible else str(_cell(step.reason_per_point(), i, shape)),
        "metrics": metrics,
        "bound": str(_cell(step.bound, i, shape)),
        "policy": sp.policy,
        "draft": sp.draft if gamma else "none",
        "draft_length": gamma,
        "acceptance": _cell(sp.acceptance_frac, i, shape) if gamma else None,
        "tau": _cell(sp.tau_tokens, i, shape),
        "cache_policy": cache.policy,
        "pool_experts_per_layer": _cell(cache.pool_experts_per_layer, i, shape) if pooled else None,
        "hit_rate": _cell(cache.hit_rate_frac, i, shape) if pooled else None,
        "unique_experts_per_layer": _cell(cache.unique_experts_per_layer, i, shape),
        "inactive_knobs": [n for n in str(inactive.ravel()[i]).split(",") if n],
    }


def _off_default(knobs: Knobs, keys: Sequence[str]) -> Knobs:
    """``knobs`` with every knob of ``keys`` away from its default: the inactive-knob rule
    (:func:`elmoe_dse.knobs.inactive_knob_names`) reads a knob's value only to skip defaults, so
    a varied knob is then reported wherever it cannot act, at its default value too."""
    default = Knobs()
    updates: dict[str, Any] = {}
    for key in (k for k in keys if k in KNOB_INFO):
        value, choices = getattr(default, key), KNOB_INFO[key].choices
        if choices:
            updates[key] = next(c for c in choices if c != value)
        else:
            updates[key] = 0.0 if np.isnan(float(value)) else float(value) + 1.0
    return replace(knobs, **updates)


def _combination_rows(
    sc: Any, base: Knobs, pairs: list[str], grid: Sequence[VaryAxis], routing: str
) -> list[dict[str, Any]]:
    """The rows of one combination of the looped keys (``pairs`` holds them after ``--set``):
    the numeric knob axes of ``grid`` in C order, in one evaluator call. Every knob given
    (by ``--set`` or ``--vary``) is marked where it does not act."""
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.explain import point_routing
    from elmoe_dse.overrides import apply_overrides

    m, spec, knobs = apply_overrides(sc.model, sc.platform, base, pairs)
    _, p = point_routing(m, sc.profile.zipf_exponent, routing)
    values = list(itertools.product(*(a.texts for a in grid)))
    if grid:
        columns = list(zip(*values, strict=True))
        arrays: dict[str, Any] = {
            a.key: np.asarray([float(parse_knob_value(a.key, t)) for t in col])
            for a, col in zip(grid, columns, strict=True)
        }
        knobs = replace(knobs, **arrays)
    step = evaluate(m, spec, knobs, p, quality=sc.quality)
    shape = np.shape(step.feasible)
    varied = [*(a.key for a in grid), *(q.partition("=")[0] for q in pairs)]
    inactive = np.broadcast_to(step.inactive_knobs(_off_default(knobs, varied), spec), shape)
    rows = []
    for i, texts in enumerate(values):
        row = _point_row(step, i, shape, inactive)
        row["texts"] = dict(zip((a.key for a in grid), texts, strict=True))
        rows.append(row)
    return rows


def vary_rows(
    sc: Any, base: Knobs, sets: list[str], axes: Sequence[VaryAxis], routing: str = ""
) -> list[dict[str, Any]]:
    """One row per point of the axes' cross product (first axis slowest) at scenario ``sc``
    with knobs ``base`` and the ``--set`` pairs ``sets``; each row's ``values`` holds its value
    of every axis."""
    from elmoe_dse.overrides import apply_overrides

    apply_overrides(sc.model, sc.platform, base, sets)  # --set errors name --set
    _check_values(sc, base, sets, axes)
    looped = [a for a in axes if not a.vectorized]
    grid = [a for a in axes if a.vectorized]
    rows: list[dict[str, Any]] = []
    for texts in itertools.product(*(a.texts for a in looped)):
        given = [f"{a.key}={t}" for a, t in zip(looped, texts, strict=True)]
        try:
            combination = _combination_rows(sc, base, [*sets, *given], grid, routing)
        except ElmoeError as err:  # a combination the evaluator refuses: say which
            named = [*given, *(f"{a.key}={','.join(a.texts)}" for a in grid)]
            raise KnobError(f"--vary {' '.join(named)}: {err}") from None
        for row in combination:
            row["texts"] |= dict(zip((a.key for a in looped), texts, strict=True))
            rows.append(row)
    order = {a.key: {t: j for j, t in enumerate(a.texts)} for a in axes}
    rows.sort(key=lambda r: tuple(order[a.key][r["texts"][a.key]] for a in axes))
    out = []
    for row in rows:
        texts = row.pop("texts")
        out.append({"values": {a.key: _value(a.key, texts[a.key]) for a in axes}, **row})
        out[-1]["sets"] = [f"{a.key}={texts[a.key]}" for a in axes]
    return out


def check_band_budget(rows: int, draws: int) -> None:
    """Refuse (one line) more than :data:`MAX_BAND_EVALUATIONS` ensemble evaluations."""
    if rows * draws > MAX_BAND_EVALUATIONS:
        raise KnobError(
            f"--vary with --bands: {rows} rows x {draws} draws = {rows * draws} evaluations, "
            f"above {MAX_BAND_EVALUATIONS}; give fewer values or a smaller --draws"
        )


def vary_bands(
    point: dict[str, Any], rows: list[dict[str, Any]], draws: int
) -> list[dict[str, Any] | None]:
    """Each feasible row's 90 % bands over the shipped posterior ensemble (``point``: model,
    platform, dataset, knobs and ``--set`` pairs); None for a row that does not fit."""
    from elmoe_dse.calibration import load_ensemble
    from elmoe_dse.explore.ensemble import point_bands

    check_band_budget(len(rows), draws)
    post = load_ensemble().posterior()
    out: list[dict[str, Any] | None] = []
    for row in rows:
        if not row["feasible"]:
            out.append(None)
            continue
        at = {**point, "sets": [*point["sets"], *row["sets"]]}
        out.append(point_bands(at, post, draws, seed=20260417))
    return out


def vary_point(
    model_ref: str,
    platform_ref: str,
    dataset_ref: str = "mt-bench",
    calibration: str = "shipped",
    *,
    vary: Sequence[str],
    batch: int = 1,
    context: int = 1024,
    routing: str = "",
    sets: list[str] | None = None,
    calibrate_as: str | None = None,
    band_draws: int = 0,
) -> dict[str, Any]:
    """Everything ``explain --vary`` prints, from references (names or paths), as
    :func:`elmoe_dse.explain.explain_point` takes them; ``band_draws`` > 0 adds each row's
    ensemble bands."""
    from elmoe_dse.calibration import resolve_calibration
    from elmoe_dse.explain import point_routing
    from elmoe_dse.scenario import build_scenario

    axes = parse_vary(vary)
    if band_draws:
        check_band_budget(int(np.prod([len(a.texts) for a in axes])), band_draws)
    sets = list(sets or [])
    sc = build_scenario(model_ref, platform_ref, dataset_ref, resolve_calibration(calibration),
                        calibrate_as)  # fmt: skip
    base = sc.knobs(batch_size=batch, context_len=context)
    rows = vary_rows(sc, base, sets, axes, routing)
    if band_draws:
        point: dict[str, Any] = {
            "model": model_ref,
            "platform": platform_ref,
            "dataset": dataset_ref,
        }
        point |= {"knobs": {"batch_size": batch, "context_len": context}, "sets": sets}
        for row, bands in zip(rows, vary_bands(point, rows, band_draws), strict=True):
            row["bands"] = bands
    return {
        "model": sc.model.id,
        "platform": sc.platform.name,
        "dataset": dataset_ref,
        "calibration": calibration,
        "routing": routing or point_routing(sc.model, sc.profile.zipf_exponent, "")[0],
        "batch_size": batch,
        "context_len": context,
        "sets": sets,
        "vary": [{"key": a.key, "values": [_value(a.key, t) for t in a.texts]} for a in axes],
        "notes": list(sc.notes),
        "rows": rows,
    }
