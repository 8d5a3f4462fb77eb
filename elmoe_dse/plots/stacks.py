"""Does a second stack beat a bigger one? Throughput and energy per token vs batch size for
every stack count (the ``ep`` knob: expert-parallel ELMoE-3D stacks) and HB capacity of a sweep
(``sweeps/stacks.toml``).

:func:`stacks_table` is pure: from a sweep's results it takes, per stack count, HB capacity and
batch size, the fastest feasible design (over the other knobs, such as the draft length) and its
energy per token. :func:`stacks_comparison` sets every multi-stack line against one stack with
the same total HB and with the largest HB of the sweep. :func:`stacks_figure` only draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from elmoe_dse.columns import (
    ENERGY_PER_TOKEN_J,
    FEASIBLE,
    THROUGHPUT_TOK_PER_S,
    knob_column,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

STACKS = knob_column("ep")
HB = knob_column("hb_capacity_gb")
BATCH_SIZE = knob_column("batch_size")
DASHES = ("-", "--", ":", "-.")
MARKERS = ("o", "s", "^", "D")


def stacks_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Fastest feasible design per (stacks, HB GB, batch): throughput and energy per token."""
    ok = frame[frame[FEASIBLE].astype(bool)]
    keys = [STACKS, HB, BATCH_SIZE]
    best = ok.loc[ok.groupby(keys)[THROUGHPUT_TOK_PER_S].idxmax()]
    out = best[[*keys, THROUGHPUT_TOK_PER_S, ENERGY_PER_TOKEN_J]].copy()
    out.columns = ["stacks", "hb_gb", "batch", "throughput_tok_per_s", "energy_per_token_j"]
    return out.sort_values(["stacks", "hb_gb", "batch"]).reset_index(drop=True)


def stacks_comparison(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per batch: n stacks of HB h against one stack of n h (same total HB, where swept) and
    against one stack of the sweep's largest HB; ratios of throughput and of energy per token."""
    single = table[table["stacks"] == 1].set_index(["hb_gb", "batch"])
    one, one_energy = single["throughput_tok_per_s"], single["energy_per_token_j"]
    biggest = float(table["hb_gb"].max())
    rows = []
    for rec in table[table["stacks"] > 1].to_dict(orient="records"):
        n, hb, batch = int(rec["stacks"]), float(rec["hb_gb"]), float(rec["batch"])
        value, joules = float(rec["throughput_tok_per_s"]), float(rec["energy_per_token_j"])
        rows.append(
            {
                "stacks": n,
                "hb_gb": hb,
                "batch": batch,
                "vs_same_total_hb": _ratio(value, one.get((hb * n, batch))),
                "vs_largest_hb": _ratio(value, one.get((biggest, batch))),
                "energy_vs_largest_hb": _ratio(joules, one_energy.get((biggest, batch))),
            }
        )
    return rows


def _ratio(value: float, reference: float | None) -> float | None:
    return None if reference is None else float(value) / float(reference)


def _span(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return f"x{min(known):.2f}-{max(known):.2f}" if known else "n/a"


def stacks_caption(table: pd.DataFrame) -> str:
    """What to read: where n stacks beat one stack with the largest HB, at what energy."""
    rows = stacks_comparison(table)
    biggest = float(table["hb_gb"].max())
    parts = []
    for n in sorted({r["stacks"] for r in rows}):
        for hb in sorted({r["hb_gb"] for r in rows if r["stacks"] == n}):
            wins = [r for r in rows if r["stacks"] == n and r["hb_gb"] == hb]
            beat = [r["batch"] for r in wins if (r["vs_largest_hb"] or 0.0) > 1.0]
            if beat:
                parts.append(
                    f"{n} x {hb:g} GB beats 1 x {biggest:g} GB at B = "
                    f"{', '.join(f'{b:g}' for b in beat)} (throughput "
                    f"{_span([r['vs_largest_hb'] for r in wins])}, energy per token "
                    f"{_span([r['energy_vs_largest_hb'] for r in wins])})"
                )
    if not parts:
        return f"no multi-stack design beats one stack of {biggest:g} GB HB"
    return "; ".join(parts) + (
        ". Each stack reads its own experts from its own LPDDR and pools its HB; dispatch and "
        "combine cross the stacks' link every MoE layer; every stack adds its static power"
    )


def stacks_figure(table: pd.DataFrame) -> Figure:
    """Throughput (left) and energy per token (right) vs batch size; colour = stacks, line style
    = HB capacity."""
    from elmoe_dse.plots import style

    fig = style.new_figure(9.0, 3.6)
    left, right = fig.subplots(1, 2)
    hbs = sorted(table["hb_gb"].unique())
    counts = sorted(table["stacks"].unique())
    colors = ["#1b4f72", "#c0392b", "#1e8449", "#7d3c98"]
    for i, n in enumerate(counts):
        for j, hb in enumerate(hbs):
            rows = table[(table["stacks"] == n) & (table["hb_gb"] == hb)]
            kw = {
                "color": colors[i % len(colors)],
                "linestyle": DASHES[j % len(DASHES)],
                "marker": MARKERS[j % len(MARKERS)],
                "label": f"{int(n)} stack{'s' if n > 1 else ''} x {hb:g} GB",
            }
            left.plot(rows["batch"], rows["throughput_tok_per_s"], **kw)
            right.plot(rows["batch"], rows["energy_per_token_j"] * 1e3, **kw)
    for ax, label in ((left, "throughput (tok/s)"), (right, "energy per token (mJ)")):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("batch size B")
        ax.set_ylabel(label)
        style.plain_log_ticks(ax)
    left.legend(fontsize=7, ncol=1)
    return fig


def build_stacks(run: Any, record: Callable[..., Any]) -> list[Any]:
    """The stacks figure of a sweep whose ``ep`` axis has more than one value (``run``: a
    :class:`~elmoe_dse.plots.inputs.RunDir`; ``record``: the figure record type); not
    applicable otherwise."""
    from functools import partial

    from elmoe_dse.plots.inputs import NotApplicable

    if run.sweep is None:
        raise NotApplicable("needs a sweep or optimize run (results.parquet)")
    sweep = run.sweep
    if STACKS not in sweep.frame.columns or sweep.frame[STACKS].nunique() < 2:
        raise NotApplicable("needs a sweep over the ep knob (stacks), e.g. sweeps/stacks.toml")
    sweep.require([HB, BATCH_SIZE, FEASIBLE, THROUGHPUT_TOK_PER_S, ENERGY_PER_TOKEN_J], "stacks")
    table = stacks_table(sweep.frame)
    models = ", ".join(sorted(sweep.frame["meta.model"].unique()))
    platforms = ", ".join(sorted(sweep.frame["meta.platform"].unique()))
    return [
        record(
            name="stacks",
            family="stacks",
            title="More stacks or a bigger HB",
            caption=stacks_caption(table),
            source=f"{models} on {platforms} stacks, sweep '{sweep.name}' (results.parquet), "
            "fastest feasible design per stack count, HB and batch",
            draw=partial(stacks_figure, table),
            table=tuple(table.to_dict(orient="records")),
        )
    ]
