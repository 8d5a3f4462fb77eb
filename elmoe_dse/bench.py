"""``python -m elmoe_dse.bench`` (``make bench``): how fast the grid and the search run, one core.

Prints, each next to its target:

- **points/s**: design points per second through the vectorized evaluator on an Elastic-SD grid
  (Qwen3-30B-A3B on ELMoE-3D 8 GB, MT-Bench profile; batch size, draft bits, draft length, pool
  size and HB capacity varied), the way ``sweep`` runs it: chunks of
  :data:`~elmoe_dse.explore.grid.CHUNK_POINTS` points, results columns included, one process;
- **trials/s**: completed Optuna trials per second of ``optimize`` on ``sweeps/quick.toml``'s
  space (TPE, a fresh SQLite study in a temporary folder, one worker);
- **optimize on the paper sweep**: ``optimize sweeps/paper.toml --trials 300`` for 3 seeds
  (batched trials, studies in memory, the default SQLite file in a temporary folder): trials/s
  (wall and per CPU second, the search only) and its ratio to the previous release's path (one
  trial at a time written straight to SQLite, on 2 of the 20 studies) measured in the same
  run; the hypervolume fraction of the exhaustive grid's front, median and worst over the 60
  (seed, study) runs and over seeds of each seed's mean over studies;
- **start-up**: wall time of ``elmoe-dse --help`` in a fresh process (best of 5; lazy imports);
- **reproduce**: wall time of the paper's 4 x 4 x 4 reproduction grid in-process;
- **reproduce CLI**: wall and CPU (user + sys) time of ``elmoe-dse reproduce`` with its default
  bands, in a fresh process writing to a temporary folder (one run; it uses its 2 worker
  processes), and its ratio to the wall time before the locality solves were vectorized;
- **sweep workers**: end-to-end points/s (wall time) of ``elmoe-dse sweep sweeps/paper.toml
  --workers K`` for K = 1 and 2, each in a fresh process writing to a temporary folder, their
  ratio (the speedup of a second core), whether the two ``results.parquet`` are byte-identical,
  and the 1-minute load average before the runs (the machine may be shared);
- **sweep memory**: peak resident memory (``ru_maxrss``) and end-to-end points/s of
  ``elmoe-dse sweep --workers 1`` in a fresh process on generated ~1 M and ~10 M point sweep
  files (the
  Elastic-SD grid with a longer ``context_len`` axis; results written to a temporary folder): the
  peak stays under the target and does not grow with the grid;
- **figure memory**: peak resident memory and wall time of ``elmoe-dse plot`` and
  ``elmoe-dse report``, each in a fresh process, on the ~10 M point sweep folder the sweep
  benchmark just wrote (a real sweep, not synthesized rows): under the target whatever the size.

Timings only; no assertion anywhere depends on them.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: Issue 6: the vectorized evaluator sweeps at least a million design points per second.
TARGET_POINTS_PER_S = 1_000_000.0
#: Enough for ``optimize sweeps/paper.toml --trials 300`` (20 studies, 6,000 trials) in ~10 min.
TARGET_TRIALS_PER_S = 10.0
#: ``elmoe-dse --help`` in under 0.15 s of CPU (answered by cli/toplevel.py, without Typer).
TARGET_STARTUP_S = 0.15
#: Issue 6: ``reproduce`` finishes in under 10 s.
TARGET_REPRODUCE_S = 10.0
#: Issue 10: ``elmoe-dse reproduce`` (bands included) finishes in under 30 s on 2 cores.
TARGET_REPRODUCE_CLI_S = 30.0
#: Wall time of ``elmoe-dse reproduce --out DIR`` at commit b09f625 (bisection chain solves), on
#: the project's 2-core machine with nothing else running: the reference of the printed ratio.
BEFORE_REPRODUCE_CLI_S = 201.0

#: Issue 6: a 10-million-point sweep runs in bounded memory (the peak independent of the grid).
TARGET_SWEEP_PEAK_BYTES = 1.5e9
#: Issue 15: ``plot`` and ``report`` of a 10 M point sweep folder stay under 1 GB peak RSS.
TARGET_FIGURES_PEAK_BYTES = 1e9
#: ``context_len`` values of the memory benchmark: 4 x 233,856 ~ 1 M and 43 x ~ 10 M points.
SWEEP_MEMORY_CONTEXTS = (4, 43)

QUICK_SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "quick.toml"
PAPER_SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "paper.toml"
#: Issue 14: ``optimize sweeps/paper.toml --trials 300`` reaches these fractions of the exhaustive
#: front's hypervolume, median and worst over (seed, study) runs.
TARGET_HV_MEDIAN = 0.98
TARGET_HV_WORST = 0.90
#: Seeds and trials per study of the search-quality benchmark (the issue's 3 seeds x 300).
OPTIMIZE_SEEDS = (0, 1, 2)
OPTIMIZE_TRIALS = 300
#: Studies of sweeps/paper.toml run the previous release's way (one trial at a time, straight
#: into SQLite) for the trials/s ratio: 2 of the 20, each per-trial cost being alike.
BEFORE_STUDIES = 2
#: ``--workers`` values of the scaling benchmark.
SWEEP_WORKERS = (1, 2)
#: Issue 14: ``--workers 2`` at least 1.7x faster in wall time than one, on an idle machine.
TARGET_WORKERS_2_SPEEDUP = 1.7
#: ``elmoe-dse`` in a fresh interpreter: ``python -c CLI ARGS...``.
CLI = "import sys; sys.argv[0] = 'elmoe-dse'; from elmoe_dse.cli.main import main; main()"


def elastic_sd_sweep(name: str = "bench", contexts: int = 1) -> dict[str, Any]:
    """The Elastic-SD sweep of the benchmarks (233,856 points per ``context_len`` value)."""
    knobs: dict[str, Any] = {
        "policy": "elastic-sd",
        "rounding": "lsb-augmented",
        "batch_size": {"start": 1, "stop": 16},
        "draft_bits": {"start": 2, "stop": 8},
        "draft_length": {"start": 1, "stop": 8},
        "pool_experts": ["auto", 8, 16, 24, 32, 48, 64, 96, 128],
        "hb_capacity_gb": {"start": 2, "stop": 16, "step": 0.5},
    }
    if contexts > 1:
        knobs["context_len"] = [256 * (i + 1) for i in range(contexts)]
    return {
        "schema_version": 1,
        "name": name,
        "models": ["qwen3-30b-a3b"],
        "platforms": ["elmoe3d-8g"],
        "datasets": ["mt-bench"],
        "knobs": knobs,
        "objectives": [
            {"metric": "metric.throughput_tok_per_s", "direction": "maximize"},
            {"metric": "metric.energy_per_token_j", "direction": "minimize"},
        ],
    }


def bench_grid(repeats: int = 3) -> tuple[int, float]:
    """(points, best seconds) of the Elastic-SD grid through the sweep's evaluation loop."""
    from elmoe_dse.explore.grid import expand
    from elmoe_dse.explore.sweep import evaluate_grid
    from elmoe_dse.specs.sweep import sweep_from_dict

    spec = sweep_from_dict(elastic_sd_sweep())
    grid = expand(spec)
    best = float("inf")
    for _ in range(repeats):  # the best of a few runs: the first also loads specs and caches
        t0 = time.perf_counter()
        evaluate_grid(spec, grid)
        best = min(best, time.perf_counter() - t0)
    return grid.size, best


