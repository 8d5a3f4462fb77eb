"""Platform spec files: every shipped one loads with sources; the loader is strict."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from elmoe_dse.errors import SpecError
from elmoe_dse.specs.platform import DATA_DIR, PlatformSpec, list_platforms, load_platform
from elmoe_dse.units import GB


def shipped(name: str) -> dict[str, Any]:
    return tomllib.loads((DATA_DIR / f"{name}.toml").read_text())


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    def fmt(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace('"', '\\"') + '"'
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, dict):
            return "{ " + ", ".join(f'"{k}" = {fmt(x)}' for k, x in v.items()) + " }"
        return repr(v)

    path = tmp_path / "p.toml"
    path.write_text("\n".join(f'"{k}" = {fmt(v)}' for k, v in data.items()) + "\n")
    return path


def test_all_shipped_platforms_load_with_sources(any_platform: PlatformSpec) -> None:
    assert any_platform.source
    for tier in any_platform.tiers.values():
        assert tier.source
    assert any_platform.compute.source


def test_paper_constants_in_si() -> None:
    e8 = load_platform("elmoe3d-8g")
    assert e8.tiers["hb"].capacity_bytes == 8 * GB
    assert e8.tiers["hb"].bw_bytes_per_s == pytest.approx(1638.4e9 * 0.97)
    assert e8.tiers["hb"].read_energy_j_per_bit == pytest.approx(0.43e-12)
    assert e8.tiers["lpddr"].read_energy_j_per_bit == pytest.approx(3.88e-12)
    assert e8.compute.peak_ops_per_s("w4a8") == pytest.approx(1048e12)
    assert e8.compute.peak_ops_per_s("w8a8") == pytest.approx(524e12)
    e4 = load_platform("elmoe3d-4g")
    assert e4.tiers["hb"].peak_bw_gb_per_s == 819.2 and e4.compute.peak_tops.w8a8 == 262.0
    assert load_platform("xpu").tiers["lpddr"].bw_bytes_per_s == pytest.approx(102.4e9 * 0.99)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d.update(bogus=1), "bogus"),
        (lambda d: d.pop("static_power"), "static_power"),
        (lambda d: d["static_power"].update(host_w=-1.0), "host_w"),
        (lambda d: d["static_power"].update(hb_w_per_gb=0.1), "hb_w_per_gb"),
        (lambda d: d["tiers"]["lpddr"].update(peak_bw_gb_per_s=0.0), "peak_bw_gb_per_s"),
        (lambda d: d["tiers"]["lpddr"].update(capacity_gb=-64.0), "capacity_gb"),
        (lambda d: d["tiers"]["lpddr"].update(bw_efficiency_frac=1.5), "bw_efficiency_frac"),
        (lambda d: d["tiers"]["lpddr"].update(peak_bw_gb_per_s=float("nan")), "peak_bw_gb_per_s"),
        (lambda d: d["compute"]["peak_tops"].update(w8a8="fast"), "w8a8"),
        (lambda d: d["static_power"].update(host_w=99.0), "static_power.host_w"),
        (lambda d: d.update(family="quantum"), "family"),
    ],
)
def test_strict_loader_names_file_and_field(tmp_path: Path, mutate: Any, field: str) -> None:
    from elmoe_dse.platforms import load_platform  # the spec, then its family's needs

    data = shipped("xpu")
    mutate(data)
    path = tmp_path / "p.toml"
    import json

    path = path.with_suffix(".json")
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError) as err:
        load_platform(path)
    msg = str(err.value)
    assert str(path) in msg and field in msg


def test_elmoe3d_hb_bandwidth_must_match_pes(tmp_path: Path) -> None:
    import json

    data = shipped("elmoe3d-8g")
    data["logic_die"]["pe_count"] = 16
    path = tmp_path / "e.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SpecError, match="pe_count"):
        load_platform(path)


def test_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("   \n")
    binary = tmp_path / "bin.toml"
    binary.write_bytes(b"\x00\x01\x02")
    for path, needle in (
        (empty, "empty"),
        (binary, "binary"),
        (tmp_path / "none.toml", "not found"),
    ):
        with pytest.raises(SpecError, match=needle):
            load_platform(path)


def test_family_sections_have_si_accessors() -> None:
    pim = load_platform("xpu-pim")
    nm = pim.near_memory
    assert nm is not None
    lp = pim.tiers[nm.tier]
    expected = nm.internal_bw_multiplier * lp.peak_bw_gb_per_s * 1e9 * nm.bw_efficiency_frac
    assert nm.internal_bw_bytes_per_s(lp) == pytest.approx(expected, rel=1e-15)
    assert nm.read_energy_j_per_bit == pytest.approx(nm.read_energy_pj_per_bit * 1e-12)
    # compute tied to the internal bandwidth: ops/B x multiplier x the tier's peak
    assert nm.ops_per_byte is not None
    expected_ops = nm.ops_per_byte.w8a8 * nm.internal_bw_multiplier * lp.peak_bw_gb_per_s * 1e9
    assert nm.peak_ops_per_s("w8a8", lp) == pytest.approx(expected_ops, rel=1e-15)
    assert nm.energy_j_per_op("w4a8") == pytest.approx(nm.energy_pj_per_op.w4a8 * 1e-12)
    e8 = load_platform("elmoe3d-8g")
    die = e8.logic_die
    assert die is not None
    # one HB bank per PE: the spec's PEs give the HB tier's peak (32 x 51.2 GB/s = 1638.4 GB/s)
    assert die.hb_peak_bw_bytes_per_s(die.pe_count) == pytest.approx(1638.4e9, rel=1e-12)
    link = e8.links["aggregation"]
    assert link.energy_j_per_bit == pytest.approx(link.energy_pj_per_bit * 1e-12)


def test_spec_layer_knows_no_family(tmp_path: Path) -> None:
    """The schema accepts any family name; the family check belongs to elmoe_dse.platforms."""
    import json

    data = shipped("xpu")
    data["family"] = "not-registered"
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    assert load_platform(path).family == "not-registered"


def test_list_platforms() -> None:
    assert "elmoe3d-8g" in list_platforms()
