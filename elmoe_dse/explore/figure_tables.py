"""What the figures draw, computed with the evaluator when a run is written, as tidy tables
beside its results.

``sweep``, ``optimize`` and ``reproduce`` call :func:`write_figure_tables` on the folder they just
wrote; ``elmoe-dse analyze DIR`` calls :func:`analyze_directory` to (re)compute the tables of an
existing folder. The specs are the run's own, read from its ``run.json``: the sweep file's model,
platform and dataset references (shipped names or a user's file paths) and the calibration it
applied (a reproduce run: the paper's shipped specs and its calibration), loaded through the one
path that builds calibrated specs (:func:`elmoe_dse.scenario.build_scenario`). ``plot`` and
``report`` only read what is written here.

Tables (file names in :mod:`elmoe_dse.results`; columns in :mod:`elmoe_dse.columns` and
:mod:`elmoe_dse.explore.figure_columns`; SI; rows in drawing order):

- ``figure_baselines.parquet`` (sweep, optimize): the paper's baselines (xPU, PIM, Logic-PIM,
  NMP, HB-xPU) at every workload x batch size of the run, each at its fastest draft length;
- ``figure_energy.parquet``: every step metric (energy by component ...) of the bars the run's
  table lacks: the baselines at the fastest design's workload per batch size (sweep), every
  system at the smallest and largest batch size on one dataset (reproduce);
- ``figure_roofline_points.parquet`` and ``figure_roofline_roofs.parquet``: operators at their
  arithmetic intensity and the roofs, per platform (:mod:`elmoe_dse.explore.figure_steps`);
- ``figure_acceptance.parquet``, ``figure_hit_rate.parquet``, ``figure_draft_length.parquet``:
  knob sensitivities on small dedicated grids (:mod:`elmoe_dse.explore.figure_steps`).

``figures.json`` records who computed them, with which calibration, the orders and reference
values the figures use, and why a table was not computed (a spec that cannot be loaded).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import (
    DATASET,
    DRAFT_LENGTH_TOKENS,
    ENERGY_PER_TOKEN_J,
    METRIC,
    MODEL,
    PLATFORM,
    POLICY,
    SYSTEM,
    THROUGHPUT_TOK_PER_S,
)
from elmoe_dse.errors import ElmoeError
from elmoe_dse.explore.figure_columns import FASTEST_KEYS
from elmoe_dse.explore.figure_steps import (
    BATCH_SIZE_COLUMN,
    CONTEXT_LEN_COLUMN,
    Build,
    Context,
    Specs,
    best_row,
    evaluate_at,
)
from elmoe_dse.explore.reproduce import (
    PAPER_CONTEXT,
    PAPER_MODELS,
    PAPER_TARGETS,
    PRIOR,
    SPECULATIVE,
    SYSTEMS,
    best_over_gamma,
)
from elmoe_dse.results import (
    FIGURE_BASELINES_FILE,
    FIGURE_ENERGY_FILE,
    FIGURES_FILE,
    REPRODUCE_DIR,
    RESULTS_FILE,
    RUN_FILE,
    SYSTEMS_FILE,
)

if TYPE_CHECKING:
    import pandas as pd

    from elmoe_dse.scenario import Scenario

#: The baselines of the paper, (system, platform, policy), as ``reproduce`` evaluates them.
BASELINES: tuple[tuple[str, str, str], ...] = tuple(s for s in SYSTEMS if s[0] in ("xpu", *PRIOR))
#: Draft lengths a speculative baseline is evaluated at (it runs at its fastest one).
GAMMAS = tuple(range(1, 9))
#: Workloads (model x dataset x context) the baselines of a sweep are evaluated at.
MAX_BASELINE_WORKLOADS = 32
#: The ELMoE-3D platform of the sensitivity figures when the run has none with a mode switch.
DEFAULT_ELMOE = "elmoe3d-8g"


class FigureTableError(ElmoeError):
    """A folder holds no run whose figure tables can be computed."""


def specs_of(record: Mapping[str, Any]) -> Specs:
    """The specs a ``run.json`` records: its sweep's references (none for reproduce: the paper's
    shipped specs) and its calibration."""
    from elmoe_dse.calibration import Calibration
    from elmoe_dse.explore.sweep import scenario_id

    cal = record.get("calibration")
    specs = Specs(Calibration.model_validate(cal) if isinstance(cal, dict) else None)
    sweep = record.get("sweep") or {}
    for axis, key in (("model", "models"), ("platform", "platforms"), ("dataset", "datasets")):
        for ref in sweep.get(key) or []:
            specs.refs[(axis, scenario_id(axis, str(ref)))] = str(ref)
    return specs


# ----------------------------------------------------------------------------------------------
# The scenarios a run's figures use
# ----------------------------------------------------------------------------------------------


def model_order(models: Iterable[str]) -> list[str]:
    """The paper's models in the paper's order, then any others sorted."""
    present = set(models)
    return [m for m in PAPER_MODELS if m in present] + sorted(present - set(PAPER_MODELS))


def _elmoe_platform(platforms: Sequence[str], specs: Specs) -> str:
    from elmoe_dse.platforms import get, load_platform
    from elmoe_dse.policies import POLICIES

    for name in platforms:
        try:
            family = load_platform(specs.ref("platform", name)).family
            if POLICIES[get(family).default_policy].mode_switch:
                return name
        except ElmoeError:  # a platform file that moved: fall back to the shipped 8 GB
            continue
    return DEFAULT_ELMOE


def _dataset(frame: pd.DataFrame) -> str:
    datasets = sorted(str(d) for d in frame[DATASET].unique())
    return "mt-bench" if "mt-bench" in datasets else datasets[0]


def sweep_context(frame: pd.DataFrame, record: Mapping[str, Any], specs: Specs) -> Context:
    """The sweep's (or optimize's) scenarios, with the specs and calibration it used."""
    ctx = (
        float(frame[CONTEXT_LEN_COLUMN].iloc[0])
        if CONTEXT_LEN_COLUMN in frame.columns
        else float(PAPER_CONTEXT)
    )
    command = str(record.get("command", "sweep"))
    return Context(
        models=tuple(model_order(str(m) for m in frame[MODEL].unique())),
        dataset=_dataset(frame),
        elmoe_platform=_elmoe_platform([str(p) for p in frame[PLATFORM].unique()], specs),
        batches=tuple(sorted(float(b) for b in frame[BATCH_SIZE_COLUMN].unique())),
        context_len=ctx,
        origin=(
            f"the {command}'s calibration"
            if specs.calibration is not None
            else f"the specs as the {command} evaluated them (no calibration)"
        ),
    )


def reproduce_context(systems: pd.DataFrame, specs: Specs) -> Context:
    """The reproduce run's scenarios: the paper's grid with the run's calibration."""
    return Context(
        models=tuple(model_order(str(m) for m in systems[MODEL].unique())),
        dataset=_dataset(systems),
        elmoe_platform=DEFAULT_ELMOE,
        batches=tuple(sorted(float(b) for b in systems[BATCH_SIZE_COLUMN].unique())),
        context_len=float(PAPER_CONTEXT),
        origin=(
            "the reproduce run's calibration"
            if specs.calibration is not None
            else "the spec defaults (the reproduce run applied no calibration)"
        ),
    )


