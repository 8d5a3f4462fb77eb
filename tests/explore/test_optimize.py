"""The Optuna search: the space maps exactly onto the grid's values, the search reaches most of
the exhaustive grid's hypervolume, a killed run resumes to exactly N trials, and workers sharing
a storage (SQLite or PostgreSQL) never duplicate a trial number."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState, create_trial

from elmoe_dse.explore.optimize import (
    OWNER_ATTR,
    OptimizeError,
    distribution,
    hv_fraction,
    open_storage,
    point_from_params,
    resolve_options,
    run_optimize,
    save_optimize,
    study_plans,
)
from elmoe_dse.specs.sweep import SweepSpec, load_sweep, sweep_from_dict

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
#: Measured 0.993 (100 TPE trials per study, seed 0); asserted with margin.
QUICK_HV_FRACTION_MIN = 0.9


def tiny(**extra: Any) -> SweepSpec:
    data: dict[str, Any] = {
        "schema_version": 1,
        "name": "tiny",
        "models": ["deepseek-v2-lite"],
        "platforms": ["elmoe3d-8g"],
        "knobs": {
            "policy": "elastic-sd",
            "batch_size": [1, 8],
            "draft_bits": {"start": 2, "stop": 8},
            "draft_length": {"start": 1, "stop": 8},
            "hb_capacity_gb": [2, 4, 8],
            "rounding": ["round", "lsb-augmented"],
        },
        "objectives": [
            {"metric": "metric.throughput_tok_per_s", "direction": "maximize"},
            {"metric": "metric.energy_per_token_j", "direction": "minimize"},
        ],
        "constraints": ["metric.latency_per_token_s <= 0.05"],
    }
    data.update(extra)
    return sweep_from_dict(data)


def states(url: str, name: str) -> tuple[list[int], dict[TrialState, int]]:
    study = optuna.load_study(study_name=name, storage=open_storage(url))
    trials = study.get_trials(deepcopy=False)
    counts: dict[TrialState, int] = {}
    for t in trials:
        counts[t.state] = counts.get(t.state, 0) + 1
    return [t.number for t in trials], counts


# ---- CLI over file -----------------------------------------------------------------------------


def test_options_take_the_files_values_unless_given(tmp_path: Path) -> None:
    spec = tiny(seed=7, optimize={"trials": 11, "sampler": "random"})
    options = resolve_options(spec, out_dir=tmp_path)
    assert (options.trials, options.seed, options.sampler) == (11, 7, "random")
    assert options.study == "tiny" and options.workers == 1
    assert options.storage == f"sqlite:///{(tmp_path / 'study.db').resolve()}"
    assert options.default_storage
    given = resolve_options(
        spec,
        out_dir=tmp_path,
        trials=3,
        storage="sqlite:///elsewhere.db",
        study="s",
        workers=2,
        seed=0,
        sampler="tpe",
    )
    assert (given.trials, given.seed, given.sampler, given.study) == (3, 0, "tpe", "s")
    assert given.storage == "sqlite:///elsewhere.db" and not given.default_storage


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"trials": 0}, "--trials 0: give at least 1"),
        ({"workers": 0}, "--workers 0: give at least 1"),
        ({"sampler": "cmaes"}, "--sampler cmaes: use tpe or random"),
    ],
)
def test_options_reject_bad_values(tmp_path: Path, given: dict[str, Any], message: str) -> None:
    with pytest.raises(OptimizeError, match=message):
        resolve_options(tiny(), out_dir=tmp_path, **given)


# ---- the search space --------------------------------------------------------------------------


def test_distributions_have_exactly_the_grids_values() -> None:
    assert distribution((2.0, 3.0, 4.0, 5.0)) == IntDistribution(2, 5, step=1)
    assert distribution((2.0, 4.0, 6.0)) == IntDistribution(2, 6, step=2)
    assert distribution((0.0, 0.25, 0.5)) == FloatDistribution(0.0, 0.5, step=0.25)
    assert distribution((2.0, 4.0, 8.0, 16.0)) == CategoricalDistribution([2, 4, 8, 16])
    assert distribution((float("nan"), 16.0)) == CategoricalDistribution(["auto", 16])
    assert distribution(("round", "truncate")) == CategoricalDistribution(["round", "truncate"])


def test_plans_one_study_per_group_or_batch_as_a_knob() -> None:
    plans = study_plans(tiny(), "tiny")
    assert [p.name for p in plans] == ["tiny[batch_size=1]", "tiny[batch_size=8]"]
    assert "batch_size" not in plans[0].space and plans[0].group == {"batch_size": 1.0}
    assert set(plans[0].space) == {"draft_bits", "draft_length", "hb_capacity_gb", "rounding"}
    (one,) = study_plans(tiny(group_by=[]), "tiny")
    assert one.name == "tiny" and "batch_size" in one.space
    point = point_from_params(
        one,
        {
            "batch_size": 8,
            "draft_bits": 3,
            "draft_length": 2,
            "hb_capacity_gb": 4,
            "rounding": "round",
        },
    )
    assert point["batch_size"] == 8.0 and point["hb_capacity_gb"] == 4.0
    assert point["model"] == "deepseek-v2-lite" and point["policy"] == "elastic-sd"


# ---- quality of the search ---------------------------------------------------------------------


def test_search_reaches_most_of_the_grid_hypervolume_on_quick(tmp_path: Path) -> None:
    spec = load_sweep(SWEEPS / "quick.toml")
    result = run_optimize(spec, out_dir=tmp_path, trials=100, seed=0)
    fraction = hv_fraction(result)
    assert fraction >= QUICK_HV_FRACTION_MIN, fraction
    for study in result.studies:
        assert study["normalization"] == "grid front"
        assert study["complete_trials"] == 100
        history = np.asarray(study["hypervolume_history"])
        assert len(history) == 100 and np.all(np.diff(history) >= -1e-12)
        assert study["hypervolume_fraction_of_grid"] <= 1.0 + 1e-9  # same grid values
    frame = result.frame
    assert {"meta.study", "meta.trial_number", "meta.study_hypervolume", "meta.pareto"} <= set(
        frame.columns
    )
    assert (frame["metric.latency_per_token_s"] <= 0.1).all()
    for study in result.studies:  # multivariate TPE repeats itself little on this space
        assert 0.5 * study["complete_trials"] <= study["distinct_points"] <= 100


def test_a_space_smaller_than_the_budget_suggests_a_sweep(tmp_path: Path) -> None:
    from elmoe_dse.explore.grid import expand
    from elmoe_dse.explore.optimize import enumerable_note

    spec = load_sweep(SWEEPS / "quick.toml")
    per_study = expand(spec).size / len(study_plans(spec, "quick"))
    result = run_optimize(spec, out_dir=tmp_path, trials=5, seed=0)
    assert enumerable_note(result.studies, 5) is None  # 5 trials of 1,344 points: search it
    note = enumerable_note(result.studies, int(per_study))
    assert note is not None and "elmoe-dse sweep" in note and f"{per_study:,.0f}" in note
    assert all(s["space_points"] == per_study for s in result.studies)
    save_optimize(result, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "run.json").read_text())["sweep_suggested"] is None


# ---- resuming ----------------------------------------------------------------------------------

RUNNER = "import typer; from elmoe_dse.cli.optimize import optimize; typer.run(optimize)"


def write_tiny(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(
        """schema_version = 1
