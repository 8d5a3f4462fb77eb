"""Shared CLI helpers: one-line errors with exit code 2, JSON output, number formatting."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer

EXIT_USAGE = 2


@contextmanager
def guarded() -> Iterator[None]:
    """Turn the tool's own errors into one line on stderr and exit code 2 (no traceback)."""
    from elmoe_dse.errors import ElmoeError

    try:
        yield
    except ElmoeError as err:
        typer.echo(f"error: {err}", err=True)
        raise typer.Exit(EXIT_USAGE) from None


def console() -> Any:
    """A rich console; 140 columns wide when output is not a terminal (pipes, files, tests)."""
    from rich.console import Console

    con = Console()
    return con if con.is_terminal else Console(width=140)


def print_json(data: Any) -> None:
    """Print JSON to stdout (stable key order)."""
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def si(value: float | None, unit: str) -> str:
    """Format an SI value with an engineering prefix: 1.23e-3 s -> '1.23 ms'."""
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    prefixes = [
        (1e12, "T"),
        (1e9, "G"),
        (1e6, "M"),
        (1e3, "k"),
        (1.0, ""),
        (1e-3, "m"),
        (1e-6, "µ"),
        (1e-9, "n"),
        (1e-12, "p"),
    ]
    mag = abs(value)
    for scale, prefix in prefixes:
        if mag >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


Formatter = Callable[[float | None], str]
