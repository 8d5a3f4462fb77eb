"""Regenerate the goldens: ``.venv/bin/python -m tests.regenerate_golden``.

- ``tests/golden/reproduce_cells.csv``: the per-cell table at the fixed draw (the shipped
  ensemble's posterior median draw);
- ``tests/golden/reproduce_bands.csv``: the seeded ensemble summary at :data:`GOLDEN_BANDS`.

Both lock the tool's own output, never the paper's numbers.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from elmoe_dse.calibration import load_calibration, load_ensemble
from elmoe_dse.explore.alternatives import assumption_table, defaults
from elmoe_dse.explore.ensemble import BandSettings, bands_table, ensemble_bands
from elmoe_dse.explore.reproduce import reproduce

GOLDEN = Path(__file__).parent / "golden"
#: The seeded summary the CI regression locks (smaller than reproduce's default, same code path).
GOLDEN_BANDS = BandSettings(draws=16, alt_draws=8, seed=20260417, processes=2)


def golden_bands() -> pd.DataFrame:
    """The seeded ensemble summary as a tidy table."""
    table = assumption_table()
    bands = ensemble_bands(load_ensemble(), defaults(table), table, GOLDEN_BANDS)
    return pd.DataFrame(bands_table(bands))


def main() -> None:
    cells = reproduce(load_calibration()).cells
    cells.to_csv(GOLDEN / "reproduce_cells.csv", index=False, float_format="%.10g")
    bands = golden_bands()
    bands.to_csv(GOLDEN / "reproduce_bands.csv", index=False, float_format="%.12g")
    print(f"wrote {GOLDEN} ({len(cells)} cells, {len(bands)} band rows)")


if __name__ == "__main__":
    main()
