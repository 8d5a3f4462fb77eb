"""Infrastructure under the optimizer: Optuna RDB storage, URL redaction, process liveness.

Nothing here knows about sweeps or studies. :func:`open_storage` opens any Optuna RDB URL; a
SQLite file is switched to write-ahead logging (readers never block the writer; crash-safe) and
waits up to 60 s for a lock instead of failing at once. :func:`owner_token` names this process
as ``host:pid:start`` and :func:`owner_alive` checks such a token on this host through
``/proc/<pid>/stat``, so a reused pid is not mistaken for a live owner.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elmoe_dse.errors import ElmoeError

if TYPE_CHECKING:
    import optuna

#: The default SQLite file of a study, beside the results.
STORAGE_FILE = "study.db"

_PASSWORD = re.compile(r"://([^:/@]+):[^@]*@")


class StorageError(ElmoeError):
    """A storage URL cannot be opened."""


def default_storage(out_dir: Path) -> str:
    """The SQLite URL of ``out_dir/study.db`` (absolute)."""
    return f"sqlite:///{(out_dir / STORAGE_FILE).resolve()}"


def redact(url: str) -> str:
    """The URL without its password."""
    return _PASSWORD.sub(r"://\1:***@", url)


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage. SQLite files use write-ahead logging (readers never block the
    writer; crash-safe) and wait up to 60 s for a lock instead of failing at once."""
    import optuna

    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 60}
    try:
        with _creation_lock(url):
            if url.startswith("sqlite"):
                _sqlite_wal(url)
            storage = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
    except StorageError:
        raise
    except Exception as err:  # sqlalchemy raises many types; all mean "cannot use this URL"
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise StorageError(
            f"--storage {redact(url)}: cannot open the storage ({first}); give a reachable "
            "Optuna RDB URL such as sqlite:///study.db or postgresql+psycopg2://user@host/db"
        ) from None
    if url.startswith("sqlite"):
        from sqlalchemy import event

        event.listen(storage.engine, "connect", _sqlite_pragmas)
        storage.engine.dispose()  # reconnect with the pragmas
    return storage


def _sqlite_path(url: str) -> str:
    path = url.split(":///", 1)[1] if ":///" in url else ""
    return "" if path.startswith(":memory:") else path


@contextmanager
def _creation_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<file>.lock`` while Optuna creates or migrates the schema of a
    SQLite study file, so that processes started together on a fresh folder do not race on it
    (the loser would see "UNIQUE constraint failed: alembic_version")."""
    path = _sqlite_path(url) if url.startswith("sqlite") else ""
    if not path:
        yield
        return
    import fcntl

    with open(f"{path}.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@contextmanager
def run_lock(url: str, *, exclusive: bool) -> Iterator[None]:
    """While a run uses a SQLite study file: a lock on ``<file>.run.lock``, exclusive for a run
    that holds the studies in memory (it numbers the trials it copies back after the file's
    last, so no other process may write the file meanwhile), shared for runs that write the
    file directly (they may run together). A run waits for the lock: processes started together
    on one folder take turns, and each finds the trials of those before it. Nothing for other
    storages."""
    path = _sqlite_path(url) if url.startswith("sqlite") else ""
    if not path:
        yield
        return
    import fcntl

    with open(f"{path}.run.lock", "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _sqlite_wal(url: str) -> None:
    """Check a SQLite file's integrity and switch it to write-ahead logging (persistent)."""
    import sqlite3

    path = _sqlite_path(url)
    if not path:
        return
    try:
        with sqlite3.connect(path, timeout=60) as con:
            con.execute("PRAGMA journal_mode=WAL")
            verdict = con.execute("PRAGMA quick_check").fetchone()
    except sqlite3.OperationalError as err:  # locked, I/O error, disk full, no permission
        raise StorageError(
            f"--storage {url}: cannot use the SQLite file ({err}); check free space, file-size "
            "limits and permissions, or choose another path"
        ) from None
    except sqlite3.DatabaseError as err:  # not a database, malformed image
        raise StorageError(_damaged(url, str(err))) from None
    if verdict is None or verdict[0] != "ok":
        raise StorageError(_damaged(url, str(verdict[0]) if verdict else "no answer"))


def _damaged(url: str, why: str) -> str:
    lines = [ln.strip() for ln in why.splitlines() if ln.strip() and not ln.startswith("***")]
    first = lines[0] if lines else "integrity check failed"
    return (
        f"--storage {url}: the study database is damaged ({first}); move the file away to start "
        "a new study (results.parquet keeps the finished trials) or restore a copy"
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def owner_token() -> str:
    """This process as ``host:pid:start`` (start time in clock ticks: guards against pid reuse)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"


def _start_ticks(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return "?"


def owner_alive(token: str) -> bool | None:
    """True/False for an owner on this host; None when it cannot be checked (another host)."""
    host, _, rest = token.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return None
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return start == "?" or _start_ticks(pid) in (start, "?")


def append_trials(
    storage: optuna.storages.RDBStorage,
    study_id: int,
    trials: Sequence[optuna.trial.FrozenTrial],
) -> int:
    """Copy to an RDB study the trials of ``trials`` (a copy of the study, in number order)
    that it lacks, up to the first unfinished one, in one transaction; return how many.

    Optuna's ``create_new_trial(template_trial=...)`` runs about 30 ORM statements and a commit
    per trial (some 36 ms of CPU on SQLite), more than the search itself; here the rows of every
    trial (the trial, its values, parameters, user and system attributes) are Optuna's own ORM
    models, added together and flushed once. Only for a storage no other process writes while
    this runs (the trial numbers are counted once, at the start).
    """
    import json

    from optuna.distributions import distribution_to_json
    from optuna.storages._rdb import models

    session = storage.scoped_session()
    try:
        number = session.query(models.TrialModel).filter_by(study_id=study_id).count()
        new = list(itertools.takewhile(lambda t: t.state.is_finished(), trials[number:]))
        rows = []
        for i, trial in enumerate(new):
            assert trial.number == number + i and not trial.intermediate_values
            row = models.TrialModel(number=number + i, study_id=study_id, state=trial.state)
            row.datetime_start = trial.datetime_start
            row.datetime_complete = trial.datetime_complete
            stored = [models.TrialValueModel.value_to_stored_repr(v) for v in trial.values or ()]
            row.values = [
                models.TrialValueModel(objective=k, value=v, value_type=kind)
                for k, (v, kind) in enumerate(stored)
            ]
            row.params = [
                models.TrialParamModel(
                    param_name=name,
                    param_value=trial.distributions[name].to_internal_repr(value),
                    distribution_json=distribution_to_json(trial.distributions[name]),
                )
                for name, value in trial.params.items()
            ]
            row.user_attributes = [
                models.TrialUserAttributeModel(key=k, value_json=json.dumps(v))
                for k, v in trial.user_attrs.items()
            ]
            row.system_attributes = [
                models.TrialSystemAttributeModel(key=k, value_json=json.dumps(v))
                for k, v in trial.system_attrs.items()
            ]
            rows.append(row)
        session.add_all(rows)
        session.commit()
        return len(rows)
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
