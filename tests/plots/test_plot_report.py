"""The report's data record and its Markdown/HTML rendering."""

from __future__ import annotations

from pathlib import Path

from elmoe_dse.plots.figures import build_records
from elmoe_dse.plots.inputs import load_run_dir
from elmoe_dse.report import Report, Table, fmt, render_html, render_markdown, report_data


def test_fmt_uses_the_unit_in_the_column_name() -> None:
    assert fmt("metric.throughput_tok_per_s", 1234.5) == "1,234 tok/s"
    assert fmt("metric.energy_per_token_j", 0.0123) == "12.3 mJ"
    assert fmt("metric.latency_per_token_s", 0.02) == "20 ms"
    assert fmt("knob.pool_experts", float("nan")) == "auto"
    assert fmt("knob.rounding", "round") == "round"


def test_sweep_report_has_best_designs_and_its_calibration(sweep_master: Path) -> None:
    run = load_run_dir(sweep_master)
    records, skipped = build_records(run, ["pareto"])
    data = report_data(run, records, skipped)
    assert data.title == "elmoe-dse report: sweep 'small'"
    (headline,) = data.headline
    assert headline.title.startswith("Best designs per batch size")
    assert [row[0] for row in headline.rows][:1] == ["1"]
    assert "calibration of" in data.calibration_text  # sweeps apply the shipped calibration
    assert ("knob draft_bits", "3, 4, 5") in data.config
    md = render_markdown(data)
    assert "### Figure 1. Pareto fronts" in md and "plots/pareto.png" in md


def test_rendering_escapes_and_embeds() -> None:
    data = Report(
        title="t <x>",
        facts=(("command", "a|b"),),
        config=(),
        headline=(Table("h", ("c",), (("<b>",),)),),
        figures=(),
        calibration=(),
        calibration_text="none",
        notes=("pareto: not drawn.",),
    )
    md = render_markdown(data)
    assert "a\\|b" in md
    html = render_html(data, {})
    assert "t &lt;x&gt;" in html and "&lt;b&gt;" in html and "<b>" not in html
