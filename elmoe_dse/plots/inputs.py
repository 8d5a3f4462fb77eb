"""Reading a results directory for plots and reports, with one-line errors naming what is missing.

A directory ``DIR`` holds one or both of:

- a **sweep** or **optimize** run: ``DIR/results.parquet`` (one row per design point) and
  ``DIR/run.json`` whose ``command`` is ``sweep`` or ``optimize``;
- a **design** sweep (a sweep file with ``[design]``): ``DIR/results.parquet`` with one row per
  hardware design, ``run.json`` with ``mode = "design"`` (:class:`DesignTables`);
- a **reproduce** run: ``DIR/reproduce/`` (what ``elmoe-dse reproduce --out DIR`` writes:
  ``systems.parquet``, ``cells.csv``, ``run.json``), or ``DIR`` itself when it is that folder.

Columns each figure needs are checked by :meth:`SweepRun.require` / :meth:`ReproduceRun.require`
before anything is drawn, so an older or hand-edited directory fails with the file, the missing
columns and the command that rewrites it.

What the run's table does not hold (baselines, rooflines, sensitivities ...) is read from the
figure tables beside it (``figure_*.parquet`` and ``figures.json``, written by the run's command
or by ``elmoe-dse analyze DIR``; :mod:`elmoe_dse.explore.figure_tables`) by :meth:`SweepRun.table`
/ :meth:`ReproduceRun.table`: a missing one makes the figure :class:`NotApplicable`, with the
command that writes it. Nothing here loads a spec or runs the model.

Before anything is read, the run's files are checked to belong together (its ``manifest.json``,
:func:`elmoe_dse.results.verify_run`) and the model, platform and dataset files it read to be
unchanged (:func:`elmoe_dse.results.check_inputs`); a figure table the manifest does not list
(left from another run) counts as absent. The results table is read with only the columns the
figures use.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elmoe_dse.columns import DRAFT_LENGTH_TOKENS
from elmoe_dse.errors import ElmoeError
from elmoe_dse.results import (
    FIGURES_FILE,
    REPRODUCE_DIR,
    RESULTS_FILE,
    RUN_FILE,
    SYSTEMS_FILE,
    check_inputs,
    read_manifest,
    verify_run,
)

if TYPE_CHECKING:
    import pandas as pd


#: Columns every sweep/optimize table must have for any figure.
SWEEP_COLUMNS = (
    "meta.model",
    "meta.platform",
    "meta.dataset",
    "meta.policy",
    "knob.batch_size",
    "metric.throughput_tok_per_s",
    "metric.energy_per_token_j",
)
#: Columns every reproduce systems table must have for any figure.
SYSTEMS_COLUMNS = (
    "meta.model",
    "meta.dataset",
    "meta.system",
    "meta.platform",
    "meta.policy",
    "knob.batch_size",
    "metric.throughput_tok_per_s",
    "metric.energy_per_token_j",
    DRAFT_LENGTH_TOKENS,
)


class PlotInputError(ElmoeError):
    """A results directory lacks a file, a column or a field a figure or the report needs."""


class NotApplicable(Exception):
    """A figure family does not apply to this directory (the reason says why)."""


def _figures_info(folder: Path) -> dict[str, Any]:
    """``folder/figures.json`` (what the figure tables were computed with), {} if absent."""
    path = folder / FIGURES_FILE
    return _read_json(path) if path.exists() else {}


def figure_table(folder: Path, command: str, name: str, need: str) -> pd.DataFrame:
    """The figure table ``name`` of the run in ``folder``; :class:`NotApplicable` naming the
    command that writes it (and why it was not written, if ``figures.json`` says) if absent."""
    path = folder / name
    if path.exists() and _listed(folder, name):
        return _read_table(path)
    why = _figures_info(folder).get("skipped", {})
    reason = why.get(need) or why.get("all")
    if reason:
        raise NotApplicable(f"{path.name} was not computed: {reason}")
    raise NotApplicable(
        f"needs {path.name}, which `elmoe-dse {command}` writes; run `elmoe-dse analyze "
        f"{folder}` to compute it for this folder"
    )


def _listed(folder: Path, name: str) -> bool:
    """Whether ``name`` belongs to the run in ``folder`` (any file, for a folder without a
    manifest)."""
    files = read_manifest(folder)
    return files is None or name in files


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise PlotInputError(f"{path}: file not found") from None
    except (OSError, ValueError) as err:
        raise PlotInputError(f"{path}: cannot read it as JSON ({err})") from None
    if not isinstance(data, dict):
        raise PlotInputError(f"{path}: expected a JSON object; re-run the command that wrote it")
    return data


def _read_table(path: Path, columns: Iterable[str] | None = None) -> pd.DataFrame:
    """A Parquet or CSV table (only ``columns`` of a Parquet file, those it has, if given)."""
    import pandas as pd
    import pyarrow as pa

    try:
        if path.suffix == ".parquet":
            if columns is None:
                return pd.read_parquet(path)
            import pyarrow.parquet as pq

            names = set(pq.read_schema(path).names)
            return pd.read_parquet(path, columns=[c for c in columns if c in names])
        return pd.read_csv(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        raise unreadable(path, err) from None


def unreadable(path: Path, err: Exception) -> PlotInputError:
    """The one-line error for a table that is missing or cannot be read."""
    if isinstance(err, FileNotFoundError):
        return PlotInputError(f"{path}: file not found")
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return PlotInputError(
        f"{path}: cannot read the table ({first}); re-run the command that wrote it"
    )


#: Metric columns of a results table the figures read (besides every ``knob.*`` and ``meta.*``).
FIGURE_METRICS = re.compile(
    r"^metric\.(throughput_tok_per_s|energy_per_token_j|tokens_per_step|draft_length_tokens"
    r"|time_per_step_s|device_link_time_per_step_s|energy_[a-z0-9_]+_per_step_j)$"
)


def figure_columns(path: Path) -> list[str]:
    """The columns of the results table at ``path`` the figures read: ``knob.*``, ``meta.*``
    and :data:`FIGURE_METRICS` (a 49-column table is read as about 30)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
    except (OSError, ValueError, pa.ArrowException) as err:
        raise unreadable(path, err) from None
    return [n for n in names if n.startswith(("knob.", "meta.")) or FIGURE_METRICS.match(n)]


