"""``DIR/report.md`` and a self-contained ``DIR/report.html`` for a results directory.

The report says what was run (command, package version, git commit, the resolved configuration),
gives the headline table (a reproduce run's targets: paper, model, relative error; a sweep's best
designs per batch size), shows every figure of :mod:`elmoe_dse.plots.figures` with a caption that
says what to read from it and where its numbers come from, and states the calibration in force.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    headline: tuple[Table, ...]
    figures: tuple[FigureEntry, ...]
    calibration: tuple[Table, ...]
    calibration_text: str
    notes: tuple[str, ...]
    claims: tuple[str, ...] = ()


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
    return out


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


def _designs_table(rows: Sequence[Mapping[str, Any]], title: str) -> Table:
    from elmoe_dse.plots.pareto import ENERGY, THROUGHPUT

    fixed = ("knob.batch_size", "label", "shown", "role", THROUGHPUT, ENERGY, "designs")
    extra = [c for c in rows[0] if c not in fixed and c != "meta.platform"] if rows else []
    columns = (
        "B",
        "front point",
        header(THROUGHPUT),
        "energy per token",
        "designs",
        *(header(c) for c in extra),
    )
    out = []
    for row in rows:
        out.append(
            (
                f"{float(row['knob.batch_size']):g}",
                str(row.get("role", row["label"])),
                fmt(THROUGHPUT, row[THROUGHPUT]),
                fmt(ENERGY, row[ENERGY]),
                str(row["designs"]),
                *(fmt(c, row[c]) for c in extra),
            )
        )
    return Table(title, columns, tuple(out))


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
    tables: list[Table] = []
    texts: list[str] = []
    runs: list[tuple[str, dict[str, Any] | None]] = []
    if run.sweep is not None:
        runs.append((run.sweep.command, run.sweep.calibration))
    if run.reproduce is not None:
        runs.append(("reproduce", run.reproduce.calibration))
    for label, cal in runs:
        if cal is None:
            texts.append(f"{label}: none (spec defaults, the shipped spec files as they are).")
            continue
        texts.append(
            f"{label}: calibration of {cal.get('date', '?')}, seed {cal.get('seed', '?')}, "
            f"{cal.get('trials', '?')} trials, loss {float(cal.get('loss', math.nan)):.4g}; "
            "every value stays inside its declared range."
        )
        params = cal.get("parameters") or {}
        title = "Calibrated parameters" + (f" ({label})" if len(runs) > 1 else "")
        tables.append(
            Table(
                title,
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
        errors = cal.get("fit_error") or {}
        if errors:
            tables.append(
                Table(
                    "Fit error of the calibrated targets",
                    ("target", "rel. error"),
                    tuple((k.replace("_", " "), f"{float(v):+.1%}") for k, v in errors.items()),
                )
            )
    return tables, " ".join(texts)


def _claims(run: RunDir) -> list[str]:
    """Markdown lines classifying each paper claim (from priors, under tension, not reproduced),
    from the reproduce folder's ``bands.json``; none without it."""
    import json

    from elmoe_dse.claims import claims_markdown

    if run.reproduce is None:
        return []
    path = run.reproduce.folder / "bands.json"
    if not path.is_file():
        return []
    try:
        return claims_markdown(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError):
        return [f"(bands.json in {run.reproduce.folder} cannot be read; rerun `reproduce`)"]