# ----------------------------------------------------------------------------------------------
# Baselines and energy
# ----------------------------------------------------------------------------------------------


def workloads(frame: pd.DataFrame) -> list[tuple[str, str, float]]:
    """Distinct (model, dataset, context length) of a results table, sorted."""
    if CONTEXT_LEN_COLUMN in frame.columns:
        ctx = frame[CONTEXT_LEN_COLUMN].to_numpy(dtype=float)
    else:
        ctx = np.full(len(frame), np.nan)
    found = {
        (str(m), str(d), float(c))
        for m, d, c in zip(frame[MODEL], frame[DATASET], ctx, strict=True)
    }
    return sorted(found)


def system_rows(
    specs: Specs,
    systems: Iterable[tuple[str, str, str]],
    combos: Iterable[tuple[str, str, float]],
    batches: Iterable[float],
) -> list[dict[str, Any]]:
    """Rows like ``reproduce``'s systems table: every (system, platform, policy) at every
    (model, dataset, context length) and batch size; a speculative system at its fastest draft
    length in 1..8."""
    from elmoe_dse.policies import is_speculative

    b = np.asarray(sorted(set(batches)), dtype=float)
    rows: list[dict[str, Any]] = []
    for model, dataset, context in combos:
        for system, platform, policy in systems:
            sc = specs.scenario(model, platform, dataset)
            speculative = system in SPECULATIVE or is_speculative(policy)
            gamma: Any = np.asarray(GAMMAS, dtype=float)[None, :] if speculative else 0.0
            knobs = sc.knobs(
                policy=policy, batch_size=b[:, None], context_len=context, draft_length=gamma
            )
            best = best_over_gamma(evaluate_at(sc, knobs))
            for i, batch in enumerate(b):
                rows.append(
                    {
                        MODEL: model,
                        DATASET: dataset,
                        SYSTEM: system,
                        PLATFORM: platform,
                        POLICY: policy,
                        BATCH_SIZE_COLUMN: float(batch),
                        CONTEXT_LEN_COLUMN: float(context),
                        THROUGHPUT_TOK_PER_S: float(best[THROUGHPUT_TOK_PER_S][i]),
                        ENERGY_PER_TOKEN_J: float(best[ENERGY_PER_TOKEN_J][i]),
                        DRAFT_LENGTH_TOKENS: float(best[DRAFT_LENGTH_TOKENS][i]),
                    }
                )
    return rows


