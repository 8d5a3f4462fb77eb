"""The report's data record and its Markdown/HTML rendering."""

from __future__ import annotations

import json
from pathlib import Path

from elmoe_dse.plots.figures import build_records
from elmoe_dse.plots.inputs import load_run_dir
from elmoe_dse.report import (
    Report,
    Table,
    bands_table,
    compact,
    fmt,
    render_html,
    render_markdown,
    report_data,
)


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


# ---- findings first, compact tables, one calibration table, a short summary ------------------


def _band(p50: float, width: float = 0.1) -> dict[str, float]:
    return {"n": 20, "p5": p50 - width, "p50": p50, "p95": p50 + width}


def write_bands(folder: Path) -> dict[str, object]:
    """A ``bands.json`` beside the reproduce run: the first target inside its prior band, the
    second only inside its posterior band, the rest outside both; one other alternative."""
    from elmoe_dse.explore.reproduce import PAPER_TARGETS

    targets = {}
    for i, (name, paper) in enumerate(PAPER_TARGETS.items()):
        prior = _band(paper if i == 0 else paper / 2)
        posterior = _band(paper if i < 2 else paper / 2)
        targets[name] = {
            "paper": paper,
            "prior": prior,
            "posterior": posterior,
            "p_within_10pct_prior": 0.5 if i == 0 else 0.0,
        }
    bands = {
        "selected": "default",
        "alternatives": {
            "default": {"targets": targets, "posterior_from": "default"},
            "overlap=pass": {"targets": targets, "posterior_from": "default"},
        },
        "tension": [],
    }
    (folder / "reproduce" / "bands.json").write_text(json.dumps(bands))
    return bands


def _report(folder: Path) -> Report:
    run = load_run_dir(folder)
    records, skipped = build_records(run)
    return report_data(run, records, skipped)


def test_compact_says_constant_columns_once_and_keeps_the_first() -> None:
    table = Table("t", ("B", "x", "y", ""), (("1", "a", "5", ""), ("1", "b", "5", "")))
    small = compact(table)
    assert small.columns == ("B", "x")
    assert small.rows == (("1", "a"), ("1", "b"))
    assert small.fixed == "y 5"  # the empty column goes without a word
    one = Table("t", ("B", "x"), (("1", "a"),))
    assert compact(one) == one


def test_bands_table_gives_paper_draw_bands_and_verdicts() -> None:
    from elmoe_dse.claims import FROM_PRIORS, NOT_REPRODUCED, UNDER_TENSION

    bands = {
        "selected": "default",
        "alternatives": {
            "default": {
                "targets": {
                    "energy_vs_xpu_max": {
                        "paper": 7.2,
                        "prior": _band(7.0, 0.5),
                        "posterior": _band(7.1),
                        "p_within_10pct_prior": 0.4,
                    },
                    "speedup_vs_xpu_mean": {
                        "paper": 6.6,
                        "prior": _band(3.0),
                        "posterior": _band(6.5),
                        "p_within_10pct_prior": 0.0,
                    },
                    "speedup_vs_xpu_max": {
                        "paper": 12.0,
                        "prior": _band(7.0),
                        "posterior": {"n": 0},
                        "p_within_10pct_prior": 0.0,
                    },
                }
            }
        },
    }
    table = bands_table(bands, [{"name": "speedup_vs_xpu_mean", "model": 3.51}])
    assert table.columns[:3] == ("claim", "paper", "model, one draw")
    # the paper's order, whatever the file's
    assert [r[0] for r in table.rows] == [
        "speedup vs xpu mean",
        "speedup vs xpu max",
        "energy vs xpu max",
    ]
    assert table.rows[0][1:5] == ("6.60x", "3.51x", "3.00x [2.90, 3.10]", "6.50x [6.40, 6.60]")
    assert table.rows[1][4] == "n/a"
    assert [r[-1] for r in table.rows] == [UNDER_TENSION, NOT_REPRODUCED, FROM_PRIORS]


def test_report_opens_with_the_findings_then_provenance(reproduce_dir: Path) -> None:
    write_bands(reproduce_dir)
    data = _report(reproduce_dir)
    (first,) = data.findings
    assert first.columns[0] == "claim" and len(first.rows) == 10
    assert data.detail[0].title.startswith("ELMoE-3D (8 GB) headline numbers")  # one draw
    assert data.claims[0].startswith("Reproduced from priors: speedup_vs_xpu_mean")
    assert not any(c.startswith("Under ") for c in data.claims)
    assert data.figures[0].name == "speedup"  # the figure that matters most leads
    md = render_markdown(data)
    order = [md.index(s) for s in ("## Findings", "### Figure 1. Speedup", "## What was run")]
    assert order == sorted(order)
    assert md.index("## What was run") < md.index("## More figures")
    html = render_html(data, {})
    assert html.index("<h2>Findings</h2>") < html.index("<h2>What was run</h2>")
    assert "<p>| claim" not in html and "<li>Reproduced from priors" in html


