"""The stacks figure's data: the fastest feasible design per stack count, HB and batch, and the
comparison against one stack."""

from __future__ import annotations

import pandas as pd

from elmoe_dse.plots import stacks


def _frame() -> pd.DataFrame:
    rows = []
    for ep in (1, 2):
        for hb in (8.0, 16.0):
            for gamma, speed in ((1, 1.0), (4, 1.5)):
                tput = 100.0 * ep * (1.0 + hb / 16.0) * speed
                rows.append(
                    {
                        "knob.ep": ep,
                        "knob.hb_capacity_gb": hb,
                        "knob.batch_size": 4,
                        "knob.draft_length": gamma,
                        "meta.feasible": not (ep == 2 and hb == 16.0 and gamma == 4),
                        "metric.throughput_tok_per_s": tput,
                        "metric.energy_per_token_j": 0.1 / speed,
                    }
                )
    return pd.DataFrame(rows)


def test_table_keeps_the_fastest_feasible_design() -> None:
    table = stacks.stacks_table(_frame())
    assert len(table) == 4
    two_16 = table[(table["stacks"] == 2) & (table["hb_gb"] == 16.0)].iloc[0]
    assert two_16["throughput_tok_per_s"] == 400.0  # the faster design is infeasible
    one_8 = table[(table["stacks"] == 1) & (table["hb_gb"] == 8.0)].iloc[0]
    assert one_8["throughput_tok_per_s"] == 225.0


def test_comparison_and_caption_name_the_winner() -> None:
    table = stacks.stacks_table(_frame())
    rows = {(r["stacks"], r["hb_gb"]): r for r in stacks.stacks_comparison(table)}
    # 2 x 8 GB (450) against 1 x 16 GB (300): same total HB, and the largest
    assert rows[(2, 8.0)]["vs_same_total_hb"] == 1.5
    assert rows[(2, 8.0)]["vs_largest_hb"] == 1.5
    assert rows[(2, 16.0)]["vs_same_total_hb"] is None  # no 1 x 32 GB in the sweep
    assert "2 x 8 GB beats 1 x 16 GB at B = 4" in stacks.stacks_caption(table)