def best_row(frame: pd.DataFrame, column: str, *, largest: bool = True) -> pd.Series:
    """The row with the largest (or smallest) finite value of ``column`` (first on ties)."""
    import numpy as np

    values = frame[column].to_numpy(dtype=float)
    i = int(np.nanargmax(values) if largest else np.nanargmin(values))
    return frame.iloc[i]


def _missing(frame: pd.DataFrame, columns: Iterable[str]) -> list[str]:
    return [c for c in columns if c not in frame.columns]


@dataclass(frozen=True)
class SweepRun:
    """A sweep or optimize run: its table and its sidecar."""

    folder: Path
    frame: pd.DataFrame
    record: dict[str, Any]

    @property
    def command(self) -> str:
        return str(self.record.get("command", "sweep"))

    @property
    def name(self) -> str:
        sweep = self.record.get("sweep") or {}
        return str(sweep.get("name") or self.folder.name)

    @property
    def calibration(self) -> dict[str, Any] | None:
        """The calibration the run applied, if its sidecar records one (else spec defaults)."""
        cal = self.record.get("calibration")
        return cal if isinstance(cal, dict) else None

    @property
    def info(self) -> dict[str, Any]:
        """The figure tables' sidecar (``figures.json``), {} if absent."""
        return _figures_info(self.folder)

    def table(self, name: str, need: str) -> pd.DataFrame:
        """A figure table of this run (:func:`figure_table`)."""
        return figure_table(self.folder, self.command, name, need)

    @property
    def group_by(self) -> tuple[str, ...]:
        """Result columns of the sweep's Pareto groups (``knob.batch_size`` at least)."""
        from elmoe_dse.specs.sweep import axis_column

        sweep = self.record.get("sweep") or {}
        cols = [axis_column(str(a)) for a in sweep.get("group_by", ["batch_size"])]
        return tuple(c for c in cols if c in self.frame.columns)

    def require(self, columns: Iterable[str], figure: str) -> None:
        """Raise a one-line error naming the columns of ``columns`` the table lacks."""
        missing = _missing(self.frame, columns)
        if missing:
            raise PlotInputError(
                f"{self.folder / RESULTS_FILE}: lacks column(s) {', '.join(missing)} that "
                f"'{figure}' needs (written by an older elmoe-dse?); re-run `elmoe-dse "
                f"{self.command}` to rewrite it"
            )

    def require_record(self, key: str, figure: str) -> Any:
        """The sidecar field ``key``; a one-line error if it is absent."""
        if key not in self.record or self.record[key] is None:
            raise PlotInputError(
                f"{self.folder / RUN_FILE}: lacks '{key}' that '{figure}' needs (written by an "
                f"older elmoe-dse?); re-run `elmoe-dse {self.command}` to rewrite it"
            )
        return self.record[key]


