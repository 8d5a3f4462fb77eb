"""The long-context figure (issue 12): per paper model (columns), ELMoE-3D 4 GB and 8 GB against
context length (log2 axis): speedup over xPU, speedup over the best prior platform, and the
expert-pool hit rate. Draws from the figure table written by
:func:`elmoe_dse.explore.long_context.figure_table` (no model code here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from elmoe_dse.plots import style

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

ROWS = (
    ("speedup_over_xpu", "speedup over xPU"),
    ("speedup_over_best_prior", "speedup over best prior"),
    ("hit_rate_frac", "HB pool hit rate"),
)


def long_context_figure(table: pd.DataFrame) -> Figure:
    """Rows: :data:`ROWS`; columns: models; one line per ELMoE-3D platform."""
    models = sorted(table["meta.model"].unique())
    platforms = sorted(table["meta.platform"].unique())
    with style.style_context():
        fig = style.new_figure(style.PAGE_WIDTH_IN, 5.2)
        axes = fig.subplots(len(ROWS), len(models), sharex=True, squeeze=False)
        for col, model in enumerate(models):
            for row, (column, label) in enumerate(ROWS):
                ax = axes[row][col]
                for platform in platforms:
                    g = table[(table["meta.model"] == model) & (table["meta.platform"] == platform)]
                    g = g.sort_values("knob.context_len")
                    ax.plot(
                        g["knob.context_len"],
                        g[column],
                        marker="o",
                        markersize=2.5,
                        color=style.platform_color(platform),
                        label=style.platform_label(platform),
                    )
                if row < 2:
                    ax.axhline(1.0, color="0.5", linewidth=0.6)
                ax.set_xscale("log", base=2)
                if row == 0:
                    ax.set_title(model, fontsize="small")
                if col == 0:
                    ax.set_ylabel(label, fontsize="small")
                if row == len(ROWS) - 1:
                    ax.set_xlabel("context (tokens)", fontsize="small")
        axes[0][0].legend(fontsize="x-small")
        fig.suptitle(
            "Varied: context length; MT-Bench, batch 1, default policies", fontsize="small"
        )
    return fig
