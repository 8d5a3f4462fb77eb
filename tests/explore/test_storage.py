"""Storage infrastructure: passwords never printed, owner tokens that see through pid reuse."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from elmoe_dse.explore.storage import owner_alive, owner_token, redact


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
