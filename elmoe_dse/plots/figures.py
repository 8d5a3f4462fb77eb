"""The figures of a results directory: which apply, their data, captions and sources; rendering
them and writing them atomically to ``DIR/plots``.

Each family builder takes the loaded :class:`~elmoe_dse.plots.inputs.RunDir`, checks the columns
it needs (a one-line :class:`~elmoe_dse.plots.inputs.PlotInputError` otherwise), computes its data
records from the run's tables and the figure tables beside them (``figure_*.parquet``, computed
with the run's specs when it was written, or by ``elmoe-dse analyze DIR``; a family whose table is
missing is skipped with the command that writes it) and returns :class:`FigureRecord` s whose
``draw`` only draws. Nothing here loads a spec or runs the model. Every record is built, then
every figure rendered to bytes, and only then is anything written (temporary file + rename
each), so a failure leaves the directory as it was.

Families, in report order: ``pareto``, ``speedup``, ``energy``, ``roofline``, ``acceptance``,
``hit_rate``, ``draft_length``, ``hypervolume``, ``importance``, ``stacks``, ``cost`` (a design
sweep's cost-vs-performance front per group).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elmoe_dse.plots.inputs import NotApplicable, PlotInputError, ReproduceRun, RunDir, SweepRun
from elmoe_dse.results import (
    FIGURE_ACCEPTANCE_FILE,
    FIGURE_BASELINES_FILE,
    FIGURE_DRAFT_LENGTH_FILE,
    FIGURE_ENERGY_FILE,
    FIGURE_HIT_RATE_FILE,
    FIGURE_ROOFLINE_POINTS_FILE,
    FIGURE_ROOFLINE_ROOFS_FILE,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
INDEX_FILE = "index.json"


@dataclass(frozen=True)
class FigureRecord:
    """A figure ready to draw: file stem, family, title, caption (what to read), source (where
    the numbers come from), the drawing call, and companion files (name, text)."""

    name: str
    family: str
    title: str
    caption: str
    source: str
    draw: Callable[[], Figure]
    companions: tuple[tuple[str, str], ...] = ()
    table: tuple[dict[str, Any], ...] = ()


@dataclass
class Outcome:
    """What ``plot`` wrote and what it skipped (family, reason)."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    records: list[FigureRecord] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Where the figure tables come from
# ----------------------------------------------------------------------------------------------


def _tables(run: RunDir) -> SweepRun | ReproduceRun:
    """The run whose figure tables the sensitivity, roofline and energy figures draw: the sweep
    (or optimize) run if the directory holds one, else the reproduce run."""
    if run.sweep is not None:
        return run.sweep
    return _reproduce(run)


def _origin(source: SweepRun | ReproduceRun) -> str:
    """Which specs the figure tables were computed with, as ``figures.json`` records it."""
    origin = source.info.get("origin") or "the run's specs"
    return f"computed by `elmoe-dse {source.command}` with {origin}"


def _orders(source: SweepRun | ReproduceRun) -> dict[str, Any]:
    """The model and system orders of ``figures.json`` (empty if absent: table order)."""
    info = source.info
    return {
        "model_order": [str(m) for m in info.get("model_order") or []],
        "system_order": [str(s) for s in info.get("system_order") or []],
    }


def _reproduce(run: RunDir) -> ReproduceRun:
    if run.reproduce is None:
        raise NotApplicable("needs a reproduce run")
    return run.reproduce


def _sweep(run: RunDir) -> SweepRun:
    if run.sweep is None:
        raise NotApplicable("needs a sweep or optimize run (results.parquet)")
    return run.sweep


def _slug(values: Sequence[Any]) -> str:
    text = "-".join(str(v) for v in values)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _csv(rows: Sequence[dict[str, Any]]) -> str:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(list(rows)).to_csv(buf, index=False, float_format="%.10g")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------
# Families
# ----------------------------------------------------------------------------------------------


