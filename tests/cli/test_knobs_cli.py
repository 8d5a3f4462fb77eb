"""``elmoe-dse knobs``: every knob with unit, range or choices, default and help."""

from __future__ import annotations

import json

from elmoe_dse.knobs import KNOB_INFO, Knobs
from elmoe_dse.policies import policy_names
from tests.cli._app import run


def test_knobs_json_lists_every_knob_with_its_default() -> None:
    code, out, err = run("knobs", "--json")
    assert code == 0, err
    rows = {r["name"]: r for r in json.loads(out)}
    assert set(rows) == set(KNOB_INFO)
    assert rows["batch_size"]["default"] == Knobs().batch_size
    assert rows["batch_size"]["unit"] == "sequences" and rows["batch_size"]["integer"]
    assert rows["pool_experts"]["default"] == "auto"
    assert set(policy_names()) <= set(rows["policy"]["choices"])


def test_knobs_table_names_the_sweep_section() -> None:
    code, out, _ = run("knobs")
    assert code == 0
    assert "[knobs]" in out and "draft_length" in out


def test_knobs_csv_lists_every_knob() -> None:
    import csv
    import io

    from elmoe_dse.knobs import KNOB_INFO

    code, out, _ = run("knobs", "--csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and [r["knob"] for r in rows] == list(KNOB_INFO)
    assert {r["knob"]: r["unit"] for r in rows}["hb_capacity_gb"] == "GB"
