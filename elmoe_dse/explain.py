"""The data behind ``elmoe-dse explain``: one design point's cost as plain JSON-ready values.

Pure: takes a 0-d :class:`~elmoe_dse.evaluator.StepCost` and returns dicts of floats and strings
in SI units (bytes, seconds, joules, ops). Rendering happens in the CLI.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from elmoe_dse.evaluator import StepCost
from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.roofline import OpCost, PassCost, add_dicts
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec


def _scalar(x: Any) -> Any:
    arr = np.asarray(x)
    if arr.shape != ():
        raise ValueError("explain takes one design point; got an array of shape " + str(arr.shape))
    value = arr.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def _op_dict(op: OpCost) -> dict[str, Any]:
    return {
        "name": op.name,
        "layers": op.layers,
        "unit": _scalar(op.unit),
        "time_s": _scalar(op.time_s),
        "bound": _scalar(op.bound_label()),
        "bytes_read_by_tier": {k: _scalar(v) for k, v in sorted(op.bytes_read.items())},
        "bytes_written_by_tier": {k: _scalar(v) for k, v in sorted(op.bytes_written.items())},
        "link_bytes": {k: _scalar(v) for k, v in sorted(op.link_bytes.items())},
        "ops": _scalar(op.ops),
        "precision": op.precision,
        "energy_j": _scalar(sum(np.asarray(v) for v in op.energy_j.values())),
        "energy_by_component_j": {k: _scalar(v) for k, v in sorted(op.energy_j.items())},
    }


def _pass_dict(ps: PassCost, index: int) -> dict[str, Any]:
    """One pass (a repeated draft pass is listed once per repeat, with its step index)."""
    ops = ps.operators
    return {
        "kind": ps.kind,
        "index": index,
        "tokens": _scalar(ps.tokens),
        "sequences": _scalar(ps.sequences),
        "unique_experts_per_layer": _scalar(ps.unique_experts_per_layer),
        "resident_experts_per_layer": _scalar(ps.resident_experts_per_layer),
        "time_s": _scalar(sum(np.asarray(op.time_s) for op in ops)),
        "energy_j": _scalar(sum(np.asarray(v) for op in ops for v in op.energy_j.values())),
        "bytes_by_tier": {
            k: _scalar(v) for k, v in sorted(add_dicts([op.bytes_read for op in ops]).items())
        },
        "operators": [_op_dict(op) for op in ops],
    }


def _expand(passes: tuple[PassCost, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for ps in passes:
        repeats = round(float(_scalar(ps.repeats)))
        out.extend(_pass_dict(ps, j) for j in range(repeats))
    return out


def explain_data(
    step: StepCost, model: ModelSpec, spec: PlatformSpec, knobs: Knobs, routing: str
) -> dict[str, Any]:
    """Everything ``explain`` shows, as JSON-ready values (SI units)."""
    knob_values = {name: getattr(knobs, name) for name in KNOB_INFO}
    return {
        "model": model.id,
        "platform": spec.name,
        "routing": routing,
        "knobs": {k: (v if isinstance(v, str) else _scalar(v)) for k, v in knob_values.items()},
        "metrics": {k: _scalar(v) for k, v in step.metrics().items()},
        "energy_by_component_j": {
            k: _scalar(v) for k, v in sorted(step.energy_by_component_j.items())
        },
        "bytes_by_tier": {k: _scalar(v) for k, v in sorted(step.bytes_by_tier.items())},
        "bound": _scalar(step.bound),
        "feasible": bool(_scalar(step.feasible)),
        "infeasible_reason": None if bool(_scalar(step.feasible)) else step.reason,
        "speculative": {
            "policy": step.speculative.policy,
            "draft": step.speculative.draft,
            "acceptance": _scalar(step.speculative.acceptance_frac),
            "draft_length": _scalar(step.speculative.draft_length_tokens),
            "tau": _scalar(step.speculative.tau_tokens),
        },
        "cache": {
            "policy": step.cache.policy,
            "bit_nested": step.cache.bit_nested,
            "pool_experts_per_layer": _scalar(step.cache.pool_experts_per_layer),
            "hit_rate": _scalar(step.cache.hit_rate_frac),
            "resident_unique_frac": _scalar(step.cache.resident_unique_frac),
        },
        "passes": _expand(step.passes),
    }


def explain_point(
    model_ref: str,
    platform_ref: str,
    dataset_ref: str = "mt-bench",
    calibration: str = "shipped",
    *,
    batch: int = 1,
    context: int = 1024,
    routing: str = "",
    sets: list[str] | None = None,
    calibrate_as: str | None = None,
) -> dict[str, Any]:
    """Everything ``explain`` prints for one point, from references (names or paths): the one
    path the CLI and :class:`elmoe_dse.api.Scenario` share. Routing defaults to the dataset
    profile's Zipf skew; an infeasible point raises :class:`~elmoe_dse.errors.KnobError`."""
    from elmoe_dse.calibration import resolve_calibration
    from elmoe_dse.errors import KnobError
    from elmoe_dse.evaluator import evaluate
    from elmoe_dse.overrides import apply_overrides
    from elmoe_dse.scenario import build_scenario

    cal = resolve_calibration(calibration)
    sc = build_scenario(model_ref, platform_ref, dataset_ref, cal, calibrate_as)
    knobs = sc.knobs(batch_size=batch, context_len=context)
    m, spec, knobs = apply_overrides(sc.model, sc.platform, knobs, list(sets or []))
    routing, p = point_routing(m, sc.profile.zipf_exponent, routing)
    step = evaluate(m, spec, knobs, p, quality=sc.quality)
    if not bool(step.feasible):
        raise KnobError(f"design does not fit: {step.reason}")
    knobs = knobs.validated()
    data = explain_data(step, m, spec, knobs, routing)
    data["dataset"] = dataset_ref
    data["calibration"] = calibration
    data["notes"] = list(sc.notes)
    data["inactive_knobs"] = step_inactive_knobs(step, spec, knobs)
    return data


def point_routing(model: ModelSpec, zipf_exponent: float, routing: str) -> tuple[str, Any]:
    """The routing label and expert probabilities of a point: ``routing`` parsed, or (empty) the
    dataset profile's exact Zipf skew (the label rounds it)."""
    from elmoe_dse.routing import expert_probabilities, parse_routing

    if routing:
        return routing, parse_routing(routing, model.num_experts, model.experts_per_token)
    label = f"zipf:{zipf_exponent:g}"
    return label, expert_probabilities(
        model.num_experts, model.experts_per_token, "zipf", zipf_exponent
    )


def step_inactive_knobs(step: StepCost, spec: PlatformSpec, knobs: Knobs) -> dict[str, str]:
    """:func:`~elmoe_dse.knobs.inactive_knobs` at a 0-d step (a zero draft length is plain)."""
    from elmoe_dse.knobs import inactive_knobs

    sp = step.speculative
    plain = sp.draft == "none" or not float(np.asarray(sp.draft_length_tokens)) > 0
    return inactive_knobs(
        knobs,
        tiers=tuple(spec.tiers),
        logic_die=spec.logic_die is not None,
        policy=sp.policy,
        draft="none" if plain else sp.draft,
        cache_policy=step.cache.policy,
        bit_nested=step.cache.bit_nested,
    )
