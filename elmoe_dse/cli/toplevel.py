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
    from elmoe_dse.cli.main import main as typer_main

    typer_main()
