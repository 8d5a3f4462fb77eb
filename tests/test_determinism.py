"""Same inputs and seed, byte-identical results (timing fields of the sidecars aside)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from elmoe_dse.cli.main import app

SWEEPS = Path(__file__).resolve().parents[1] / "sweeps"
runner = CliRunner()

#: Sidecar fields that legitimately differ between two runs.
VOLATILE = {"elapsed_s", "timing", "timing_s", "started_at", "finished_at", "created_at"}


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.stderr
    return result.stdout


def strip_volatile(data: object) -> object:
    if isinstance(data, dict):
        return {k: strip_volatile(v) for k, v in data.items() if k not in VOLATILE}
    if isinstance(data, list):
        return [strip_volatile(v) for v in data]
    return data


def test_reproduce_tables_are_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    invoke("reproduce", "--out", str(a))
    invoke("reproduce", "--out", str(b))
    for name in ("cells.csv", "systems.csv", "systems.parquet"):
        assert (a / "reproduce" / name).read_bytes() == (b / "reproduce" / name).read_bytes()
    ra = json.loads((a / "reproduce" / "run.json").read_text())
    rb = json.loads((b / "reproduce" / "run.json").read_text())
    assert strip_volatile(ra) == strip_volatile(rb)


def test_sweep_tables_are_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    quick = str(SWEEPS / "quick.toml")
    invoke("sweep", quick, "--out", str(a))
    invoke("sweep", quick, "--out", str(b))
    assert (a / "results.parquet").read_bytes() == (b / "results.parquet").read_bytes()
    ra = json.loads((a / "run.json").read_text())
    rb = json.loads((b / "run.json").read_text())
    assert strip_volatile(ra) == strip_volatile(rb)


def test_explain_json_is_identical() -> None:
    args = ("explain", "-m", "glm-4.7-flash", "-p", "elmoe3d-8g", "-b", "8", "--json")
    assert invoke(*args) == invoke(*args)
