"""A small [design] sweep (one model, two datasets, batch 1 and 16, 6 hardware designs) shared
by the design-mode tests (tests/explore/test_design.py, tests/plots/test_plot_cost.py)."""

from __future__ import annotations

from typing import Any


def design_data(**extra: Any) -> dict[str, Any]:
    """The sweep as a mapping; ``extra`` replaces top-level keys, or [design] keys for
    aggregate, select and select_direction."""
    out: dict[str, Any] = {
        "schema_version": 1,
        "name": "design-test",
        "models": ["deepseek-v2-lite"],
        "platforms": ["elmoe3d-8g"],
        "datasets": ["mt-bench", "gsm8k"],
        "group_by": ["model"],
        "knobs": {
            "policy": "elmoe3d",
            "batch_size": [1, 16],
            "draft_bits": [2, 4],
            "draft_length": [2, 4],
            "hb_capacity_gb": [2, 8, 16],
            "pe_count": [16, 64],
        },
        "objectives": [
            {"metric": "metric.throughput_tok_per_s", "direction": "maximize"},
            {"metric": "metric.cost_usd", "direction": "minimize"},
        ],
        "design": {
            "hardware": ["hb_capacity_gb", "pe_count"],
            "runtime": ["draft_bits", "draft_length"],
            "conditions": ["model", "dataset", "batch_size"],
        },
    }
    for key, value in extra.items():
        if key in ("aggregate", "select", "select_direction"):
            out["design"][key] = value
        else:
            out[key] = value
    return out
