"""Predicted vs measured decode time per token (``validate``'s scatter), from its CSV table only.

Log-log axes, the y = x line and +-25 % guides; points coloured by model, marked by batch;
points that fitted an end-to-end term (``role`` starting with ``fit``) are drawn faded, the
held-out ones solid.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from elmoe_dse.plots import style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")


def validate_figure(table: pd.DataFrame) -> Figure:
    """The scatter of a validate table (columns of :func:`~elmoe_dse.explore.validate`)."""
    fig = style.new_figure(6.0, 5.0)
    ax = fig.add_subplot(1, 1, 1)
    models = sorted(table.model.unique())
    batches = sorted(table.batch.unique())
    fitted = (
        table.role.astype(str).str.startswith("fit")
        if "role" in table
        else pd.Series(False, index=table.index)
    )
    for (model, batch, fit), rows in table.assign(fit=fitted).groupby(["model", "batch", "fit"]):
        ax.scatter(
            rows.measured_ms_per_token,
            rows.predicted_ms_per_token,
            color=COLORS[models.index(model) % len(COLORS)],
            marker=MARKERS[batches.index(batch) % len(MARKERS)],
            s=42,
            alpha=0.35 if fit else 1.0,
            edgecolor="black",
            linewidth=0.4,
            zorder=3,
        )
    lo = 0.8 * float(min(table.measured_ms_per_token.min(), table.predicted_ms_per_token.min()))
    hi = 1.25 * float(max(table.measured_ms_per_token.max(), table.predicted_ms_per_token.max()))
    line = np.array([lo, hi])
    ax.plot(line, line, color="black", linewidth=1.0, label="y = x")
    for f in (0.75, 1.25):
        ax.plot(line, f * line, color="grey", linewidth=0.7, linestyle="--")
    ax.set(xscale="log", yscale="log", xlim=(lo, hi), ylim=(lo, hi))
    ax.set_xlabel("measured time per output token (ms)")
    ax.set_ylabel("predicted time per output token (ms)")
    style.plain_log_ticks(ax)
    for i, m in enumerate(models):
        ax.scatter([], [], color=COLORS[i % len(COLORS)], marker="o", label=m)
    for i, b in enumerate(batches):
        ax.scatter(
            [],
            [],
            color="white",
            edgecolor="black",
            marker=MARKERS[i % len(MARKERS)],
            label=f"batch {b}",
        )
    ax.plot([], [], color="grey", linestyle="--", linewidth=0.7, label="+-25 %")
    if fitted.any():
        ax.scatter([], [], color="grey", alpha=0.35, marker="o", label="faded: fit point")
    ax.legend(loc="upper left", fontsize=7, frameon=False)
    ax.set_title("elmoe-dse validate: model vs measured GPU decode", fontsize=9)
    return fig


def write_validate_png(csv_path: Path, png_path: Path) -> Path:
    """Draw the scatter of the table at ``csv_path`` into ``png_path``."""
    table = pd.read_csv(csv_path)
    with style.style_context():
        png_path.write_bytes(style.figure_bytes(validate_figure(table), "png"))
    return png_path
