"""``elmoe-dse --help`` answered without Typer, and its command list kept equal to the app's."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

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


def test_a_usage_error_is_one_line_naming_the_command_and_option(tmp_path: Path) -> None:
    quick = Path(__file__).resolve().parents[2] / "sweeps" / "quick.toml"
    args = ["optimize", str(quick), "--seed", "-1", "--out", str(tmp_path / "o")]
    out = subprocess.run(
        [sys.executable, "-m", "elmoe_dse", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 2 and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("elmoe-dse optimize: ") and "'--seed'" in lines[0]
    assert "elmoe-dse optimize --help" in lines[0] and "╭" not in out.stderr
    assert not (tmp_path / "o").exists()


def test_an_unknown_command_and_no_arguments_exit_2() -> None:
    unknown = subprocess.run(
        [sys.executable, "-m", "elmoe_dse", "frobnicate"], capture_output=True, text=True
    )
    assert unknown.returncode == 2 and len(unknown.stderr.strip().splitlines()) == 1
    bare = subprocess.run([sys.executable, "-m", "elmoe_dse"], capture_output=True, text=True)
    assert bare.returncode == 2 and "Usage: elmoe-dse" in bare.stdout + bare.stderr