def bench_trials(trials: int = 100) -> tuple[int, float]:
    """(completed trials, seconds of search) of optimize on the quick sweep's space."""
    from elmoe_dse.explore.optimize import run_optimize
    from elmoe_dse.specs.sweep import load_sweep

    spec = load_sweep(QUICK_SWEEP)
    with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
        result = run_optimize(spec, out_dir=Path(tmp), trials=trials, compare_grid=False)
    done = sum(s["complete_trials"] for s in result.studies)
    return done, result.timing_s["search_s"]


def bench_optimize_paper(
    seeds: tuple[int, ...] = OPTIMIZE_SEEDS, trials: int = OPTIMIZE_TRIALS
) -> list[dict[str, Any]]:
    """Per seed: ``optimize sweeps/paper.toml --trials N --seed S`` in-process on the default
    SQLite file in a temporary folder (batched, in memory), scored against the exhaustive grid:
    completed trials, search wall and CPU seconds, and each study's hypervolume fraction."""
    from elmoe_dse.explore.optimize import run_optimize
    from elmoe_dse.specs.sweep import load_sweep

    spec = load_sweep(PAPER_SWEEP)
    runs = []
    for seed in seeds:
        with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
            result = run_optimize(spec, out_dir=Path(tmp), trials=trials, seed=seed)
        runs.append(
            {
                "seed": seed,
                "trials": sum(s["complete_trials"] for s in result.studies),
                "search_s": result.timing_s["search_s"],
                "cpu_s": result.timing_s["search_cpu_s"],
                "fractions": [s["hypervolume_fraction_of_grid"] for s in result.studies],
            }
        )
    return runs


