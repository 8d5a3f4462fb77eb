"""`elmoe-dse explain --vary`: one row of step totals per value (cross product of every --vary),
the same numbers as `explain --set` at each value, table / JSON / CSV, and bad input as one line
with exit code 2."""

from __future__ import annotations

import csv
import io
import itertools
import json
from typing import Any

import pytest

from tests.cli._app import run

QWEN = ("-m", "qwen3-30b-a3b", "-p", "elmoe3d-8g")
FIVE_KNOBS = ("pe_count", "batch_size", "draft_length", "hb_capacity_gb", "context_len")


def _json(*args: str) -> dict[str, Any]:
    code, out, err = run("explain", *args, "--json")
    assert code == 0, err
    data: dict[str, Any] = json.loads(out)
    return data


def test_one_row_per_value_in_the_order_given_with_the_json_schema() -> None:
    data = _json(*QWEN, "-b", "8", "--vary", "hb_capacity_gb=16,4,8")
    assert data["vary"] == [{"key": "hb_capacity_gb", "values": [16.0, 4.0, 8.0]}]
    assert [r["values"] for r in data["rows"]] == [{"hb_capacity_gb": v} for v in (16.0, 4.0, 8.0)]
    for row in data["rows"]:
        assert row["feasible"] and row["infeasible_reason"] is None
        for key in ("time_per_step_s", "tokens_per_step", "throughput_tok_per_s"):
            assert row["metrics"][key] > 0
        assert row["metrics"]["energy_per_token_j"] > 0 and row["metrics"]["static_power_w"] > 0
        assert row["bound"] == "lpddr"  # routed experts stream from LPDDR at this batch
        assert 0 < row["acceptance"] < 1 and 0 <= row["hit_rate"] <= 1
        assert row["unique_experts_per_layer"] > 0 and row["inactive_knobs"] == []
        assert row["sets"] == [f"hb_capacity_gb={row['values']['hb_capacity_gb']:g}"]
    assert data["model"] == "qwen3-30b-a3b" and data["batch_size"] == 8


def test_rows_equal_explain_set_at_each_value() -> None:
    """The vectorized rows are the single-point explain, value by value (numeric knob in one
    evaluator call, categorical knob looped)."""
    data = _json(*QWEN, "-b", "4", "--vary", "policy=ar-cache,elmoe3d", "--vary", "pe_count=16,64")
    assert len(data["rows"]) == 4
    assert [tuple(r["values"].values()) for r in data["rows"]] == [
        ("ar-cache", 16.0),
        ("ar-cache", 64.0),
        ("elmoe3d", 16.0),
        ("elmoe3d", 64.0),
    ]
    for row in data["rows"]:
        one = _json(*QWEN, "-b", "4", *(x for s in row["sets"] for x in ("--set", s)))
        for key, value in one["metrics"].items():
            assert row["metrics"][key] == pytest.approx(value, rel=1e-9), key
        assert row["bound"] == one["bound"]
        assert row["hit_rate"] == pytest.approx(one["cache"]["hit_rate"], rel=1e-9)


def test_more_hb_capacity_never_lowers_the_hb_hit_rate_on_elmoe3d() -> None:
    for batch in ("1", "8"):
        data = _json(*QWEN, "-b", batch, "--vary", "hb_capacity_gb=2,4,6,8,12,16,24")
        hits = [r["hit_rate"] for r in data["rows"]]
        assert all(b >= a for a, b in itertools.pairwise(hits)), hits
        assert hits[-1] > hits[0] + 0.5, hits
        pools = [r["pool_experts_per_layer"] for r in data["rows"]]
        assert pools == sorted(pools) and pools[-1] > pools[0]


def test_a_spec_field_is_looped_and_the_cross_product_keeps_its_order() -> None:
    data = _json(
        "-m", "qwen3-30b-a3b", "-p", "xpu",
        "--vary", "batch_size=1,4",
        "--vary", "tiers.lpddr.peak_bw_gb_per_s=50,200",
    )  # fmt: skip
    values = [(r["values"]["batch_size"], r["values"]["tiers.lpddr.peak_bw_gb_per_s"]) for r in
              data["rows"]]  # fmt: skip
    assert values == [(1.0, 50.0), (1.0, 200.0), (4.0, 50.0), (4.0, 200.0)]
    tput = [r["metrics"]["throughput_tok_per_s"] for r in data["rows"]]
    assert tput[1] > tput[0] and tput[3] > tput[2]  # more bandwidth, faster (LPDDR-bound)
    assert all(r["hit_rate"] is None for r in data["rows"])  # xPU has no expert pool


