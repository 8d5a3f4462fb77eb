"""Regenerate tests/golden/reproduce_cells.csv: ``.venv/bin/python -m tests.regenerate_golden``."""

from __future__ import annotations

from pathlib import Path

from elmoe_dse.calibration import load_calibration
from elmoe_dse.explore.reproduce import reproduce


def main() -> None:
    path = Path(__file__).parent / "golden" / "reproduce_cells.csv"
    cells = reproduce(load_calibration()).cells
    cells.to_csv(path, index=False, float_format="%.10g")
    print(f"wrote {path} ({len(cells)} rows)")


if __name__ == "__main__":
    main()
