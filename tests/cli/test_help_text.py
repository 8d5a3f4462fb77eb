"""Every option's help is shown as written: rich reads ``[word ...]`` as markup and drops it, so
a bracket a help text means literally (``[default: ...]``, ``[kernels]``) must be escaped."""

from __future__ import annotations

import re
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from elmoe_dse.cli.main import app

#: The app's commands by name (typer's own click group).
COMMANDS: dict[str, Any] = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def _bracketed(command: Any) -> list[str]:
    """The bracketed phrases of the command's option help texts, as a reader should see them."""
    found = []
    for param in command.params:
        text = getattr(param, "help", None) or ""
        found += [m.replace("\\[", "[") for m in re.findall(r"\\?\[[^\]]*\]", text)]
    return found


@pytest.mark.parametrize("name", [n for n, c in COMMANDS.items() if _bracketed(c)], ids=str)
def test_bracketed_help_is_printed(name: str) -> None:
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())
    for phrase in _bracketed(COMMANDS[name]):
        assert " ".join(phrase.split()) in shown, f"{name} --help drops {phrase!r}"