def report_data(
    run: RunDir,
    records: Sequence[FigureRecord],
    skipped: Sequence[tuple[str, str]] = (),
    *,
    image_format: str = IMAGE_FORMAT,
) -> Report:
    """The report of a loaded directory and its figure records (display strings only)."""
    headline: list[Table] = []
    if run.reproduce is not None:
        headline.append(targets_table(run.reproduce))
    figures = []
    for r in records:
        table = None
        if r.table:
            table = _designs_table(list(r.table), "Numbered front points (knobs)")
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
    notes = tuple(f"{family}: not drawn, {reason}." for family, reason in skipped)
    claims = tuple(_claims(run))
    return Report(
        claims=claims,
        title=f"elmoe-dse report: {run.title}",
        facts=tuple(_facts(run)),
        config=tuple(_config(run)),
        headline=tuple(headline),
        figures=tuple(figures),
        calibration=tuple(calibration),
        calibration_text=text,
        notes=notes,
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


def _md_table(table: Table) -> list[str]:
    lines = [f"**{table.title}**", ""] if table.title else []
    lines.append("| " + " | ".join(_md_cell(c) for c in table.columns) + " |")
    lines.append("|" + "|".join("---" for _ in table.columns) + "|")
    lines.extend("| " + " | ".join(_md_cell(c) for c in row) + " |" for row in table.rows)
    if table.note:
        lines += ["", f"_{table.note}_"]
    return [*lines, ""]


def render_markdown(report: Report) -> str:
    """The report as Markdown; images are linked as ``plots/<name>.png``."""
    lines = [f"# {report.title}", "", "## What was run", ""]
    lines += _md_table(Table("", ("", ""), report.facts))
    if report.config:
        lines += ["### Resolved configuration", ""]
        lines += _md_table(Table("", ("setting", "value"), report.config))
    lines += ["## Headline", ""]
    for table in report.headline:
        lines += _md_table(table)
    if not report.headline:
        lines += ["No headline table: the directory holds no targets and no Pareto front.", ""]
    if report.claims:
        lines += ["## Which claims the model supports", "", *report.claims, ""]
    lines += ["## Figures", ""]
    for i, fig in enumerate(report.figures, 1):
        lines += [
            f"### Figure {i}. {fig.title}",
            "",
            f"![{fig.title}]({fig.file})",
            "",
            f"**What to read:** {fig.caption}",
            "",
            f"_Source: {fig.source}._",
            "",
        ]
        if fig.table is not None:
            lines += _md_table(fig.table)
    for note in report.notes:
        lines += [f"- {note}"]
    if report.notes:
        lines.append("")
    lines += ["## Calibration in force", "", report.calibration_text, ""]
    for table in report.calibration:
        lines += _md_table(table)
    return "\n".join(lines).rstrip() + "\n"


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2rem 0.6rem; text-align: left; }
th { background: #f4f4f4; }
figure { margin: 1.5rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.92rem; }
.source { color: #555; font-size: 0.85rem; font-style: italic; }
.note { color: #555; font-size: 0.85rem; }
"""


def _html_table(table: Table) -> str:
    esc = html.escape
    parts = []
    if table.title:
        parts.append(f"<p><strong>{esc(table.title)}</strong></p>")
    head = "".join(f"<th>{esc(c)}</th>" for c in table.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in table.rows
    )
    parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
    if table.note:
        parts.append(f"<p class='note'>{esc(table.note)}</p>")
    return "\n".join(parts)


def render_html(report: Report, images: Mapping[str, bytes]) -> str:
    """The report as one HTML file; ``images`` (figure name -> PNG bytes) embedded as base64."""
    esc = html.escape
    out = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{esc(report.title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{esc(report.title)}</h1>",
        "<h2>What was run</h2>",
        _html_table(Table("", ("", ""), report.facts)),
    ]
    if report.config:
        out += [
            "<h3>Resolved configuration</h3>",
            _html_table(Table("", ("setting", "value"), report.config)),
        ]
    out.append("<h2>Headline</h2>")
    out += [_html_table(t) for t in report.headline] or [
        "<p>No headline table: the directory holds no targets and no Pareto front.</p>"
    ]
    if report.claims:
        out.append("<h2>Which claims the model supports</h2>")
        out += [f"<p>{esc(line)}</p>" for line in report.claims if line.strip()]
    out.append("<h2>Figures</h2>")
    for i, fig in enumerate(report.figures, 1):
        data = base64.b64encode(images.get(fig.name, b"")).decode()
        out += [
            "<figure>",
            f"<h3>Figure {i}. {esc(fig.title)}</h3>",
            f"<img alt='{esc(fig.title)}' src='data:image/png;base64,{data}'>",
            f"<figcaption><strong>What to read:</strong> {esc(fig.caption)}"
            f"<br><span class='source'>Source: {esc(fig.source)}.</span></figcaption>",
            "</figure>",
        ]
        if fig.table is not None:
            out.append(_html_table(fig.table))
    if report.notes:
        out.append(
            "<ul class='note'>" + "".join(f"<li>{esc(n)}</li>" for n in report.notes) + "</ul>"
        )
    out += ["<h2>Calibration in force</h2>", f"<p>{esc(report.calibration_text)}</p>"]
    out += [_html_table(t) for t in report.calibration]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


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
    """Write ``report.md`` and ``report.html``; figures come from ``plots/*.png`` where ``plot``
    wrote them up to date, and the missing or older ones are rendered and written there too
    (nothing is written if any step before fails)."""
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
    return written
