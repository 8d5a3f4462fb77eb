"""Knob sensitivity: records equal the evaluator's arrays; monotone where physics says so."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.plots import sensitivity, style
from elmoe_dse.plots.evaluated import scenario

MODEL, PLATFORM, DATASET = "deepseek-v2-lite", "elmoe3d-8g", "mt-bench"


def test_heatmap_data_is_the_evaluated_grid() -> None:
    sc = scenario(MODEL, PLATFORM, DATASET, None)
    step, bits, pools = sensitivity.evaluate_heatmap(sc, batch_size=16)
    data = sensitivity.heatmap_data(
        step,
        draft_bits=bits,
        pool_experts=pools,
        model=MODEL,
        platform=PLATFORM,
        dataset=DATASET,
        batch_size=16,
        draft_length=sensitivity.HEATMAP_GAMMA,
    )
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
    steps = sensitivity.evaluate_hit_rates(MODEL, DATASET, None)
    panel = sensitivity.hit_rate_data(MODEL, sensitivity.CAPACITIES_GB, steps)
    lines = {line.cache: np.asarray(line.hit_rate) for line in panel.lines}
    for h in lines.values():
        assert np.all(np.diff(h) >= -1e-12)
        assert np.all((h >= 0) & (h <= 1))
    assert np.all(lines["hot"] >= lines["random"] - 1e-12)
    assert "hot set" in sensitivity.hit_rate_caption([panel])


def test_draft_length_best_gamma_is_the_argmin() -> None:
    sc = scenario(MODEL, PLATFORM, DATASET, None)
    step, b, g = sensitivity.evaluate_draft_lengths(sc, [1, 16])
    panel = sensitivity.draft_length_data(step, model=MODEL, platform=PLATFORM, batches=b, gammas=g)
    lat = np.broadcast_to(step.latency_per_token_s, (2, len(g)))
    assert panel.latency_s == tuple(tuple(float(v) for v in row) for row in lat)
    assert panel.best_gamma == tuple(float(g[i]) for i in np.argmin(lat, axis=1))
    assert panel.gammas[0] == 0.0


def test_sensitivity_figures_render() -> None:
    sc = scenario(MODEL, PLATFORM, DATASET, None)
    step, bits, pools = sensitivity.evaluate_heatmap(sc, batch_size=4)
    heat = sensitivity.heatmap_data(
        step,
        draft_bits=bits,
        pool_experts=pools,
        model=MODEL,
        platform=PLATFORM,
        dataset=DATASET,
        batch_size=4,
        draft_length=4,
    )
    hits = sensitivity.hit_rate_data(
        MODEL, sensitivity.CAPACITIES_GB, sensitivity.evaluate_hit_rates(MODEL, DATASET, None)
    )
    step, b, g = sensitivity.evaluate_draft_lengths(sc, [1, 4])
    gamma = sensitivity.draft_length_data(step, model=MODEL, platform=PLATFORM, batches=b, gammas=g)
    with style.style_context():
        for fig in (
            sensitivity.heatmap_figure(heat),
            sensitivity.hit_rate_figure([hits]),
            sensitivity.draft_length_figure([gamma]),
        ):
            assert style.figure_bytes(fig, "png").startswith(b"\x89PNG")
        assert sensitivity.draw_hit_rate_panel(hits).get_ylim()[1] == pytest.approx(1.02)
