"""``DIR/report.md`` and a self-contained ``DIR/report.html`` for a results directory.

The report opens with the findings: the paper's headline numbers against the model (the prior and
posterior 90 % bands of a reproduce run's ``bands.json``, with which claims the model supports; the
targets at one fixed draw without bands), the figure that matters most (the speedup over xPU for a
reproduce run, else the Pareto front) and a sweep's best designs per batch size. Then it says what
was run (command, package version, git commit, the resolved configuration), shows the other
figures of :mod:`elmoe_dse.plots.figures` with a caption that says what to read from each and
where its numbers come from, and states the calibration in force (once, however many runs share
it). Tables show only the columns that vary; a column constant over a table is said once above
it (:func:`compact`).

:func:`report_data` is pure: it turns a loaded directory and its figure records into a
:class:`Report` of display strings. :func:`render_markdown` and :func:`render_html` only format
(the HTML embeds each PNG as base64). :func:`write_report` takes each figure from ``plots/``
where ``plot`` already wrote it (newer than the run's files), renders only the missing ones (into
``plots/`` too), then writes ``report.md`` and ``report.html``, each through a temporary file and a
rename.
"""

from __future__ import annotations

import base64
import html
import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elmoe_dse.render import unit_text

if TYPE_CHECKING:
    from elmoe_dse.plots.figures import FigureRecord
    from elmoe_dse.plots.inputs import ReproduceRun, RunDir

REPORT_MD = "report.md"
REPORT_HTML = "report.html"
IMAGE_FORMAT = "png"


@dataclass(frozen=True)
class Table:
    """A table of display strings."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    note: str = ""
    fixed: str = ""  # the columns :func:`compact` dropped, as "column value; ..."


@dataclass(frozen=True)
class FigureEntry:
    name: str
    title: str
    caption: str
    source: str
    file: str
    table: Table | None = None


@dataclass(frozen=True)
class Report:
    """Everything the report shows, as display strings."""

    title: str
    facts: tuple[tuple[str, str], ...]
    config: tuple[tuple[str, str], ...]
    headline: tuple[Table, ...]  # the sweep's best designs per batch size
    figures: tuple[FigureEntry, ...]  # the key figure first
    calibration: tuple[Table, ...]
    calibration_text: str
    notes: tuple[str, ...]
    claims: tuple[str, ...] = ()  # which claims the model supports, one line each
    findings: tuple[Table, ...] = ()  # paper vs model: bands, or the targets at one draw
    detail: tuple[Table, ...] = ()  # the targets at one draw when the bands lead
    other_claims: tuple[str, ...] = ()  # claims whose verdict another assumption changes


# ----------------------------------------------------------------------------------------------
# Formatting of raw SI values
# ----------------------------------------------------------------------------------------------


def fmt(column: str, value: Any) -> str:
    """A raw value of a results column as text, in the report's fixed display units."""
    return unit_text(column, value, engineering=False)


def header(column: str) -> str:
    """A column name for a table header: no role prefix, spaces for underscores."""
    name = column.split(".", 1)[-1]
    for suffix in ("_tok_per_s", "_per_token_j", "_gb", "_frac"):
        if name.endswith(suffix):
            unit = {"_tok_per_s": "", "_per_token_j": " per token", "_gb": " (GB)", "_frac": ""}[
                suffix
            ]
            name = name[: -len(suffix)] + unit
            break
    return name.replace("_", " ")