@dataclass(frozen=True)
class ReproduceRun:
    """A reproduce run: per-system rows, per-cell ratios and the sidecar (targets, calibration)."""

    folder: Path
    systems: pd.DataFrame
    record: dict[str, Any]

    command = "reproduce"

    @property
    def calibration(self) -> dict[str, Any] | None:
        cal = self.record.get("calibration")
        return cal if isinstance(cal, dict) else None

    @property
    def info(self) -> dict[str, Any]:
        """The figure tables' sidecar (``figures.json``), {} if absent."""
        return _figures_info(self.folder)

    def table(self, name: str, need: str) -> pd.DataFrame:
        """A figure table of this run (:func:`figure_table`)."""
        return figure_table(self.folder, self.command, name, need)

    @property
    def targets(self) -> list[dict[str, Any]]:
        targets = self.record.get("targets")
        if not isinstance(targets, list) or not all(isinstance(t, dict) for t in targets):
            raise PlotInputError(
                f"{self.folder / RUN_FILE}: lacks the 'targets' list (written by an older "
                "elmoe-dse?); re-run `elmoe-dse reproduce`"
            )
        for t in targets:
            missing = [k for k in ("name", "paper", "model", "rel_error") if k not in t]
            if missing:
                raise PlotInputError(
                    f"{self.folder / RUN_FILE}: a target lacks {', '.join(missing)}; re-run "
                    "`elmoe-dse reproduce`"
                )
        return targets

    def require(self, columns: Iterable[str], figure: str) -> None:
        missing = _missing(self.systems, columns)
        if missing:
            raise PlotInputError(
                f"{self.folder / SYSTEMS_FILE}: lacks column(s) {', '.join(missing)} that "
                f"'{figure}' needs (written by an older elmoe-dse?); re-run `elmoe-dse "
                "reproduce` to rewrite it"
            )


#: Columns a design sweep's table (one row per hardware design) must have for its figure.
DESIGN_COLUMNS = (
    "meta.platform",
    "meta.pareto",
    "metric.throughput_tok_per_s",
    "metric.energy_per_token_j",
    "metric.cost_usd",
    "metric.logic_area_mm2",
    "metric.static_power_w",
)


