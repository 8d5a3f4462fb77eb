"""``elmoe-dse --help`` answered without Typer, and its command list kept equal to the app's."""

from __future__ import annotations

import subprocess
import sys

from elmoe_dse.cli.main import app
from elmoe_dse.cli.toplevel import COMMANDS, help_text


def _registered() -> list[str]:
    commands = [str(c.name) for c in app.registered_commands]
    groups = [str(g.name) for g in app.registered_groups]
    return commands + groups


def test_fast_help_lists_exactly_the_registered_commands_in_order() -> None:
    assert [name for name, _ in COMMANDS] == _registered()


def test_fast_help_text_names_every_command_and_fits_the_width() -> None:
    text = help_text(width=80)
    for name, _ in COMMANDS:
        assert f"  {name} " in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_help_imports_neither_typer_nor_numpy() -> None:
    code = (
        "import sys; sys.argv = ['elmoe-dse', '--help'];"
        "from elmoe_dse.cli.toplevel import main; main();"
        "heavy = [m for m in ('typer', 'rich', 'numpy', 'pandas') if m in sys.modules];"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "Usage: elmoe-dse" in out.stdout
    assert "HEAVY []" in out.stdout


def test_other_arguments_reach_the_typer_app() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "elmoe_dse", "knobs", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.lstrip().startswith(("[", "{"))