name = "tiny"
models = ["deepseek-v2-lite"]
platforms = ["elmoe3d-8g"]
constraints = ["metric.latency_per_token_s <= 0.05"]

[knobs]
policy = "elastic-sd"
batch_size = [1, 8]
draft_bits = { start = 2, stop = 8 }
draft_length = { start = 1, stop = 8 }
hb_capacity_gb = [2, 4, 8]
rounding = ["round", "lsb-augmented"]

[[objectives]]
metric = "metric.throughput_tok_per_s"
direction = "maximize"

[[objectives]]
metric = "metric.energy_per_token_j"
direction = "minimize"
"""
    )
    return path


def complete(url: str, names: list[str]) -> int:
    try:
        return sum(states(url, n)[1].get(TrialState.COMPLETE, 0) for n in names)
    except Exception:  # the study or the file does not exist yet
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill-9"])
def test_killed_run_resumes_to_exactly_n_trials(tmp_path: Path, sig: signal.Signals) -> None:
    # enough trials that the batched in-memory search is still running at the first checkpoint
    # that holds 10: checkpoints come about every second and the two studies run about 180
    # trials per second here, so 2 x 150 could all finish before the first checkpoint and the
    # kill then met a finished search (seen once in make test); 2 x 300 (of the 336 points of
    # a study) take about 3 s
    n = 300
    sweep, out = write_tiny(tmp_path), tmp_path / "out"
    url = f"sqlite:///{out / 'study.db'}"
    names = ["tiny[batch_size=1]", "tiny[batch_size=8]"]
    cmd = [sys.executable, "-c", RUNNER, str(sweep), "--trials", str(n), "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while complete(url, names) < 10 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed; raise n"
    os.kill(proc.pid, sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (130 if sig == signal.SIGINT else -9), err.decode()
    if sig == signal.SIGINT:
        assert b"run the same command again" in err
    interrupted = complete(url, names)
    assert 10 <= interrupted < 2 * n
    assert not (out / "results.parquet").exists()  # nothing half-written

    rerun = subprocess.run(cmd, capture_output=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr.decode()
    for name in names:
        numbers, counts = states(url, name)
        assert counts[TrialState.COMPLETE] == n
        assert counts.get(TrialState.RUNNING, 0) == 0
        assert len(numbers) == len(set(numbers))
    table = pd.read_parquet(out / "results.parquet")
    record = json.loads((out / "run.json").read_text())
    assert record["points"]["complete_trials"] == 2 * n
    assert len(table) + record["points"]["rejected_points"] == 2 * n
    assert not [p for p in out.iterdir() if p.suffix == ".tmp"]


def test_trials_left_running_by_a_dead_process_are_failed_not_counted(tmp_path: Path) -> None:
    spec = tiny(group_by=[])
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_optimize(spec, out_dir=tmp_path, storage=url, trials=5)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    token = f"{os.uname().nodename}:{dead.stdout.strip()}:0"
    storage = open_storage(url)
    study_id = storage.get_study_id_from_name("tiny")
    for _ in range(2):
        storage.create_new_trial(
            study_id,
            template_trial=create_trial(state=TrialState.RUNNING, user_attrs={OWNER_ATTR: token}),
        )
    result = run_optimize(spec, out_dir=tmp_path, storage=url, trials=8)
    _, counts = states(url, "tiny")
    assert counts == {TrialState.COMPLETE: 8, TrialState.FAIL: 2}
    assert result.studies[0]["complete_trials"] == 8


def test_a_study_from_another_sweep_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_optimize(tiny(group_by=[]), out_dir=tmp_path, storage=url, trials=2)
    changed = tiny(group_by=[], constraints=["metric.latency_per_token_s <= 0.04"])
    with pytest.raises(OptimizeError, match=r"different sweep.*--study NAME"):
        run_optimize(changed, out_dir=tmp_path, storage=url, trials=2)


def test_unreachable_storage_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(OptimizeError, match=r"--storage postgresql\+psycopg2://u:\*\*\*@"):
        run_optimize(
            tiny(),
            out_dir=tmp_path,
            storage="postgresql+psycopg2://u:secret@127.0.0.1:1/nodb",
            trials=1,
        )


# ---- shared storage ----------------------------------------------------------------------------


def run_two_workers(url: str, tmp_path: Path, prefix: str) -> None:
    n = 60
    spec = tiny(group_by=[])
    result = run_optimize(spec, out_dir=tmp_path, storage=url, study=prefix, trials=n, workers=2)
    numbers, counts = states(url, prefix)
    assert len(numbers) == len(set(numbers)), "duplicated trial numbers"
    assert sorted(numbers) == list(range(len(numbers)))
    assert counts[TrialState.COMPLETE] == n
    assert counts.get(TrialState.RUNNING, 0) == 0
    assert result.studies[0]["complete_trials"] == n
    study = optuna.load_study(study_name=prefix, storage=open_storage(url))
    owners = {t.user_attrs[OWNER_ATTR] for t in study.get_trials(deepcopy=False)}
    assert len(owners) == 2, "both workers should have run trials"


def test_two_workers_share_the_default_sqlite_file(tmp_path: Path) -> None:
    run_two_workers(f"sqlite:///{tmp_path / 'study.db'}", tmp_path, "shared")


def postgres_url() -> str:
    """The test server's URL; skip without one, except under CI=true where it must exist."""
    url = os.environ.get("ELMOE_TEST_POSTGRES_URL", "")
    required = os.environ.get("CI", "").lower() == "true"
    reason = ""
    if not url:
        reason = "ELMOE_TEST_POSTGRES_URL is not set (start a server: make postgres)"
    else:
        try:
            import sqlalchemy

            with sqlalchemy.create_engine(url).connect():
                pass
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            reason = f"PostgreSQL at {url.split('@')[-1]} is unreachable: {first}"
    if reason and required:
        pytest.fail(f"CI=true needs the PostgreSQL storage test to run: {reason}")
    if reason:
        pytest.skip(reason)
    return url


