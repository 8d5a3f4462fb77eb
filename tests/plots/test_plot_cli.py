"""``plot`` and ``report`` through typer's CliRunner on a local app (the lead registers them)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from elmoe_dse.cli.analyze import analyze
from elmoe_dse.cli.plot import plot
from elmoe_dse.cli.report import report

app = typer.Typer(pretty_exceptions_enable=False, add_completion=False)
app.command("plot")(plot)
app.command("report")(report)
app.command("analyze")(analyze)
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def test_plot_reproduce_dir_writes_every_applicable_figure(reproduce_dir: Path) -> None:
    code, out, _ = run("plot", str(reproduce_dir))
    assert code == 0, out
    names = sorted(p.name for p in (reproduce_dir / "plots").iterdir())
    assert names == [
        "acceptance.png",
        "draft_length.png",
        "energy.png",
        "hit_rate.png",
        "index.json",
        "roofline.png",
        "speedup.png",
    ]
    assert "pareto: not drawn, needs a sweep" in out
    index = json.loads((reproduce_dir / "plots" / "index.json").read_text())
    assert all(f["caption"] and f["source"] for f in index["figures"])
    assert not leftovers(reproduce_dir)


def test_plot_sweep_dir_as_svg(sweep_dir: Path) -> None:
    code, out, _ = run("plot", str(sweep_dir), "--format", "svg", "--only", "pareto,energy")
    assert code == 0, out
    plots = sweep_dir / "plots"
    assert sorted(p.name for p in plots.iterdir()) == [
        "energy.svg",
        "index.json",
        "pareto.svg",
        "pareto_front.csv",
    ]
    front = pd.read_csv(plots / "pareto_front.csv")
    assert {"label", "knob.batch_size", "metric.throughput_tok_per_s"} <= set(front.columns)
    assert (plots / "pareto.svg").read_text().startswith("<?xml")


def test_plot_optimize_dir(optimize_master: Path) -> None:
    code, out, _ = run(
        "plot", str(optimize_master), "--only", "hypervolume", "--only", "importance"
    )
    assert code == 0, out
    assert (optimize_master / "plots" / "hypervolume.png").exists()
    assert (optimize_master / "plots" / "importance.png").exists()


def test_report_writes_markdown_and_self_contained_html(reproduce_dir: Path) -> None:
    code, out, _ = run("report", str(reproduce_dir))
    assert code == 0, out
    md = (reproduce_dir / "report.md").read_text()
    html = (reproduce_dir / "report.html").read_text()
    assert "speedup vs xpu mean" in md and "Calibration in force" in md
    assert "![Speedup" in md and "plots/speedup.png" in md
    assert html.count("data:image/png;base64,") == 6
    assert "src='plots/" not in html


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("drop_column", "lacks column(s) metric.draft_length_tokens"),
        ("drop_targets", "lacks the 'targets' list"),
        ("no_systems", "systems.parquet: file not found"),
    ],
)
def test_an_older_reproduce_dir_fails_in_one_line(
    reproduce_dir: Path, breakage: str, message: str
) -> None:
    folder = reproduce_dir / "reproduce"
    if breakage == "drop_column":
        systems = pd.read_parquet(folder / "systems.parquet")
        systems.drop(columns="metric.draft_length_tokens").to_parquet(folder / "systems.parquet")
    elif breakage == "drop_targets":
        record = json.loads((folder / "run.json").read_text())
        del record["targets"]
        (folder / "run.json").write_text(json.dumps(record))
    else:
        (folder / "systems.parquet").unlink()
    (folder / "manifest.json").unlink()  # as an older elmoe-dse wrote it (no manifest)
    code, _, err = run("report", str(reproduce_dir))
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (reproduce_dir / "plots").exists()
    assert not (reproduce_dir / "report.md").exists()


def test_a_sweep_table_missing_energy_columns_fails_before_writing(sweep_dir: Path) -> None:
    table = pd.read_parquet(sweep_dir / "results.parquet")
    keep = [
        c
        for c in table.columns
        if not c.startswith("metric.energy_") or c == "metric.energy_per_token_j"
    ]
    table[keep].to_parquet(sweep_dir / "results.parquet")
    (sweep_dir / "manifest.json").unlink()  # as an older elmoe-dse wrote it (no manifest)
    code, _, err = run("plot", str(sweep_dir))
    assert code == 2
    assert "lacks column(s) metric.energy_static_per_step_j that 'energy' needs" in err
    assert not (sweep_dir / "plots").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--only", "nonsense"), "--only nonsense: no such figure"),
        (("--only", "pareto"), "figure 'pareto' needs a sweep or optimize run"),
        (("--format", "gif"), "--format gif: use one of png, svg, pdf"),
    ],
)
def test_bad_options_fail_in_one_line(
    reproduce_dir: Path, args: tuple[str, ...], message: str
) -> None:
    code, _, err = run("plot", str(reproduce_dir), *args)
    assert code == 2
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (reproduce_dir / "plots").exists()


def test_a_directory_without_results(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "run.json").write_text("{}")
    code, _, err = run("plot", str(tmp_path))
    assert code == 2
    assert "no results found" in err and "pass one of them" in err
    code, _, err = run("plot", str(tmp_path / "missing"))
    assert code == 2 and "no such directory" in err


def test_a_missing_figure_table_skips_its_figure_naming_the_command(sweep_dir: Path) -> None:
    (sweep_dir / "figure_roofline_points.parquet").unlink()
    (sweep_dir / "figure_baselines.parquet").unlink()
    code, out, _ = run("plot", str(sweep_dir))
    assert code == 0, out
    assert (sweep_dir / "plots" / "pareto.png").exists()  # drawn, without its baselines
    assert "roofline: not drawn, needs figure_roofline_points.parquet, which `elmoe-dse sweep`" in (
        " ".join(out.split())
    )
    assert "speedup: not drawn" in out
    code, _, err = run("plot", str(sweep_dir), "--only", "roofline")
    assert code == 2 and "figure_roofline_points.parquet" in err
    code, out, _ = run("analyze", str(sweep_dir))
    assert code == 0 and "figure_roofline_points.parquet" in out
    code, out, _ = run("plot", str(sweep_dir), "--only", "roofline,speedup")
    assert code == 0, out


def test_report_summary_prints_the_headline_in_a_few_lines(reproduce_dir: Path) -> None:
    from tests.plots.test_plot_report import write_bands

    write_bands(reproduce_dir)
    assert run("plot", str(reproduce_dir))[0] == 0
    code, out, _ = run("report", str(reproduce_dir), "--summary")
    assert code == 0, out
    lines = out.strip().splitlines()
    assert lines[0].startswith("ELMoE-3D (8 GB) headline numbers: paper vs model")
    assert "prior band" in lines[1] and len(lines) <= 20
    assert (reproduce_dir / "report.html").is_file()


def test_figures_drawn_on_two_processes_are_the_same_bytes(
    reproduce_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from elmoe_dse.plots import figures

    code, out, _ = run("plot", str(reproduce_dir), "--workers", "1")
    assert code == 0, out
    plots = reproduce_dir / "plots"
    one = {p.name: p.read_bytes() for p in plots.iterdir()}
    assert len([n for n in one if n.endswith(".png")]) >= figures.POOL_MIN_FIGURES
    shutil.rmtree(plots)

    def not_here(record: object, fmt: str) -> bytes:
        raise AssertionError("with --workers 2 the figures are drawn by the worker processes")

    monkeypatch.setattr(figures, "render", not_here)
    code, out, _ = run("plot", str(reproduce_dir), "--workers", "2")
    assert code == 0, out
    assert {p.name: p.read_bytes() for p in plots.iterdir()} == one
