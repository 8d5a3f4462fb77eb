"""Report section for the long-context study (issue 12): from a ``sweeps/long_context.toml``
output folder, a markdown section with the figure, the halving contexts and a per-context table."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from elmoe_dse.explore.long_context import ELMOE_PLATFORMS, halving_context, speedup_table


def _ctx_text(value: float, top: float) -> str:
    return (
        f"> {top / 1024:.0f}k (not within the sweep)"
        if math.isnan(value)
        else f"{value / 1024:.1f}k"
    )


def _halving_lines(results: pd.DataFrame, top: float) -> list[str]:
    lines = [
        "| platform | model | speedup over xPU, 1k -> 128k | speedup halves at "
        "| throughput halves at |",
        "|---|---|---|---|---|",
    ]
    for platform in ELMOE_PLATFORMS:
        if platform not in set(results["meta.platform"]):
            continue
        table = speedup_table(results, platform)
        speedup = halving_context(table)
        tput = halving_context(table, "throughput_tok_per_s")
        for model, g in table.groupby("meta.model"):
            g = g.sort_values("knob.context_len")
            first, last = g["speedup_over_xpu"].iloc[0], g["speedup_over_xpu"].iloc[-1]
            lines.append(
                f"| {platform} | {model} | {first:.2f}x -> {last:.2f}x | "
                f"{_ctx_text(speedup[str(model)], top)} | {_ctx_text(tput[str(model)], top)} |"
            )
    return lines


def long_context_section(run_dir: Path) -> str:
    """The markdown section; the figure (``long_context.png``) is linked when present."""
    results = pd.read_parquet(run_dir / "results.parquet")
    results = results[results["meta.feasible"]]
    top = float(results["knob.context_len"].max())
    parts = [
        "## The long-context limit",
        "",
        "As the KV cache grows it takes HB capacity from the expert pool; ELMoE-3D's speedup "
        "over xPU is read against context (MT-Bench, batch 1, default policies). 'Halves at' is "
        "the context where the value falls to half its 1k value (log2 interpolation).",
        "",
    ]
    if (run_dir / "long_context.png").exists():
        parts += ["![long context](long_context.png)", ""]
    parts += _halving_lines(results, top)
    return "\n".join(parts) + "\n"