def bench_optimize_before(trials: int = OPTIMIZE_TRIALS) -> tuple[int, float, float]:
    """(trials, wall s, CPU s) of the first :data:`BEFORE_STUDIES` studies of sweeps/paper.toml
    searched the previous release's way: one trial at a time, each written to SQLite directly."""
    from elmoe_dse.explore.optimize import (
        WorkerTask,
        prepare_studies,
        run_worker,
        study_plans,
    )
    from elmoe_dse.explore.storage import default_storage
    from elmoe_dse.specs.sweep import load_sweep

    spec = load_sweep(PAPER_SWEEP)
    plans = tuple(study_plans(spec, "before")[:BEFORE_STUDIES])
    with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
        url = default_storage(Path(tmp))
        prepare_studies(spec, url, plans)
        task = WorkerTask(spec, url, plans, trials, seed=0, sampler="tpe", worker=0, batch=1)
        t0, cpu0 = time.perf_counter(), time.process_time()
        done = run_worker(task)
        return done, time.perf_counter() - t0, time.process_time() - cpu0


def print_optimize_paper() -> None:
    """The trials/s and hypervolume lines of ``optimize`` on sweeps/paper.toml (issue 14)."""
    import numpy as np

    before_n, before_s, before_cpu = bench_optimize_before()
    runs = bench_optimize_paper()
    trials = sum(r["trials"] for r in runs)
    rate, cpu_rate = (
        trials / sum(r["search_s"] for r in runs),
        trials / sum(r["cpu_s"] for r in runs),
    )
    print(
        f"optimize: paper.toml, {len(runs)} seeds x {runs[0]['trials']:,} trials (batched, "
        f"in memory) {rate:,.1f} trials/s wall, {cpu_rate:,.1f} per CPU s; "
        f"{rate / (before_n / before_s):.1f}x wall, {cpu_rate / (before_n / before_cpu):.1f}x CPU "
        f"the previous release's path (one trial at a time into SQLite: {before_n / before_s:.1f} "
        f"trials/s, {before_n / before_cpu:.1f} per CPU s, {BEFORE_STUDIES} studies)"
    )
    fractions = np.asarray([f for r in runs for f in r["fractions"]])
    means = [float(np.mean(r["fractions"])) for r in runs]
    median, worst = float(np.median(fractions)), float(np.min(fractions))
    ok = median >= TARGET_HV_MEDIAN and worst >= TARGET_HV_WORST
    print(
        f"optimize: hypervolume fraction of the exhaustive front over {len(fractions)} (seed, "
        f"study) runs: median {median:.3f}, worst {worst:.3f}; per-seed mean over studies "
        f"median {float(np.median(means)):.3f}, worst {min(means):.3f} (target median >= "
        f"{TARGET_HV_MEDIAN:g}, worst >= {TARGET_HV_WORST:g}: "
        f"{'meets the target' if ok else 'BELOW the target'})"
    )


def bench_startup(entry: str = "elmoe_dse.cli.toplevel", repeats: int = 5) -> float:
    """Least CPU time (user + sys) of ``elmoe-dse --help`` through ENTRY's ``main`` in a fresh
    interpreter, seconds. ``elmoe_dse.cli.main`` is the previous release's entry point (it builds
    the whole Typer app), measured in the same run for the ratio."""
    import resource
    import subprocess

    cmd = [
        sys.executable,
        "-c",
        f"import sys; sys.argv = ['elmoe-dse', '--help']; from {entry} import main; main()",
    ]
    best = float("inf")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run(cmd, capture_output=True, check=False)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = min(best, cpu)
    return best


def bench_reproduce(repeats: int = 3) -> float:
    """Best wall time of the paper reproduction with the shipped calibration, seconds."""
    from elmoe_dse.calibration import load_calibration
    from elmoe_dse.explore.reproduce import reproduce

    cal = load_calibration()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        reproduce(cal)
        best = min(best, time.perf_counter() - t0)
    return best


def bench_reproduce_cli() -> tuple[float, float]:
    """(wall seconds, CPU seconds user + sys of it and its workers) of one ``elmoe-dse
    reproduce`` in a fresh process, results written to a temporary folder."""
    import resource
    import subprocess

    cmd = [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'elmoe-dse'; from elmoe_dse.cli.main import main; main()",
        "reproduce",
    ]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
        t0 = time.perf_counter()
        subprocess.run([*cmd, "--out", f"{tmp}/out"], capture_output=True, check=True)
        wall_s = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall_s, cpu_s