def test_a_row_that_does_not_fit_says_why_and_has_no_metrics() -> None:
    data = _json(*QWEN, "--vary", "pool_experts=auto,200")
    ok, bad = data["rows"]
    assert ok["feasible"] and ok["metrics"]["throughput_tok_per_s"] > 0
    assert not bad["feasible"] and "pool_experts" in bad["infeasible_reason"]
    assert all(v is None for v in bad["metrics"].values())
    code, out, _ = run("explain", *QWEN, "--vary", "pool_experts=auto,200")
    assert code == 0 and "does not fit" in out and "exceeds" in out


def test_a_varied_knob_that_does_not_act_is_marked_per_row_at_its_default_too() -> None:
    data = _json("-m", "qwen3-30b-a3b", "-p", "xpu", "--vary", "draft_bits=3,4")  # default 4
    assert [r["inactive_knobs"] for r in data["rows"]] == [["draft_bits"], ["draft_bits"]]
    data = _json(*QWEN, "--vary", "batch_size=1,8", "--vary", "draft_length=4")
    plain, drafted = data["rows"]  # elmoe3d decodes B = 1 plainly (its mode switch)
    assert plain["draft"] == "none" and plain["inactive_knobs"] == ["draft_length"]
    assert drafted["draft"] == "self" and drafted["inactive_knobs"] == []


def test_table_and_csv() -> None:
    code, out, err = run("explain", *QWEN, "-b", "8", "--vary", "hb_capacity_gb=4,8")
    assert code == 0, err
    assert "one row per --vary value" in out and "hb_capacity_gb" in out and "hit rate" in out
    assert "routed_experts" not in out  # the operator table is replaced
    code, out, err = run("explain", *QWEN, "-b", "8", "--vary", "hb_capacity_gb=4,8", "--csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [r["hb_capacity_gb"] for r in rows] == ["4.0", "8.0"]
    assert float(rows[1]["throughput_tok_per_s"]) > float(rows[0]["throughput_tok_per_s"])
    for col in ("energy_per_token_j", "static_power_w", "bound", "acceptance", "hit_rate"):
        assert col in rows[0]


def test_bands_per_row() -> None:
    data = _json(*QWEN, "-b", "8", "--vary", "hb_capacity_gb=4,16", "--bands", "--draws", "3")
    for row in data["rows"]:
        band = row["bands"]["throughput_tok_per_s"]
        assert band["n"] == 3 and band["p5"] <= band["p50"] <= band["p95"]
    assert (
        data["rows"][1]["bands"]["throughput_tok_per_s"]["p50"]
        > data["rows"][0]["bands"]["throughput_tok_per_s"]["p50"]
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--vary", "hb_capcity=4,8"], "--vary: unknown key 'hb_capcity'; did you mean"),
        (["--vary", "draft_length=x"], "--vary draft_length=x: expected a number"),
        (["--vary", "policy=ar,fast"], "--vary policy=fast: use one of"),
        (["--vary", "hb_capacity_gb=4,-1"], "--vary hb_capacity_gb=-1: knob 'hb_capacity_gb'"),
        (["--vary", "hb_capacity_gb"], "write KEY=V1,V2,..."),
        (["--vary", "hb_capacity_gb=4,,8"], "write KEY=V1,V2,..."),
        (["--vary", "pe_count=16", "--vary", "pe_count=32"], "--vary pe_count is given twice"),
        (["--vary", "tiers.hb.peak_bw_gb_per_s=0"], "--vary: field 'tiers.hb.peak_bw_gb_per_s'"),
        (["--set", "hb_capcity=4", "--vary", "pe_count=16"], "--set: unknown key"),
        (["--vary", "cache_policy=auto,none"], "--vary cache_policy=none: cache_policy 'none'"),
        (["-p", "xpu", "--vary", "tp=1,2"], "--vary tp=1,2: platform 'xpu' has no [device_link]"),
        (
            [x for k in FIVE_KNOBS for x in ("--vary", f"{k}=1,2,3,4")],
            "4 x 4 x 4 x 4 x 4 = 1024 rows, above 256",
        ),
        (
            ["--vary", "hb_capacity_gb=" + ",".join(map(str, range(1, 21))), "--bands"],
            "20 rows x 64 draws = 1280 evaluations, above 1024",
        ),
    ],
)
def test_bad_vary_is_one_line_exit_2(args: list[str], needle: str) -> None:
    code, out, err = run("explain", *QWEN, *args)
    assert code == 2
    assert out == ""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert needle in lines[0], lines[0]


def test_the_python_api_gives_the_cli_rows() -> None:
    from elmoe_dse import Scenario

    data = Scenario("qwen3-30b-a3b", "elmoe3d-8g").vary("hb_capacity_gb=4,8", batch_size=8)
    assert data == _json(*QWEN, "-b", "8", "--vary", "hb_capacity_gb=4,8")
