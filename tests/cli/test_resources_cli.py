"""Exhausted resources and killed runs: one line, exit 2, the previous result intact, no
temporary files left behind."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

from elmoe_dse.results import ensure_dir, remove_stale_temps

QUICK = Path(__file__).resolve().parents[2] / "sweeps" / "quick.toml"


def _cli(args: list[str], fsize_bytes: int | None = None) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        if fsize_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize_bytes, fsize_bytes))

    code = "import sys; sys.argv[0] = 'elmoe-dse'; from elmoe_dse.cli.main import main; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        preexec_fn=limit,
        timeout=300,
        check=False,
    )


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_a_file_size_limit_is_one_line_and_keeps_the_previous_result(tmp_path: Path) -> None:
    out = tmp_path / "o"
    first = _cli(["sweep", str(QUICK), "--out", str(out)])
    assert first.returncode == 0, first.stderr
    before = _digest(out)
    limited = _cli(["sweep", str(QUICK), "--out", str(out)], fsize_bytes=20 * 1024)
    assert limited.returncode == 2
    assert "File too large" in limited.stderr and "Traceback" not in limited.stderr
    assert len(limited.stderr.strip().splitlines()) == 1
    assert _digest(out) == before  # same files, same bytes: no temp file left either


def test_optimize_under_a_file_size_limit_is_one_line(tmp_path: Path) -> None:
    limited = _cli(
        ["optimize", str(QUICK), "--trials", "3", "--out", str(tmp_path / "o")],
        fsize_bytes=20 * 1024,
    )
    assert limited.returncode == 2
    assert "Traceback" not in limited.stderr
    assert len(limited.stderr.strip().splitlines()) == 1


def test_temporary_files_of_dead_runs_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    stale = tmp_path / f".results.parquet.{dead}.abc123.spool"
    stale_tmp = tmp_path / f".run.json.{dead}.x9.tmp"
    live = tmp_path / f".results.parquet.{os.getpid()}.def456.spool"
    keep = tmp_path / "results.parquet"
    for path in (stale, stale_tmp, live, keep):
        path.write_bytes(b"x")
    assert sorted(remove_stale_temps(tmp_path)) == sorted([stale, stale_tmp])
    assert live.exists() and keep.exists()
    stale.write_bytes(b"x")
    ensure_dir(tmp_path)  # every writer goes through it
    assert not stale.exists()


def test_a_sweep_whose_every_design_is_its_own_group_prints_a_bounded_summary(
    tmp_path: Path,
) -> None:
    from elmoe_dse.cli.sweep import MAX_GROUPS

    every = tmp_path / "every.toml"
    groups = '["batch_size", "hb_capacity_gb", "pool_experts", "draft_bits", "draft_length"]'
    every.write_text(QUICK.read_text().replace('group_by = ["batch_size"]', f"group_by = {groups}"))
    out = tmp_path / "o"
    result = _cli(["sweep", str(every), "--out", str(out)])
    assert result.returncode == 0, result.stderr
    record = json.loads((out / "run.json").read_text())
    more = len(record["pareto"]) - MAX_GROUPS
    assert more > 100
    assert f"{more:,} more groups in {out / 'results.parquet'}" in result.stdout
    assert len(result.stdout.splitlines()) < 40 + 4 * MAX_GROUPS
