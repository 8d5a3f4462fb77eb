"""The ``elmoe-dse`` command: one Typer app, one file per command."""

from __future__ import annotations

import typer

from elmoe_dse.cli import analyze as analyze_cmd
from elmoe_dse.cli import best as best_cmd
from elmoe_dse.cli import calibrate_hw as calibrate_hw_cmd
from elmoe_dse.cli import explain as explain_cmd
from elmoe_dse.cli import knobs as knobs_cmd
from elmoe_dse.cli import long_context as long_context_cmd
from elmoe_dse.cli import models, platforms
from elmoe_dse.cli import optimize as optimize_cmd
from elmoe_dse.cli import plot as plot_cmd
from elmoe_dse.cli import report as report_cmd
from elmoe_dse.cli import reproduce as reproduce_cmd
from elmoe_dse.cli import sweep as sweep_cmd
from elmoe_dse.cli import validate as validate_cmd

app = typer.Typer(
    name="elmoe-dse",
    help="Analytical design-space exploration of MoE LLM decoding on memory-centric hardware.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(models.app, name="models")
app.add_typer(platforms.app, name="platforms")
app.command("explain")(explain_cmd.explain)
app.command("sweep")(sweep_cmd.sweep)
app.command("optimize")(optimize_cmd.optimize)
app.command("reproduce")(reproduce_cmd.reproduce)
app.command("calibrate")(reproduce_cmd.calibrate)
app.command("calibrate-hw")(calibrate_hw_cmd.calibrate_hw)
app.command("validate")(validate_cmd.validate)
app.command("analyze")(analyze_cmd.analyze)
app.command("plot")(plot_cmd.plot)
app.command("report")(report_cmd.report)
app.command("best")(best_cmd.best)
app.command("long-context")(long_context_cmd.long_context)
app.command("knobs")(knobs_cmd.knobs)


def main() -> None:
    """Console-script entry point."""
    app()