#: Runs its arguments as a child process and prints the child's peak resident memory (KiB).
_PEAK_OF_CHILD = (
    "import resource, subprocess, sys; "
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL); "
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def bench_sweep_memory(contexts: int, keep: Path | None = None) -> tuple[int, float, float]:
    """(points, peak resident bytes, wall seconds) of ``elmoe-dse sweep`` on the Elastic-SD
    sweep with ``contexts`` context lengths, in a fresh process writing to a temporary folder
    (or to ``keep``, left in place for :func:`bench_figures_memory`)."""
    import subprocess

    from elmoe_dse.explore.grid import expand
    from elmoe_dse.specs.sweep import sweep_from_dict

    data = elastic_sd_sweep(f"memory-{contexts}", contexts)
    points = expand(sweep_from_dict(data)).size
    sweep = [sys.executable, "-c", CLI, "sweep", "--workers", "1"]
    with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
        toml = Path(tmp) / "sweep.toml"
        toml.write_text(_toml(data))
        t0 = time.perf_counter()
        target = str(keep) if keep is not None else f"{tmp}/out"
        out = subprocess.run(
            [sys.executable, "-c", _PEAK_OF_CHILD, *sweep, str(toml), "--out", target],
            capture_output=True,
            text=True,
            check=True,
        )
        wall_s = time.perf_counter() - t0
    return points, int(out.stdout.split()[-1]) * 1024.0, wall_s


def bench_sweep_workers(
    sweep_file: Path = PAPER_SWEEP, workers: tuple[int, ...] = SWEEP_WORKERS
) -> tuple[int, dict[int, float], bool]:
    """(points, wall seconds per ``--workers`` value, whether every run wrote the same
    ``results.parquet`` bytes) of ``elmoe-dse sweep FILE --workers K``, each in a fresh process
    writing to a temporary folder."""
    import subprocess

    from elmoe_dse.explore.grid import expand
    from elmoe_dse.specs.sweep import load_sweep

    points = expand(load_sweep(sweep_file)).size
    walls: dict[int, float] = {}
    tables: set[bytes] = set()
    with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
        for k in workers:
            out = Path(tmp) / f"workers-{k}"
            cmd = [sys.executable, "-c", CLI, "sweep", str(sweep_file), "--out", str(out)]
            t0 = time.perf_counter()
            subprocess.run([*cmd, "--workers", str(k)], capture_output=True, check=True)
            walls[k] = time.perf_counter() - t0
            tables.add((out / "results.parquet").read_bytes())
    return points, walls, len(tables) == 1


def bench_figures_memory(folder: Path) -> dict[str, tuple[float, float]]:
    """Per command (``plot``, ``report``): (peak resident bytes, wall seconds) on ``folder``,
    each in a fresh process."""
    import subprocess

    main = "import sys; sys.argv[0] = 'elmoe-dse'; from elmoe_dse.cli.main import main; main()"
    out: dict[str, tuple[float, float]] = {}
    for command in ("plot", "report"):
        t0 = time.perf_counter()
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                _PEAK_OF_CHILD,
                sys.executable,
                "-c",
                main,
                command,
                str(folder),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out[command] = (int(run.stdout.split()[-1]) * 1024.0, time.perf_counter() - t0)
    return out


def _toml(data: dict[str, Any]) -> str:
    """A sweep dict as TOML (the few shapes :func:`elastic_sd_sweep` uses)."""
    import json

    def value(v: Any) -> str:
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{k} = {value(x)}" for k, x in v.items()) + " }"
        return json.dumps(v)

    lines = [f"{k} = {value(v)}" for k, v in data.items() if k not in ("knobs", "objectives")]
    lines += ["", "[knobs]", *(f"{k} = {value(v)}" for k, v in data["knobs"].items())]
    for objective in data["objectives"]:
        lines += ["", "[[objectives]]", *(f"{k} = {value(v)}" for k, v in objective.items())]
    return "\n".join(lines) + "\n"


def verdict(value: float, target: float) -> str:
    return "meets the target" if value >= target else f"BELOW the target ({value / target:.1%})"


def verdict_under(seconds: float, target_s: float) -> str:
    return "meets the target" if seconds <= target_s else f"ABOVE the target ({seconds:.2f} s)"


