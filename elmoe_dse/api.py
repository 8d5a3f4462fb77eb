"""The documented entry point of the Python API: :class:`Scenario`, one model x platform x
dataset with exactly the numbers ``elmoe-dse explain`` gives.

It goes through the same path as every command (:func:`elmoe_dse.scenario.build_scenario`): the
shipped calibration by explicit mapping (:mod:`elmoe_dse.calibration`), the dataset profile's
routing skew and overlap, then the knobs you pass, then ``sets`` (``--set KEY=VALUE`` pairs)::

    from elmoe_dse import Scenario

    sc = Scenario(model="qwen3-30b-a3b", platform="elmoe3d-8g", dataset="mt-bench")
    step = sc.evaluate(batch_size=[1, 4, 16])  # knobs may be lists or arrays: one vectorized call
    step.throughput_tok_per_s, step.energy_per_token_j
    sc.explain(batch_size=4)  # the dict `explain --json` prints
    sc.vary("hb_capacity_gb=4,8,16", batch_size=8)  # `explain --vary ... --json`: one row each
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from elmoe_dse.evaluator import StepCost
    from elmoe_dse.scenario import Scenario as Specs


@dataclass(frozen=True)
class Scenario:
    """One model x platform x dataset (names or spec file paths), calibrated as the CLI does.

    ``calibration``: ``shipped`` (the default), ``none`` or a calibration/ensemble file, as
    ``--calibration``; ``calibrate_as``: as ``--calibrate-as`` (a platform file's opt-in to a
    shipped platform's calibration); ``sets``: ``KEY=VALUE`` overrides, as ``--set``.
    """

    model: str
    platform: str
    dataset: str = "mt-bench"
    calibration: str = "shipped"
    calibrate_as: str | None = None
    sets: Sequence[str] = ()

    @cached_property
    def specs(self) -> Specs:
        """The calibrated specs and routing (:class:`elmoe_dse.scenario.Scenario`)."""
        from elmoe_dse.calibration import resolve_calibration
        from elmoe_dse.scenario import build_scenario

        cal = resolve_calibration(self.calibration)
        return build_scenario(self.model, self.platform, self.dataset, cal, self.calibrate_as)

    @property
    def notes(self) -> tuple[str, ...]:
        """How the calibration reached the platform, when not as a shipped name."""
        return self.specs.notes

    def evaluate(self, **knobs: Any) -> StepCost:
        """The step cost at these knob values (defaults < dataset profile < ``knobs`` <
        ``sets``); lists and arrays broadcast, infeasible points are flagged, not raised."""
        import numpy as np

        from elmoe_dse.evaluator import evaluate
        from elmoe_dse.overrides import apply_overrides
        from elmoe_dse.routing import expert_probabilities

        sc = self.specs
        values = {k: np.asarray(v) if isinstance(v, list | tuple) else v for k, v in knobs.items()}
        m, spec, k = apply_overrides(sc.model, sc.platform, sc.knobs(**values), list(self.sets))
        p = sc.p
        if (
            m.num_experts != sc.model.num_experts
            or m.experts_per_token != sc.model.experts_per_token
        ):
            p = expert_probabilities(
                m.num_experts, m.experts_per_token, "zipf", sc.profile.zipf_exponent
            )
        return evaluate(m, spec, k, p, quality=sc.quality)

    def explain(self, batch_size: int = 1, context_len: int = 1024) -> dict[str, Any]:
        """What ``elmoe-dse explain --json`` prints for this point."""
        from elmoe_dse.explain import explain_point

        return explain_point(
            self.model,
            self.platform,
            self.dataset,
            self.calibration,
            batch=batch_size,
            context=context_len,
            sets=list(self.sets),
            calibrate_as=self.calibrate_as,
        )

    def vary(self, *vary: str, batch_size: int = 1, context_len: int = 1024) -> dict[str, Any]:
        """What ``elmoe-dse explain --vary KEY=V1,V2,... --json`` prints: one row of step
        totals per value (``vary``: the ``KEY=V1,V2,...`` strings; their cross product)."""
        from elmoe_dse.explain_vary import vary_point

        return vary_point(
            self.model,
            self.platform,
            self.dataset,
            self.calibration,
            vary=list(vary),
            batch=batch_size,
            context=context_len,
            sets=list(self.sets),
            calibrate_as=self.calibrate_as,
        )
