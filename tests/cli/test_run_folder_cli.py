"""A results folder is one consistent thing: staged runs committed in one step, a manifest every
reader checks, concurrent runs that end with one complete result, and the spec files a run read
recorded with their hashes (real subprocesses, real SIGKILLs)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse.results import COMMIT_PAUSE_ENV, MANIFEST_FILE, verify_run

ROOT = Path(__file__).resolve().parents[2]
QUICK = ROOT / "sweeps" / "quick.toml"
HF_CONFIG = ROOT / "tests" / "fixtures" / "hf_configs" / "qwen3-30b-a3b.json"
PLATFORM = ROOT / "elmoe_dse" / "data" / "platforms" / "elmoe3d-8g.toml"
_MAIN = "import sys; sys.argv[0] = 'elmoe-dse'; from elmoe_dse.cli.main import main; main()"


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, *args]


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cmd(*args), capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def one_line_error(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    assert needle in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def small_sweep(tmp_path: Path, name: str, batch: str = "[1, 16]") -> Path:
    """quick.toml with a smaller grid (``batch``: the batch sizes)."""
    text = QUICK.read_text()
    text = text.replace('name = "quick"', f'name = "{name}"')
    text = text.replace("batch_size = [1, 16]", f"batch_size = {batch}")
    text = text.replace("draft_bits = { start = 2, stop = 8 }", "draft_bits = [4, 8]")
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def done(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished sweep folder (tests copy it before breaking it)."""
    out = tmp_path_factory.mktemp("done") / "o"
    result = cli("sweep", str(small_sweep(out.parent, "small")), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def copy(done: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "o"
    shutil.copytree(done, dest)
    return dest


def test_a_run_writes_a_manifest_of_every_file(done: Path) -> None:
    files = verify_run(done)
    assert files is not None
    assert {"results.parquet", "run.json", "figures.json"} <= set(files)
    listed = {p.name for p in done.iterdir()} - {MANIFEST_FILE}
    assert listed == set(files)  # nothing hidden left beside them (no stage, spool or lock)


def test_a_file_in_the_way_fails_before_anything_is_written(tmp_path: Path) -> None:
    out = tmp_path / "o"
    (out / "run.json").mkdir(parents=True)
    one_line_error(cli("sweep", str(QUICK), "--out", str(out)), "run.json: is a folder")
    assert sorted(p.name for p in out.iterdir()) == ["run.json"]


def test_a_file_in_the_way_keeps_the_previous_result(done: Path, tmp_path: Path) -> None:
    out = copy(done, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    (out / "manifest.json").unlink()
    (out / "manifest.json").mkdir()
    one_line_error(cli("sweep", str(QUICK), "--out", str(out)), "manifest.json: is a folder")
    (out / "manifest.json").rmdir()
    after = {p.name: p.read_bytes() for p in out.iterdir()}
    assert after == {k: v for k, v in before.items() if k != "manifest.json"}


def test_a_run_killed_at_its_commit_point_is_refused_then_replaced(
    done: Path, tmp_path: Path
) -> None:
    out = copy(done, tmp_path)
    env = {**os.environ, COMMIT_PAUSE_ENV: "60"}
    proc = subprocess.Popen(_cmd("sweep", str(QUICK), "--out", str(out)), env=env)
    deadline = time.time() + 120
    while time.time() < deadline and '"pending": true' not in _text(out / MANIFEST_FILE):
        time.sleep(0.05)
    assert '"pending": true' in _text(out / MANIFEST_FILE)
    os.kill(proc.pid, signal.SIGKILL)  # between the first file's rename and the manifest
    proc.wait(timeout=30)
    assert [p for p in out.iterdir() if p.name.endswith(".stage")]  # its stage is left behind
    for command in ("plot", "report", "best"):
        args = ["--maximize", "throughput_tok_per_s"] if command == "best" else []
        one_line_error(cli(command, str(out), *args), "interrupted while writing this folder")
    again = cli("sweep", str(QUICK), "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # stale stage removed
    assert verify_run(out) is not None
    assert json.loads((out / "run.json").read_text())["sweep"]["name"] == "quick"


def _text(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def test_two_sweeps_into_one_folder_end_with_one_complete_result(tmp_path: Path) -> None:
    out = tmp_path / "o"
    files = [small_sweep(tmp_path, "one", "[1]"), small_sweep(tmp_path, "two", "[1, 4, 16]")]
    procs = [
        subprocess.Popen(_cmd("sweep", str(f), "--out", str(out)), stdout=subprocess.DEVNULL)
        for f in files
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert verify_run(out) is not None
    record = json.loads((out / "run.json").read_text())
    table = pd.read_parquet(out / "results.parquet")
    assert len(table) == record["points"]["kept_points"]
    batches = {"one": [1.0], "two": [1.0, 4.0, 16.0]}[record["sweep"]["name"]]
    assert sorted(table["knob.batch_size"].unique()) == batches
    figures = pd.read_parquet(out / "figure_baselines.parquet")
    assert sorted(figures["knob.batch_size"].unique()) == batches


def test_three_optimize_processes_on_a_fresh_folder_share_one_study(tmp_path: Path) -> None:
    out = tmp_path / "o"
    cmd = _cmd("optimize", str(QUICK), "--trials", "3", "--out", str(out))
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    results = [(p.wait(timeout=300), p.stderr.read() if p.stderr else "") for p in procs]
    assert [code for code, _ in results] == [0, 0, 0], results
    assert verify_run(out) is not None
    assert json.loads((out / "run.json").read_text())["command"] == "optimize"


def test_a_corrupted_study_page_is_one_line(tmp_path: Path) -> None:
    import sqlite3

    out = tmp_path / "o"
    first = cli("optimize", str(QUICK), "--trials", "20", "--out", str(out))
    assert first.returncode == 0, first.stderr
    db = out / "study.db"
    with sqlite3.connect(db) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    with db.open("r+b") as fh:
        fh.seek(4096)
        fh.write(b"\x13" * (size - 2 * 4096))
    one_line_error(
        cli("optimize", str(QUICK), "--trials", "25", "--out", str(out)),
        "the study database is damaged",
    )


@pytest.mark.parametrize(
    ("damage", "needle"),
    [
        ("edit_run_json", "run.json: changed size since the run wrote"),
        ("truncate_table", "results.parquet: changed size since the run wrote"),
        ("truncate_legacy", "results.parquet: cannot read the table"),
        ("foreign_legacy", "results.parquet: lacks column(s) meta.model"),
        ("retype_legacy", "'sweep' is a list, not a table"),
        ("pending", "interrupted while writing this folder"),
        ("bad_manifest", "manifest.json: cannot read it as JSON"),
    ],
)
def test_damaged_folders_are_refused_in_one_line(
    done: Path, tmp_path: Path, damage: str, needle: str
) -> None:
    out = copy(done, tmp_path)
    table, run_json, manifest = out / "results.parquet", out / "run.json", out / MANIFEST_FILE
    if damage == "edit_run_json":
        record = json.loads(run_json.read_text())
        record["sweep"]["name"] = "edited by hand"
        run_json.write_text(json.dumps(record))
    elif damage.startswith("truncate"):
        table.write_bytes(table.read_bytes()[:1000])
    elif damage == "foreign_legacy":
        pd.DataFrame({"x": [1.0, 2.0]}).to_parquet(table)
    elif damage == "retype_legacy":
        record = json.loads(run_json.read_text())
        record["sweep"] = [record["sweep"]]
        run_json.write_text(json.dumps(record))
    elif damage == "pending":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "pending": True}))
    else:
        manifest.write_text("{")
    if damage.endswith("legacy"):
        manifest.unlink()  # as an older elmoe-dse wrote it
    for command in ("plot", "report"):
        one_line_error(cli(command, str(out)), needle)
    assert not (out / "plots").exists() and not (out / "report.md").exists()


def test_own_files_with_spaces_and_accents_give_every_figure_and_are_checked(
    tmp_path: Path,
) -> None:
    own = tmp_path / "Mes modèles"
    (own / "My Modèl").mkdir(parents=True)
    shutil.copy(HF_CONFIG, own / "My Modèl" / "config.json")
    platform = own / "ma plateforme.toml"
    platform.write_text(PLATFORM.read_text().replace('name = "elmoe3d-8g"', 'name = "my-plat"'))
    sweep = small_sweep(own, "own", "[1, 16]")
    text = sweep.read_text().replace(
        'models = ["qwen3-30b-a3b"]', 'models = ["My Modèl/config.json"]'
    )
    sweep.write_text(
        text.replace('platforms = ["elmoe3d-8g"]', 'platforms = ["ma plateforme.toml"]')
    )
    shown = cli("models", "show", "My Modèl/config.json", "--json", cwd=own)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["id"] == "my-model"

    out = own / "résultats"
    assert cli("sweep", str(sweep), "--out", str(out)).returncode == 0
    record = json.loads((out / "run.json").read_text())
    inputs = record["inputs"]
    assert {e["resolved"] for e in inputs["models"].values()} == {
        str((own / "My Modèl" / "config.json").resolve())
    }
    assert {e["resolved"] for e in inputs["platforms"].values()} == {str(platform.resolve())}
    assert {e["resolved"] for e in inputs["datasets"].values()} == {"shipped:mt-bench"}
    drawn = cli("plot", str(out))
    assert drawn.returncode == 0, drawn.stderr
    for family in ("pareto", "speedup", "energy", "roofline", "acceptance", "hit_rate"):
        assert f"{family}:" in drawn.stdout and f"{family}: not drawn" not in drawn.stdout
    assert "draft_length: my-model" in drawn.stdout and "on my-plat" in drawn.stdout
    # A reason's brackets are printed, not read as markup.
    assert "cost: not drawn, needs a design sweep (a sweep file with [design]" in drawn.stdout
    report = cli("report", str(out))
    assert report.returncode == 0, report.stderr
    assert "my-plat" in (out / "report.md").read_text()

    platform.write_text(platform.read_text() + "\n# edited\n")
    for command in ("plot", "report", "analyze"):
        one_line_error(cli(command, str(out)), "ma plateforme.toml changed since the run")
