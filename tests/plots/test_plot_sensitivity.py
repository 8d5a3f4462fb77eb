"""Knob sensitivity: records equal the evaluator's arrays; monotone where physics says so."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.explore.figure_steps import (
    CAPACITIES_GB,
    Context,
    Specs,
    acceptance_table,
    draft_length_table,
    evaluate_at,
    hit_rate_table,
)
from elmoe_dse.plots import sensitivity, style

MODEL, PLATFORM, DATASET = "deepseek-v2-lite", "elmoe3d-8g", "mt-bench"


def ctx(batches: tuple[float, ...] = (1.0, 16.0)) -> Context:
    return Context((MODEL,), DATASET, PLATFORM, batches, 1024.0, "the spec defaults")


def test_heatmap_data_is_the_evaluated_grid() -> None:
    table = acceptance_table(Specs(None), ctx())
    data = sensitivity.heatmap_data(table)
    bits, pools = data.draft_bits, data.pool_experts
    sc = Specs(None).scenario(MODEL, PLATFORM, DATASET)
    knobs = sc.knobs(
        policy="elastic-sd",
        batch_size=16.0,
        draft_length=4.0,
        rounding="lsb-augmented",
        draft_bits=np.asarray(bits)[:, None],
        pool_experts=np.asarray(pools)[None, :],
    )
    step = evaluate_at(sc, knobs)
    shape = (len(bits), len(pools))
    assert np.asarray(data.acceptance).shape == shape
    assert data.acceptance == tuple(
        tuple(float(v) for v in row)
        for row in np.broadcast_to(step.speculative.acceptance_frac, shape)
    )
    assert data.tokens_per_step == tuple(
        tuple(float(v) for v in row) for row in np.broadcast_to(step.tokens_per_step, shape)
    )
    ok = np.asarray(data.feasible)
    assert ok[:, 0].all()  # an empty pool always fits
    assert not ok[:, -1].all()  # the axis reaches past what fits
    # fewer draft bits fit at least as many experts
    fits = ok.sum(axis=1)
    assert np.all(np.diff(fits) <= 0)
    assert "tokens per step" in sensitivity.heatmap_caption(data)


def test_hit_rate_rises_with_capacity_and_the_hot_set_beats_random() -> None:
    (panel,) = sensitivity.hit_rate_panels(hit_rate_table(Specs(None), ctx()))
    assert panel.capacities_gb == CAPACITIES_GB
    lines = {line.cache: np.asarray(line.hit_rate) for line in panel.lines}
    assert set(lines) == {"lru", "hot", "random"}
    for h in lines.values():
        assert np.all(np.diff(h) >= -1e-12)
        assert np.all((h >= 0) & (h <= 1))
    assert np.all(lines["hot"] >= lines["random"] - 1e-12)
    assert "hot set" in sensitivity.hit_rate_caption([panel])


def test_draft_length_best_gamma_is_the_argmin() -> None:
    (panel,) = sensitivity.draft_length_panels(draft_length_table(Specs(None), ctx()))
    sc = Specs(None).scenario(MODEL, PLATFORM, DATASET)
    g = np.arange(9.0)
    knobs = sc.knobs(
        policy="elastic-sd",
        rounding="lsb-augmented",
        batch_size=np.asarray([1.0, 16.0])[:, None],
        draft_length=g[None, :],
    )
    lat = np.broadcast_to(evaluate_at(sc, knobs).latency_per_token_s, (2, len(g)))
    assert panel.latency_s == tuple(tuple(float(v) for v in row) for row in lat)
    assert panel.best_gamma == tuple(float(g[i]) for i in np.argmin(lat, axis=1))
    assert panel.gammas[0] == 0.0 and panel.batches == (1.0, 16.0)


def test_sensitivity_figures_render() -> None:
    heat = sensitivity.heatmap_data(acceptance_table(Specs(None), ctx((1.0, 4.0))))
    (hits,) = sensitivity.hit_rate_panels(hit_rate_table(Specs(None), ctx()))
    (gamma,) = sensitivity.draft_length_panels(draft_length_table(Specs(None), ctx((1.0, 4.0))))
    with style.style_context():
        for fig in (
            sensitivity.heatmap_figure(heat),
            sensitivity.hit_rate_figure([hits]),
            sensitivity.draft_length_figure([gamma]),
        ):
            assert style.figure_bytes(fig, "png").startswith(b"\x89PNG")
        assert sensitivity.draw_hit_rate_panel(hits).get_ylim()[1] == pytest.approx(1.02)
