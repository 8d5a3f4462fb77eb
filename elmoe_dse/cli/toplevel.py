"""The top-level ``elmoe-dse --help`` without importing Typer, rich or numpy.

``elmoe-dse --help`` is the first thing a new user types; building the Typer app imports click,
rich and every command module (about 0.25 s of CPU). This module holds the command list as plain
data so that the console entry point can answer ``--help`` in the interpreter's start-up time. A
test checks that :data:`COMMANDS` names exactly the commands the Typer app registers, in the same
order, so this list cannot drift from the real app.
"""

from __future__ import annotations

import shutil
import textwrap

SUMMARY = "Analytical design-space exploration of MoE LLM decoding on memory-centric hardware."

#: (command, one-line summary), in the order ``elmoe_dse.cli.main`` registers them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("explain", "Cost of one decode step: time, bound, bytes per tier, ops, energy per operator."),
    ("sweep", "Evaluate every design point of a sweep file; results.parquet, run.json, fronts."),
    ("optimize", "Search a sweep file's space with Optuna (resumable); best designs per group."),
    ("reproduce", "The paper's headline numbers with prior and posterior 90 % bands."),
    (
        "calibrate",
        "Sample the posterior of the paper-informed parameters (emcee).",
    ),
    ("calibrate-hw", "Fit a GPU preset's kernel terms to a per-kernel database."),
    ("validate", "Predicted vs measured GPU decode time per output token, error per point."),
    ("analyze", "Rebuild the figure tables of a results folder from the specs its run recorded."),
    ("plot", "Draw every figure a results folder supports into DIR/plots."),
    ("report", "Write report.md and report.html: findings, figures, provenance."),
    (
        "best",
        "The design reaching a condition at least cost, per group of a results folder.",
    ),
    ("long-context", "The long-context figure, table and report section from a sweep folder."),
    ("knobs", "Every knob --set, sweep files and optimize accept: unit, range, default, meaning."),
    ("models", "MoE models: the shipped specs, or any Hugging Face config.json."),
    ("platforms", "Hardware platforms: the shipped specs, or your own TOML."),
)


def help_text(width: int | None = None) -> str:
    """The top-level help as plain text, wrapped to the terminal width (at most 100 columns)."""
    cols = min(width or shutil.get_terminal_size((100, 24)).columns, 100)
    name_w = max(len(name) for name, _ in COMMANDS) + 2
    lines = ["Usage: elmoe-dse [OPTIONS] COMMAND [ARGS]...", ""]
    lines += [*textwrap.wrap(SUMMARY, cols), "", "Commands:"]
    for name, text in COMMANDS:
        wrapped = textwrap.wrap(text, max(cols - name_w - 2, 30)) or [""]
        lines.append(f"  {name:<{name_w}}{wrapped[0]}")
        lines.extend(" " * (name_w + 2) + rest for rest in wrapped[1:])
    lines += [
        "",
        "Options:",
        f"  {'--help':<{name_w}}Show this message and exit.",
        "",
        "Run `elmoe-dse COMMAND --help` for a command's options.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Console-script entry point: answer ``--help`` here, hand everything else to Typer."""
    import sys

    if sys.argv[1:] == ["--help"]:
        sys.stdout.write(help_text())
        return
    from elmoe_dse.cli.main import app

    sys.exit(run_app(app, sys.argv[1:]))


def run_app(app: object, args: list[str]) -> int:
    """Run the Typer ``app`` on ``args``; a usage error becomes one line on stderr and exit 2.

    Typer's standalone mode draws usage errors in a rich box under the usage line; a user who
    typed ``--seed -1`` should get one line naming the command, the option and the fix, like
    every other input error of the tool.
    """
    import sys

    from typer._click.exceptions import NoArgsIsHelpError, UsageError
    from typer.exceptions import Abort, TyperException

    try:
        code = app(args=args, prog_name="elmoe-dse", standalone_mode=False)  # type: ignore[operator]
    except NoArgsIsHelpError as e:
        e.show()
        return 2
    except UsageError as e:
        where = e.ctx.command_path if e.ctx is not None else "elmoe-dse"
        sys.stderr.write(f"{where}: {e.format_message()} (see '{where} --help')\n")
        return 2
    except TyperException as e:
        sys.stderr.write(f"elmoe-dse: {e.format_message()}\n")
        return e.exit_code
    except Abort:
        sys.stderr.write("Aborted!\n")
        return 1
    return code if isinstance(code, int) else 0
