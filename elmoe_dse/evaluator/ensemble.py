"""Evaluate S parameter draws at once: spec constants with a leading sample axis.

A draw of the ensemble (:mod:`elmoe_dse.explore.ensemble`) changes spec constants (platform
energies, near-memory bandwidth, dataset profile rates, the acceptance shape) and each model's
routing skew, so its routing vector p. :func:`evaluate_draws` stacks S draws: every constant
that differs between them becomes an array of shape (S, 1, ..., 1) that broadcasts against the
knob grid (one trailing 1 per grid axis), p becomes an (S, E) matrix, and one pass of the
evaluator costs all of them. Every :class:`~elmoe_dse.evaluator.records.StepCost` array then
has a leading axis of S draws, and slice s is bit-for-bit the evaluation of draw s alone: the
evaluator is elementwise over the grid, and the routing solves (:mod:`elmoe_dse.locality`) run
on each draw's own probability levels (:func:`~elmoe_dse.evaluator.stages.residency_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields, is_dataclass, replace
from typing import Any

import numpy as np
from pydantic import BaseModel

from elmoe_dse.errors import KnobError
from elmoe_dse.evaluator import ResidencyMemo, StepCost, evaluate
from elmoe_dse.knobs import Knobs
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.speculative import DraftQuality

__all__ = ["draw_slice", "evaluate_draws", "stack_draws"]


def _same(values: Sequence[Any]) -> bool:
    first = values[0]
    if isinstance(first, np.ndarray) or any(isinstance(v, np.ndarray) for v in values):
        return all(np.array_equal(np.asarray(first), np.asarray(v)) for v in values[1:])
    return all(v is first or v == first for v in values[1:])


def _stack_numbers(values: Sequence[Any], grid_ndim: int) -> np.ndarray:
    """Numbers (or arrays of one grid shape) of S draws as an (S, 1.., *shape) array."""
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in values))
    out = np.stack(arrays)
    pad = grid_ndim - arrays[0].ndim
    if pad < 0:
        raise KnobError(f"a drawn constant has {arrays[0].ndim} axes, more than the grid's")
    return out.reshape(out.shape[:1] + (1,) * pad + out.shape[1:])


def stack_draws(values: Sequence[Any], grid_ndim: int) -> Any:
    """One object for S draws of the same spec (pydantic models, dataclasses, dicts, tuples,
    numbers): a field equal in every draw is kept as it is, a number that differs becomes an
    array with a leading sample axis of S followed by ``grid_ndim`` axes of 1 (so it broadcasts
    against the knob grid). A string or flag that differs cannot be stacked (KnobError)."""
    if _same(values):
        return values[0]
    first = values[0]
    if isinstance(first, BaseModel):
        names = type(first).model_fields
        data = {n: stack_draws([getattr(v, n) for v in values], grid_ndim) for n in names}
        return type(first).model_construct(_fields_set=first.model_fields_set, **data)
    if is_dataclass(first) and not isinstance(first, type):
        data = {
            f.name: stack_draws([getattr(v, f.name) for v in values], grid_ndim)
            for f in fields(first)
        }
        return replace(first, **data)
    if isinstance(first, dict):
        if any(set(v) != set(first) for v in values):
            raise KnobError("the draws' specs have different keys; they cannot be stacked")
        return {k: stack_draws([v[k] for v in values], grid_ndim) for k in first}
    if isinstance(first, tuple | list) and all(len(v) == len(first) for v in values):
        parts = zip(*values, strict=True)
        return type(first)(stack_draws(list(part), grid_ndim) for part in parts)
    numeric = (int, float, np.integer, np.floating, np.ndarray)
    if all(isinstance(v, numeric) and not isinstance(v, bool) for v in values):
        return _stack_numbers(values, grid_ndim)
    raise KnobError(f"the draws differ in {first!r}, which is not a number; cannot stack them")


def _grid_ndim(knobs: Sequence[Knobs]) -> int:
    return max(np.ndim(getattr(k, f.name)) for k in knobs for f in fields(k))


def evaluate_draws(
    model: ModelSpec,
    specs: Sequence[PlatformSpec],
    knobs: Sequence[Knobs],
    routing_probs: Sequence[np.ndarray],
    qualities: Sequence[DraftQuality],
    *,
    residency_memo: ResidencyMemo | None = None,
) -> StepCost:
    """:func:`~elmoe_dse.evaluator.evaluate` of S draws at once (one platform spec, knobs,
    routing vector and draft quality per draw; the same model, policy and string knobs).

    Every array of the result has a leading axis of S draws followed by the knob grid's axes;
    :func:`draw_slice` of draw s is bit-for-bit ``evaluate(model, specs[s], knobs[s],
    routing_probs[s], quality=qualities[s])``.
    """
    n = len(specs)
    if not n or not len(knobs) == len(routing_probs) == len(qualities) == n:
        raise KnobError("evaluate_draws needs one spec, knobs, routing and quality per draw")
    ndim = _grid_ndim(knobs)
    spec = _stacked(specs, ndim)
    stacked_knobs = _with_sample_axis(stack_draws(list(knobs), ndim), n, ndim)
    quality = _stacked(qualities, ndim)
    p = np.stack([np.asarray(x, dtype=float) for x in routing_probs])
    return _as_draws(
        evaluate(model, spec, stacked_knobs, p, quality=quality, residency_memo=residency_memo), n
    )


#: Stacks of frozen specs by the identity of their draws (the draws are kept alive with
#: their stack, so an identity is never reused while its entry is here).
_STACKS: dict[tuple[int, ...], tuple[list[Any], Any]] = {}
_STACKS_SIZE = 256


def _stacked(values: Sequence[Any], ndim: int) -> Any:
    """:func:`stack_draws` of frozen specs, once per sequence of the same objects."""
    key = (ndim, *map(id, values))
    hit = _STACKS.get(key)
    if hit is None:
        if len(_STACKS) >= _STACKS_SIZE:
            _STACKS.clear()
        hit = _STACKS[key] = (list(values), stack_draws(list(values), ndim))
    return hit[1]


def _with_sample_axis(knobs: Knobs, n: int, ndim: int) -> Knobs:
    """``knobs`` whose batch size carries the sample axis (so every knob does once validated:
    the per-draw stages, :func:`~elmoe_dse.routing.per_draw`, find the draws on it)."""
    b = np.asarray(knobs.batch_size)
    if b.ndim == ndim + 1:
        return knobs
    return replace(knobs, batch_size=np.broadcast_to(b, (n, *(1,) * (ndim - b.ndim), *b.shape)))


def _as_draws(step: StepCost, n: int) -> StepCost:
    """``step`` with every array given its leading sample axis of ``n`` (broadcast)."""
    shape = np.shape(step.throughput_tok_per_s)
    if len(shape) and shape[0] == n:
        return step
    return _map_arrays(step, lambda x: np.broadcast_to(x, (n, *np.shape(x))))


def _map_arrays(obj: Any, fn: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return fn(obj)
    if is_dataclass(obj) and not isinstance(obj, type):
        return replace(obj, **{f.name: _map_arrays(getattr(obj, f.name), fn) for f in fields(obj)})
    if isinstance(obj, dict):
        return {k: _map_arrays(v, fn) for k, v in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_map_arrays(v, fn) for v in obj)
    return obj


def draw_slice(step: StepCost, s: int) -> StepCost:
    """Draw ``s`` of a result of :func:`evaluate_draws`: an array with as many axes as the
    result's throughput (the sample axis and the grid's) is taken at ``s`` on its first axis
    (of length 1 where it is the same for every draw); one with fewer axes broadcasts from the
    right against the grid, so it is the same for every draw and is kept."""
    full = np.ndim(step.throughput_tok_per_s)

    def pick(x: np.ndarray) -> np.ndarray:
        return x[s if x.shape[0] > 1 else 0] if x.ndim == full else x

    return _map_arrays(step, pick)
