"""``elmoe-dse best``: the best feasible design per group under conditions, from results.parquet."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from elmoe_dse.explore import query
from tests.cli._app import run


def _results(tmp_path: Path, rows: int = 400, seed: int = 3) -> tuple[Path, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "meta.model": rng.choice(["m-a", "m-b"], rows),
            "meta.feasible": rng.random(rows) > 0.2,
            "knob.batch_size": rng.choice([1.0, 4.0, 16.0], rows),
            "knob.hb_capacity_gb": rng.choice([2.0, 4.0, 8.0, 16.0], rows),
            "metric.throughput_tok_per_s": rng.uniform(10.0, 500.0, rows),
            "metric.energy_per_token_j": rng.uniform(0.01, 0.2, rows),
        }
    )
    frame.to_parquet(tmp_path / "results.parquet")
    return tmp_path, frame


def _expected(frame: pd.DataFrame, threshold: float) -> pd.DataFrame:
    ok = frame[frame["meta.feasible"] & (frame["metric.throughput_tok_per_s"] >= threshold)]
    ordered = ok.sort_values(
        ["knob.hb_capacity_gb", "metric.throughput_tok_per_s"], ascending=[True, False]
    )
    return (
        ordered.groupby(["meta.model", "knob.batch_size"])
        .head(1)
        .sort_values(["meta.model", "knob.batch_size"])
    )


def test_cheapest_design_per_group_matches_pandas(tmp_path: Path) -> None:
    folder, frame = _results(tmp_path)
    code, out, err = run(
        "best", str(folder), "--where", "throughput_tok_per_s >= 250",
        "--minimize", "hb_capacity_gb", "--by", "model,batch_size", "--json",
    )  # fmt: skip
    assert code == 0, err
    got = pd.DataFrame(json.loads(out))
    want = _expected(frame, 250.0)
    assert len(got) == len(want) == 6
    np.testing.assert_allclose(got["knob.hb_capacity_gb"], want["knob.hb_capacity_gb"])
    np.testing.assert_allclose(
        got["metric.throughput_tok_per_s"], want["metric.throughput_tok_per_s"]
    )


def test_batches_give_the_same_answer_as_one_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder, _ = _results(tmp_path, rows=1000)
    q = query.build_query(
        pd.read_parquet(folder / "results.parquet").columns.tolist(),
        ["throughput_tok_per_s >= 100 and model == m-b"],
        "energy_per_token_j",
        minimize=True,
        by=["batch_size"],
    )
    whole = query.best_designs(folder / "results.parquet", q)
    monkeypatch.setattr(query, "BATCH_ROWS", 37)
    pieces = query.best_designs(folder / "results.parquet", q)
    pd.testing.assert_frame_equal(whole, pieces)
    assert set(whole["meta.model"]) == {"m-b"}
    assert (whole["metric.throughput_tok_per_s"] >= 100).all()


def test_nothing_meets_the_conditions(tmp_path: Path) -> None:
    folder, _ = _results(tmp_path)
    code, out, _ = run("best", str(folder), "-w", "throughput_tok_per_s > 1e9", "--maximize",
                       "energy_per_token_j")  # fmt: skip
    assert code == 0
    assert "no feasible design" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--where", "thruput >= 1", "--minimize", "hb_capacity_gb"], "no column 'thruput'"),
        (["--where", "throughput_tok_per_s ~ 1", "--minimize", "hb_capacity_gb"], "COLUMN OP"),
        (["--where", "batch_size == big", "--minimize", "hb_capacity_gb"], "is numeric"),
        (["--minimize", "hb_capacity_gb", "--maximize", "throughput_tok_per_s"], "exactly one"),
        (["--minimize", "hb_capacity_gb", "--by", "nope"], "'--by'"),
    ],
)
def test_bad_queries_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    folder, _ = _results(tmp_path)
    code, out, err = run("best", str(folder), *args)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err + out


def test_missing_or_damaged_table(tmp_path: Path) -> None:
    code, _, err = run("best", str(tmp_path), "--minimize", "x")
    assert code == 2 and "run `elmoe-dse sweep" in err
    (tmp_path / "results.parquet").write_bytes(b"PAR1 not really")
    code, _, err = run("best", str(tmp_path), "--minimize", "x")
    assert code == 2 and "cannot read the results table" in err
