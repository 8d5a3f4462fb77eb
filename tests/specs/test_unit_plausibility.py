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


def _numeric_fields(obj: object, name: str = "", path: str = "") -> list[tuple[str, str, float]]:
    """(leaf field name, dotted path, value) of every number in a spec, outside [ranges] and
    the fitted-constant records of [kernels] and [device_link] (each term there is a KernelParam
    that carries, and checks, its own min and max)."""
    from pydantic import BaseModel

    from elmoe_dse.specs.platform import PrecisionTable

    out: list[tuple[str, str, float]] = []
    if isinstance(obj, PrecisionTable):  # a number per precision, under its table's unit
        out += _numeric_fields(obj.model_dump(), name, path)
    elif isinstance(obj, BaseModel):
        for f in type(obj).model_fields:
            if f not in ("ranges", "kernels", "device_link", "schema_version"):
                out += _numeric_fields(getattr(obj, f), f, f"{path}.{f}".lstrip("."))
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += _numeric_fields(v, name, f"{path}.{k}")
    elif isinstance(obj, int | float) and not isinstance(obj, bool):
        out.append((name, path, float(obj)))
    return out


def test_every_numeric_constant_of_a_shipped_spec_has_a_declared_span_or_prior() -> None:
    from elmoe_dse.specs._base import PLAUSIBLE
    from elmoe_dse.specs.dataset import list_datasets, load_acceptance_params, load_dataset
    from elmoe_dse.specs.model import list_models

    specs: list[tuple[object, set[str]]] = []
    for n in list_platforms():
        p = load_platform(n)
        specs.append((p, set(p.ranges)))
    for n in list_models():
        specs.append((load_model(n), set()))
    for n in list_datasets():
        d = load_dataset(n)
        specs.append((d, {*d.ranges, *d.expanded_ranges()}))
    acc = load_acceptance_params()
    specs.append((acc, set(acc.ranges)))
    uncovered = set()
    for spec, priors in specs:
        for name, path, _ in _numeric_fields(spec):
            if unit_rule(name) is None and name not in PLAUSIBLE and path not in priors:
                uncovered.add(name)
    assert not uncovered, f"numeric fields without a plausible span or prior: {sorted(uncovered)}"


@pytest.mark.parametrize(
    ("old", "new", "needle"),
    [
        ("pe_count = 32", "pe_count = 320000", "pe_count = 320000 is outside its plausible span"),
        ("bw_efficiency_frac = 0.97", "bw_efficiency_frac = 97.0", "bw_efficiency_frac"),
        ("psum_bytes_per_element = 2.0", "psum_bytes_per_element = 2000.0", "partial-sum"),
    ],
)
def test_an_implausible_dimensionless_constant_is_one_line(
    tmp_path: Path, old: str, new: str, needle: str
) -> None:
    text = (DATA_DIR / "platforms" / "elmoe3d-8g.toml").read_text()
    assert old in text
    bad = tmp_path / "mine.toml"
    bad.write_text(text.replace(old, new))
    with pytest.raises(SpecError, match=needle) as err:
        load_platform(bad)
    assert "mine.toml" in str(err.value) and "\n" not in str(err.value)


def test_an_implausible_model_count_is_caught() -> None:
    from elmoe_dse.specs._base import check_plausible

    message = check_plausible("card_total_params", 3.05e16)
    assert message is not None and "a count, not billions" in message
    assert check_plausible("num_experts", 128) is None


def test_hb_capacity_must_equal_pes_times_capacity_per_pe(tmp_path: Path) -> None:
    text = (DATA_DIR / "platforms" / "elmoe3d-8g.toml").read_text()
    bad = tmp_path / "mine.toml"
    bad.write_text(text.replace("capacity_gb = 8.0", "capacity_gb = 16.0", 1))
    with pytest.raises(SpecError, match=r"capacity_gb = 16 but .* 32 x 0\.25 = 8") as err:
        load_platform(bad)
    assert "\n" not in str(err.value)
    with pytest.raises(KnobError, match=r"32 x 0\.25 = 8"):
        apply_overrides(load_model("qwen3-30b-a3b"), load_platform("elmoe3d-8g"), Knobs(),
                        ["tiers.hb.capacity_gb=16"])  # fmt: skip