def test_without_bands_the_targets_at_one_draw_lead(reproduce_dir: Path) -> None:
    data = _report(reproduce_dir)
    (first,) = data.findings
    assert first.columns[0] == "target" and data.detail == () and data.claims == ()


def test_a_sweep_report_leads_with_the_pareto_front(sweep_dir: Path) -> None:
    data = _report(sweep_dir)
    assert data.findings == ()
    assert data.figures[0].name == "pareto"
    assert render_markdown(data).index("Best designs per batch size") < render_markdown(data).index(
        "## What was run"
    )


def test_one_calibration_table_when_both_runs_share_it() -> None:
    from types import SimpleNamespace

    from elmoe_dse.report import _calibration

    cal = {
        "date": "2026-01-01",
        "seed": 1,
        "trials": 3,
        "loss": 0.0,
        "parameters": {"a": {"value": 1.0, "min": 0.0, "max": 2.0}},
    }
    run = SimpleNamespace(
        sweep=SimpleNamespace(command="sweep", calibration=cal),
        reproduce=SimpleNamespace(calibration=dict(cal)),
    )
    tables, text = _calibration(run)  # type: ignore[arg-type]
    assert [t.title for t in tables] == ["Calibrated parameters"]
    assert text.startswith("sweep and reproduce: calibration of 2026-01-01")
    other = SimpleNamespace(
        sweep=SimpleNamespace(command="sweep", calibration=cal),
        reproduce=SimpleNamespace(calibration=None),
    )
    tables, text = _calibration(other)  # type: ignore[arg-type]
    assert [t.title for t in tables] == ["Calibrated parameters (sweep)"]
    assert "reproduce: none" in text


#: A table of the report has at most this many columns (about 110 px each on a 1400 px page).
MAX_COLUMNS = 12


def test_html_tables_fit_the_page_and_show_only_varying_columns(sweep_dir: Path) -> None:
    import re

    from elmoe_dse.report import PAGE_MAX_WIDTH_PX

    data = _report(sweep_dir)
    page = render_html(data, {})
    assert f"max-width: {PAGE_MAX_WIDTH_PX - 64}px" in page
    assert "overflow-x: auto" in page and "overflow-wrap: anywhere" in page
    tables = re.findall(r"<div class='table'><table>(.*?)</table></div>", page, re.S)
    assert len(tables) == page.count("<table>")  # every table scrolls in its own box
    shown = [*data.headline, *(f.table for f in data.figures if f.table is not None)]
    assert shown
    for table in shown:
        assert len(table.columns) <= MAX_COLUMNS
        if len(table.rows) > 1:
            constant = [
                c for i, c in enumerate(table.columns) if len({r[i] for r in table.rows}) == 1
            ]
            assert constant in ([], [table.columns[0]]), constant


def test_summary_is_short_and_says_where_to_look(reproduce_dir: Path) -> None:
    import re

    from elmoe_dse.report import summary_lines

    write_bands(reproduce_dir)
    lines = summary_lines(_report(reproduce_dir), reproduce_dir)
    assert len(lines) <= 20
    assert lines[1].split() == ["claim", "paper", "prior", "band", "posterior", "band", "verdict"]
    rule, rows = lines[2], lines[3:13]
    assert set(rule) == {"-", " "} and len(rule) == max(len(r) for r in rows)  # columns line up
    paper_end = lines[1].index("paper") + len("paper")
    assert {re.search(r"\d+\.\d\dx", r).end() for r in rows} == {paper_end}  # type: ignore[union-attr]
    assert "of 10 claims: 8 not reproduced, 1 reproduced from priors, 1 only under tension" in (
        "\n".join(lines)
    )
    assert lines[-2].startswith(f"start with {reproduce_dir / 'report.html'}")


def test_a_sweep_summary_shows_its_best_designs(sweep_dir: Path) -> None:
    from elmoe_dse.report import summary_lines

    data = _report(sweep_dir)
    lines = summary_lines(data, sweep_dir)
    assert lines[0].startswith("design points: ")
    assert lines[1] == data.headline[0].title
    header = next(line for line in lines if line.startswith("B "))
    assert "throughput" in header and len(lines) <= 20
    assert lines[-1].endswith(f"tables: results.parquet, run.json in {sweep_dir}")