def baselines_table(specs: Specs, frame: pd.DataFrame) -> pd.DataFrame:
    """The baselines at the run's workloads (the first :data:`MAX_BASELINE_WORKLOADS`) and every
    batch size."""
    import pandas as pd

    combos = workloads(frame)[:MAX_BASELINE_WORKLOADS]
    batches = sorted(float(b) for b in frame[BATCH_SIZE_COLUMN].unique())
    return pd.DataFrame(system_rows(specs, BASELINES, combos, batches))


def step_metrics(sc: Scenario, **knobs: Any) -> dict[str, Any]:
    """Every ``metric.*`` column of one evaluated point (``results.step_columns``)."""
    from elmoe_dse.results import step_columns

    cols = step_columns(evaluate_at(sc, sc.knobs(**knobs)))
    return {k: np.asarray(v).item() for k, v in cols.items() if k.startswith(METRIC)}


def _num(value: Any) -> float:
    return float(value)


def sweep_energy_table(specs: Specs, frame: pd.DataFrame) -> pd.DataFrame:
    """Per batch size, every baseline at the fastest design's workload (plain decoding)."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    for batch, group in frame.groupby(BATCH_SIZE_COLUMN, sort=True, observed=True):
        fast = best_row(group, THROUGHPUT_TOK_PER_S)
        model, dataset = str(fast[MODEL]), str(fast[DATASET])
        context = _num(fast[CONTEXT_LEN_COLUMN]) if CONTEXT_LEN_COLUMN in fast else 1024.0
        for system, platform, policy in BASELINES:
            sc = specs.scenario(model, platform, dataset)
            metrics = step_metrics(
                sc, policy=policy, batch_size=_num(batch), context_len=context, draft_length=0.0
            )
            rows.append(
                {
                    MODEL: model,
                    DATASET: dataset,
                    SYSTEM: system,
                    PLATFORM: platform,
                    POLICY: policy,
                    BATCH_SIZE_COLUMN: _num(batch),
                    CONTEXT_LEN_COLUMN: context,
                    **metrics,
                }
            )
    return pd.DataFrame(rows)


def reproduce_energy_table(specs: Specs, systems: pd.DataFrame, ctx: Context) -> pd.DataFrame:
    """Every system of a reproduce table on the context's dataset at its smallest and largest
    batch size, evaluated at the draft length it ran at."""
    import pandas as pd

    sel = systems[(systems[DATASET] == ctx.dataset) & systems[BATCH_SIZE_COLUMN].isin(ctx.ends)]
    rows: list[dict[str, Any]] = []
    for _, r in sel.iterrows():
        sc = specs.scenario(str(r[MODEL]), str(r[PLATFORM]), ctx.dataset)
        metrics = step_metrics(
            sc,
            policy=str(r[POLICY]),
            batch_size=float(r[BATCH_SIZE_COLUMN]),
            context_len=ctx.context_len,
            draft_length=float(r[DRAFT_LENGTH_TOKENS]),
        )
        keys = {c: r[c] for c in (MODEL, DATASET, SYSTEM, PLATFORM, POLICY)}
        rows.append(
            {
                **{c: str(v) for c, v in keys.items()},
                BATCH_SIZE_COLUMN: float(r[BATCH_SIZE_COLUMN]),
                CONTEXT_LEN_COLUMN: ctx.context_len,
                **metrics,
            }
        )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# Writing
# ----------------------------------------------------------------------------------------------


def sweep_builds(specs: Specs, frame: pd.DataFrame, ctx: Context) -> dict[str, Build]:
    """What a sweep's or optimize's figures need, by name, each as a deferred computation."""
    from elmoe_dse.explore import figure_steps as steps

    return {
        "baselines": lambda: {FIGURE_BASELINES_FILE: baselines_table(specs, frame)},
        "energy": lambda: {FIGURE_ENERGY_FILE: sweep_energy_table(specs, frame)},
        "roofline": lambda: steps.sweep_roofline_tables(specs, frame),
        **steps.sensitivity_builds(specs, ctx),
    }


def reproduce_builds(specs: Specs, systems: pd.DataFrame, ctx: Context) -> dict[str, Build]:
    """What a reproduce run's figures need (its systems table holds the baselines)."""
    from elmoe_dse.explore import figure_steps as steps

    return {
        "energy": lambda: {FIGURE_ENERGY_FILE: reproduce_energy_table(specs, systems, ctx)},
        "roofline": lambda: steps.reproduce_roofline_tables(specs, systems, ctx),
        **steps.sensitivity_builds(specs, ctx),
    }