@dataclass(frozen=True)
class DesignTables:
    """A design sweep (a sweep file with ``[design]``): one row per hardware design and group,
    metrics aggregated over the conditions it serves, and its sidecar."""

    folder: Path
    designs: pd.DataFrame
    record: dict[str, Any]

    @property
    def name(self) -> str:
        sweep = self.record.get("sweep") or {}
        return str(sweep.get("name") or self.folder.name)

    @property
    def axes(self) -> dict[str, list[str]]:
        """Result columns by role (``groups``, ``design``, ``conditions``, ``runtime``)."""
        axes = self.record.get("design_axes") or {}
        return {k: [str(c) for c in axes.get(k) or []] for k in ("groups", "design", "conditions")}

    @property
    def design_section(self) -> dict[str, Any]:
        sweep = self.record.get("sweep") or {}
        design = sweep.get("design")
        return design if isinstance(design, dict) else {}


@dataclass(frozen=True)
class RunDir:
    """What a results directory holds; at least one of ``sweep``, ``reproduce`` and ``design``
    (a design sweep is not a ``sweep`` here: its rows are designs, not design points)."""

    folder: Path
    sweep: SweepRun | None
    reproduce: ReproduceRun | None
    design: DesignTables | None = None

    @property
    def kinds(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.sweep is not None:
            out.append(self.sweep.command)
        if self.design is not None:
            out.append("design sweep")
        if self.reproduce is not None:
            out.append("reproduce")
        return tuple(out)

    @property
    def title(self) -> str:
        if self.sweep is not None:
            return f"{self.sweep.command} '{self.sweep.name}'"
        if self.design is not None:
            return f"design sweep '{self.design.name}'"
        return "reproduce (ELMoE-3D paper grid)"


def _check_run(folder: Path, record: dict[str, Any], table: str) -> None:
    """The run's files belong together (its manifest), the fields the figures read have their
    types, and the spec files it read are unchanged; one line otherwise."""
    try:
        verify_run(folder, required=(RUN_FILE, table))
        check_inputs(folder, record, missing_ok=True)
    except ElmoeError as err:
        raise PlotInputError(str(err)) from None
    expected = {"sweep": dict, "calibration": dict, "targets": list, "points": dict}
    for key, kind in expected.items():
        if record.get(key) is not None and not isinstance(record[key], kind):
            raise PlotInputError(
                f"{folder / RUN_FILE}: '{key}' is a {type(record[key]).__name__}, not a "
                f"{'table' if kind is dict else 'list'} (edited by hand?); re-run "
                f"`elmoe-dse {record.get('command')}` to rewrite it"
            )
    sweep = record.get("sweep") or {}
    for key in ("group_by", "objectives", "models", "platforms", "datasets"):
        if sweep.get(key) is not None and not isinstance(sweep[key], list):
            raise PlotInputError(
                f"{folder / RUN_FILE}: 'sweep.{key}' is not a list (edited by hand?); re-run "
                f"`elmoe-dse {record.get('command')}` to rewrite it"
            )


def _read_results(path: Path, record: dict[str, Any]) -> pd.DataFrame:
    """The figure columns of a results table; above :data:`~elmoe_dse.plots.reduce.
    FULL_READ_ROWS` rows only the rows a figure can show (:mod:`elmoe_dse.plots.reduce`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from elmoe_dse.plots.pareto import CONDITIONS, THIN_CELLS
    from elmoe_dse.plots.reduce import FULL_READ_ROWS, reduced_results
    from elmoe_dse.specs.sweep import axis_column

    columns = figure_columns(path)
    try:
        rows = pq.read_metadata(path).num_rows
        if rows <= FULL_READ_ROWS:
            return _read_table(path, columns)
        sweep = record.get("sweep") or {}
        groups = [axis_column(str(a)) for a in sweep.get("group_by", ["batch_size"])]
        groups += [c for c in CONDITIONS if c in columns and c not in groups]  # fronts per workload
        return reduced_results(path, columns, groups, cells=THIN_CELLS)
    except (OSError, ValueError, KeyError, pa.ArrowException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PlotInputError(
            f"{path}: cannot read the table ({first}); re-run the command that wrote it"
        ) from None


def _load_sweep(folder: Path, record: dict[str, Any]) -> SweepRun:
    _check_run(folder, record, RESULTS_FILE)
    frame = _read_results(folder / RESULTS_FILE, record)
    run = SweepRun(folder, frame, record)
    run.require(SWEEP_COLUMNS, "any figure")
    if frame.empty:
        raise PlotInputError(
            f"{folder / RESULTS_FILE}: holds no design points (every point was rejected; see "
            f"'points' in {RUN_FILE}); relax the sweep's constraints or ranges"
        )
    return run


def _load_design(folder: Path, record: dict[str, Any]) -> DesignTables:
    _check_run(folder, record, RESULTS_FILE)
    run = DesignTables(folder, _read_table(folder / RESULTS_FILE), record)
    missing = _missing(run.designs, DESIGN_COLUMNS)
    if missing:
        raise PlotInputError(
            f"{folder / RESULTS_FILE}: lacks column(s) {', '.join(missing)} that the design "
            "figures need (written by an older elmoe-dse?); re-run `elmoe-dse sweep` to rewrite it"
        )
    if run.designs.empty:
        raise PlotInputError(
            f"{folder / RESULTS_FILE}: holds no design (every one was dropped; see 'points' in "
            f"{RUN_FILE}); relax the sweep's constraints or ranges"
        )
    return run


def _load_reproduce(folder: Path, record: dict[str, Any]) -> ReproduceRun:
    systems_path = folder / SYSTEMS_FILE
    if not systems_path.exists():
        raise PlotInputError(
            f"{systems_path}: file not found (written by an older elmoe-dse?); re-run "
            "`elmoe-dse reproduce`"
        )
    _check_run(folder, record, SYSTEMS_FILE)
    run = ReproduceRun(folder, _read_table(systems_path), record)
    run.require(SYSTEMS_COLUMNS, "any figure")
    if run.systems.empty or "xpu" not in set(run.systems["meta.system"].astype(str)):
        raise PlotInputError(
            f"{systems_path}: holds no rows of the reference system 'xpu'; re-run "
            "`elmoe-dse reproduce`"
        )
    return run


def load_run_dir(folder: Path) -> RunDir:
    """Find and load the runs in ``folder`` (see the module docstring); check the base columns."""
    if not folder.is_dir():
        raise PlotInputError(
            f"{folder}: no such directory; pass a sweep, optimize or reproduce output directory"
        )
    sweep: SweepRun | None = None
    reproduce: ReproduceRun | None = None
    design: DesignTables | None = None
    run_json = folder / RUN_FILE
    if run_json.exists():
        record = _read_json(run_json)
        command = record.get("command")
        if command == "reproduce":
            reproduce = _load_reproduce(folder, record)
        elif command in ("sweep", "optimize") and record.get("mode") == "design":
            design = _load_design(folder, record)
        elif command in ("sweep", "optimize"):
            sweep = _load_sweep(folder, record)
        else:
            raise PlotInputError(
                f"{run_json}: 'command' is {command!r}; plots are drawn from sweep, optimize or "
                "reproduce outputs (re-run one of those commands)"
            )
    sub = folder / REPRODUCE_DIR / RUN_FILE
    if reproduce is None and sub.exists():
        record = _read_json(sub)
        reproduce = _load_reproduce(sub.parent, record)
    if sweep is None and reproduce is None and design is None:
        if (folder / RESULTS_FILE).exists():
            raise PlotInputError(
                f"{run_json}: file not found beside {RESULTS_FILE}; re-run the "
                "sweep (its run.json says how the table was made)"
            )
        runs = sorted(p.parent.name for p in folder.glob(f"*/{RUN_FILE}"))
        hint = f"; it holds runs in {', '.join(runs)}: pass one of them" if runs else ""
        raise PlotInputError(
            f"{folder}: no results found (expected {RUN_FILE} with {RESULTS_FILE}, or "
            f"{REPRODUCE_DIR}/{RUN_FILE}){hint}"
        )
    return RunDir(folder, sweep, reproduce, design)
