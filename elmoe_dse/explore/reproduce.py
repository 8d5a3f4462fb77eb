"""Reproduce the ELMoE-3D paper's headline numbers (docs/model.md §9).

Grid: the paper's 4 models x 4 dataset profiles x B in {1, 4, 8, 16} at 1k context. Systems per
cell, each at its own best draft length gamma in 1..16 (the search range
:data:`~elmoe_dse.speculative.DRAFT_LENGTH_SEARCH`, wide enough that the optimum is interior;
:func:`draft_length_edges` counts the rows on its edges) where it speculates (the runtime
chooses; the paper does not state gamma):

- ``elmoe3d``: ELMoE-3D 8 GB with its mode switch (AR from the pool below B*, Elastic-SD at or
  above it; B* the ``mode_threshold`` assumption);
- baselines ``xpu`` (plain AR), ``xpu-pim``, ``xpu-logicpim``, ``xpu-nmp`` (AR, each operator where
  it finishes sooner), ``hb-xpu`` (AR with an LRU full-precision expert cache in HB);
- ``elastic-sd`` and ``eagle-sd`` on ELMoE-3D 8 GB hardware (the SD-method comparison).

Speedup = throughput (tokens/s) ratio at the same batch; energy efficiency of A over B = (J/token
of B) / (J/token of A). The best prior accelerator of a cell is, per metric, the best of
``xpu-pim``, ``xpu-logicpim``, ``xpu-nmp``, ``hb-xpu``. Targets report the arithmetic mean (the
value compared with the paper) and the geometric mean (the paper does not say which it used).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    BOUND,
    DATASET,
    DRAFT_LENGTH_TOKENS,
    ENERGY_PER_TOKEN_J,
    FEASIBLE,
    HIT_RATE_FRAC,
    MODEL,
    PLATFORM,
    POLICY,
    POOL_EXPERTS_PER_LAYER,
    SYSTEM,
    TAU_TOKENS,
    THROUGHPUT_TOK_PER_S,
    TIME_PER_STEP_S,
    knob_column,
)
from elmoe_dse.evaluator import ResidencyMemo, StepCost, evaluate
from elmoe_dse.explore.alternatives import AssumptionTable, assumption_table, defaults
from elmoe_dse.policies import is_speculative
from elmoe_dse.scenario import Inputs, resolve_inputs
from elmoe_dse.specs.model import load_model
from elmoe_dse.speculative import DRAFT_LENGTH_SEARCH

if TYPE_CHECKING:
    import pandas as pd

    from elmoe_dse.calibration import Calibration
    from elmoe_dse.specs.model import ModelSpec
    from elmoe_dse.specs.platform import PlatformSpec

PAPER_MODELS = ("qwen3-30b-a3b", "glm-4.7-flash", "deepseek-v2-lite", "gpt-oss-20b")
PAPER_DATASETS = ("mt-bench", "gsm8k", "alpaca", "humaneval")
PAPER_BATCHES = (1, 4, 8, 16)
PAPER_CONTEXT = 1024
GAMMAS = tuple(range(DRAFT_LENGTH_SEARCH[0], DRAFT_LENGTH_SEARCH[1] + 1))
PRIOR = ("xpu-pim", "xpu-logicpim", "xpu-nmp", "hb-xpu")
ELMOE = "elmoe3d-8g"

#: (system, platform, policy) evaluated per cell.
SYSTEMS: tuple[tuple[str, str, str], ...] = (
    ("elmoe3d", ELMOE, "elmoe3d"),
    ("xpu", "xpu", "ar"),
    ("xpu-pim", "xpu-pim", "ar"),
    ("xpu-logicpim", "xpu-logicpim", "ar"),
    ("xpu-nmp", "xpu-nmp", "ar"),
    ("hb-xpu", "hb-xpu", "ar-cache"),
    ("elastic-sd", ELMOE, "elastic-sd"),
    ("eagle-sd", ELMOE, "eagle-sd"),
)
SPECULATIVE = tuple(system for system, _, policy in SYSTEMS if is_speculative(policy))

#: The paper's reported values (ELMoE-3D, arXiv 2604.14626: the abstract for the means; its main
#: results for the maxima and its SD-method comparison at B >= 4 on MT-Bench for elastic vs
#: EAGLE; docs/model.md §9 lists each with its source).
PAPER_TARGETS: dict[str, float] = {
    "speedup_vs_xpu_mean": 6.6,
    "speedup_vs_xpu_max": 12.0,
    "energy_vs_xpu_mean": 4.4,
    "energy_vs_xpu_max": 7.2,
    "speedup_vs_best_prior_mean": 2.2,
    "speedup_vs_best_prior_max": 9.9,
    "energy_vs_best_prior_mean": 1.4,
    "energy_vs_best_prior_max": 4.9,
    "elastic_vs_eagle_mean": 1.45,
    "elastic_vs_eagle_max": 2.08,
}
#: The targets the posterior takes as observations (``calibrate``): all ten.
FIT_TARGETS = tuple(PAPER_TARGETS)


@dataclass(frozen=True)
class Target:
    """One headline number: the paper's value, the model's (arithmetic mean or max), the error."""

    name: str
    paper: float
    model: float
    model_geomean: float | None

    @property
    def rel_error(self) -> float:
        return (self.model - self.paper) / self.paper

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "paper": self.paper,
            "model": self.model,
            "model_geomean": self.model_geomean,
            "rel_error": self.rel_error,
            "fitted": self.name in FIT_TARGETS,
        }


@dataclass(frozen=True)
class Reproduction:
    """Per-system rows, per-cell ratios and the headline targets, with the calibration applied
    (``None``: spec defaults) and the wall time of the evaluation."""

    systems: pd.DataFrame
    cells: pd.DataFrame
    targets: tuple[Target, ...]
    calibration: Calibration | None = None
    elapsed_s: float = 0.0


#: The columns :func:`best_over_gamma` returns, with how each is read from a step cost (the
#: names and units a sweep writes for the same quantities, :mod:`elmoe_dse.columns`).
BEST_COLUMNS: dict[str, Callable[[StepCost], Any]] = {
    THROUGHPUT_TOK_PER_S: lambda s: s.throughput_tok_per_s,
    ENERGY_PER_TOKEN_J: lambda s: s.energy_per_token_j,
    TIME_PER_STEP_S: lambda s: s.time_per_step_s,
    DRAFT_LENGTH_TOKENS: lambda s: s.speculative.draft_length_tokens,
    ACCEPTANCE_FRAC: lambda s: s.speculative.acceptance_frac,
    TAU_TOKENS: lambda s: s.speculative.tau_tokens,
    POOL_EXPERTS_PER_LAYER: lambda s: s.cache.pool_experts_per_layer,
    HIT_RATE_FRAC: lambda s: s.cache.hit_rate_frac,
    BOUND: lambda s: s.bound,
    FEASIBLE: lambda s: s.feasible,
}


def best_over_gamma(step: StepCost) -> dict[str, np.ndarray]:
    """Per batch (axis 0), the columns :data:`BEST_COLUMNS` at the draft length (axis 1) with
    the highest throughput."""
    tput = np.asarray(step.throughput_tok_per_s)
    pick = (*np.indices(tput.shape[:-1]), np.argmax(tput, axis=-1))

    def take(x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(x), tput.shape)[pick]

    return {column: take(read(step)) for column, read in BEST_COLUMNS.items()}


def load_inputs(
    calibration: Calibration | None = None, datasets: tuple[str, ...] = PAPER_DATASETS
) -> Inputs:
    """The shipped specs of the paper's systems and ``datasets``, with ``calibration`` applied
    (:func:`elmoe_dse.scenario.resolve_inputs`)."""
    platforms = dict.fromkeys(platform for _, platform, _ in SYSTEMS)
    return resolve_inputs(platforms, datasets, calibration)


@dataclass(frozen=True)
class SystemRun:
    """One system of the grid as evaluated: its platform spec (with the assumption choice's
    platform fields set) and the knobs the choice sets."""

    system: str
    platform_ref: str
    policy: str
    platform: PlatformSpec
    knobs: Mapping[str, Any]
    #: What the choice sets for this system other than the batch threshold B* (a memo key).
    mode_key: str = ""


def system_runs(
    inputs: Inputs,
    choice: Mapping[str, str] | None = None,
    table: AssumptionTable | None = None,
    calibration: Calibration | None = None,
) -> tuple[SystemRun, ...]:
    """The systems of the grid under an assumption ``choice`` (default: every default).

    An alternative that replaces a parameter's prior (a ``ranges.<path>`` override) also moves the
    parameter: to the same prior quantile under the new prior as ``calibration``'s value has under
    the shipped one (the new prior's median without a calibration), so a draw stays a draw.
    """
    table = table if table is not None else assumption_table()
    choice = choice if choice is not None else defaults(table)
    runs = []
    for system, platform, policy in SYSTEMS:
        over = table.overrides(choice, system)
        spec = inputs.platforms[platform]
        fields = dict(over.platform)
        if fields:
            fields = {**fields, **_requantiled(spec.name, fields, calibration)}
            spec = table.apply_platform(spec, fields)
        other = sorted((k, v) for k, v in over.knobs.items() if k != "mode_threshold")
        key = repr((sorted(over.platform.items()), other))
        runs.append(SystemRun(system, platform, policy, spec, dict(over.knobs), key))
    return tuple(runs)


def _requantiled(
    name: str, fields: Mapping[str, Any], calibration: Calibration | None
) -> dict[str, float]:
    """Values of the parameters whose prior ``fields`` replace, at their calibrated quantile."""
    from elmoe_dse.calibration import parameter_range
    from elmoe_dse.specs._base import RangeSpec

    out: dict[str, float] = {}
    for path, prior in fields.items():
        if not path.startswith("ranges."):
            continue
        field = path[len("ranges.") :]
        key = f"platform.{name}.{field}"
        cv = calibration.parameters.get(key) if calibration is not None else None
        q = 0.5 if cv is None else float(parameter_range(key).cdf(cv.value))
        out[field] = float(RangeSpec.model_validate(dict(prior)).ppf(q))
    return out


#: One draw's mode-switching runs, evaluated once for every batch threshold B* and for their
#: speculating half: key -> the per-batch best columns in AR mode and in speculation
#: (:func:`mode_columns`).
ModeMemo = dict[tuple[Any, ...], tuple[dict[str, np.ndarray], dict[str, np.ndarray]]]


@dataclass
class DrawMemo:
    """What the evaluations of one draw share: its specs, its mode-switching runs
    (:data:`ModeMemo`) and the residencies of its routing processes
    (:data:`~elmoe_dse.evaluator.ResidencyMemo`: the same for every parameter that does not
    move routing, reuse, pool or window)."""

    modes: ModeMemo = field(default_factory=dict)
    residency: ResidencyMemo = field(default_factory=dict)
    #: Scenarios by draw, model, platform and dataset (:meth:`~elmoe_dse.scenario.Inputs.scenario`).
    scenarios: dict[tuple[Any, ...], Any] = field(default_factory=dict)
    #: (calibration, inputs) by draw, models and datasets (the specs with the draw applied).
    inputs: dict[tuple[Any, ...], tuple[Any, Inputs]] = field(default_factory=dict)


def switches_modes(policy: str) -> bool:
    """Whether ``policy`` switches between AR and speculation at a batch threshold."""
    from elmoe_dse.policies import POLICIES

    row = POLICIES.get(policy)
    return row is not None and row.mode_switch


def mode_columns(step: StepCost) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per batch, the columns :data:`BEST_COLUMNS` of a mode-switching run evaluated with
    speculation everywhere on draft lengths ``(0, *GAMMAS)``: draft length 0 (AR) and the best
    of the others (speculation)."""
    tput = np.asarray(step.throughput_tok_per_s)
    best = 1 + np.argmax(tput[..., 1:], axis=-1)

    rows = np.indices(tput.shape[:-1])

    def at(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(x), tput.shape)[(*rows, idx)]

    zero = np.zeros(tput.shape[:-1], dtype=int)
    ar = {column: at(read(step), zero) for column, read in BEST_COLUMNS.items()}
    sd = {column: at(read(step), best) for column, read in BEST_COLUMNS.items()}
    return ar, sd


def select_mode(
    ar: dict[str, np.ndarray], sd: dict[str, np.ndarray], threshold: float
) -> dict[str, np.ndarray]:
    """Per batch, AR below ``threshold`` and speculation at or above it; with a NaN threshold
    (``auto``) the faster of the two (AR on a tie), as the evaluator's own switch decides."""
    batches = np.asarray(PAPER_BATCHES, dtype=float)
    if np.isfinite(threshold):
        speculate = batches >= threshold
    else:
        speculate = sd[THROUGHPUT_TOK_PER_S] > ar[THROUGHPUT_TOK_PER_S]
    return {k: np.where(speculate, sd[k], ar[k]) for k in ar}


def speculating_half(policy: str) -> str | None:
    """The policy a mode-switching ``policy`` runs where it speculates: the non-switching row
    of the policy table with the same draft and pool (ELMoE-3D's is Elastic-SD)."""
    from elmoe_dse.policies import POLICIES

    row = POLICIES.get(policy)
    if row is None or not row.mode_switch:
        return None
    same = ("draft", "needs_fast_tier", "caches_experts", "fixed_pool")
    for other in POLICIES.values():
        if not other.mode_switch and all(getattr(other, f) == getattr(row, f) for f in same):
            return other.name
    return None


def run_settings(run: SystemRun) -> tuple[bool, float, dict[str, Any]]:
    """Of one system: whether it switches modes, its batch threshold B* (NaN without a switch)
    and the knob settings it is evaluated at (batches x draft lengths; a mode-switching run
    speculates at every batch and has draft length 0 first, its AR mode)."""
    batches = np.asarray(PAPER_BATCHES, dtype=float)[:, None]
    switch = switches_modes(run.policy)
    gammas = np.asarray(((0,) if switch else ()) + GAMMAS, dtype=float)[None, :]
    knobs = dict(run.knobs)
    threshold = float(knobs.pop("mode_threshold", np.nan)) if switch else np.nan
    settings = {
        "batch_size": batches,
        "context_len": PAPER_CONTEXT,
        "policy": run.policy,
        "draft_length": gammas if is_speculative(run.policy) else 0,
        **knobs,
    }
    if switch:
        settings["mode_threshold"] = 1.0  # speculate at every batch (all >= 1)
    return switch, threshold, settings


def mode_key(run: SystemRun, base: tuple[Any, ...], policy: str | None = None) -> tuple[Any, ...]:
    """The key of a run's mode-switching columns in :attr:`DrawMemo.modes` (``base``: the draw
    and cell; ``policy``: another policy's run on the same platform, default the run's)."""
    return (*base, run.platform_ref, policy or run.policy, run.mode_key)


def remember_modes(
    memo: DrawMemo | None,
    run: SystemRun,
    base: tuple[Any, ...],
    columns: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
) -> None:
    """Keep a mode-switching run's (AR, speculation) columns for its thresholds B* and for its
    speculating half on the same platform."""
    if memo is not None:
        memo.modes[mode_key(run, base)] = columns
        memo.modes[mode_key(run, base, speculating_half(run.policy))] = columns


def _run_columns(
    sc: Any, run: SystemRun, memo: DrawMemo | None, base: tuple[Any, ...]
) -> dict[str, np.ndarray]:
    """Per batch, the best columns of one system on one cell (``base``: the draw and cell).
    A mode-switching run is evaluated once for AR and speculation, shared through ``memo``
    across thresholds B* and with the run of its speculating half on the same platform."""
    switch, threshold, settings = run_settings(run)
    key = mode_key(run, base)
    if memo is not None and key in memo.modes:
        ar, sd = memo.modes[key]
        return select_mode(ar, sd, threshold) if switch else sd
    shared = memo.residency if memo is not None else None
    step = evaluate(
        sc.model,
        run.platform,
        sc.knobs(**settings),
        sc.p,
        quality=sc.quality,
        residency_memo=shared,
    )
    if not switch:
        return best_over_gamma(step)
    ar, sd = mode_columns(step)
    remember_modes(memo, run, base, (ar, sd))
    return select_mode(ar, sd, threshold)


@functools.cache
def paper_model(model_id: str) -> ModelSpec:
    """A shipped model, parsed once per process (specs are frozen)."""
    return load_model(model_id)


def cell_scenario(
    inputs: Inputs, model_id: str, run: SystemRun, dataset: str, memo: DrawMemo | None, key: Any
) -> Any:
    """The scenario of one system on one cell of a draw (``key``), kept in ``memo``."""
    at = (*key, model_id, run.platform_ref, dataset)  # one scenario per draw and cell
    if memo is not None and at in memo.scenarios:
        return memo.scenarios[at]
    sc = inputs.scenario(paper_model(model_id), run.platform_ref, dataset)
    if memo is not None:
        memo.scenarios[at] = sc
    return sc


def cell_rows(
    model_id: str, dataset: str, run: SystemRun, best: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows (one per batch) of one system on one cell from its best columns."""
    return [
        {
            MODEL: model_id,
            DATASET: dataset,
            knob_column("batch_size"): b,
            SYSTEM: run.system,
            PLATFORM: run.platform_ref,
            POLICY: run.policy,
            **{k: (v[i].item() if hasattr(v[i], "item") else v[i]) for k, v in best.items()},
        }
        for i, b in enumerate(PAPER_BATCHES)
    ]


def evaluate_cell(
    model_id: str,
    dataset: str,
    inputs: Inputs,
    runs: tuple[SystemRun, ...] | None = None,
    memo: DrawMemo | None = None,
    memo_key: tuple[Any, ...] = (),
) -> list[dict[str, Any]]:
    """Rows (one per system and batch) of one (model, dataset) cell of the grid. ``memo``
    (keyed by ``memo_key``, the draw) shares a mode-switching run across thresholds B*."""
    rows: list[dict[str, Any]] = []
    for run in runs if runs is not None else system_runs(inputs):
        sc = cell_scenario(inputs, model_id, run, dataset, memo, memo_key)
        best = _run_columns(sc, run, memo, (*memo_key, model_id, dataset))
        rows += cell_rows(model_id, dataset, run, best)
    return rows


def cell_ratios(systems: pd.DataFrame) -> pd.DataFrame:
    """Per (model, dataset, batch): speedups and energy-efficiency gains of ELMoE-3D."""
    import pandas as pd

    keys = [MODEL, DATASET, knob_column("batch_size")]
    tput = systems.pivot_table(index=keys, columns=SYSTEM, values=THROUGHPUT_TOK_PER_S)
    energy = systems.pivot_table(index=keys, columns=SYSTEM, values=ENERGY_PER_TOKEN_J)
    out = pd.DataFrame(index=tput.index)
    out["metric.speedup_vs_xpu"] = tput["elmoe3d"] / tput["xpu"]
    out["metric.energy_vs_xpu"] = energy["xpu"] / energy["elmoe3d"]
    prior_t = tput[list(PRIOR)]
    prior_e = energy[list(PRIOR)]
    out["meta.best_prior_speed"] = prior_t.idxmax(axis=1)
    out["meta.best_prior_energy"] = prior_e.idxmin(axis=1)
    out["metric.speedup_vs_best_prior"] = tput["elmoe3d"] / prior_t.max(axis=1)
    out["metric.energy_vs_best_prior"] = prior_e.min(axis=1) / energy["elmoe3d"]
    out["metric.elastic_vs_eagle"] = tput["elastic-sd"] / tput["eagle-sd"]
    return out.reset_index()


def _geomean(x: np.ndarray) -> float:
    return float(np.exp(np.mean(np.log(x))))


def headline_targets(cells: pd.DataFrame) -> tuple[Target, ...]:
    """The ten targets from the per-cell ratios."""
    out: list[Target] = []
    for metric in (
        "speedup_vs_xpu",
        "energy_vs_xpu",
        "speedup_vs_best_prior",
        "energy_vs_best_prior",
    ):
        values = cells[f"metric.{metric}"].to_numpy(dtype=float)
        out.append(
            Target(
                f"{metric}_mean",
                PAPER_TARGETS[f"{metric}_mean"],
                float(np.mean(values)),
                _geomean(values),
            )
        )
        out.append(
            Target(f"{metric}_max", PAPER_TARGETS[f"{metric}_max"], float(np.max(values)), None)
        )
    sd = cells[(cells["meta.dataset"] == "mt-bench") & (cells["knob.batch_size"] >= 4)]
    values = sd["metric.elastic_vs_eagle"].to_numpy(dtype=float)
    out.append(
        Target(
            "elastic_vs_eagle_mean",
            PAPER_TARGETS["elastic_vs_eagle_mean"],
            float(np.mean(values)),
            _geomean(values),
        )
    )
    out.append(
        Target(
            "elastic_vs_eagle_max",
            PAPER_TARGETS["elastic_vs_eagle_max"],
            float(np.max(values)),
            None,
        )
    )
    return tuple(out)


def reproduce(
    calibration: Calibration | None = None,
    *,
    models: tuple[str, ...] = PAPER_MODELS,
    datasets: tuple[str, ...] = PAPER_DATASETS,
    choice: Mapping[str, str] | None = None,
    table: AssumptionTable | None = None,
) -> Reproduction:
    """Evaluate the paper's grid (or the ``models`` x ``datasets`` part of it) under an
    assumption ``choice`` (default: the defaults) and compute the headline targets."""
    import pandas as pd

    start = time.perf_counter()
    inputs = load_inputs(calibration, datasets)
    runs = system_runs(inputs, choice, table, calibration)
    rows: list[dict[str, Any]] = []
    for model_id in models:
        for dataset in datasets:
            rows.extend(evaluate_cell(model_id, dataset, inputs, runs))
    systems = pd.DataFrame(rows)
    cells = cell_ratios(systems)
    return Reproduction(
        systems=systems,
        cells=cells,
        targets=headline_targets(cells),
        calibration=calibration,
        elapsed_s=time.perf_counter() - start,
    )


def draft_length_edges(systems: pd.DataFrame) -> dict[str, dict[str, int]]:
    """Per speculating system, how many of its speculating rows (best draft length > 0) chose a
    draft length on an edge of the search range :data:`GAMMAS`: at the top (the range, not the
    model, may have decided) and at the bottom (speculation barely pays there)."""
    out: dict[str, dict[str, int]] = {}
    for system in SPECULATIVE:
        g = systems.loc[systems[SYSTEM] == system, DRAFT_LENGTH_TOKENS].to_numpy(dtype=float)
        g = g[np.isfinite(g) & (g > 0)]
        out[system] = {
            "speculating": int(g.size),
            "at_top": int(np.sum(g >= GAMMAS[-1])),
            "at_bottom": int(np.sum(g <= GAMMAS[0])),
            "range_lo": GAMMAS[0],
            "range_hi": GAMMAS[-1],
        }
    return out


def save_reproduce(result: Reproduction, out_dir: Path) -> list[Path]:
    """Write a reproduction to ``out_dir`` (the ``reproduce`` folder of a results directory):
    per-cell ratios (``cells.csv``), per-system rows (``systems.csv``, ``systems.parquet``) and
    the sidecar (``run.json``: targets, calibration, wall time), each written atomically, the
    tables first."""
    from elmoe_dse.results import (
        CELLS_FILE,
        RUN_FILE,
        SYSTEMS_CSV_FILE,
        SYSTEMS_FILE,
        ensure_dir,
        sidecar,
        write_json,
        write_table,
    )

    cal = result.calibration
    ensure_dir(out_dir)
    return [
        write_table(out_dir / CELLS_FILE, result.cells),
        write_table(out_dir / SYSTEMS_CSV_FILE, result.systems),
        write_table(out_dir / SYSTEMS_FILE, result.systems),
        write_json(
            out_dir / RUN_FILE,
            sidecar(
                command="reproduce",
                calibration=cal.model_dump() if cal else None,
                elapsed_s=result.elapsed_s,
                targets=[t.as_dict() for t in result.targets],
                draft_length_edges=draft_length_edges(result.systems),
            ),
        ),
    ]


#: The systems whose speculating cells carry Elastic-SD's per-token acceptance.
ELASTIC_SYSTEMS = ("elmoe3d", "elastic-sd")
#: The systems of the SD-method comparison, needed on MT-Bench only (:func:`target_values`).
SD_COMPARISON = ("elastic-sd", "eagle-sd")
SD_DATASET = "mt-bench"
SD_MIN_BATCH = 4


def target_rows(
    inputs: Inputs,
    runs: tuple[SystemRun, ...],
    models: tuple[str, ...] = PAPER_MODELS,
    datasets: tuple[str, ...] = PAPER_DATASETS,
    memo: DrawMemo | None = None,
    memo_key: tuple[Any, ...] = (),
) -> list[dict[str, Any]]:
    """The rows the targets and the acceptance constraint need: every system on every cell,
    except EAGLE-SD off MT-Bench (it enters only the SD-method comparison)."""
    rows: list[dict[str, Any]] = []
    for dataset in datasets:
        keep = cell_runs(runs, dataset)
        for model_id in models:
            rows.extend(evaluate_cell(model_id, dataset, inputs, keep, memo, memo_key))
    return rows


def cell_runs(runs: tuple[SystemRun, ...], dataset: str) -> tuple[SystemRun, ...]:
    """The runs :func:`target_rows` evaluates on ``dataset`` (EAGLE-SD on MT-Bench only)."""
    return tuple(r for r in runs if dataset == SD_DATASET or r.system != "eagle-sd")


def target_values(rows: list[dict[str, Any]]) -> dict[str, float]:
    """The ten targets (arithmetic means and maxima, :data:`PAPER_TARGETS` order) from per-system
    rows, without pandas: the same numbers as :func:`headline_targets` of :func:`cell_ratios`."""
    bkey = knob_column("batch_size")
    tput: dict[tuple[Any, ...], dict[str, float]] = {}
    energy: dict[tuple[Any, ...], dict[str, float]] = {}
    for r in rows:
        key = (r[MODEL], r[DATASET], r[bkey])
        tput.setdefault(key, {})[r[SYSTEM]] = float(r[THROUGHPUT_TOK_PER_S])
        energy.setdefault(key, {})[r[SYSTEM]] = float(r[ENERGY_PER_TOKEN_J])
    metrics: dict[str, list[float]] = {m: [] for m in _CELL_METRICS}
    sd: list[float] = []
    for key in sorted(tput):
        t, e = tput[key], energy[key]
        metrics["speedup_vs_xpu"].append(t["elmoe3d"] / t["xpu"])
        metrics["energy_vs_xpu"].append(e["xpu"] / e["elmoe3d"])
        metrics["speedup_vs_best_prior"].append(t["elmoe3d"] / max(t[s] for s in PRIOR))
        metrics["energy_vs_best_prior"].append(min(e[s] for s in PRIOR) / e["elmoe3d"])
        if key[1] == SD_DATASET and key[2] >= SD_MIN_BATCH and "eagle-sd" in t:
            sd.append(t["elastic-sd"] / t["eagle-sd"])
    metrics["elastic_vs_eagle"] = sd
    out: dict[str, float] = {}
    for metric, values in metrics.items():
        arr = np.asarray(values, dtype=float)
        out[f"{metric}_mean"] = float(np.mean(arr)) if arr.size else float("nan")
        out[f"{metric}_max"] = float(np.max(arr)) if arr.size else float("nan")
    return {name: out[name] for name in PAPER_TARGETS}


_CELL_METRICS = ("speedup_vs_xpu", "energy_vs_xpu", "speedup_vs_best_prior", "energy_vs_best_prior")


def max_elastic_acceptance(rows: list[dict[str, Any]]) -> float:
    """The highest per-token acceptance of any Elastic-SD cell (0 if none speculates)."""
    values = [
        float(r[ACCEPTANCE_FRAC])
        for r in rows
        if r[SYSTEM] in ELASTIC_SYSTEMS
        and float(r[DRAFT_LENGTH_TOKENS]) > 0
        and np.isfinite(float(r[ACCEPTANCE_FRAC]))
    ]
    return max(values, default=0.0)


BANDS_FILE = "bands.json"


def save_bands(bands: dict[str, Any], out_dir: Path) -> Path:
    """Write the ensemble summary (:func:`elmoe_dse.explore.ensemble.ensemble_bands`) beside the
    per-cell tables (``bands.json``), atomically."""
    from elmoe_dse.results import ensure_dir, write_json

    ensure_dir(out_dir)
    return write_json(out_dir / BANDS_FILE, bands)