def _read_record(folder: Path) -> dict[str, Any]:
    import json

    path = folder / RUN_FILE
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise FigureTableError(
            f"{path}: file not found; pass a sweep, optimize or reproduce output directory"
        ) from None
    except (OSError, ValueError) as err:
        raise FigureTableError(f"{path}: cannot read it as JSON ({err})") from None
    if not isinstance(record, dict) or record.get("command") not in SOURCES:
        raise FigureTableError(
            f"{path}: not a sweep, optimize or reproduce run; figure tables are computed for those"
        )
    return record


#: The table each run command writes its rows to.
SOURCES = {"sweep": RESULTS_FILE, "optimize": RESULTS_FILE, "reproduce": SYSTEMS_FILE}


def _builds(
    folder: Path, record: Mapping[str, Any], specs: Specs, fastest: pd.DataFrame | None = None
) -> tuple[dict[str, Build], Any]:
    import pandas as pd

    command = str(record["command"])
    path = folder / SOURCES[command]
    import pyarrow as pa

    try:
        if fastest is not None and command != "reproduce":
            frame = fastest
        else:
            frame = pd.read_parquet(path) if command == "reproduce" else fastest_rows(path)
    except (OSError, ValueError, pa.ArrowException) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise FigureTableError(
            f"{path}: cannot read the table ({first}); re-run `elmoe-dse {command}`"
        ) from None
    if frame.empty:
        return {}, None
    if command == "reproduce":
        ctx = reproduce_context(frame, specs)
        return reproduce_builds(specs, frame, ctx), ctx
    ctx = sweep_context(frame, record, specs)
    return sweep_builds(specs, frame, ctx), ctx


