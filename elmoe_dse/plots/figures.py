"""The figures of a results directory: which apply, their data, captions and sources; rendering
them and writing them atomically to ``DIR/plots``.

Each family builder takes the loaded :class:`~elmoe_dse.plots.inputs.RunDir`, checks the columns
it needs (a one-line :class:`~elmoe_dse.plots.inputs.PlotInputError` otherwise), computes its data
records (reading the tables, or calling the evaluator where the directory lacks the numbers) and
returns :class:`FigureRecord` s whose ``draw`` only draws. Every record is built, then every figure
rendered to bytes, and only then is anything written (temporary file + rename each), so a failure
leaves the directory as it was.

Families, in report order: ``pareto``, ``speedup``, ``energy``, ``roofline``, ``acceptance``,
``hit_rate``, ``draft_length``, ``hypervolume``, ``importance``.
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

from elmoe_dse.errors import ElmoeError
from elmoe_dse.plots.inputs import PlotInputError, ReproduceRun, RunDir, SweepRun

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

PLOTS_DIR = "plots"
INDEX_FILE = "index.json"
#: Models drawn in the per-model sensitivity figures (the first ones of the run).
MAX_MODELS = 4
#: Batch sizes drawn as lines in the draft-length figure.
MAX_BATCHES = 5
#: Workloads (model x dataset x context) the Pareto baselines are evaluated at.
MAX_BASELINE_WORKLOADS = 32


class NotApplicable(Exception):
    """A figure family does not apply to this directory (the reason says why)."""


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


@dataclass(frozen=True)
class Context:
    """Scenarios the evaluator-computed figures use, and how they relate to the run."""

    models: tuple[str, ...]
    dataset: str
    elmoe_platform: str
    batches: tuple[float, ...]
    context_len: float
    calibration: str | None
    origin: str


@dataclass
class Outcome:
    """What ``plot`` wrote and what it skipped (family, reason)."""

    folder: Path
    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    records: list[FigureRecord] = field(default_factory=list)


# ----------------------------------------------------------------------------------------------
# Context
# ----------------------------------------------------------------------------------------------


def _elmoe_platform(platforms: Sequence[str]) -> str:
    from elmoe_dse.platforms import get
    from elmoe_dse.policies import POLICIES
    from elmoe_dse.specs.platform import load_platform

    for name in platforms:
        try:
            if POLICIES[get(load_platform(name).family).default_policy].mode_switch:
                return name
        except Exception:  # a platform file that moved: fall back to the shipped 8 GB
            continue
    return "elmoe3d-8g"


def context(run: RunDir) -> Context:
    """The sweep's scenarios (shipped specs, as the sweep evaluated them) or the reproduce run's
    (its calibration, the paper's grid)."""
    from elmoe_dse.explore.reproduce import PAPER_CONTEXT
    from elmoe_dse.plots.evaluated import calibration_key
    from elmoe_dse.plots.speedup import model_order

    if run.sweep is not None:
        frame = run.sweep.frame
        datasets = sorted(str(d) for d in frame["meta.dataset"].unique())
        ctx = (
            float(frame["knob.context_len"].iloc[0])
            if "knob.context_len" in frame.columns
            else float(PAPER_CONTEXT)
        )
        return Context(
            models=tuple(model_order([str(m) for m in frame["meta.model"].unique()])),
            dataset="mt-bench" if "mt-bench" in datasets else datasets[0],
            elmoe_platform=_elmoe_platform([str(p) for p in frame["meta.platform"].unique()]),
            batches=tuple(sorted(float(b) for b in frame["knob.batch_size"].unique())),
            context_len=ctx,
            calibration=_sweep_calibration(run.sweep),
            origin=(
                "the sweep's calibration"
                if run.sweep.calibration is not None
                else "the shipped specs, as the sweep evaluated them"
            ),
        )
    reproduce = _reproduce(run)
    systems = reproduce.systems
    datasets = sorted(str(d) for d in systems["meta.dataset"].unique())
    cal = reproduce.calibration
    return Context(
        models=tuple(model_order([str(m) for m in systems["meta.model"].unique()])),
        dataset="mt-bench" if "mt-bench" in datasets else datasets[0],
        elmoe_platform="elmoe3d-8g",
        batches=tuple(sorted(float(b) for b in systems["knob.batch_size"].unique())),
        context_len=float(PAPER_CONTEXT),
        calibration=calibration_key(cal),
        origin=(
            "the reproduce run's calibration"
            if cal is not None
            else "the spec defaults (the reproduce run applied no calibration)"
        ),
    )


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


def build_pareto(run: RunDir) -> list[FigureRecord]:
    import pandas as pd

    from elmoe_dse.plots import pareto
    from elmoe_dse.plots.evaluated import BASELINES, system_rows

    sweep = _sweep(run)
    frame = sweep.frame
    workloads = pareto.workloads(frame)[:MAX_BASELINE_WORKLOADS]
    batches = sorted(float(b) for b in frame["knob.batch_size"].unique())
    try:
        baselines: pd.DataFrame | None = pd.DataFrame(
            system_rows(BASELINES, workloads, batches, _sweep_calibration(sweep))
        )
        marked = (
            "baselines (xPU, PIM, Logic-PIM, NMP, HB-xPU) evaluated now at the same workloads "
            f"with {context(run).origin}"
        )
    except ElmoeError as err:  # a model or dataset file the run named has moved
        baselines, marked = None, f"no baselines: their specs cannot be loaded ({err})"
    datas = pareto.pareto_data(frame, group_columns=sweep.group_by, baselines=baselines)
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


def _sweep_calibration(sweep: SweepRun) -> str | None:
    from elmoe_dse.plots.evaluated import calibration_key

    return calibration_key(sweep.calibration)


def _sweep_systems(frame: pd.DataFrame, calibration: str | None) -> pd.DataFrame:
    """A systems table from a sweep: the fastest design per platform and workload, plus the
    baselines evaluated at the same workloads."""
    import pandas as pd

    from elmoe_dse.plots import pareto
    from elmoe_dse.plots.evaluated import BASELINES, system_rows

    keys = ["meta.model", "meta.dataset", "knob.batch_size", "meta.platform"]
    order = frame.sort_values("metric.throughput_tok_per_s", ascending=False, kind="stable")
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
    workloads = pareto.workloads(frame)[:MAX_BASELINE_WORKLOADS]
    batches = sorted(float(b) for b in frame["knob.batch_size"].unique())
    base = pd.DataFrame(system_rows(BASELINES, workloads, batches, calibration))
    base = base[~base["meta.platform"].isin(platforms) | (base["meta.system"] == "xpu")]
    return pd.concat([rows, base[rows.columns]], ignore_index=True)


def build_speedup(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import speedup

    if run.reproduce is not None:
        data = speedup.speedup_data(run.reproduce.systems)
        source = (
            f"read from {run.reproduce.folder.name}/systems.parquet (per-cell ratios averaged "
            f"over {len(data.datasets)} datasets); dashed: the paper's reported means (arXiv "
            "2604.14626 abstract)"
        )
    else:
        sweep = _sweep(run)
        data = speedup.speedup_data(_sweep_systems(sweep.frame, _sweep_calibration(sweep)))
        source = (
            f"fastest design per workload read from {sweep.folder.name}/results.parquet; the "
            f"baselines evaluated now at the same workloads with {context(run).origin}; dashed: "
            "the paper's means for ELMoE-3D (arXiv 2604.14626)"
        )
    return [
        FigureRecord(
            name="speedup",
            family="speedup",
            title="Speedup and energy-efficiency gain over xPU vs batch size",
            caption=speedup.caption(data),
            source=source,
            draw=partial(speedup.speedup_figure, data),
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
        data = energy.energy_data(energy.sweep_rows(frame, calibration=_sweep_calibration(sweep)))
        source = (
            f"fastest and lowest-energy designs read from {sweep.folder.name}/results.parquet"
            "; the baselines evaluated now at the fastest design's workload with "
            f"{context(run).origin}"
        )
        return [
            FigureRecord(
                name="energy",
                family="energy",
                title="Energy per token by component (a step's energy over the tokens it commits)",
                caption=energy.caption(data),
                source=source,
                draw=partial(energy.energy_figure, data, share_rows=False),
            )
        ]
    reproduce = _reproduce(run)
    ctx = context(run)
    batches = [ctx.batches[0], ctx.batches[-1]] if len(ctx.batches) > 1 else list(ctx.batches)
    rows, drift = energy.reproduce_rows(
        reproduce.systems,
        dataset=ctx.dataset,
        batches=batches,
        context_len=ctx.context_len,
        calibration=ctx.calibration,
    )
    data = energy.energy_data(rows)
    check = (
        "matching the table's throughput"
        if drift < 1e-9
        else f"differing from the table's throughput by up to {drift:.1%} (the run is older "
        "than the model)"
    )
    return [
        FigureRecord(
            name="energy",
            family="energy",
            title=f"Energy per token by component ({ctx.dataset}; a step's energy over the tokens "
            "it commits)",
            caption=energy.caption(data),
            source=(
                f"evaluated now with {ctx.origin}, each system at the draft length it ran at "
                f"(systems.parquet holds no energy components), {check}"
            ),
            draw=partial(energy.energy_figure, data, columns=len(data.panels) // len(batches)),
        )
    ]


def build_roofline(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import roofline

    ctx = context(run)
    if run.sweep is not None:
        panels = roofline.sweep_panels(run.sweep.frame, calibration=ctx.calibration)
        source = (
            f"evaluated now with {ctx.origin} at the knobs of each platform's fastest design "
            "(read from the table) at the smallest and largest batch; xPU added for reference"
        )
    else:
        batches = [ctx.batches[0], ctx.batches[-1]] if len(ctx.batches) > 1 else ctx.batches
        panels = roofline.reproduce_panels(
            _reproduce(run).systems,
            model=ctx.models[0],
            dataset=ctx.dataset,
            batches=list(batches),
            context_len=ctx.context_len,
            calibration=ctx.calibration,
        )
        source = (
            f"evaluated now with {ctx.origin}: {ctx.models[0]} on {ctx.dataset}, each platform's "
            "system at the draft length it ran at; roofs read back from the cost records"
        )
    return [
        FigureRecord(
            name="roofline",
            family="roofline",
            title="Roofline per platform, decode operators at their arithmetic intensity",
            caption=roofline.caption(panels),
            source=source,
            draw=partial(roofline.roofline_figure, panels),
        )
    ]


def build_acceptance(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import sensitivity
    from elmoe_dse.plots.evaluated import scenario

    ctx = context(run)
    model = ctx.models[0]
    sc = scenario(model, ctx.elmoe_platform, ctx.dataset, ctx.calibration)
    step, bits, pools = sensitivity.evaluate_heatmap(sc, batch_size=ctx.batches[-1])
    data = sensitivity.heatmap_data(
        step,
        draft_bits=bits,
        pool_experts=pools,
        model=model,
        platform=ctx.elmoe_platform,
        dataset=ctx.dataset,
        batch_size=ctx.batches[-1],
        draft_length=sensitivity.HEATMAP_GAMMA,
    )
    return [
        FigureRecord(
            name="acceptance",
            family="acceptance",
            title="Acceptance and tokens per step vs draft bits and pool size",
            caption=sensitivity.heatmap_caption(data),
            source=f"evaluated now (Elastic-SD, {sensitivity.ROUNDING} rounding) with {ctx.origin}",
            draw=partial(sensitivity.heatmap_figure, data),
        )
    ]


def build_hit_rate(run: RunDir) -> list[FigureRecord]:
    from elmoe_dse.plots import sensitivity

    ctx = context(run)
    panels = [
        sensitivity.hit_rate_data(
            m,
            sensitivity.CAPACITIES_GB,
            sensitivity.evaluate_hit_rates(
                m, ctx.dataset, ctx.calibration, elmoe_platform=ctx.elmoe_platform
            ),
        )
        for m in ctx.models[:MAX_MODELS]
    ]
    return [
        FigureRecord(
            name="hit_rate",
            family="hit_rate",
            title="Expert hit rate vs HB capacity",
            caption=sensitivity.hit_rate_caption(panels),
            source=f"evaluated now at B = 1 on {ctx.dataset} with {ctx.origin}",
            draw=partial(sensitivity.hit_rate_figure, panels),
        )
    ]


def build_draft_length(run: RunDir) -> list[FigureRecord]:
    import numpy as np

    from elmoe_dse.plots import sensitivity
    from elmoe_dse.plots.evaluated import scenario

    ctx = context(run)
    batches = list(ctx.batches)
    if len(batches) > MAX_BATCHES:
        idx = np.unique(np.round(np.linspace(0, len(batches) - 1, MAX_BATCHES)).astype(int))
        batches = [batches[i] for i in idx]
    panels = []
    for m in ctx.models[:MAX_MODELS]:
        sc = scenario(m, ctx.elmoe_platform, ctx.dataset, ctx.calibration)
        step, b, g = sensitivity.evaluate_draft_lengths(sc, batches)
        panels.append(
            sensitivity.draft_length_data(
                step, model=m, platform=ctx.elmoe_platform, batches=b, gammas=g
            )
        )
    return [
        FigureRecord(
            name="draft_length",
            family="draft_length",
            title="Time per token vs draft length",
            caption=sensitivity.draft_length_caption(panels),
            source=f"evaluated now (Elastic-SD on {ctx.elmoe_platform}, {ctx.dataset}) with "
            f"{ctx.origin}",
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
        except ElmoeError as err:  # a spec the evaluator cannot load (a model file moved ...)
            why = NotApplicable(f"needs specs the evaluator cannot load ({err})")
            if only:
                raise PlotInputError(f"{run.folder}: figure '{family}' {why}") from None
            skipped.append((family, str(why)))
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
    from elmoe_dse.plots import style

    with style.style_context():
        return style.figure_bytes(record.draw(), fmt)


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


def plot_directory(folder: Path, *, fmt: str = "png", only: Sequence[str] = ()) -> Outcome:
    """Build, render, then write every figure of ``folder`` to ``folder/plots``."""
    from elmoe_dse.plots.inputs import load_run_dir
    from elmoe_dse.plots.style import FORMATS

    if fmt not in FORMATS:
        raise PlotInputError(f"--format {fmt}: use one of {', '.join(FORMATS)}")
    families = check_only(only)
    run = load_run_dir(folder)
    records, skipped = build_records(run, families if only else ())
    files: list[tuple[str, bytes]] = []
    for record in records:
        files.append((f"{record.name}.{fmt}", render(record, fmt)))
        files.extend((name, text.encode()) for name, text in record.companions)
    text = json.dumps(merged_index(folder / PLOTS_DIR / INDEX_FILE, records, fmt), indent=2)
    files.append((INDEX_FILE, (text + "\n").encode()))
    out = Outcome(folder / PLOTS_DIR, skipped=skipped, records=records)
    out.written = write_files(out.folder, files)
    return out
