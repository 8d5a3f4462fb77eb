"""The long-context limit (issue 12): speedups of ELMoE-3D over xPU and over the best prior
platform against context length, from a ``sweeps/long_context.toml`` results frame, and the
context at which ELMoE-3D's speedup over xPU halves from its shortest-context value
(interpolated linearly in log2(context))."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from elmoe_dse.columns import THROUGHPUT_TOK_PER_S as THROUGHPUT

PRIORS = ("xpu", "xpu-pim", "xpu-logicpim", "xpu-nmp", "hb-xpu")


def speedup_table(results: pd.DataFrame, platform: str) -> pd.DataFrame:
    """Per (model, context_len): ``platform``'s throughput, pool size, hit rate and its speedup
    over xPU and over the fastest prior platform (named in ``best_prior``)."""
    rows = results[results["meta.feasible"]]
    tput = rows.pivot_table(
        index=["meta.model", "knob.context_len"], columns="meta.platform", values=THROUGHPUT
    )
    mine = rows[rows["meta.platform"] == platform].set_index(["meta.model", "knob.context_len"])
    priors = tput[[p for p in PRIORS if p in tput.columns]]
    out = pd.DataFrame(
        {
            "throughput_tok_per_s": tput[platform],
            "pool_experts_per_layer": mine["metric.pool_experts_per_layer"],
            "hit_rate_frac": mine["metric.hit_rate_frac"],
            "speedup_over_xpu": tput[platform] / tput["xpu"],
            "best_prior": priors.idxmax(axis=1),
            "speedup_over_best_prior": tput[platform] / priors.max(axis=1),
        }
    )
    return out.reset_index()


def halving_context(table: pd.DataFrame, column: str = "speedup_over_xpu") -> dict[str, float]:
    """Per model, the context (tokens) at which ``column`` falls to half its value at the
    shortest context; ``nan`` when it never does within the swept range."""
    out: dict[str, float] = {}
    for model, group in table.groupby("meta.model"):
        g = group.sort_values("knob.context_len")
        ctx = g["knob.context_len"].to_numpy(float)
        val = g[column].to_numpy(float)
        half = val[0] / 2.0
        out[str(model)] = math.nan
        for i in range(1, len(val)):
            if val[i] <= half:
                x0, x1 = math.log2(ctx[i - 1]), math.log2(ctx[i])
                f = (val[i - 1] - half) / (val[i - 1] - val[i])
                out[str(model)] = 2.0 ** (x0 + f * (x1 - x0))
                break
    return out


ELMOE_PLATFORMS = ("elmoe3d-4g", "elmoe3d-8g")


def figure_table(results: pd.DataFrame) -> pd.DataFrame:
    """:func:`speedup_table` for both ELMoE-3D sizes present in ``results``, stacked with a
    ``meta.platform`` column (the long-context figure's input)."""
    present = set(results["meta.platform"])
    parts = [
        speedup_table(results, p).assign(**{"meta.platform": p})
        for p in ELMOE_PLATFORMS
        if p in present
    ]
    return pd.concat(parts, ignore_index=True)


def write_figure(run_dir: Path) -> list[Path]:
    """Write ``figure_long_context.parquet`` and ``long_context.png`` into ``run_dir`` (a
    ``sweeps/long_context.toml`` output folder); returns the written paths."""
    from elmoe_dse.plots.long_context import long_context_figure
    from elmoe_dse.plots.style import PNG_DPI

    table = figure_table(pd.read_parquet(run_dir / "results.parquet"))
    table_path = run_dir / "figure_long_context.parquet"
    table.to_parquet(table_path)
    png = run_dir / "long_context.png"
    long_context_figure(table).savefig(png, dpi=PNG_DPI)
    return [table_path, png]
