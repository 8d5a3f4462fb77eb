"""A value written in the wrong unit (SI base units where the key wants a prefixed unit) is caught
by its field's unit suffix, with the value to write instead."""

from __future__ import annotations

from pathlib import Path

import pytest

from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.knobs import Knobs
from elmoe_dse.overrides import apply_overrides
from elmoe_dse.platforms import load_platform
from elmoe_dse.specs._base import DATA_DIR, check_unit, unit_rule
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import list_platforms


@pytest.mark.parametrize(
    ("key", "value", "fix"),
    [
        ("tiers.lpddr.peak_bw_gb_per_s", "204.8e9", "like B/s; the key wants GB/s, write 204.8"),
        ("tiers.lpddr.read_energy_pj_per_bit", "0.43e-12", "pJ/bit, write 0.43"),
        ("tiers.lpddr.capacity_gb", "64e9", "like bytes; the key wants GB, write 64"),
        ("compute.energy_pj_per_op.w8a8", "1e-13", "like J/op; the key wants pJ/op, write 0.1"),
        ("compute.peak_tops.w8a8", "5.24e14", "like OPS; the key wants TOPS, write 524"),
    ],
)  # fmt: skip
def test_si_values_under_prefixed_keys_name_the_unit_and_the_fix(
    key: str, value: str, fix: str
) -> None:
    with pytest.raises(KnobError, match=fix.replace(".", r"\.").replace("(", r"\(")):
        apply_overrides(load_model("qwen3-30b-a3b"), load_platform("xpu"), Knobs(),
                        [f"{key}={value}"])  # fmt: skip


def test_implausible_without_an_si_reading_says_the_expected_span() -> None:
    message = check_unit("static_power_w", 5e6)
    assert message is not None and "expected 0 to 100000 W" in message
    assert check_unit("static_power_w", 5.0) is None
    assert check_unit("num_experts", 1e12) is None  # no unit suffix: other validators apply


def test_longest_suffix_wins() -> None:
    rule = unit_rule("hb_bw_per_pe_gb_per_s")
    assert rule is not None and rule.unit == "GB/s"
    rule = unit_rule("op_overhead_s")
    assert rule is not None and rule.unit == "s"


def test_a_platform_file_with_a_wrong_unit_is_one_line(tmp_path: Path) -> None:
    source = (DATA_DIR / "platforms" / "xpu.toml").read_text()
    bad = tmp_path / "mine.toml"
    bad.write_text(source.replace('name = "xpu"', 'name = "mine"').replace(
        "peak_bw_gb_per_s = 102.4", "peak_bw_gb_per_s = 102.4e9"))  # fmt: skip
    with pytest.raises(SpecError, match=r"mine\.toml: .*write 102\.4") as err:
        load_platform(bad)
    assert "\n" not in str(err.value)


def test_every_shipped_platform_is_plausible() -> None:
    for name in list_platforms():
        load_platform(name)