def fastest_rows(path: Path, batch_rows: int = 1 << 17) -> pd.DataFrame:
    """The rows of a sweep's or optimize's ``results.parquet`` the figure tables use, read one
    row group at a time (bounded memory at any size): its first row and, per
    :data:`FASTEST_KEYS` group and batch of rows, the first fastest row, with the ``meta.*``,
    ``knob.*`` and throughput columns. Every fastest row of any coarser grouping (per batch
    size, per platform, overall) is among them, in table order."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    from elmoe_dse.explore.sweep import block_fastest

    kept = []
    with pq.ParquetFile(path, pre_buffer=False) as file:
        names = file.schema_arrow.names
        columns = [
            n for n in names if n.startswith(("meta.", "knob.")) or n == THROUGHPUT_TOK_PER_S
        ]
        keys = [k for k in FASTEST_KEYS if k in columns]
        for i, batch in enumerate(file.iter_batches(batch_size=batch_rows, columns=columns)):
            frame = batch.to_pandas()
            rows = {0} if i == 0 and len(frame) else set()
            # The rule a streamed sweep applies to each block (the first largest throughput).
            group = {k: frame[k].to_numpy() for k in (*keys, THROUGHPUT_TOK_PER_S)}
            rows.update(row for _, _, row in block_fastest(group))
            mask = np.zeros(len(frame), dtype=bool)
            mask[sorted(rows)] = True
            kept.append(pa.Table.from_batches([batch]).filter(pa.array(mask)))
    if not kept:
        return pd.read_parquet(path, columns=columns)
    return pa.concat_tables(kept).to_pandas()


def figures_record(
    record: Mapping[str, Any], ctx: Context | None, tables: Iterable[str], skipped: dict[str, str]
) -> dict[str, Any]:
    """The ``figures.json`` of a folder: what was computed, for what, and what was not."""
    from elmoe_dse.results import sidecar

    return sidecar(
        command="analyze",
        run_command=record.get("command"),
        origin=None if ctx is None else ctx.origin,
        dataset=None if ctx is None else ctx.dataset,
        elmoe_platform=None if ctx is None else ctx.elmoe_platform,
        context_len=None if ctx is None else ctx.context_len,
        model_order=list(PAPER_MODELS),
        system_order=[s for s, _, _ in SYSTEMS],
        paper_means={
            "speedup": PAPER_TARGETS["speedup_vs_xpu_mean"],
            "energy": PAPER_TARGETS["energy_vs_xpu_mean"],
        },
        tables=sorted(tables),
        skipped=skipped,
    )


def write_figure_tables(
    folder: Path,
    *,
    fastest: pd.DataFrame | None = None,
    record: Mapping[str, Any] | None = None,
) -> list[Path]:
    """Compute every figure table of the run in ``folder`` (its ``run.json``) and write them
    beside its results, then ``figures.json``; a table whose specs cannot be loaded is left out
    (and any older copy removed), with the reason in ``figures.json``. ``fastest``: a sweep's
    rows that decide them, if the caller has them (:func:`fastest_rows` reads them otherwise:
    the table's first row and, per :data:`FASTEST_KEYS` group, its first fastest row or more
    rows, in table order); ``record``: the run's ``run.json`` if the caller has it (a run
    being written: its table may not be there yet when ``fastest`` is given).

    Into a run's stage (the run being written) they go straight; into a committed run folder
    its files are first checked to belong together, and the new tables are committed as one
    step with the run's own files kept (:func:`elmoe_dse.results.staged_run`)."""
    from elmoe_dse.results import in_stage, staged_run

    if in_stage(folder):
        return _write_figure_tables(folder, folder, fastest, record)
    keep = _run_files(folder)
    with staged_run(folder, keep=keep) as stage:
        _write_figure_tables(folder, stage.folder, fastest, record)
    return stage.written


def _run_files(folder: Path) -> list[str]:
    """The files of the committed run in ``folder`` other than its figure tables (checked to
    belong together; for a folder an older elmoe-dse wrote, the run files present)."""
    from elmoe_dse.results import LEGACY_RUN_FILES, is_figure_file, verify_run

    files = verify_run(folder, skip_derived=True)
    if files is None:
        return [name for name in LEGACY_RUN_FILES if (folder / name).is_file()]
    return [name for name in files if not is_figure_file(name)]


def _write_figure_tables(
    folder: Path,
    out: Path,
    fastest: pd.DataFrame | None = None,
    record: Mapping[str, Any] | None = None,
) -> list[Path]:
    """The figure tables of the run in ``folder``, written to ``out``."""
    from elmoe_dse.results import check_inputs, write_json, write_table

    record = _read_record(folder) if record is None else record
    check_inputs(folder, record)
    specs = specs_of(record)
    builds, ctx = _builds(folder, record, specs, fastest)
    tables: dict[str, pd.DataFrame] = {}
    skipped: dict[str, str] = {}
    if ctx is None:
        skipped["all"] = "the run kept no design points"
    for name, build in builds.items():
        try:
            tables.update(build())
        except ElmoeError as err:  # a spec file the run named has moved or changed
            skipped[name] = f"its specs cannot be loaded ({err})"
    for stale in out.glob("figure_*.parquet"):
        if stale.name not in tables:
            stale.unlink()
    written = [write_table(out / name, frame) for name, frame in tables.items()]
    info = figures_record(record, ctx, tables, skipped)
    return [*written, write_json(out / FIGURES_FILE, info)]


def analyze_directory(folder: Path) -> list[Path]:
    """:func:`write_figure_tables` for ``folder`` and, if it holds one, its ``reproduce/`` run."""
    runs = [f for f in (folder, folder / REPRODUCE_DIR) if (f / RUN_FILE).exists()]
    if not folder.is_dir() or not runs:
        raise FigureTableError(
            f"{folder}: no {RUN_FILE} (nor {REPRODUCE_DIR}/{RUN_FILE}); pass a sweep, optimize or "
            "reproduce output directory"
        )
    return [path for run in runs for path in write_figure_tables(run)]