def _baselines(sweep: SweepRun) -> tuple[pd.DataFrame | None, str]:
    """The baselines at the sweep's workloads (``figure_baselines.parquet``) and how to say so."""
    try:
        baselines = sweep.table(FIGURE_BASELINES_FILE, "baselines")
    except NotApplicable as why:
        return None, f"no baselines: {why}"
    return baselines, (
        "baselines (xPU, PIM, Logic-PIM, NMP, HB-xPU) at the same workloads "
        f"{_origin(sweep)} ({FIGURE_BASELINES_FILE})"
    )


def build_pareto(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import pareto

    sweep = _sweep(run)
    baselines, marked = _baselines(sweep)
    datas = pareto.pareto_data(sweep.frame, group_columns=sweep.group_by, baselines=baselines)
    records = []
    for data in datas:
        key = [v for _, v in data.panels[0].group] if data.panels else []
        name = "pareto" if len(datas) == 1 else f"pareto-{_slug(key)}"
        title = "Pareto fronts: throughput vs energy per token" + (
            f" ({', '.join(str(v) for v in key)})" if key else ""
        )
        rows = pareto.front_table(data)
        records.append(
            FigureRecord(
                name=name,
                family="pareto",
                title=title,
                caption=pareto.caption(data),
                source=(
                    f"designs read from {sweep.folder.name}/results.parquet "
                    f"({sum(p.points for p in data.panels):,} points; fronts by the Pareto kernel "
                    f"of elmoe_dse.explore.pareto); {marked}; numbers key front points to "
                    f"{name}_front.csv"
                ),
                draw=partial(pareto.pareto_figure, data),
                companions=((f"{name}_front.csv", _csv(rows)),),
                table=tuple(r for r in rows if r["shown"]),
            )
        )
    return records


def _sweep_systems(frame: pd.DataFrame, baselines: pd.DataFrame) -> pd.DataFrame:
    """A systems table from a sweep: the fastest design per platform and workload, plus the
    baselines at the same workloads."""
    import pandas as pd

    keys = ["meta.model", "meta.dataset", "knob.batch_size", "meta.platform"]
    used = [*keys, "meta.policy", "metric.throughput_tok_per_s", "metric.energy_per_token_j"]
    order = frame[used].sort_values("metric.throughput_tok_per_s", ascending=False, kind="stable")
    best = order.drop_duplicates(subset=keys)
    platforms = sorted(str(p) for p in best["meta.platform"].unique())
    rows = pd.DataFrame(
        {
            "meta.model": best["meta.model"].astype(str).to_numpy(),
            "meta.dataset": best["meta.dataset"].astype(str).to_numpy(),
            "knob.batch_size": best["knob.batch_size"].to_numpy(dtype=float),
            "meta.system": [
                "fastest design" if len(platforms) == 1 else f"fastest on {p}"
                for p in best["meta.platform"].astype(str)
            ],
            "meta.platform": best["meta.platform"].astype(str).to_numpy(),
            "meta.policy": best["meta.policy"].astype(str).to_numpy(),
            "metric.throughput_tok_per_s": best["metric.throughput_tok_per_s"].to_numpy(),
            "metric.energy_per_token_j": best["metric.energy_per_token_j"].to_numpy(),
        }
    )
    base = baselines[
        ~baselines["meta.platform"].isin(platforms) | (baselines["meta.system"] == "xpu")
    ]
    return pd.concat([rows, base[rows.columns]], ignore_index=True)


def _paper_means(run: RunDir, source: SweepRun | ReproduceRun) -> tuple[float, float]:
    """The paper's mean speedup and energy gain of ELMoE-3D over xPU: a reproduce run's targets,
    else ``figures.json``."""
    if run.reproduce is not None:
        paper = {str(t["name"]): float(t["paper"]) for t in run.reproduce.targets}
        if "speedup_vs_xpu_mean" in paper and "energy_vs_xpu_mean" in paper:
            return paper["speedup_vs_xpu_mean"], paper["energy_vs_xpu_mean"]
    means = source.info.get("paper_means") or {}
    if "speedup" not in means or "energy" not in means:
        raise NotApplicable(
            f"needs the paper's means from {source.folder.name}/figures.json, which `elmoe-dse "
            f"{source.command}` writes; run `elmoe-dse analyze {source.folder}`"
        )
    return float(means["speedup"]), float(means["energy"])


def build_speedup(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import speedup

    if run.reproduce is not None:
        source: SweepRun | ReproduceRun = run.reproduce
        systems = run.reproduce.systems
        orders = _orders(source)
        if not orders["system_order"]:  # no figures.json: the run's own row order
            orders = {
                "model_order": list(dict.fromkeys(systems["meta.model"].astype(str))),
                "system_order": list(dict.fromkeys(systems["meta.system"].astype(str))),
            }
        text = (
            f"read from {run.reproduce.folder.name}/systems.parquet (per-cell ratios averaged "
            "over {n} datasets); dashed: the paper's reported means (arXiv 2604.14626 abstract)"
        )
    else:
        sweep = _sweep(run)
        source = sweep
        systems = _sweep_systems(sweep.frame, sweep.table(FIGURE_BASELINES_FILE, "baselines"))
        orders = _orders(sweep)
        text = (
            f"fastest design per workload read from {sweep.folder.name}/results.parquet; the "
            f"baselines at the same workloads {_origin(sweep)} ({FIGURE_BASELINES_FILE}); "
            "dashed: the paper's means for ELMoE-3D (arXiv 2604.14626)"
        )
    paper_speedup, paper_energy = _paper_means(run, source)
    data = speedup.speedup_data(
        systems,
        paper_speedup=paper_speedup,
        paper_energy=paper_energy,
        models_order=orders["model_order"],
        systems_order=orders["system_order"],
    )
    return [
        FigureRecord(
            name="speedup",
            family="speedup",
            title="Speedup and energy-efficiency gain over xPU vs batch size",
            caption=speedup.caption(data),
            source=text.replace("{n}", str(len(data.datasets))),
            draw=partial(speedup.speedup_figure, data),
        )
    ]


def _energy_record(data: Any, title: str, source: str, **draw: Any) -> list[FigureRecord]:
    from elmoe_dse.plots import energy

    return [
        FigureRecord(
            name="energy",
            family="energy",
            title=title,
            caption=energy.caption(data),
            source=source,
            draw=partial(energy.energy_figure, data, **draw),
        )
    ]


def build_energy(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import energy

    if run.sweep is not None:
        sweep = run.sweep
        frame = sweep.frame
        if not energy.component_columns(frame.columns):
            sweep.require(["metric.energy_static_per_step_j"], "energy")
        sweep.require([energy.TOKENS], "energy")
        table = sweep.table(FIGURE_ENERGY_FILE, "energy")
        return _energy_record(
            energy.energy_data(energy.sweep_rows(frame, table)),
            "Energy per token by component (a step's energy over the tokens it commits)",
            f"fastest and lowest-energy designs read from {sweep.folder.name}/results.parquet"
            f"; the baselines at the fastest design's workload {_origin(sweep)} "
            f"({FIGURE_ENERGY_FILE})",
            share_rows=False,
        )
    reproduce = _reproduce(run)
    table = reproduce.table(FIGURE_ENERGY_FILE, "energy")
    rows, drift = energy.reproduce_rows(table, reproduce.systems, **_orders(reproduce))
    data = energy.energy_data(rows)
    batches = sorted({float(b) for b in table["knob.batch_size"]})
    dataset = str(table["meta.dataset"].iloc[0])
    check = (
        "matching the run's throughput"
        if drift < 1e-9
        else f"differing from the run's throughput by up to {drift:.1%} (computed from other "
        f"specs than the run; `elmoe-dse analyze {reproduce.folder}` recomputes it)"
    )
    return _energy_record(
        data,
        f"Energy per token by component ({dataset}; a step's energy over the tokens it commits)",
        f"{_origin(reproduce)}, each system at the draft length it ran at ({FIGURE_ENERGY_FILE}; "
        f"systems.parquet holds no energy components), {check}",
        columns=len(data.panels) // len(batches),
    )


def build_roofline(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import roofline

    source = _tables(run)
    points = source.table(FIGURE_ROOFLINE_POINTS_FILE, "roofline")
    panels = roofline.panels_from_tables(
        points, source.table(FIGURE_ROOFLINE_ROOFS_FILE, "roofline")
    )
    model, dataset = roofline.workload(points)
    if run.sweep is not None:
        text = (
            f"{_origin(source)} at the knobs of each platform's fastest design (read from the "
            "table) at the smallest and largest batch; xPU added for reference"
        )
    else:
        text = (
            f"{_origin(source)}: {model} on {dataset}, each platform's system at the draft "
            "length it ran at; roofs read back from the cost records"
        )
    return [
        FigureRecord(
            name="roofline",
            family="roofline",
            title="Roofline per platform, decode operators at their arithmetic intensity",
            caption=roofline.caption(panels),
            source=f"{text} ({FIGURE_ROOFLINE_POINTS_FILE}, {FIGURE_ROOFLINE_ROOFS_FILE})",
            draw=partial(roofline.roofline_figure, panels),
        )
    ]


def build_acceptance(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import sensitivity

    source = _tables(run)
    table = source.table(FIGURE_ACCEPTANCE_FILE, "acceptance")
    data = sensitivity.heatmap_data(table)
    rounding = str(table[sensitivity.ROUNDING].iloc[0])
    return [
        FigureRecord(
            name="acceptance",
            family="acceptance",
            title="Acceptance and tokens per step vs draft bits and pool size",
            caption=sensitivity.heatmap_caption(data),
            source=f"Elastic-SD, {rounding} rounding, {_origin(source)} ({FIGURE_ACCEPTANCE_FILE})",
            draw=partial(sensitivity.heatmap_figure, data),
        )
    ]


def build_hit_rate(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import sensitivity

    source = _tables(run)
    table = source.table(FIGURE_HIT_RATE_FILE, "hit_rate")
    panels = sensitivity.hit_rate_panels(table)
    batch = float(table[sensitivity.BATCH].iloc[0])
    dataset = str(table["meta.dataset"].iloc[0])
    return [
        FigureRecord(
            name="hit_rate",
            family="hit_rate",
            title="Expert hit rate vs HB capacity",
            caption=sensitivity.hit_rate_caption(panels),
            source=f"B = {batch:g} on {dataset}, {_origin(source)} ({FIGURE_HIT_RATE_FILE})",
            draw=partial(sensitivity.hit_rate_figure, panels),
        )
    ]


def build_draft_length(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import sensitivity

    source = _tables(run)
    table = source.table(FIGURE_DRAFT_LENGTH_FILE, "draft_length")
    panels = sensitivity.draft_length_panels(table)
    platform, dataset = panels[0].platform, str(table["meta.dataset"].iloc[0])
    return [
        FigureRecord(
            name="draft_length",
            family="draft_length",
            title="Time per token vs draft length",
            caption=sensitivity.draft_length_caption(panels),
            source=f"Elastic-SD on {platform}, {dataset}, {_origin(source)} "
            f"({FIGURE_DRAFT_LENGTH_FILE})",
            draw=partial(sensitivity.draft_length_figure, panels),
        )
    ]


def _optimize(run: RunDir) -> SweepRun:
    if run.sweep is None or run.sweep.command != "optimize":
        raise NotApplicable("needs an optimize run")
    return run.sweep


def _optimize_studies(run: RunDir) -> list[dict[str, Any]]:
    sweep = _optimize(run)
    studies = sweep.require_record("studies", "hypervolume")
    if not isinstance(studies, list):
        raise PlotInputError(
            f"{sweep.folder / 'run.json'}: 'studies' is not a list; re-run `elmoe-dse optimize`"
        )
    return [s for s in studies if isinstance(s, dict)]


def build_hypervolume(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import optimize

    data = optimize.hypervolume_data(_optimize_studies(run))
    if not data.lines:
        raise NotApplicable("no study recorded a hypervolume history")
    return [
        FigureRecord(
            name="hypervolume",
            family="hypervolume",
            title="Hypervolume over trials",
            caption=optimize.hypervolume_caption(data),
            source="run.json studies[*].hypervolume_history (normalized by the exhaustive grid's "
            "front where it was enumerated)",
            draw=partial(optimize.hypervolume_figure, data),
        )
    ]


def storage_url(run: RunDir) -> str:
    """The optimize run's Optuna storage; a SQLite file that moved with the directory is found
    beside the results."""
    sweep = _optimize(run)
    url = str(sweep.record.get("storage") or "")
    local = sweep.folder / "study.db"
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        if not path.exists() and local.exists():
            return f"sqlite:///{local.resolve()}"
        if not path.exists():
            raise NotApplicable(f"the Optuna storage {path} is not there")
        return url
    if not url and local.exists():
        return f"sqlite:///{local.resolve()}"
    if not url or "***" in url:
        raise NotApplicable("the Optuna storage is not recorded (or needs a password)")
    return url


def build_importance(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import optimize

    studies = _optimize_studies(run)
    url = storage_url(run)
    sweep = _optimize(run)
    objectives = [str(o["metric"]) for o in (sweep.record.get("sweep") or {}).get("objectives", [])]
    if not objectives:
        raise PlotInputError(
            f"{sweep.folder / 'run.json'}: lacks sweep.objectives that 'importance' needs; "
            "re-run `elmoe-dse optimize`"
        )
    try:
        per_study = optimize.study_importances(url, studies, objectives)
    except NotApplicable:
        raise
    except Exception as err:  # storage errors come from sqlalchemy/optuna in many types
        raise NotApplicable(f"cannot read the Optuna storage ({type(err).__name__})") from None
    if not per_study:
        raise NotApplicable("no study has 4 or more feasible trials")
    data = optimize.importance_data(per_study)
    return [
        FigureRecord(
            name="importance",
            family="importance",
            title="Parameter importances per objective",
            caption=optimize.importance_caption(data),
            source="Optuna PED-ANOVA importances over each study's feasible trials, read from "
            "its storage",
            draw=partial(optimize.importance_figure, data),
        )
    ]


Builder = Callable[[RunDir], list[FigureRecord]]


def build_stacks(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import stacks

    return stacks.build_stacks(run, FigureRecord)


def build_cost(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import cost

    return cost.build_cost(run, FigureRecord, _slug)


def build_devices(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import devices

    return devices.build(run, FigureRecord)


FAMILIES: dict[str, Builder] = {
    "pareto": build_pareto,
    "speedup": build_speedup,
    "energy": build_energy,
    "roofline": build_roofline,
    "acceptance": build_acceptance,
    "hit_rate": build_hit_rate,
    "draft_length": build_draft_length,
    "hypervolume": build_hypervolume,
    "importance": build_importance,
    "stacks": build_stacks,
    "devices": build_devices,
    "cost": build_cost,
}


def check_only(only: Sequence[str]) -> list[str]:
    """The families ``--only`` names (all if empty); an unknown name is a one-line error."""
    unknown = [n for n in only if n not in FAMILIES]
    if unknown:
        raise PlotInputError(
            f"--only {unknown[0]}: no such figure; use one of {', '.join(FAMILIES)}"
        )
    return list(only) or list(FAMILIES)


def build_records(
    run: RunDir, only: Sequence[str] = ()
) -> tuple[list[FigureRecord], list[tuple[str, str]]]:
    """Records of the families asked for (all by default) and those skipped (family, reason).

    A family named in ``only`` that does not apply is an error; otherwise it is skipped.
    """
    families = check_only(only)
    records: list[FigureRecord] = []
    skipped: list[tuple[str, str]] = []
    for family in families:
        try:
            records.extend(FAMILIES[family](run))
        except KeyError as err:  # a column an older table lacks and no check caught
            raise PlotInputError(
                f"{run.folder}: figure '{family}' needs {err} which the results lack (written "
                "by an older elmoe-dse?); re-run the command that wrote them"
            ) from None
        except PlotInputError:
            raise
        except NotApplicable as why:
            if only:
                raise PlotInputError(
                    f"{run.folder}: figure '{family}' {why}; this directory holds "
                    f"{' + '.join(run.kinds)}"
                ) from None
            skipped.append((family, str(why)))
    return records, skipped


def render(record: FigureRecord, fmt: str) -> bytes:
    """The figure of ``record`` encoded as ``fmt``, drawn inside the house style."""
    return draw_bytes(record.draw, fmt)


def draw_bytes(draw: Callable[[], Figure], fmt: str) -> bytes:
    """:func:`render` of a record's ``draw`` alone (what a worker process is sent)."""
    from elmoe_dse.plots import style

    with style.style_context():
        return style.figure_bytes(draw(), fmt)


#: Below this many figures ``plot`` draws them all in its own process: starting worker
#: processes (each imports matplotlib) would cost more than it saves.
POOL_MIN_FIGURES = 4
#: Imported once in the fork server of the drawing processes.
DRAW_PRELOAD = ["matplotlib", "elmoe_dse.plots.figures", "elmoe_dse.plots.style"]


def render_all(records: Sequence[FigureRecord], fmt: str, workers: int = 1) -> list[bytes]:
    """:func:`render` of each record, in order, on up to ``workers`` processes (one per figure
    at most; this process alone below :data:`POOL_MIN_FIGURES` figures). The same bytes whatever
    draws them: each figure is drawn from its own record, inside the house style."""
    workers = min(workers, len(records)) if len(records) >= POOL_MIN_FIGURES else 1
    if workers <= 1:
        return [render(r, fmt) for r in records]
    from elmoe_dse.processes import process_pool

    pool = process_pool(workers, DRAW_PRELOAD)
    try:
        return list(pool.map(draw_bytes, [r.draw for r in records], [fmt] * len(records)))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def index(records: Sequence[FigureRecord], fmt: str) -> dict[str, Any]:
    """The ``plots/index.json`` record: every figure with its file, title, caption and source."""
    return {
        "figures": [
            {
                "name": r.name,
                "family": r.family,
                "file": f"{r.name}.{fmt}",
                "title": r.title,
                "caption": r.caption,
                "source": r.source,
                "companions": [name for name, _ in r.companions],
            }
            for r in records
        ]
    }


def merged_index(path: Path, records: Sequence[FigureRecord], fmt: str) -> dict[str, Any]:
    """:func:`index` of ``records``, keeping the entries of an earlier index at ``path`` for
    figures not redrawn now (``--only``)."""
    new = index(records, fmt)
    try:
        old = json.loads(path.read_text()).get("figures", [])
    except (OSError, ValueError, AttributeError):
        old = []
    names = {f["name"] for f in new["figures"]}
    kept = [f for f in old if isinstance(f, dict) and f.get("name") not in names]
    return {"figures": kept + new["figures"]}


def _write_bytes(tmp: Path, data: bytes) -> None:
    tmp.write_bytes(data)


def write_files(folder: Path, files: Sequence[tuple[str, bytes]]) -> list[Path]:
    """Write every (name, bytes) into ``folder``, each via a temporary file and a rename."""
    from elmoe_dse.results import atomic_write, ensure_dir

    ensure_dir(folder)
    written = []
    for name, data in files:
        written.append(atomic_write(folder / name, partial(_write_bytes, data=data)))
    return written


def plot_directory(
    folder: Path, *, fmt: str = "png", only: Sequence[str] = (), workers: int = 1
) -> Outcome:
    """Build, render (on ``workers`` processes: :func:`render_all`), then write every figure of
    ``folder`` to ``folder/plots``."""
    from elmoe_dse.plots.inputs import load_run_dir
    from elmoe_dse.plots.style import FORMATS

    if fmt not in FORMATS:
        raise PlotInputError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    families = check_only(only)
    run = load_run_dir(folder)
    records, skipped = build_records(run, families if only else ())
    files: list[tuple[str, bytes]] = []
    for record, image in zip(records, render_all(records, fmt, workers), strict=True):
        files.append((f"{record.name}.{fmt}", image))
        files.extend((name, text.encode()) for name, text in record.companions)
    text = json.dumps(merged_index(folder / PLOTS_DIR / INDEX_FILE, records, fmt), indent=2)
    files.append((INDEX_FILE, (text + "\n").encode()))
    out = Outcome(folder / PLOTS_DIR, skipped=skipped, records=records)
    out.written = write_files(out.folder, files)
    return out
