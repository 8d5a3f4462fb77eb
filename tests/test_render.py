"""Numbers as text: engineering prefixes, and results values by the unit suffix of their column
(the CLI's engineering style and the report's fixed display units)."""

from __future__ import annotations

import math

import pytest

from elmoe_dse.render import si, unit_text


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [
        (1.23e-3, "s", "1.23 ms"),
        (4.5e-7, "s", "450 ns"),
        (1.5893e12, "B/s", "1.59 TB/s"),
        (524e12, "OPS", "524 TOPS"),
        (2.5e15, "B", "2.5 PB"),
        (30.5e9, "", "30.5 G"),
        (-2e3, "J", "-2 kJ"),
        (0.0, "J", "0 J"),
        (None, "s", "-"),
    ],
)
def test_si_prefixes(value: float | None, unit: str, text: str) -> None:
    assert si(value, unit) == text


def test_si_without_sub_unit_prefixes_keeps_small_values_plain() -> None:
    assert si(0.5, "OPS", sub_unit=False) == "0.5 OPS"
    assert si(0.5, "OPS") == "500 mOPS"
    assert si(1.5e9, "B/s", sub_unit=False) == si(1.5e9, "B/s") == "1.5 GB/s"


@pytest.mark.parametrize(
    ("column", "value", "engineering", "fixed"),
    [
        ("metric.throughput_tok_per_s", 1234.5, "1,234 tok/s", "1,234 tok/s"),
        ("metric.latency_per_token_s", 0.02, "20 ms", "20 ms"),
        ("metric.time_per_step_s", 2.5, "2.5 s", "2500 ms"),
        ("metric.energy_per_token_j", 0.0123, "12.3 mJ", "12.3 mJ"),
        ("metric.energy_per_step_j", 1.5, "1.5 J", "1.5 J"),
        ("metric.footprint_bytes", 3e9, "3 GB", "3e+09"),
        ("metric.hit_rate_frac", 0.5, "0.500", "0.500"),
        ("knob.batch_size", 8.0, "8", "8"),
        ("knob.pool_experts", math.nan, "auto", "auto"),
        ("metric.acceptance_frac", math.nan, "-", "-"),
        ("knob.rounding", "round", "round", "round"),
        ("meta.feasible", True, "yes", "yes"),
        ("metric.x_s", None, "-", "-"),
    ],
)
def test_unit_text_by_column_suffix(
    column: str, value: object, engineering: str, fixed: str
) -> None:
    assert unit_text(column, value) == engineering
    assert unit_text(column, value, engineering=False) == fixed
