"""The full ``elmoe-dse`` app through typer's CliRunner, for the per-command test modules."""

from __future__ import annotations

from typer.testing import CliRunner

from elmoe_dse.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of ``elmoe-dse ARGS``."""
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr
