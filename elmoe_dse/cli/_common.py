"""Shared CLI helpers: one-line errors with exit code 2, JSON output, number formatting."""

from __future__ import annotations

import errno
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from elmoe_dse.render import si as si  # re-exported: the CLI tables format with it

EXIT_USAGE = 2
#: OS errors that mean "out of a resource" (disk full, file-size limit, quota, read-only).
RESOURCE_ERRNOS = frozenset({errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS})


@contextmanager
def guarded() -> Iterator[None]:
    """Turn the tool's own errors into one line on stderr and exit code 2 (no traceback)."""
    from elmoe_dse.errors import ElmoeError

    try:
        yield
    except ElmoeError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except OSError as err:
        if err.errno not in RESOURCE_ERRNOS:
            raise
        where = f"{err.filename}: " if err.filename else ""
        typer.echo(
            f"error: {where}cannot write ({os.strerror(err.errno or 0)}); free space or raise the "
            "limit, or choose another --out; the previous result is left as it was",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE) from None


def console() -> Any:
    """A rich console; 140 columns wide when output is not a terminal (pipes, files, tests)."""
    from rich.console import Console

    con = Console()
    return con if con.is_terminal else Console(width=140)


class ProgressHandle:
    """Drives one rich progress task: ``advance(n)`` adds to it, ``update(done, total)`` sets it."""

    def __init__(self, bar: Any = None, task: Any = None) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)

    def update(self, done: int, total: int | None = None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)


@contextmanager
def progress_bar(
    label: str, total: int | None = None, *, enabled: bool = True
) -> Iterator[ProgressHandle]:
    """A transient rich progress bar on stderr (none in logs and pipes, or when not enabled)."""
    if not enabled:
        yield ProgressHandle()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    err = Console(stderr=True)
    with Progress(
        f"[progress.description]{label}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        yield ProgressHandle(bar, bar.add_task(label, total=total))


def print_json(data: Any) -> None:
    """Print JSON to stdout (stable key order)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")