def _plain(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_plain(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


# ----------------------------------------------------------------------------------------------
# Sections
# ----------------------------------------------------------------------------------------------


def _facts(run: RunDir) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    records: list[tuple[str, Mapping[str, Any]]] = []
    if run.sweep is not None:
        records.append((run.sweep.command, run.sweep.record))
    if run.reproduce is not None:
        records.append(("reproduce", run.reproduce.record))
    for command, rec in records:
        prefix = f"{command}: " if len(records) > 1 else ""
        out.append((f"{prefix}command", f"elmoe-dse {command}"))
        out.append(
            (
                f"{prefix}package",
                f"{rec.get('package', 'elmoe-dse')} {rec.get('version', 'not recorded')}",
            )
        )
        out.append((f"{prefix}git commit", str(rec.get("git_commit") or "not recorded")))
        for key in ("sweep_file", "seed", "storage"):
            if rec.get(key) is not None:
                out.append((f"{prefix}{key.replace('_', ' ')}", _plain(rec[key])))
        timing = rec.get("timing") or {}
        elapsed = timing.get("total_s", rec.get("elapsed_s"))
        if isinstance(elapsed, int | float):
            out.append((f"{prefix}run time", f"{elapsed:.1f} s"))
        points = rec.get("points") or {}
        if points:
            text = (
                f"{points.get('kept_points', 0):,} kept of "
                f"{points.get('grid_points', points.get('complete_trials', 0)):,}, "
                f"{points.get('pareto_points', 0):,} Pareto-optimal"
            )
            out.append((f"{prefix}design points", text))
            for reason, count in (points.get("rejected_by_reason") or {}).items():
                out.append((f"{prefix}rejected", f"{count:,}: {reason}"))
        fraction = rec.get("hypervolume_fraction_of_grid")
        if isinstance(fraction, int | float) and math.isfinite(fraction):
            out.append((f"{prefix}hypervolume vs grid", f"{fraction:.1%} (mean over studies)"))
    if run.reproduce is not None:
        out += _bands_facts(run.reproduce.folder / "bands.json", len(records) > 1)
    return out


def _bands_facts(path: Path, prefixed: bool) -> list[tuple[str, str]]:
    """The draws and time of a reproduce run's bands (its run time above is the fixed draw's)."""
    try:
        bands = json.loads(path.read_text(encoding="utf-8"))
        settings = bands["settings"]
        text = (
            f"{settings['draws']} draws per band ({settings['alt_draws']} under each other "
            f"assumption), {float(bands['elapsed_s']):.1f} s with the fixed draw"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [(f"{'reproduce: ' if prefixed else ''}bands", text)]


def _config(run: RunDir) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if run.sweep is not None:
        sweep = run.sweep.record.get("sweep") or {}
        for key in (
            "name",
            "description",
            "models",
            "platforms",
            "datasets",
            "group_by",
            "constraints",
        ):
            if key in sweep:
                out.append((key.replace("_", " "), _plain(sweep[key]) or "none"))
        for o in sweep.get("objectives", []):
            out.append(("objective", f"{o.get('direction')} {o.get('metric')}"))
        for knob, values in (sweep.get("resolved_axes") or {}).items():
            out.append((f"knob {knob}", _plain(values)))
    if run.reproduce is not None:
        systems = run.reproduce.systems
        prefix = "reproduce " if run.sweep is not None else ""
        for label, col in (
            ("models", "meta.model"),
            ("datasets", "meta.dataset"),
            ("systems", "meta.system"),
        ):
            values = list(dict.fromkeys(str(v) for v in systems[col]))
            out.append((f"{prefix}{label}", ", ".join(values)))
        batches = sorted({float(b) for b in systems["knob.batch_size"]})
        out.append((f"{prefix}batch sizes", ", ".join(f"{b:g}" for b in batches)))
        out.append(
            (
                f"{prefix}context",
                "1024 tokens; each speculative system at its fastest draft length 1..8",
            )
        )
    return out


def targets_table(reproduce: ReproduceRun) -> Table:
    """The reproduce targets: paper, model (arithmetic mean or max), geometric mean, error."""
    rows = []
    for t in reproduce.targets:
        geo = t.get("model_geomean")
        rows.append(
            (
                str(t["name"]).replace("_", " "),
                f"{float(t['paper']):.2f}x",
                f"{float(t['model']):.2f}x",
                "" if geo is None else f"{float(geo):.2f}x",
                f"{float(t['rel_error']):+.1%}",
                "fitted" if t.get("fitted") else "check",
            )
        )
    return Table(
        "ELMoE-3D (8 GB) headline numbers: paper vs model",
        ("target", "paper", "model (arith. mean / max)", "geo. mean", "rel. error", "role"),
        tuple(rows),
        "Means are arithmetic over the 4 models x 4 datasets x 4 batch sizes (the geometric mean "
        "beside it; the paper does not say which it used). 'fitted' targets are the four means "
        "calibration fits; maxima and the Elastic-SD vs EAGLE-SD comparison are checks.",
    )


def compact(table: Table, *, keep: int = 1) -> Table:
    """``table`` without the columns whose cell is the same in every row (the first ``keep``
    columns always stay); each dropped column and its value go to ``fixed``, said once above
    the table (a column empty in every row is dropped without a word). Tables of one row stay."""
    if len(table.rows) < 2:
        return table
    drop = [i for i in range(keep, len(table.columns)) if len({row[i] for row in table.rows}) == 1]
    if not drop:
        return table
    first = table.rows[0]
    said = [f"{table.columns[i]} {first[i]}".strip() for i in drop if first[i]]
    stay = [i for i in range(len(table.columns)) if i not in drop]
    return replace(
        table,
        columns=tuple(table.columns[i] for i in stay),
        rows=tuple(tuple(row[i] for i in stay) for row in table.rows),
        fixed="; ".join(x for x in (table.fixed, *said) if x),
    )


def _band(band: Mapping[str, Any] | None) -> str:
    if band is None or band.get("n", 0) == 0:
        return "n/a"
    return f"{band['p50']:.2f}x [{band['p5']:.2f}, {band['p95']:.2f}]"


def bands_table(bands: Mapping[str, Any], targets: Sequence[Mapping[str, Any]] = ()) -> Table:
    """The paper's headline numbers against the model under the selected assumptions: the
    paper's value, the model at the fixed draw (from ``targets``), the prior and posterior 90 %
    bands, P(within 10 % of the paper | prior) and the verdict of :func:`claims.classify`."""
    from elmoe_dse.claims import classify
    from elmoe_dse.explore.reproduce import PAPER_TARGETS

    label = str(bands["selected"])
    given = bands["alternatives"][label]["targets"]
    order = [n for n in PAPER_TARGETS if n in given] + [n for n in given if n not in PAPER_TARGETS]
    at_draw = {str(t["name"]): float(t["model"]) for t in targets}
    rows = []
    for name in order:
        t = given[name]
        rows.append(
            (
                name.replace("_", " "),
                f"{float(t['paper']):.2f}x",
                f"{at_draw[name]:.2f}x" if name in at_draw else "",
                _band(t.get("prior")),
                _band(t.get("posterior")),
                f"{float(t['p_within_10pct_prior']):.2f}",
                classify(t),
            )
        )
    draws = max((int((given[n].get("prior") or {}).get("n", 0)) for n in order), default=0)
    return Table(
        f"ELMoE-3D (8 GB) headline numbers: paper vs model (assumptions: {label})",
        (
            "claim",
            "paper",
            "model, one draw",
            "prior band",
            "posterior band",
            "P(within 10 % | prior)",
            "verdict",
        ),
        tuple(rows),
        f"Bands: median [5th, 95th percentile] of {draws} draws. Prior: from the literature "
        "priors alone; posterior: with the paper-informed parameters fitted to the paper's "
        "numbers. One draw: the fixed draw every per-cell table and figure uses. Means are "
        "arithmetic over the 4 models x 4 datasets x 4 batch sizes.",
    )


def _distinct_columns(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[str]:
    """``columns`` without one that repeats an earlier column's header and cells (the policy as
    set, ``knob.policy``, and as resolved, ``meta.policy``, where no point says auto)."""
    out: list[str] = []
    for c in columns:
        cells = [fmt(c, r[c]) for r in rows]
        if not any(header(o) == header(c) and [fmt(o, r[o]) for r in rows] == cells for o in out):
            out.append(c)
    return out


#: A front table's cell for a knob that does not act at that point.
NOT_ACTING = "not used"


def _designs_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    """Front points: the workload they serve (batch size, and the model, dataset and context
    where those vary: conditions, never design columns), the objectives, then the design knobs
    that vary; a knob that does not act at a point reads :data:`NOT_ACTING`."""
    from elmoe_dse.plots.pareto import CONDITIONS, ENERGY, THROUGHPUT

    fixed = ("knob.batch_size", "label", "shown", "role", THROUGHPUT, ENERGY, "designs")
    first = rows[0] if rows else {}
    conditions = [c for c in CONDITIONS if c in first]
    skip = {*fixed, *conditions, "meta.platform", "inactive"}
    extra = _distinct_columns(rows, [c for c in first if c not in skip])
    columns = (
        "B",
        *(header(c) for c in conditions),
        "front point",
        header(THROUGHPUT),
        "energy per token",
        "designs",
        *(header(c) for c in extra),
    )
    out = []
    for row in rows:
        idle = {f"knob.{n}" for n in str(row.get("inactive", "")).split(",") if n}
        out.append(
            (
                f"{float(row['knob.batch_size']):g}",
                *(fmt(c, row[c]) for c in conditions),
                str(row.get("role", row["label"])),
                fmt(THROUGHPUT, row[THROUGHPUT]),
                fmt(ENERGY, row[ENERGY]),
                str(row["designs"]),
                *(NOT_ACTING if c in idle else fmt(c, row[c]) for c in extra),
            )
        )
    note = (
        f"{NOT_ACTING}: the knob does not act at that point (e.g. the draft knobs where it "
        "decodes without speculation)."
        if any(NOT_ACTING in r for r in out)
        else ""
    )
    return compact(Table(title, columns, tuple(out), note))


#: A calibrated value this close to a bound (share of its range) is flagged.
BOUND_MARGIN_FRAC = 0.02


def at_bound(value: float, lo: float, hi: float) -> str:
    """ "at lower bound" / "at upper bound" when ``value`` is within :data:`BOUND_MARGIN_FRAC`
    of the range's width from that end, else ""."""
    width = hi - lo
    if width <= 0:
        return ""
    if value - lo <= BOUND_MARGIN_FRAC * width:
        return "at lower bound"
    if hi - value <= BOUND_MARGIN_FRAC * width:
        return "at upper bound"
    return ""


def _calibration(run: RunDir) -> tuple[list[Table], str]:
    """The calibration text and tables, once per distinct calibration (a sweep and a reproduce
    run under the same one share a single table)."""
    runs: dict[str, tuple[list[str], dict[str, Any] | None]] = {}
    if run.sweep is not None:
        cal = run.sweep.calibration
        runs.setdefault(json.dumps(cal, sort_keys=True), ([], cal))[0].append(run.sweep.command)
    if run.reproduce is not None:
        cal = run.reproduce.calibration
        runs.setdefault(json.dumps(cal, sort_keys=True), ([], cal))[0].append("reproduce")
    tables: list[Table] = []
    texts: list[str] = []
    for labels, cal in runs.values():
        label = " and ".join(labels)
        if cal is None:
            texts.append(f"{label}: none (spec defaults, the shipped spec files as they are).")
            continue
        texts.append(
            f"{label}: calibration of {cal.get('date', '?')}, seed {cal.get('seed', '?')}, "
            f"{cal.get('trials', '?')} trials, loss {float(cal.get('loss', math.nan)):.4g}; "
            "every value stays inside its declared range."
        )
        suffix = f" ({label})" if len(runs) > 1 else ""
        tables += _calibration_tables(cal, suffix)
    return tables, " ".join(texts)


def _calibration_tables(cal: Mapping[str, Any], suffix: str) -> list[Table]:
    params = cal.get("parameters") or {}
    tables = [
        compact(
            Table(
                f"Calibrated parameters{suffix}",
                ("parameter", "value", "range", ""),
                tuple(
                    (
                        k,
                        f"{float(v['value']):.4g}",
                        f"{float(v['min']):.4g} - {float(v['max']):.4g}",
                        at_bound(float(v["value"]), float(v["min"]), float(v["max"])),
                    )
                    for k, v in params.items()
                ),
                "A value at a bound of its range means the fit wanted to go further: the "
                "range, not the data, decides it.",
            )
        )
    ]
    errors = cal.get("fit_error") or {}
    if errors:
        tables.append(
            Table(
                f"Fit error of the calibrated targets{suffix}",
                ("target", "rel. error"),
                tuple((k.replace("_", " "), f"{float(v):+.1%}") for k, v in errors.items()),
            )
        )
    return tables


def _findings(run: RunDir) -> tuple[list[Table], list[str], list[Table], list[str]]:
    """The findings tables, the claims lines, the detail tables and the claims under the other
    structural assumptions of a reproduce run: with its ``bands.json`` the bands lead and the
    targets at one draw become detail; without it the targets at one draw lead."""
    from elmoe_dse.claims import claims_markdown

    if run.reproduce is None:
        return [], [], [], []
    targets = targets_table(run.reproduce)
    path = run.reproduce.folder / "bands.json"
    if not path.is_file():
        return [targets], [], [], []
    try:
        bands = json.loads(path.read_text(encoding="utf-8"))
        table = bands_table(bands, run.reproduce.targets)
        lines = [line[2:] for line in claims_markdown(bands) if line.startswith("- ")]
    except (ValueError, KeyError, TypeError):
        problem = f"bands.json in {run.reproduce.folder} cannot be read; rerun `reproduce`"
        return [targets], [problem], [], []
    # "Under <alternative>: ..." lines go to the detail; the verdicts and what moved lead.
    other = [line for line in lines if line.startswith("Under ")]
    claims = [line for line in lines if not line.startswith("Under ")]
    return [table], claims, [targets], other


#: The figure that matters most, by kind of run: a reproduce run's speedup over xPU against the
#: paper's means; else the Pareto front.
KEY_FIGURES = {"reproduce": ("speedup", "pareto"), "search": ("pareto", "speedup")}


def key_first(records: Sequence[FigureRecord], *, reproduce: bool) -> list[FigureRecord]:
    """``records`` with the figure that matters most (:data:`KEY_FIGURES`) first."""
    for name in KEY_FIGURES["reproduce" if reproduce else "search"]:
        for r in records:
            if r.name == name:
                return [r, *(x for x in records if x is not r)]
    return list(records)


def _rows_table(rows: list[dict[str, Any]], title: str) -> Table:
    """A figure's table of plain records (one dict a row), each value in its column's unit."""
    columns = list(dict.fromkeys(c for row in rows for c in row))
    out = tuple(tuple(fmt(c, row.get(c, "")) for c in columns) for row in rows)
    return compact(Table(title, tuple(header(c) for c in columns), out))


def report_data(
    run: RunDir,
    records: Sequence[FigureRecord],
    skipped: Sequence[tuple[str, str]] = (),
    *,
    image_format: str = IMAGE_FORMAT,
) -> Report:
    """The report of a loaded directory and its figure records (display strings only)."""
    headline: list[Table] = []
    figures = []
    for r in key_first(records, reproduce=run.reproduce is not None):
        table = None
        if r.table and r.family == "pareto":
            table = _designs_table(list(r.table), "Numbered front points (knobs)")
        elif r.table:  # another figure's own table (cost, devices, stacks): its rows as given
            table = _rows_table(list(r.table), "The figure's numbers")
        figures.append(
            FigureEntry(
                r.name, r.title, r.caption, r.source, f"plots/{r.name}.{image_format}", table
            )
        )
        if r.family == "pareto" and r.table:
            ends = _front_ends(r.table)
            if ends:
                title = "Best designs per batch size (ends of each Pareto front)"
                if r.name != "pareto":
                    title += f": {r.title.split('(', 1)[-1].rstrip(')')}"
                headline.append(_designs_table(ends, title))
    calibration, text = _calibration(run)
    findings, claims, detail, other = _findings(run)
    return Report(
        title=f"elmoe-dse report: {run.title}",
        facts=tuple(_facts(run)),
        config=tuple(_config(run)),
        headline=tuple(headline),
        figures=tuple(figures),
        calibration=tuple(calibration),
        calibration_text=text,
        notes=tuple(f"{family}: not drawn, {reason}." for family, reason in skipped),
        claims=tuple(claims),
        findings=tuple(findings),
        detail=tuple(detail),
        other_claims=tuple(other),
    )


def _front_ends(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The lowest-energy and the fastest labelled front point of each batch size."""
    from elmoe_dse.plots.pareto import ENERGY, THROUGHPUT

    by_batch: dict[float, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_batch.setdefault(float(row["knob.batch_size"]), []).append(row)
    out = []
    for batch in sorted(by_batch):
        group = by_batch[batch]
        fast = max(group, key=lambda r: float(r[THROUGHPUT]))
        lean = min(group, key=lambda r: float(r[ENERGY]))
        out.append({**fast, "role": f"{fast['label']}: fastest"})
        if lean is not fast:
            out.append({**lean, "role": f"{lean['label']}: least energy"})
    return out


# ----------------------------------------------------------------------------------------------
# Rendering
# ----------------------------------------------------------------------------------------------


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


NO_HEADLINE = "No headline table: the directory holds no targets and no Pareto front."
CLAIMS_TITLE = "Which claims the model supports"
OTHER_TITLE = "Verdicts under the other structural assumptions"


def _md_table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", ""] if table.title else []
    if table.fixed:
        lines += [f"_Every row: {_md_cell(table.fixed)}._", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows)
    if table.note:
        lines += ["", f"_{table.note}_"]
    return [*lines, ""]


def _md_figure(number: int, fig: FigureEntry) -> list[str]:
    lines = [
        f"### Figure {number}. {fig.title}",
        "",
        f"![{fig.title}]({fig.file})",
        "",
        f"**What to read:** {fig.caption}",
        "",
        f"_Source: {fig.source}._",
        "",
    ]
    return lines + (_md_table(fig.table) if fig.table is not None else [])


def render_markdown(report: Report) -> str:
    """The report as Markdown (findings, what was run, the other figures, the calibration);
    images are linked as ``plots/<name>.png``."""
    lines = [f"# {report.title}", "", "## Findings", ""]
    for table in report.findings:
        lines += _md_table(table)
    if report.claims:
        lines += [f"**{CLAIMS_TITLE}**", "", *(f"- {c}" for c in report.claims), ""]
    if report.figures:
        lines += _md_figure(1, report.figures[0])
    for table in report.headline:
        lines += _md_table(table)
    if not report.findings and not report.headline:
        lines += [NO_HEADLINE, ""]
    lines += ["## What was run", ""]
    lines += _md_table(Table("", ("", ""), report.facts))
    if report.config:
        lines += ["### Resolved configuration", ""]
        lines += _md_table(Table("", ("setting", "value"), report.config))
    if report.detail:
        lines += ["## The model at one draw", ""]
        for table in report.detail:
            lines += _md_table(table)
    if report.other_claims:
        lines += [f"## {OTHER_TITLE}", "", *(f"- {c}" for c in report.other_claims), ""]
    if len(report.figures) > 1:
        lines += ["## More figures", ""]
        for i, fig in enumerate(report.figures[1:], 2):
            lines += _md_figure(i, fig)
    lines += [f"- {note}" for note in report.notes]
    if report.notes:
        lines.append("")
    lines += ["## Calibration in force", "", report.calibration_text, ""]
    for table in report.calibration:
        lines += _md_table(table)
    return "\n".join(lines).rstrip() + "\n"


#: The page is at most :data:`PAGE_MAX_WIDTH_PX` wide; a table wider than that scrolls inside
#: its own box, and long cells wrap anywhere rather than widen the page.
PAGE_MAX_WIDTH_PX = 1400
_CSS = f"""
body {{ font-family: system-ui, sans-serif; max-width: {PAGE_MAX_WIDTH_PX - 64}px;
       margin: 1.5rem auto; padding: 0 1rem; color: #222; line-height: 1.4; }}
.table {{ max-width: 100%; overflow-x: auto; margin: 0.4rem 0 1rem; }}
table {{ border-collapse: collapse; font-size: 0.85rem; }}
th, td {{ border-bottom: 1px solid #ddd; padding: 0.15rem 0.5rem; text-align: left;
         vertical-align: top; overflow-wrap: anywhere; }}
td {{ max-width: 36rem; }}
th {{ background: #f4f4f4; }}
figure {{ margin: 1.2rem 0; }}
figure img {{ max-width: 100%; height: auto; border: 1px solid #eee; }}
figcaption {{ font-size: 0.9rem; }}
.source {{ color: #555; font-size: 0.85rem; font-style: italic; }}
.note, .fixed {{ color: #555; font-size: 0.85rem; margin: 0.2rem 0; }}
details summary {{ cursor: pointer; font-weight: bold; margin: 0.4rem 0; }}
"""
#: Tables longer than this fold into a <details> element (the calibration's parameters).
FOLD_ROWS = 25


def _html_table(table: Table) -> str:
    esc = html.escape
    parts = []
    if table.title and len(table.rows) <= FOLD_ROWS:
        parts.append(f"<p><strong>{esc(table.title)}</strong></p>")
    if table.fixed:
        parts.append(f"<p class='fixed'>Every row: {esc(table.fixed)}.</p>")
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    thead = f"<thead><tr>{head}</tr></thead>" if any(table.columns) else ""
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    parts.append(f"<div class='table'><table>{thead}<tbody>{body}</tbody></table></div>")
    if table.note:
        parts.append(f"<p class='note'>{esc(table.note)}</p>")
    if len(table.rows) > FOLD_ROWS:
        summary = f"{esc(table.title or 'Table')} ({len(table.rows)} rows)"
        return f"<details><summary>{summary}</summary>\n" + "\n".join(parts) + "\n</details>"
    return "\n".join(parts)


def _html_figure(number: int, fig: FigureEntry, images: Mapping[str, bytes]) -> list[str]:
    esc = html.escape
    data = base64.b64encode(images.get(fig.name, b"")).decode()
    out = [
        "<figure>",
        f"<h3>Figure {number}. {esc(fig.title)}</h3>",
        f"<img alt='{esc(fig.title)}' src='data:image/png;base64,{data}'>",
        f"<figcaption><strong>What to read:</strong> {esc(fig.caption)}"
        f"<br><span class='source'>Source: {esc(fig.source)}.</span></figcaption>",
        "</figure>",
    ]
    return out + ([_html_table(fig.table)] if fig.table is not None else [])


def render_html(report: Report, images: Mapping[str, bytes]) -> str:
    """The report as one HTML file in the order of :func:`render_markdown`; ``images`` (figure
    name -> PNG bytes) embedded as base64."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>{esc(report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
        "<h2>Findings</h2>",
    ]
    out += [_html_table(t) for t in report.findings]
    if report.claims:
        out.append(f"<p><strong>{CLAIMS_TITLE}</strong></p>")
        out.append("<ul>" + "".join(f"<li>{esc(c)}</li>" for c in report.claims) + "</ul>")
    if report.figures:
        out += _html_figure(1, report.figures[0], images)
    out += [_html_table(t) for t in report.headline]
    if not report.findings and not report.headline:
        out.append(f"<p>{NO_HEADLINE}</p>")
    out += ["<h2>What was run</h2>", _html_table(Table("", ("", ""), report.facts))]
    if report.config:
        out += [
            "<h3>Resolved configuration</h3>",
            _html_table(Table("", ("setting", "value"), report.config)),
        ]
    if report.detail:
        out += ["<h2>The model at one draw</h2>", *(_html_table(t) for t in report.detail)]
    if report.other_claims:
        out.append(f"<h2>{OTHER_TITLE}</h2>")
        out.append("<ul>" + "".join(f"<li>{esc(c)}</li>" for c in report.other_claims) + "</ul>")
    if len(report.figures) > 1:
        out.append("<h2>More figures</h2>")
        for i, fig in enumerate(report.figures[1:], 2):
            out += _html_figure(i, fig, images)
    if report.notes:
        out.append(
            "<ul class='note'>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>"
        )
    out += ["<h2>Calibration in force</h2>", f"<p>{esc(report.calibration_text)}</p>"]
    out += [_html_table(t) for t in report.calibration]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


#: The columns of the findings table that the terminal summary shows (by header), in order.
SUMMARY_COLUMNS = (
    ("claim", "paper", "prior band", "posterior band", "verdict"),
    ("target", "paper", "model (arith. mean / max)", "rel. error"),
)


def text_table(table: Table, columns: Sequence[str] = ()) -> list[str]:
    """``table`` (only ``columns`` where given, by header) as plain fixed-width lines: a header,
    a rule and one line per row, columns two spaces apart; numbers right-aligned, text and the
    first column left-aligned."""
    index = [table.columns.index(c) for c in columns if c in table.columns] or list(
        range(len(table.columns))
    )
    cells = [[table.columns[i] for i in index], *([row[i] for i in index] for row in table.rows)]
    widths = [max(len(r[j]) for r in cells) for j in range(len(index))]

    numeric = [
        j > 0 and all(r[j][:1].isdigit() or r[j][:1] in "+-" for r in cells[1:])
        for j in range(len(index))
    ]

    def line(row: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if right else c.ljust(w)
            for c, w, right in zip(row, widths, numeric, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return [line(cells[0]), "  ".join("-" * w for w in widths), *(line(r) for r in cells[1:])]


#: Without findings, the summary prints at most this many best-design tables.
SUMMARY_MAX_TABLES = 2


def summary_lines(report: Report, folder: Path) -> list[str]:
    """The few lines ``report --summary`` prints: the findings table (the headline columns) with
    a count of verdicts, or else the first best-design tables; the design points of a sweep;
    where to look."""
    out: list[str] = []
    for table in report.findings:
        columns = next((c for c in SUMMARY_COLUMNS if c[0] == table.columns[0]), ())
        out += [table.title, *text_table(table, columns)]
        if table.columns[0] == "claim":
            verdicts = Counter(row[-1] for row in table.rows)
            out.append(
                "bands: median [5th, 95th percentile]; of "
                f"{len(table.rows)} claims: "
                + ", ".join(f"{n} {verdict}" for verdict, n in verdicts.most_common())
            )
    out += [f"{key}: {value}" for key, value in report.facts if key.endswith("design points")]
    shown = [] if report.findings else list(report.headline[:SUMMARY_MAX_TABLES])
    for table in shown:
        out += [table.title, *([f"every row: {table.fixed}"] if table.fixed else [])]
        out += text_table(table)
    if len(report.headline) > len(shown):
        n = len(report.headline) - len(shown)
        out.append(
            f"{n} {'more ' if shown else ''}best-design table{'s' if n > 1 else ''}: see the report"
        )
    files = [n for n in ("results.parquet", "run.json", "reproduce/") if (folder / n).exists()]
    out += [
        f"start with {folder / REPORT_HTML} (or {REPORT_MD}): findings first, then every figure",
        f"figures: {folder / 'plots'}/; tables: {', '.join(files)} in {folder}",
    ]
    return out


def _inputs_mtime(run: RunDir) -> float:
    """The newest modification time of the files the figures are drawn from (the run's tables,
    sidecars and figure tables, not ``plots/`` or the report)."""
    folders = [r.folder for r in (run.sweep, run.reproduce) if r is not None]
    own = {REPORT_MD, REPORT_HTML}
    times = [
        p.stat().st_mtime
        for f in folders
        for p in f.iterdir()
        if p.is_file() and p.name not in own and not p.name.startswith(".")
    ]
    return max(times, default=0.0)


def figure_images(
    run: RunDir, records: Sequence[FigureRecord]
) -> tuple[dict[str, bytes], list[FigureRecord]]:
    """PNG bytes of every figure: read from ``plots/`` where ``plot`` wrote it after the run's
    files last changed, else rendered now; and the records rendered now."""
    from elmoe_dse.plots.figures import PLOTS_DIR, render

    newest = _inputs_mtime(run)
    images: dict[str, bytes] = {}
    rendered: list[FigureRecord] = []
    for r in records:
        path = run.folder / PLOTS_DIR / f"{r.name}.{IMAGE_FORMAT}"
        if path.is_file() and path.stat().st_mtime >= newest:
            images[r.name] = path.read_bytes()
        else:
            images[r.name] = render(r, IMAGE_FORMAT)
            rendered.append(r)
    return images, rendered


def write_report(folder: Path) -> list[Path]:
    """Write ``report.md`` and ``report.html`` (:func:`write_report_data`); the files written."""
    return write_report_data(folder)[0]


def write_report_data(folder: Path) -> tuple[list[Path], Report]:
    """Write ``report.md`` and ``report.html``; figures come from ``plots/*.png`` where ``plot``
    wrote them up to date, and the missing or older ones are rendered and written there too
    (nothing is written if any step before fails). The files written and the report."""
    from elmoe_dse.plots.figures import PLOTS_DIR, build_records, write_files
    from elmoe_dse.plots.inputs import load_run_dir

    run = load_run_dir(folder)
    records, skipped = build_records(run)
    images, rendered = figure_images(run, records)
    report = report_data(run, records, skipped)
    markdown = render_markdown(report)
    page = render_html(report, images)
    files: list[tuple[str, bytes]] = [
        (f"{r.name}.{IMAGE_FORMAT}", images[r.name]) for r in rendered
    ]
    for r in rendered:
        files.extend((name, text.encode()) for name, text in r.companions)
    written = write_files(folder / PLOTS_DIR, files)
    written += write_files(folder, [(REPORT_MD, markdown.encode()), (REPORT_HTML, page.encode())])
    return written, report
