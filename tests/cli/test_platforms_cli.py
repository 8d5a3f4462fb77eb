"""`elmoe-dse platforms`: list and show; a malformed file is one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli._app import run


def test_platforms_list_and_show() -> None:
    code, out, _ = run("platforms", "list", "--json")
    names = {row["name"] for row in json.loads(out)}
    assert code == 0
    assert {
        "xpu",
        "xpu-pim",
        "xpu-logicpim",
        "xpu-nmp",
        "hb-xpu",
        "elmoe3d-4g",
        "elmoe3d-8g",
        "a100-80g",
        "h100",
        "h200",
    } <= names
    code, out, _ = run("platforms", "show", "elmoe3d-8g", "--json")
    assert code == 0
    assert json.loads(out)["tiers"]["hb"]["peak_bw_gb_per_s"] == 1638.4
    code, out, _ = run("platforms", "show", "xpu-pim")
    assert code == 0 and "internal_bw_multiplier" in out


def test_malformed_platform_file_is_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "x"\nfamily = "xpu"\n[tiers.lpddr\n')
    code, _, err = run("platforms", "show", str(bad))
    assert code == 2
    assert str(bad) in err and "TOML syntax error" in err
    unknown = tmp_path / "typo.toml"
    text = (Path(__file__).parents[2] / "elmoe_dse/data/platforms/xpu.toml").read_text()
    unknown.write_text(text.replace("host_w", "host_W"))
    code, _, err = run("platforms", "show", str(unknown))
    assert code == 2 and "host_W" in err and "unknown key" in err


def test_platforms_show_gives_the_value_that_runs_with_its_source(tmp_path: Path) -> None:
    code, out, _ = run("platforms", "show", "elmoe3d-8g", "--json")
    data = json.loads(out)
    hb = data["calibrated"]["static_power.hb_w_per_gb"]
    assert hb["file"] == data["static_power"]["hb_w_per_gb"] and hb["runs"] != hb["file"]
    assert "posterior median draw" in hb["calibration_source"]
    code, out, _ = run("platforms", "show", "elmoe3d-8g")
    assert code == 0 and "runs" in out and "posterior median draw" in out
    code, out, _ = run("platforms", "show", "elmoe3d-8g", "--calibration", "none", "--json")
    assert json.loads(out)["calibrated"] == {}
    text = (Path(__file__).parents[2] / "elmoe_dse/data/platforms/elmoe3d-8g.toml").read_text()
    copy = tmp_path / "mine.toml"
    copy.write_text(text.replace('name = "elmoe3d-8g"', 'name = "mine"'))
    code, out, _ = run("platforms", "show", str(copy), "--json")
    assert json.loads(out)["calibrated"] == {} and "uncalibrated" in json.loads(out)["notes"][0]
    copy.write_text('calibration = "shipped:elmoe3d-8g"\n' + copy.read_text())
    code, out, _ = run("platforms", "show", str(copy), "--json")
    assert json.loads(out)["calibrated"] == data["calibrated"]


def test_platforms_list_csv_has_a_row_per_tier() -> None:
    import csv
    import io

    code, out, _ = run("platforms", "list", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    hb = [r for r in rows if r["name"] == "elmoe3d-8g" and r["tier"] == "hb"]
    assert code == 0 and len(hb) == 1 and float(hb[0]["peak_bw_gb_per_s"]) == 1638.4