def print_sweep_workers() -> None:
    """The scaling benchmark's lines: points/s per ``--workers`` value and the speedup."""
    load = os.getloadavg()[0]
    points, walls, same = bench_sweep_workers()
    for k, wall_s in walls.items():
        print(
            f"sweep   : {PAPER_SWEEP.name} ({points:,} points) --workers {k} in {wall_s:.1f} s "
            f"wall = {points / wall_s:,.0f} points/s end to end (fresh process)"
        )
    one, *_, last = SWEEP_WORKERS
    speedup = walls[one] / walls[last]
    print(
        f"sweep   : --workers {last} is {speedup:.2f}x faster than --workers {one} (wall), "
        f"tables {'byte-identical' if same else 'DIFFERENT'}; load average before {load:.2f} "
        f"on {os.cpu_count()} cores (target >= {TARGET_WORKERS_2_SPEEDUP:g}x on an idle "
        f"machine: {verdict(speedup, TARGET_WORKERS_2_SPEEDUP)})"
    )


def main() -> int:
    points, grid_s = bench_grid()
    rate = points / grid_s
    print(
        f"grid    : {points:,} Elastic-SD design points in {grid_s:.2f} s = {rate:,.0f} points/s "
        f"(target >= {TARGET_POINTS_PER_S:,.0f}: {verdict(rate, TARGET_POINTS_PER_S)})"
    )
    trials, search_s = bench_trials()
    trate = trials / search_s
    print(
        f"optimize: {trials} TPE trials (SQLite, 1 worker) in {search_s:.2f} s = "
        f"{trate:,.1f} trials/s (target >= {TARGET_TRIALS_PER_S:g}: "
        f"{verdict(trate, TARGET_TRIALS_PER_S)})"
    )
    print_optimize_paper()
    startup, typer_help = bench_startup(), bench_startup("elmoe_dse.cli.main")
    print(
        f"start-up: elmoe-dse --help in {startup:.3f} s CPU, {typer_help / startup:.1f}x less than "
        f"building the Typer app ({typer_help:.3f} s, the previous release's path) "
        f"(target < {TARGET_STARTUP_S:g} s: {verdict_under(startup, TARGET_STARTUP_S)})"
    )
    repro = bench_reproduce()
    print(
        f"reproduce: paper grid (4 models x 4 datasets x 4 batches, 8 systems) in {repro:.2f} s "
        f"(target < {TARGET_REPRODUCE_S:g} s: {verdict_under(repro, TARGET_REPRODUCE_S)})"
    )
    cli_s, cli_cpu_s = bench_reproduce_cli()
    print(
        f"reproduce CLI: elmoe-dse reproduce (default bands) in {cli_s:.1f} s wall, "
        f"{cli_cpu_s:.1f} s CPU (user + sys), {BEFORE_REPRODUCE_CLI_S / cli_s:.1f}x faster than "
        f"before the vectorized locality solves ({BEFORE_REPRODUCE_CLI_S:g} s) (target < "
        f"{TARGET_REPRODUCE_CLI_S:g} s: {verdict_under(cli_s, TARGET_REPRODUCE_CLI_S)})"
    )
    print_sweep_workers()
    with tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp:
        folder = Path(tmp) / "largest"
        for contexts in SWEEP_MEMORY_CONTEXTS:
            last = contexts == SWEEP_MEMORY_CONTEXTS[-1]
            points, peak, wall_s = bench_sweep_memory(contexts, folder if last else None)
            ok = "meets the target" if peak <= TARGET_SWEEP_PEAK_BYTES else "ABOVE the target"
            print(
                f"sweep   : {points:,} points (elmoe-dse sweep, fresh process) peak RSS "
                f"{peak / 1e9:.2f} GB, {wall_s:.1f} s = {points / wall_s:,.0f} points/s end to "
                f"end (target peak < {TARGET_SWEEP_PEAK_BYTES / 1e9:g} GB whatever the grid "
                f"size: {ok})"
            )
        for command, (peak, wall_s) in bench_figures_memory(folder).items():
            ok = "meets the target" if peak <= TARGET_FIGURES_PEAK_BYTES else "ABOVE the target"
            print(
                f"{command:<8}: the {points:,}-point sweep folder (fresh process) peak RSS "
                f"{peak / 1e9:.2f} GB in {wall_s:.1f} s (target peak < "
                f"{TARGET_FIGURES_PEAK_BYTES / 1e9:g} GB: {ok})"
            )
    return 0


if __name__ == "__main__":
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # one core
    sys.exit(main())