def test_two_workers_share_a_postgresql_study(tmp_path: Path) -> None:
    url = postgres_url()
    prefix = f"pg-{uuid.uuid4().hex[:12]}"
    try:
        run_two_workers(url, tmp_path, prefix)
    finally:
        optuna.delete_study(study_name=prefix, storage=url)


def test_studies_can_be_grouped_by_scenario_axes() -> None:
    """group_by may name a scenario axis (model) next to a knob (batch_size): one study each."""
    from elmoe_dse.explore.optimize import study_plans

    spec = tiny(models=["deepseek-v2-lite", "olmoe-1b-7b"], group_by=["model", "batch_size"])
    plans = study_plans(spec, "tiny")
    assert [(p.group["model"], p.group["batch_size"]) for p in plans] == [
        ("deepseek-v2-lite", 1.0),
        ("deepseek-v2-lite", 8.0),
        ("olmoe-1b-7b", 1.0),
        ("olmoe-1b-7b", 8.0),
    ]
    assert "model" not in plans[0].space and "batch_size" not in plans[0].space


# ---- what optuna-dashboard shows ---------------------------------------------------------------


def test_studies_carry_metric_names_sweep_version_and_infeasible_counts(tmp_path: Path) -> None:
    from elmoe_dse import __version__
    from elmoe_dse.explore.sweep import resolved_sweep

    spec = tiny(group_by=[], constraints=["metric.latency_per_token_s <= 0.012"])
    url = f"sqlite:///{tmp_path / 'study.db'}"
    run_optimize(spec, out_dir=tmp_path, storage=url, trials=20, sampler="random")
    study = optuna.load_study(study_name="tiny", storage=open_storage(url))
    assert study.metric_names == ["metric.throughput_tok_per_s", "metric.energy_per_token_j"]
    assert json.loads(study.user_attrs["elmoe_dse.sweep"]) == json.loads(
        json.dumps(resolved_sweep(spec), default=str)
    )
    assert study.user_attrs["elmoe_dse.version"] == f"elmoe-dse {__version__}"
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for t in trials:
        values = {k: v for k, v in t.user_attrs.items() if k.startswith("constraint: ")}
        assert set(values) == {
            "constraint: feasible",
            "constraint: c0: metric.latency_per_token_s <= 0.012",
            "constraint: objectives finite",
        }
        assert t.user_attrs["feasible"] == all(v <= 0 for v in values.values())
        optuna_own = {
            k.removeprefix("constraints:"): v
            for k, v in t.system_attrs.items()
            if k.startswith("constraints:")
        }
        assert optuna_own == {k.removeprefix("constraint: "): v for k, v in values.items()}
    infeasible = sum(not t.user_attrs["feasible"] for t in trials)
    assert 0 < infeasible < len(trials), "the constraint should reject some trials, not all"
    assert study.user_attrs["elmoe_dse.trials"] == {
        "complete": 20,
        "feasible": 20 - infeasible,
        "infeasible": infeasible,
    }
