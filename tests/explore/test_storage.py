"""Storage infrastructure: passwords never printed, owner tokens that see through pid reuse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from elmoe_dse.explore.storage import (
    StorageError,
    open_storage,
    owner_alive,
    owner_token,
    redact,
)


def test_redact_hides_only_the_password() -> None:
    assert redact("postgresql+psycopg2://u:secret@host/db") == "postgresql+psycopg2://u:***@host/db"
    assert redact("postgresql://u@host/db") == "postgresql://u@host/db"
    assert redact("sqlite:///tmp/study.db") == "sqlite:///tmp/study.db"


def test_this_process_is_alive_and_a_finished_one_is_not() -> None:
    assert owner_alive(owner_token()) is True
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert owner_alive(f"{socket.gethostname()}:{child.stdout.strip()}:?") is False


def test_a_reused_pid_is_not_the_owner() -> None:
    host, pid, start = owner_token().split(":")
    if start == "?":
        pytest.skip("no /proc: the start time cannot be checked")
    assert owner_alive(f"{host}:{pid}:{int(start) + 1}") is False
    assert owner_alive(f"other-{host}:{os.getpid()}:{start}") is None


_OPEN_AND_CREATE = """
import sys, time
from elmoe_dse.explore.storage import open_storage
import optuna
optuna.logging.set_verbosity(optuna.logging.ERROR)
start = float(sys.argv[2])
while time.time() < start:
    pass
storage = open_storage(sys.argv[1])
study = optuna.create_study(study_name="s", storage=storage, load_if_exists=True)
study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
"""


def test_processes_started_together_share_one_fresh_sqlite_study(tmp_path: Path) -> None:
    import time

    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    start = str(time.time() + 1.5)  # every child waits for the same instant
    children = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AND_CREATE, url, start],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    results = [(c.wait(timeout=120), c.stderr.read() if c.stderr else "") for c in children]
    assert [code for code, _ in results] == [0, 0, 0], results
    study = optuna.load_study(study_name="s", storage=url)
    assert len(study.trials) == 6


def test_a_damaged_study_database_is_one_clear_error(tmp_path: Path) -> None:
    import optuna

    db = tmp_path / "study.db"
    url = f"sqlite:///{db}"
    study = optuna.create_study(study_name="s", storage=open_storage(url))
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=20)
    del study
    import sqlite3

    with sqlite3.connect(db) as con:  # move the write-ahead log into the file
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    size = db.stat().st_size
    assert size > 3 * 4096
    with db.open("r+b") as fh:  # overwrite pages after the header: a damaged b-tree
        fh.seek(4096)
        fh.write(b"\x13" * (size - 2 * 4096))
    with pytest.raises(StorageError, match="the study database is damaged") as err:
        open_storage(url)
    assert "\n" not in str(err.value)
