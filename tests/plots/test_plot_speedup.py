"""Speedup and energy-efficiency bars: ratios by equality on a small systems table."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse.plots import speedup, style
from elmoe_dse.plots.speedup import RatioPanel, SpeedupData, SystemBars


def systems() -> pd.DataFrame:
    rows = []
    # (system, platform, policy, {(dataset, batch): (tok/s, J/token)})
    data = {
        ("xpu", "xpu", "ar"): {
            ("a", 1): (10, 1.0),
            ("b", 1): (20, 2.0),
            ("a", 4): (40, 0.5),
            ("b", 4): (40, 0.5),
        },
        ("elmoe3d", "elmoe3d-8g", "elmoe3d"): {
            ("a", 1): (50, 0.25),
            ("b", 1): (60, 1.0),
            ("a", 4): (80, 0.25),
            ("b", 4): (120, 0.1),
        },
        ("xpu-pim", "xpu-pim", "ar"): {
            ("a", 1): (20, 0.5),
            ("b", 1): (20, 1.0),
            ("a", 4): (40, 0.5),
            ("b", 4): (80, 0.25),
        },
    }
    for (system, platform, policy), cells in data.items():
        for (dataset, batch), (tput, energy) in cells.items():
            rows.append(
                {
                    "meta.model": "deepseek-v2-lite",
                    "meta.dataset": dataset,
                    "knob.batch_size": batch,
                    "meta.system": system,
                    "meta.platform": platform,
                    "meta.policy": policy,
                    "metric.throughput_tok_per_s": float(tput),
                    "metric.energy_per_token_j": float(energy),
                }
            )
    return pd.DataFrame(rows)


def test_speedup_data_by_equality() -> None:
    data = speedup.speedup_data(systems(), paper_speedup=6.6, paper_energy=4.4)
    # speedup elmoe3d: B=1 mean(5, 3) = 4, B=4 mean(2, 3) = 2.5; energy: B=1 mean(4, 2) = 3,
    # B=4 mean(2, 5) = 3.5. PIM: speedup B=1 mean(2, 1), B=4 mean(1, 2); energy B=1 mean(2, 2),
    # B=4 mean(1, 2).
    assert data == SpeedupData(
        batches=(1.0, 4.0),
        datasets=("a", "b"),
        panels=(
            RatioPanel(
                "deepseek-v2-lite",
                "speedup",
                (
                    SystemBars("elmoe3d", "elmoe3d-8g", "elmoe3d", (4.0, 2.5)),
                    SystemBars("xpu-pim", "xpu-pim", "ar", (1.5, 1.5)),
                ),
                6.6,
            ),
            RatioPanel(
                "deepseek-v2-lite",
                "energy",
                (
                    SystemBars("elmoe3d", "elmoe3d-8g", "elmoe3d", (3.0, 3.5)),
                    SystemBars("xpu-pim", "xpu-pim", "ar", (2.0, 1.5)),
                ),
                4.4,
            ),
        ),
        overall=(("elmoe3d", 3.25, 3.25), ("xpu-pim", 1.5, 1.75)),
    )


def test_caption_names_the_winner_per_batch() -> None:
    text = speedup.caption(speedup.speedup_data(systems(), paper_speedup=6.6, paper_energy=4.4))
    assert "ELMoE-3D over xPU, mean of all cells: 3.25x faster" in text
    assert "fastest at B = 1: ELMoE-3D (4.00x), at B = 4: ELMoE-3D (2.50x)" in text


def test_the_means_are_the_reproduce_targets(reproduce_master: Path) -> None:
    """Averaging per model and batch, then over everything, gives the headline mean."""
    import json

    folder = reproduce_master / "reproduce"
    data = speedup.speedup_data(
        pd.read_parquet(folder / "systems.parquet"), paper_speedup=6.6, paper_energy=4.4
    )
    targets = {t["name"]: t for t in json.loads((folder / "run.json").read_text())["targets"]}
    overall = {s: (sp, en) for s, sp, en in data.overall}
    assert overall["elmoe3d"][0] == pytest.approx(targets["speedup_vs_xpu_mean"]["model"])
    assert overall["elmoe3d"][1] == pytest.approx(targets["energy_vs_xpu_mean"]["model"])
    bars = {b.system: b for b in data.panels[0].bars}
    assert not any(math.isnan(v) for b in bars.values() for v in b.values)
    assert "xpu" not in bars


def test_speedup_figure_renders() -> None:
    data = speedup.speedup_data(systems(), paper_speedup=6.6, paper_energy=4.4)
    with style.style_context():
        assert style.figure_bytes(speedup.speedup_figure(data), "png").startswith(b"\x89PNG")
        ax = speedup.draw_ratio_panel(data.panels[0], data.batches)
        assert ax.get_yscale() == "log"
