"""``python -m elmoe_dse.bench`` (``make bench``): how fast the grid and the search run, next to
the targets and to the previous release measured side by side in the same run.

The baseline (``--against REV``, default :data:`PREVIOUS_RELEASE`; ``--against none`` for none)
is checked out into a temporary git worktree (or, failing that, extracted with ``git archive``)
that is removed afterwards. It runs on this checkout's calibration posterior
(:data:`POSTERIOR_FILES`, data a re-sampling changes) unless ``--baseline-own-posterior``, so that
the identical-results check compares code, not two posterior samples. Every side-by-side figure
is measured in fresh subprocesses of the same interpreter, one with ``PYTHONPATH`` on this
checkout and one on the baseline's, the two alternating (current, baseline, then baseline,
current, ...) so that a shared machine's load hits both alike; the best of ``--repeats`` runs is
printed, with the ratio (> 1: better now). When no baseline tree can be made the output says why
and prints the figures without ratios.

Sections (``--only NAME[,NAME]``):

- ``evaluator``: design points per wall and CPU second of the in-process evaluation loop
  (:func:`~elmoe_dse.explore.grid.expand` then :func:`~elmoe_dse.explore.sweep.evaluate_grid`,
  results columns included, one process) on an Elastic-SD grid (Qwen3-30B-A3B on ELMoE-3D 8 GB,
  MT-Bench; batch size, draft bits, draft length, pool size and HB capacity varied; the target)
  and on ``sweeps/paper.toml`` (ratio on CPU time);
- ``trials``: completed trials per second of ``optimize sweeps/quick.toml --no-grid`` (TPE, the
  default SQLite file in a temporary folder, one worker; ``timing.search_s`` of its run.json);
- ``optimize``: ``optimize sweeps/paper.toml --trials N --seed S`` for each seed (``--trials``,
  ``--seeds``; the issue's 3 x 300 by default, long): trials/s (wall of the search, and per CPU
  second of the whole command) and the hypervolume fraction of the exhaustive grid's front,
  median and worst over the (seed, study) runs and over seeds of each seed's mean over studies;
- ``startup``: CPU time (user + sys) of ``elmoe-dse --help`` through each tree's console entry
  point in a fresh process (best of 5 per repeat), and of building the Typer app;
- ``reproduce``: wall time of the paper's 4 x 4 x 4 reproduction grid in-process (a subprocess
  per tree);
- ``reproduce-cli``: wall and CPU time (its worker processes included) of ``elmoe-dse
  reproduce`` with its default bands, writing to a temporary folder;
- ``sweep``: end-to-end points/s (wall and CPU) of ``elmoe-dse sweep sweeps/paper.toml --workers
  K`` for K = 1 and 2 (a tree without ``--workers`` runs its only, single-process mode, and no
  K = 2), the speedup of a second core, whether the two ``results.parquet`` are byte-identical,
  the load average, and whether this checkout's and the baseline's ``results.parquet`` hold
  identical values (column by column on the columns both have, NaN equal to NaN);
- ``plot``: wall and CPU time of ``elmoe-dse plot`` on a ``sweeps/paper.toml`` folder with
  ``--workers`` 1 and 2 (a tree without the option: its one mode), and whether the two draw
  byte-identical figures;
- ``memory``: peak resident memory (``ru_maxrss``) and end-to-end points/s of ``elmoe-dse sweep
  --workers 1`` on generated ~1 M and ~10 M point sweep files (the Elastic-SD grid with a longer
  ``context_len`` axis), then peak memory and wall time of ``elmoe-dse plot`` and ``report`` on
  the ~10 M point folder: this checkout only, against the targets.

Timings only; no assertion anywhere depends on them.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

#: The default baseline: main as it landed at stop 20, before issue 14's work began.
PREVIOUS_RELEASE = "ee584da"

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

#: Issues 6 and 14: a 10-million-point sweep runs in bounded memory (the peak independent of
#: the grid), under 0.5 GB.
TARGET_SWEEP_PEAK_BYTES = 0.5e9
#: Issue 15: ``plot`` and ``report`` of a 10 M point sweep folder stay under 1 GB peak RSS.
TARGET_FIGURES_PEAK_BYTES = 1e9
#: ``context_len`` values of the memory benchmark: 4 x 233,856 ~ 1 M and 43 x ~ 10 M points.
SWEEP_MEMORY_CONTEXTS = (4, 43)

REPO = Path(__file__).resolve().parent.parent
QUICK_SWEEP = REPO / "sweeps" / "quick.toml"
PAPER_SWEEP = REPO / "sweeps" / "paper.toml"
#: Issue 14: ``optimize sweeps/paper.toml --trials 300`` reaches these fractions of the exhaustive
#: front's hypervolume, median and worst over (seed, study) runs.
TARGET_HV_MEDIAN = 0.98
TARGET_HV_WORST = 0.90
#: Seeds and trials per study of the search-quality benchmark (the issue's 3 seeds x 300).
OPTIMIZE_SEEDS = (0, 1, 2)
OPTIMIZE_TRIALS = 300
#: Trials per study of the ``trials`` section (``optimize sweeps/quick.toml``).
QUICK_TRIALS = 100
#: ``--workers`` values of the scaling benchmark.
SWEEP_WORKERS = (1, 2)
#: Issue 14: ``--workers 2`` at least 1.7x faster in wall time than one, on an idle machine.
TARGET_WORKERS_2_SPEEDUP = 1.7
#: Runs of each side-by-side measurement per tree (best printed), unless ``--repeats``.
DEFAULT_REPEATS = 3
#: ``elmoe-dse --help`` runs per tree and per repeat (start-up is short and noisy).
STARTUP_RUNS = 5
#: The calibration posterior (data a re-sampling changes, read the same way by every release):
#: the baseline runs on this checkout's copy unless ``--baseline-own-posterior``.
POSTERIOR_FILES = ("elmoe_dse/data/ensemble.json",)
#: ``elmoe-dse`` of this checkout in a fresh interpreter: ``python -c CLI ARGS...``.
CLI = "import sys; sys.argv[0] = 'elmoe-dse'; from elmoe_dse.cli.main import main; main()"
#: One core per process, whatever the tree.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

T = TypeVar("T")


class BenchError(RuntimeError):
    """A measured command failed (the message says which and why, in one line)."""


# ----------------------------------------------------------------------------------------------
# The trees measured: this checkout and the baseline revision in a temporary checkout
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tree:
    """A checkout measured: ``current`` (this one) or a baseline revision."""

    name: str
    root: Path

    def env(self) -> dict[str, str]:
        """The environment of its subprocesses: ``PYTHONPATH`` on this tree only, one thread."""
        env = {**os.environ, "PYTHONPATH": str(self.root)}
        for var in THREAD_VARS:
            env.setdefault(var, "1")
        return env


@dataclass(frozen=True)
class Baseline:
    """The baseline checkout: ``tree`` None (and ``reason`` why) when there is none."""

    rev: str | None
    tree: Tree | None = None
    method: str = ""
    reason: str = ""
    #: :data:`POSTERIOR_FILES` the baseline runs on from this checkout (its own differed).
    overlaid: tuple[str, ...] = ()


def overlay_posterior(repo: Path, tree: Path) -> tuple[str, ...]:
    """Copy this checkout's :data:`POSTERIOR_FILES` over the baseline ``tree``'s where both
    have the file and they differ; the files copied.

    The posterior is data, not code: a re-sampled posterior moves every calibrated constant, so
    without this a baseline's results would differ from this checkout's for a reason no code
    change made, and the identical-results check could not tell whether a speed-up changed the
    model."""
    copied = []
    for name in POSTERIOR_FILES:
        mine, theirs = repo / name, tree / name
        if mine.is_file() and theirs.is_file() and mine.read_bytes() != theirs.read_bytes():
            shutil.copyfile(mine, theirs)
            copied.append(name)
    return tuple(copied)


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
    )


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else "no output"


def checkout(
    rev: str, repo: Path, path: Path, methods: Sequence[str] = ("worktree", "archive")
) -> tuple[str, str]:
    """Check ``rev`` of ``repo`` out into the new folder ``path``: (method used, "") or ("", why
    not). Tries a detached ``git worktree``, then ``git archive REV | tar -x``."""
    import io
    import tarfile

    if _git(repo, "rev-parse", "--git-dir").returncode != 0:
        return "", f"{repo} is not a git checkout"
    sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    if sha.returncode != 0:
        return "", f"{rev!r} is not a commit of {repo}"
    commit = sha.stdout.strip()
    reasons = []
    if "worktree" in methods:
        added = _git(repo, "worktree", "add", "--detach", str(path), commit)
        if added.returncode == 0:
            return "git worktree", ""
        reasons.append(f"git worktree add: {_last_line(added.stderr)}")
    if "archive" in methods:
        archive = subprocess.run(
            ["git", "-C", str(repo), "archive", commit], capture_output=True, check=False
        )
        if archive.returncode == 0:
            path.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
                tar.extractall(path)  # the project's own commit
            return "git archive", ""
        reasons.append(f"git archive: {_last_line(archive.stderr.decode(errors='replace'))}")
    return "", "; ".join(reasons) or "no checkout method"


@contextmanager
def baseline_tree(
    rev: str | None,
    repo: Path = REPO,
    methods: Sequence[str] = ("worktree", "archive"),
    own_posterior: bool = False,
) -> Iterator[Baseline]:
    """The baseline ``rev`` of ``repo`` checked out in a temporary folder for the duration (a
    git worktree is removed again); ``tree`` None with the reason if ``rev`` is None or cannot
    be checked out. Unless ``own_posterior``, the tree runs on ``repo``'s posterior
    (:func:`overlay_posterior`)."""
    if rev is None:
        yield Baseline(None, reason="--against none")
        return
    tmp = Path(tempfile.mkdtemp(prefix="elmoe-bench-baseline-"))
    path = tmp / "tree"
    method = ""
    try:
        method, reason = checkout(rev, repo, path, methods)
        tree = Tree(rev, path) if method else None
        overlaid = overlay_posterior(repo, path) if tree and not own_posterior else ()
        yield Baseline(rev, tree, method, reason, overlaid)
    finally:
        removed = method != "git worktree" or (
            _git(repo, "worktree", "remove", "--force", str(path)).returncode == 0
        )
        shutil.rmtree(tmp, ignore_errors=True)
        if not removed:
            _git(repo, "worktree", "prune")  # the folder is gone: git forgets the worktree


def cli_code(root: Path) -> str:
    """``python -c`` code running ``root``'s ``elmoe-dse`` console script (its pyproject.toml's
    entry point; ``elmoe_dse.cli.main:main`` if it names none)."""
    import tomllib

    try:
        project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
        target = str(project["scripts"]["elmoe-dse"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        target = "elmoe_dse.cli.main:main"
    module, func = target.split(":")
    return f"import sys; sys.argv[0] = 'elmoe-dse'; from {module} import {func}; sys.exit({func}())"


# ----------------------------------------------------------------------------------------------
# Running and timing in fresh subprocesses, interleaved between the trees
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One subprocess: wall seconds, CPU seconds (user + sys, with the children it waited for)
    and its standard output."""

    wall_s: float
    cpu_s: float
    stdout: str


#: Seconds :func:`reap_orphans` waits for orphaned descendants (a forkserver, its workers) to end.
REAP_WAIT_S = 30.0


def become_subreaper() -> bool:
    """Make this process the Linux child subreaper of its descendants, so that the processes a
    measured command leaves behind (``multiprocessing``'s forkserver and the workers it forked)
    are reparented here and reaped, their CPU time then counted in ``RUSAGE_CHILDREN``; False
    where the system has no such call."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER = 36
    except (OSError, AttributeError):
        return False


def reap_orphans(wait_s: float = REAP_WAIT_S) -> None:
    """Reap the descendants reparented here (see :func:`become_subreaper`) as they end, for up
    to ``wait_s`` seconds; none is left if the measured command had none or we are no
    subreaper."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            time.sleep(0.02)


def run_in(tree: Tree, args: Sequence[str]) -> Run:
    """``python ARGS`` with ``tree`` on the path, in ``tree``'s folder (``python -c`` puts the
    working folder first on the path): wall time, and CPU time of it and every descendant
    reaped (all of them once :func:`become_subreaper`); BenchError with its last stderr line if
    it fails."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, *args],
        cwd=tree.root,
        env=tree.env(),
        capture_output=True,
        text=True,
        check=False,
    )
    wall_s = time.perf_counter() - t0
    reap_orphans()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise BenchError(f"exit {proc.returncode}: {_last_line(proc.stderr)}")
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(wall_s, cpu_s, proc.stdout)


def run_cli(tree: Tree, *args: str) -> Run:
    """``elmoe-dse ARGS`` of ``tree`` in a fresh process."""
    return run_in(tree, ["-c", cli_code(tree.root), *args])


def run_script(tree: Tree, script: str, *args: str) -> dict[str, Any]:
    """The JSON last line of ``script`` run in ``tree``, after checking it imported ``tree``'s
    elmoe_dse (its ``module`` field)."""
    data: dict[str, Any] = json.loads(_last_line(run_in(tree, ["-c", script, *args]).stdout))
    module = Path(data["module"]).resolve()
    if not module.is_relative_to(tree.root.resolve()):
        raise BenchError(f"imported elmoe_dse from {module}, not from {tree.root}")
    return data


#: Prints the elmoe_dse a tree's subprocess imports.
WHICH_SCRIPT = "import json, elmoe_dse; print(json.dumps({'module': elmoe_dse.__file__}))"


def interleave(
    trees: Sequence[Tree], measure: Callable[[Tree], T], repeats: int, start: int = 0
) -> tuple[dict[str, list[T]], dict[str, str]]:
    """``measure`` of each tree ``repeats`` times, the order alternating (A B, B A, ...; B A
    first if ``start`` is odd) so that a shared machine's load hits both alike: the results per
    tree name, and the error of each tree whose run failed (it is not run again)."""
    values: dict[str, list[T]] = {tree.name: [] for tree in trees}
    errors: dict[str, str] = {}
    for r in range(repeats):
        order = list(trees) if (r + start) % 2 == 0 else list(reversed(trees))
        for tree in order:
            if tree.name in errors:
                continue
            try:
                values[tree.name].append(measure(tree))
            except BenchError as e:
                errors[tree.name] = str(e)
    return values, errors


def best(runs: Sequence[dict[str, float]]) -> dict[str, float] | None:
    """Per key the least value of ``runs`` (times: the best run), None if there is none."""
    if not runs:
        return None
    return {k: min(float(r[k]) for r in runs) for k in runs[0]}


def ratio(
    current: float | None, baseline: float | None, *, lower_is_better: bool = False
) -> float | None:
    """How many times better the current figure is than the baseline's (current / baseline, or
    baseline / current for times); None when a side is missing or the divisor is zero."""
    if current is None or baseline is None:
        return None
    num, den = (baseline, current) if lower_is_better else (current, baseline)
    return num / den if den else None


def fmt_ratio(value: float | None) -> str:
    """``1.23x``, or ``n/a`` when there is no ratio."""
    return "n/a" if value is None else f"{value:.2f}x"


@dataclass
class Bench:
    """What the sections share: the trees, the run counts and a temporary folder."""

    current: Tree
    baseline: Baseline
    tmp: Path
    repeats: int = DEFAULT_REPEATS
    trials: int = OPTIMIZE_TRIALS
    seeds: tuple[int, ...] = OPTIMIZE_SEEDS
    _count: Iterator[int] = field(default_factory=itertools.count)

    @property
    def trees(self) -> list[Tree]:
        return [self.current] + ([self.baseline.tree] if self.baseline.tree else [])

    def fresh(self, name: str) -> Path:
        """A new folder name under the temporary folder (not created)."""
        return self.tmp / f"{name}-{next(self._count)}"

    def pair(self, values: dict[str, list[dict[str, float]]]) -> tuple[Any, Any]:
        """The best run of the current tree and of the baseline (None if missing)."""
        base = self.baseline.tree
        return best(values.get("current", [])), best(values.get(base.name, []) if base else [])

    def measured(
        self, measure: Callable[[Tree], dict[str, float]], label: str, repeats: int | None = None
    ) -> tuple[dict[str, float], dict[str, float] | None, dict[str, str]] | None:
        """``measure`` of each tree, interleaved: the best run of the current tree and of the
        baseline, and the errors; None (the failure printed under ``label``) if this checkout
        failed."""
        values, errors = interleave(
            self.trees, measure, self.repeats if repeats is None else repeats
        )
        cur, base = self.pair(values)
        if cur is None:
            print(f"{label}: this checkout failed ({errors['current']})")
            return None
        return cur, base, errors

    def versus(
        self,
        errors: dict[str, str],
        text: str | None,
        value: float | None,
        sense: str = "",
        missing: str = "no figure",
    ) -> str:
        """The baseline's clause of a line: its figure and the ratio, or why there is none."""
        tree = self.baseline.tree
        if tree is None:
            return f"; no baseline ({self.baseline.reason})"
        if tree.name in errors:
            return f"; {tree.name}: failed ({errors[tree.name]})"
        if text is None:
            return f"; {tree.name}: {missing}"
        return f"; {tree.name}: {text}, ratio {fmt_ratio(value)}{sense}"


def points_of(sweep: Path) -> int:
    """Design points of a sweep file's grid (this checkout's expansion)."""
    from elmoe_dse.explore.grid import expand
    from elmoe_dse.specs.sweep import load_sweep

    return expand(load_sweep(sweep)).size


# ----------------------------------------------------------------------------------------------
# Whether two results.parquet hold the same values
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A column whose values differ: how many rows, and the largest relative difference among
    them (NaN when not numeric, or a NaN against a number)."""

    column: str
    rows: int
    max_relative: float


@dataclass(frozen=True)
class Identity:
    """Two tables compared column by column on the columns both have."""

    rows: tuple[int, int]
    common: tuple[str, ...]
    differing: tuple[Difference, ...]
    only_current: tuple[str, ...]
    only_baseline: tuple[str, ...]

    @property
    def identical(self) -> bool:
        """Same rows and, on every common column, the same values (NaN equal to NaN)."""
        return self.rows[0] == self.rows[1] and bool(self.common) and not self.differing


def difference(a: Any, b: Any) -> tuple[int, float]:
    """Rows where two pandas Series differ (NaN equal to NaN; categories compared by value,
    numbers whatever their width) and the largest relative difference among them."""
    import numpy as np
    import pandas as pd

    def plain(s: pd.Series) -> pd.Series:
        s = s.reset_index(drop=True)
        return s.astype(object) if isinstance(s.dtype, pd.CategoricalDtype) else s

    nan = float("nan")
    x, y = plain(a), plain(b)
    if len(x) != len(y):
        return max(len(x), len(y)), nan
    try:
        unequal = ~((x == y) | (x.isna() & y.isna()))
    except TypeError:
        return len(x), nan
    n = int(unequal.sum())
    numeric = pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y)
    if n == 0 or not numeric:
        return n, nan
    u, v = x[unequal].to_numpy(float), y[unequal].to_numpy(float)
    scale = np.maximum(np.abs(u), np.abs(v))
    with np.errstate(invalid="ignore"):
        rel = np.abs(u - v) / np.where(scale > 0, scale, 1.0)
    rel = rel[np.isfinite(rel)]
    return n, float(rel.max()) if rel.size else nan


def same_values(a: Any, b: Any) -> bool:
    """Whether two pandas Series hold equal values row by row (see :func:`difference`)."""
    return len(a) == len(b) and difference(a, b)[0] == 0


def compare_tables(current: Path, baseline: Path) -> Identity:
    """Compare two parquet tables one column at a time (memory: two columns)."""
    import pandas as pd
    import pyarrow.parquet as pq

    def names(path: Path) -> list[str]:
        return [c for c in pq.ParquetFile(path).schema_arrow.names if not c.startswith("__")]

    cur, base = names(current), names(baseline)
    common = tuple(c for c in cur if c in base)
    rows = (pq.ParquetFile(current).metadata.num_rows, pq.ParquetFile(baseline).metadata.num_rows)
    differing = []
    for c in common:
        n, rel = difference(
            pd.read_parquet(current, columns=[c])[c], pd.read_parquet(baseline, columns=[c])[c]
        )
        if n:
            differing.append(Difference(c, n, rel))
    return Identity(
        rows=rows,
        common=common,
        differing=tuple(differing),
        only_current=tuple(c for c in cur if c not in base),
        only_baseline=tuple(c for c in base if c not in cur),
    )


#: Columns named per list of an identity line (the rest counted).
SHOWN_COLUMNS = 8


def _names(items: Sequence[str]) -> str:
    more = len(items) - SHOWN_COLUMNS
    return ", ".join(items[:SHOWN_COLUMNS]) + (f" and {more} more" if more > 0 else "")


def identity_line(ident: Identity, rev: str, overlaid: Sequence[str] = ()) -> str:
    """The identical-results line of the sweep section (``overlaid``: the posterior files the
    baseline ran on from this checkout)."""
    verdict_text = "IDENTICAL values" if ident.identical else "DIFFERENT values"
    data = f" on the same {', '.join(Path(f).name for f in overlaid)}" if overlaid else ""
    line = (
        f"sweep   : results.parquet of this checkout and {rev}{data} (--workers 1): "
        f"{verdict_text} on the {len(ident.common)} columns both have ({ident.rows[0]:,} rows "
        f"here, {ident.rows[1]:,} there)"
    )
    if ident.differing:
        worst = sorted(ident.differing, key=lambda d: -d.rows)
        shown = [f"{d.column} ({d.rows:,} rows, max rel. {d.max_relative:.1e})" for d in worst]
        line += f"; differing: {_names(shown)}"
    for label, cols in (("only here", ident.only_current), (f"only in {rev}", ident.only_baseline)):
        if cols:
            line += f"; {label}: {_names(cols)}"
    return line


def verdict(value: float, target: float) -> str:
    return "meets the target" if value >= target else f"BELOW the target ({value / target:.1%})"


def verdict_under(seconds: float, target_s: float) -> str:
    return "meets the target" if seconds <= target_s else f"ABOVE the target ({seconds:.2f} s)"


# ----------------------------------------------------------------------------------------------
# The benchmark sweeps and the memory measurements (this checkout)
# ----------------------------------------------------------------------------------------------


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


# ----------------------------------------------------------------------------------------------
# evaluator: the in-process evaluation loop, a subprocess per tree
# ----------------------------------------------------------------------------------------------

#: ``python -c EVAL_SCRIPT SWEEP_FILE RUNS``: CPU and wall seconds of the sweep's evaluation loop
#: as JSON: the first run's (``cold_*``: it also loads the specs and fills the caches) and the
#: best of the later ones (the first again if RUNS is 1).
EVAL_SCRIPT = """\
import json, sys, time
import elmoe_dse
from elmoe_dse.explore.grid import expand
from elmoe_dse.explore.sweep import evaluate_grid
from elmoe_dse.specs.sweep import load_sweep

spec = load_sweep(sys.argv[1])
grid = expand(spec)
runs = []
for _ in range(int(sys.argv[2])):
    c0, w0 = time.process_time(), time.perf_counter()
    evaluate_grid(spec, grid)
    runs.append((time.process_time() - c0, time.perf_counter() - w0))
cpu, wall = min(c for c, _ in runs[1:] or runs), min(w for _, w in runs[1:] or runs)
print(json.dumps({"module": elmoe_dse.__file__, "points": grid.size, "cpu_s": cpu, "wall_s": wall,
                  "cold_cpu_s": runs[0][0], "cold_wall_s": runs[0][1]}))
"""

#: What :func:`evaluate_in` returns besides ``whole``.
EVAL_FIGURES = ("points", "cpu_s", "wall_s", "cold_cpu_s", "cold_wall_s")
#: Errors of a tree without the evaluation loop's functions (then its whole ``sweep`` is timed).
MISSING_API = ("ImportError", "AttributeError")


def evaluate_in(tree: Tree, sweep: Path, runs: int, out: Path) -> dict[str, float]:
    """Points and best CPU and wall seconds of ``sweep``'s evaluation loop in ``tree``; a tree
    lacking the loop's functions is measured on its whole ``sweep`` command (``whole`` 1)."""
    try:
        data = run_script(tree, EVAL_SCRIPT, str(sweep), str(runs))
    except BenchError as e:
        if not any(name in str(e) for name in MISSING_API):
            raise
        run = run_cli(tree, "sweep", str(sweep), "--out", str(out))
        data = {"points": points_of(sweep), "cpu_s": run.cpu_s, "wall_s": run.wall_s}
        data |= {"cold_cpu_s": run.cpu_s, "cold_wall_s": run.wall_s, "whole": 1}
    return {k: float(data[k]) for k in EVAL_FIGURES} | {"whole": float(data.get("whole", 0))}


def section_evaluator(b: Bench) -> None:
    """Points/s of the evaluation loop on the Elastic-SD grid (target) and on paper.toml: the
    loop warm (specs loaded and caches filled by a first run in the same process; the issue's
    evaluator ratio) and, for paper.toml, also cold (that first run: a one-shot sweep's cost)."""
    elastic = b.tmp / "elastic-sd.toml"
    elastic.write_text(_toml(elastic_sd_sweep()))
    for sweep, runs in ((elastic, 3), (PAPER_SWEEP, 2)):

        def measure(tree: Tree, sweep: Path = sweep, runs: int = runs) -> dict[str, float]:
            return evaluate_in(tree, sweep, runs, b.fresh("eval"))

        got = b.measured(measure, f"evaluator: {sweep.name}")
        if got is None:
            continue
        cur, base, errors = got
        n = cur["points"]
        rate, cpu_rate = n / cur["wall_s"], n / cur["cpu_s"]
        how = "its whole sweep command" if cur["whole"] else "evaluation loop in-process"
        text = r = None
        if base is not None:
            whole = " (its whole sweep command)" if base["whole"] else ""
            base_rate = base["points"] / base["cpu_s"]
            text = f"{base_rate:,.0f} per CPU s{whole}"
            r = ratio(cpu_rate, base_rate)
        versus = b.versus(errors, text, r, " (CPU points/s now / then)")
        if sweep == elastic:
            print(
                f"grid    : {n:,.0f} Elastic-SD design points ({how}) in {cur['wall_s']:.2f} s = "
                f"{rate:,.0f} points/s, {cpu_rate:,.0f} per CPU s (target >= "
                f"{TARGET_POINTS_PER_S:,.0f}: {verdict(rate, TARGET_POINTS_PER_S)}){versus}"
            )
        else:
            print(
                f"evaluator: {sweep.name} ({n:,.0f} points) {how}, warm (after a first run in "
                f"the same process), in {cur['cpu_s']:.2f} s CPU = {cpu_rate:,.0f} points per "
                f"CPU s ({rate:,.0f} per wall s){versus}"
            )
            cold_rate = n / cur["cold_cpu_s"]
            text = r = None
            if base is not None:
                base_cold = base["points"] / base["cold_cpu_s"]
                text, r = f"{base_cold:,.0f} per CPU s", ratio(cold_rate, base_cold)
            versus = b.versus(errors, text, r, " (CPU points/s now / then)")
            print(
                f"evaluator: {sweep.name} cold (the first run in a fresh process: loads the "
                f"specs, fills the caches) in {cur['cold_cpu_s']:.2f} s CPU = {cold_rate:,.0f} "
                f"points per CPU s{versus}"
            )


# ----------------------------------------------------------------------------------------------
# trials and optimize: ``elmoe-dse optimize`` in each tree, figures from its run.json
# ----------------------------------------------------------------------------------------------


def optimize_in(
    tree: Tree, sweep: Path, trials: int, out: Path, *, seed: int | None = None, grid: bool = True
) -> dict[str, Any]:
    """``elmoe-dse optimize`` of ``tree`` (default SQLite file in ``out``): completed trials,
    search seconds (its run.json), the command's wall and CPU seconds, and each study's
    hypervolume fraction of the grid's front (with ``grid``)."""
    args = ["optimize", str(sweep), "--trials", str(trials), "--out", str(out)]
    args += ["--seed", str(seed)] if seed is not None else []
    run = run_cli(tree, *args, *([] if grid else ["--no-grid"]))
    try:
        record = json.loads((out / "run.json").read_text())
        studies = record["studies"]
        return {
            "trials": float(sum(s["complete_trials"] for s in studies)),
            "search_s": float(record["timing"]["search_s"]),
            "wall_s": run.wall_s,
            "cpu_s": run.cpu_s,
            "fractions": [
                float(s["hypervolume_fraction_of_grid"])
                for s in studies
                if "hypervolume_fraction_of_grid" in s
            ],
        }
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise BenchError(f"optimize's run.json: {type(e).__name__}: {e}") from None


def section_trials(b: Bench) -> None:
    """Trials/s of ``optimize sweeps/quick.toml --no-grid`` (target)."""

    def measure(tree: Tree) -> dict[str, float]:
        run = optimize_in(tree, QUICK_SWEEP, QUICK_TRIALS, b.fresh("trials"), grid=False)
        return {"trials": run["trials"], "search_s": run["search_s"]}

    got = b.measured(measure, f"optimize: {QUICK_SWEEP.name}")
    if got is None:
        return
    cur, base, errors = got
    rate = cur["trials"] / cur["search_s"]
    base_rate = base["trials"] / base["search_s"] if base else None
    text = f"{base_rate:,.1f} trials/s" if base_rate else None
    print(
        f"optimize: {cur['trials']:.0f} TPE trials ({QUICK_SWEEP.name}, SQLite, 1 worker) in "
        f"{cur['search_s']:.2f} s = {rate:,.1f} trials/s (target >= {TARGET_TRIALS_PER_S:g}: "
        f"{verdict(rate, TARGET_TRIALS_PER_S)}){b.versus(errors, text, ratio(rate, base_rate))}"
    )


def optimize_figures(runs: Sequence[dict[str, Any]]) -> dict[str, float] | None:
    """Trials/s (search wall, and per CPU second of the whole command) and the hypervolume
    fractions (median and worst over (seed, study) runs, and of the per-seed means)."""
    import numpy as np

    if not runs:
        return None
    trials = sum(r["trials"] for r in runs)
    fractions = [f for r in runs for f in r["fractions"]]
    means = [float(np.mean(r["fractions"])) for r in runs if r["fractions"]]
    nan = float("nan")
    return {
        "rate": trials / sum(r["search_s"] for r in runs),
        "cpu_rate": trials / sum(r["cpu_s"] for r in runs),
        "runs": float(len(fractions)),
        "median": float(np.median(fractions)) if fractions else nan,
        "worst": float(np.min(fractions)) if fractions else nan,
        "seed_median": float(np.median(means)) if means else nan,
        "seed_worst": float(np.min(means)) if means else nan,
    }


def section_optimize(b: Bench) -> None:
    """``optimize sweeps/paper.toml`` per seed, the trees alternating: trials/s and HV."""
    runs: dict[str, list[dict[str, Any]]] = {t.name: [] for t in b.trees}
    errors: dict[str, str] = {}
    for i, seed in enumerate(b.seeds):
        trees = [t for t in b.trees if t.name not in errors]

        def measure(tree: Tree, seed: int = seed) -> dict[str, Any]:
            return optimize_in(tree, PAPER_SWEEP, b.trials, b.fresh("opt"), seed=seed)

        values, failed = interleave(trees, measure, 1, start=i)
        errors.update(failed)
        for name, got in values.items():
            runs[name] += got
    cur = optimize_figures(runs["current"])
    if cur is None:
        print(f"optimize: {PAPER_SWEEP.name}: this checkout failed ({errors['current']})")
        return
    base = optimize_figures(runs[b.baseline.tree.name]) if b.baseline.tree else None
    print_optimize(b, cur, base, errors)


def print_optimize(
    b: Bench, cur: dict[str, float], base: dict[str, float] | None, errors: dict[str, str]
) -> None:
    """The trials/s and hypervolume lines of ``optimize`` on sweeps/paper.toml (issue 14)."""
    text = hv_text = None
    r_rate = r_median = None
    cpu_sense = hv_sense = ""
    if base is not None:
        text = f"{base['rate']:,.1f} trials/s, {base['cpu_rate']:,.1f} per CPU s"
        r_rate = ratio(cur["rate"], base["rate"])
        cpu_sense = f" wall, {fmt_ratio(ratio(cur['cpu_rate'], base['cpu_rate']))} CPU"
        hv_text = (
            f"median {base['median']:.3f}, worst {base['worst']:.3f}, per-seed mean median "
            f"{base['seed_median']:.3f}, worst {base['seed_worst']:.3f}"
        )
        r_median = ratio(cur["median"], base["median"])
        hv_sense = f" median, {fmt_ratio(ratio(cur['worst'], base['worst']))} worst"
    print(
        f"optimize: {PAPER_SWEEP.name}, {len(b.seeds)} seeds x {b.trials} trials per study: "
        f"{cur['rate']:,.1f} trials/s (search, wall), {cur['cpu_rate']:,.1f} per CPU s of the "
        f"whole command{b.versus(errors, text, r_rate, cpu_sense)}"
    )
    ok = cur["median"] >= TARGET_HV_MEDIAN and cur["worst"] >= TARGET_HV_WORST
    print(
        f"optimize: hypervolume fraction of the exhaustive front over {cur['runs']:.0f} (seed, "
        f"study) runs: median {cur['median']:.3f}, worst {cur['worst']:.3f}; per-seed mean over "
        f"studies median {cur['seed_median']:.3f}, worst {cur['seed_worst']:.3f} (target median "
        f">= {TARGET_HV_MEDIAN:g}, worst >= {TARGET_HV_WORST:g}: "
        f"{'meets the target' if ok else 'BELOW the target'})"
        f"{b.versus(errors, hv_text, r_median, hv_sense)}"
    )


# ----------------------------------------------------------------------------------------------
# startup, reproduce, reproduce-cli
# ----------------------------------------------------------------------------------------------

#: ``elmoe-dse --help`` answered by the Typer app (every command module imported).
TYPER_HELP = (
    "import sys; sys.argv = ['elmoe-dse', '--help']; from elmoe_dse.cli.main import main; main()"
)


def section_startup(b: Bench) -> None:
    """CPU time of ``elmoe-dse --help`` per tree, and of the Typer app's help here."""

    def measure(tree: Tree) -> dict[str, float]:
        run = run_cli(tree, "--help")
        return {"cpu_s": run.cpu_s, "wall_s": run.wall_s}

    runs = STARTUP_RUNS * b.repeats
    got = b.measured(measure, "start-up", runs)
    if got is None:
        return
    cur, base, errors = got
    typer = min(run_in(b.current, ["-c", TYPER_HELP]).cpu_s for _ in range(STARTUP_RUNS))
    cpu = cur["cpu_s"]
    text = f"{base['cpu_s']:.3f} s CPU" if base else None
    r = ratio(cpu, base["cpu_s"] if base else None, lower_is_better=True)
    print(
        f"start-up: elmoe-dse --help in {cpu:.3f} s CPU ({cur['wall_s']:.3f} s wall; best of "
        f"{runs}, fresh process), {typer / cpu:.1f}x less than building the Typer app "
        f"({typer:.3f} s) (target < {TARGET_STARTUP_S:g} s: {verdict_under(cpu, TARGET_STARTUP_S)})"
        f"{b.versus(errors, text, r, ' (CPU then / now)')}"
    )


#: ``python -c REPRO_SCRIPT RUNS``: best wall and CPU seconds of the paper reproduction with the
#: shipped calibration, as JSON.
REPRO_SCRIPT = """\
import json, sys, time
import elmoe_dse
from elmoe_dse.calibration import load_calibration
from elmoe_dse.explore.reproduce import reproduce

cal = load_calibration()
cpu = wall = float("inf")
for _ in range(int(sys.argv[1])):
    c0, w0 = time.process_time(), time.perf_counter()
    reproduce(cal)
    cpu, wall = min(cpu, time.process_time() - c0), min(wall, time.perf_counter() - w0)
print(json.dumps({"module": elmoe_dse.__file__, "cpu_s": cpu, "wall_s": wall}))
"""


def section_reproduce(b: Bench) -> None:
    """Wall time of the paper's reproduction grid in-process (a subprocess per tree)."""

    def measure(tree: Tree) -> dict[str, float]:
        data = run_script(tree, REPRO_SCRIPT, "3")
        return {"cpu_s": data["cpu_s"], "wall_s": data["wall_s"]}

    got = b.measured(measure, "reproduce")
    if got is None:
        return
    cur, base, errors = got
    wall = cur["wall_s"]
    text = f"{base['wall_s']:.2f} s" if base else None
    r = ratio(wall, base["wall_s"] if base else None, lower_is_better=True)
    print(
        f"reproduce: paper grid (4 models x 4 datasets x 4 batches, 8 systems) in {wall:.2f} s "
        f"({cur['cpu_s']:.2f} s CPU) (target < {TARGET_REPRODUCE_S:g} s: "
        f"{verdict_under(wall, TARGET_REPRODUCE_S)})"
        f"{b.versus(errors, text, r, ' (wall then / now)')}"
    )


def section_reproduce_cli(b: Bench) -> None:
    """Wall and CPU time of ``elmoe-dse reproduce`` (default bands) per tree."""

    def measure(tree: Tree) -> dict[str, float]:
        run = run_cli(tree, "reproduce", "--out", str(b.fresh("reproduce")))
        return {"cpu_s": run.cpu_s, "wall_s": run.wall_s}

    got = b.measured(measure, "reproduce CLI")
    if got is None:
        return
    cur, base, errors = got
    wall, cpu = cur["wall_s"], cur["cpu_s"]
    text = sense = None
    if base is not None:
        text = f"{base['wall_s']:.1f} s wall, {base['cpu_s']:.1f} s CPU"
        cpu_ratio = fmt_ratio(ratio(cpu, base["cpu_s"], lower_is_better=True))
        sense = f" wall, {cpu_ratio} CPU (then / now)"
    r = ratio(wall, base["wall_s"] if base else None, lower_is_better=True)
    print(
        f"reproduce CLI: elmoe-dse reproduce (default bands) in {wall:.1f} s wall, {cpu:.1f} s "
        f"CPU (user + sys), {BEFORE_REPRODUCE_CLI_S / wall:.1f}x faster than before the "
        f"vectorized locality solves ({BEFORE_REPRODUCE_CLI_S:g} s) (target < "
        f"{TARGET_REPRODUCE_CLI_S:g} s: {verdict_under(wall, TARGET_REPRODUCE_CLI_S)})"
        f"{b.versus(errors, text, r, sense or '')}"
    )


# ----------------------------------------------------------------------------------------------
# sweep: end to end per --workers, and the identical-results check
# ----------------------------------------------------------------------------------------------


def supports_workers(tree: Tree, command: str = "sweep") -> bool:
    """Whether ``tree``'s ``command`` has a ``--workers`` option."""
    try:
        return "--workers" in run_cli(tree, command, "--help").stdout
    except BenchError:
        return False


@dataclass
class SweepRuns:
    """Best wall and CPU seconds of ``sweep sweeps/paper.toml`` per (tree, workers), the errors
    per tree, the first ``results.parquet`` kept per ``tree:workers`` and which trees have
    ``--workers``."""

    figures: dict[tuple[str, int], dict[str, float] | None] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    tables: dict[str, Path] = field(default_factory=dict)
    #: The wall seconds of the run whose table is kept, per ``tree:workers``.
    kept_wall_s: dict[str, float] = field(default_factory=dict)
    support: dict[str, bool] = field(default_factory=dict)


def per_workers(
    b: Bench, support: dict[str, bool], measure: Callable[..., dict[str, float]]
) -> tuple[dict[tuple[str, int], dict[str, float] | None], dict[str, str]]:
    """``measure(tree, k=K)`` for each K of :data:`SWEEP_WORKERS` and each tree, the trees
    alternating (a tree without ``--workers``, per ``support``, runs its one mode, for K = 1
    only): the best run per (tree name, K) and the error of each tree that failed."""
    figures: dict[tuple[str, int], dict[str, float] | None] = {}
    errors: dict[str, str] = {}
    for k in SWEEP_WORKERS:
        trees = [t for t in b.trees if t.name not in errors and (support[t.name] or k == 1)]
        values, failed = interleave(trees, partial(measure, k=k), b.repeats, start=k)
        errors.update(failed)
        for name, got in values.items():
            figures[(name, k)] = best(got)
    return figures, errors


def sweep_runs(b: Bench) -> SweepRuns:
    """``sweep sweeps/paper.toml`` per ``--workers`` value and tree (:func:`per_workers`)."""
    runs = SweepRuns(support={t.name: supports_workers(t) for t in b.trees})

    def measure(tree: Tree, k: int) -> dict[str, float]:
        out = b.fresh("sweep")
        workers = ["--workers", str(k)] if runs.support[tree.name] else []
        run = run_cli(tree, "sweep", str(PAPER_SWEEP), "--out", str(out), *workers)
        key = f"{tree.name}:{k}"
        if key in runs.tables:
            shutil.rmtree(out, ignore_errors=True)
        else:
            runs.tables[key] = out / "results.parquet"
            runs.kept_wall_s[key] = run.wall_s
        return {"wall_s": run.wall_s, "cpu_s": run.cpu_s}

    runs.figures, runs.errors = per_workers(b, runs.support, measure)
    return runs


def section_sweep(b: Bench) -> None:
    """End-to-end points/s per ``--workers``, the speedup, and the identical-results check."""
    load = os.getloadavg()[0]
    points = points_of(PAPER_SWEEP)
    runs = sweep_runs(b)
    base = b.baseline.tree
    for k in SWEEP_WORKERS:
        cur = runs.figures.get(("current", k))
        if cur is None:
            print(f"sweep   : --workers {k}: this checkout failed ({runs.errors.get('current')})")
            return
        other = runs.figures.get((base.name, k)) if base else None
        text = r = None
        sense = ""
        if other is not None and base is not None:
            mode = "" if runs.support[base.name] else " (it has no --workers: one process)"
            text = (
                f"{points / other['wall_s']:,.0f} points/s wall, "
                f"{points / other['cpu_s']:,.0f} per CPU s{mode}"
            )
            r = ratio(points / cur["wall_s"], points / other["wall_s"])
            sense = (
                f" wall, {fmt_ratio(ratio(cur['cpu_s'], other['cpu_s'], lower_is_better=True))} CPU"
            )
        print(
            f"sweep   : {PAPER_SWEEP.name} ({points:,} points) --workers {k} in "
            f"{cur['wall_s']:.1f} s wall = {points / cur['wall_s']:,.0f} points/s end to end, "
            f"{points / cur['cpu_s']:,.0f} per CPU s (fresh process)"
            f"{b.versus(runs.errors, text, r, sense, missing='no --workers option')}"
        )
    print_speedup(b, runs, load)
    if base is None or base.name in runs.errors:
        print(f"sweep   : identical-results check{b.versus(runs.errors, None, None)}")
        return
    identity = compare_tables(runs.tables["current:1"], runs.tables[f"{base.name}:1"])
    print(identity_line(identity, base.name, b.baseline.overlaid))


def workers_speedup(
    figures: dict[tuple[str, int], dict[str, float] | None], name: str
) -> float | None:
    """Wall time of tree ``name`` with the first of :data:`SWEEP_WORKERS` over that with the
    last (:func:`per_workers` figures); None without both."""
    one, *_, last = SWEEP_WORKERS
    first, other = figures.get((name, one)), figures.get((name, last))
    return first["wall_s"] / other["wall_s"] if first and other else None


def print_speedup(b: Bench, runs: SweepRuns, load: float) -> None:
    """``--workers 2`` against ``--workers 1`` here (and in the baseline if it has both)."""
    one, *_, last = SWEEP_WORKERS
    here = workers_speedup(runs.figures, "current") or float("nan")
    same = runs.tables["current:1"].read_bytes() == runs.tables[f"current:{last}"].read_bytes()
    base = b.baseline.tree
    theirs = workers_speedup(runs.figures, base.name) if base else None
    text = f"{theirs:.2f}x" if theirs else None
    print(
        f"sweep   : --workers {last} is {here:.2f}x faster than --workers {one} (wall), "
        f"tables {'byte-identical' if same else 'DIFFERENT'}; load average before {load:.2f} "
        f"on {os.cpu_count()} cores (target >= {TARGET_WORKERS_2_SPEEDUP:g}x on an idle "
        f"machine: {verdict(here, TARGET_WORKERS_2_SPEEDUP)})"
        f"{b.versus(runs.errors, text, ratio(here, theirs), missing='no --workers option')}"
    )
    kept = runs.kept_wall_s.get(f"current:{one}")
    if kept is not None:  # the run.json and the wall time of one and the same run
        record = runs.tables[f"current:{one}"].with_name("run.json")
        print(amdahl_line(record, kept, last, here))


def amdahl_line(record: Path, wall_s: float, workers: int, measured: float) -> str:
    """How far ``workers`` processes can speed up the one-process sweep of ``wall_s`` seconds
    whose ``run.json`` is ``record``: its work units (the seconds this process waited for them,
    ``timing.total_s - timing.table_and_pareto_s``) spread, the rest (start-up, merging,
    encoding the table, the figure tables, the printout) stays in one process (Amdahl)."""
    try:
        timing = json.loads(record.read_text())["timing"]
        units_s = float(timing["total_s"]) - float(timing["table_and_pareto_s"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        return f"sweep   : no Amdahl bound ({record.name}: {type(err).__name__}: {err})"
    units_s = min(max(units_s, 0.0), wall_s)
    bound = wall_s / (wall_s - units_s + units_s / workers)
    return (
        f"sweep   : in the --workers 1 run the work units take {units_s:.1f} s of "
        f"{wall_s:.1f} s wall; the other {wall_s - units_s:.1f} s (start-up, merging, encoding "
        f"results.parquet, the figure tables, the printout) run in one process, so "
        f"--workers {workers} is at most {bound:.2f}x faster (Amdahl; measured {measured:.2f}x)"
    )


# ----------------------------------------------------------------------------------------------
# memory: this checkout only
# ----------------------------------------------------------------------------------------------


def section_memory(b: Bench) -> None:
    """Peak memory of ``sweep`` on ~1 M and ~10 M points, then of ``plot`` and ``report``."""
    folder = b.fresh("largest")
    points = 0
    for contexts in SWEEP_MEMORY_CONTEXTS:
        last = contexts == SWEEP_MEMORY_CONTEXTS[-1]
        points, peak, wall_s = bench_sweep_memory(contexts, folder if last else None)
        ok = "meets the target" if peak <= TARGET_SWEEP_PEAK_BYTES else "ABOVE the target"
        print(
            f"sweep   : {points:,} points (elmoe-dse sweep, fresh process) peak RSS "
            f"{peak / 1e9:.2f} GB, {wall_s:.1f} s = {points / wall_s:,.0f} points/s end to "
            f"end (target peak < {TARGET_SWEEP_PEAK_BYTES / 1e9:g} GB whatever the grid "
            f"size: {ok}; this checkout only)"
        )
    for command, (peak, wall_s) in bench_figures_memory(folder).items():
        ok = "meets the target" if peak <= TARGET_FIGURES_PEAK_BYTES else "ABOVE the target"
        print(
            f"{command:<8}: the {points:,}-point sweep folder (fresh process) peak RSS "
            f"{peak / 1e9:.2f} GB in {wall_s:.1f} s (target peak < "
            f"{TARGET_FIGURES_PEAK_BYTES / 1e9:g} GB: {ok}; this checkout only)"
        )


# ----------------------------------------------------------------------------------------------
# plot: the figures of the paper sweep's folder, per --workers
# ----------------------------------------------------------------------------------------------


def section_plot(b: Bench) -> None:
    """Wall and CPU seconds of ``elmoe-dse plot`` on a ``sweeps/paper.toml`` folder (written
    once by each tree's own ``sweep``) with ``--workers`` 1 and 2 (a tree without the option:
    its one mode), the trees alternating, and whether the two here draw byte-identical
    figures (each drawn in a copy of the folder under the same name: captions name it)."""
    sources: dict[str, Path] = {}
    support = {t.name: supports_workers(t, "plot") for t in b.trees}
    drawn: dict[int, dict[str, bytes]] = {}

    def measure(tree: Tree, k: int) -> dict[str, float]:
        if tree.name not in sources:
            sources[tree.name] = b.fresh("plot-source") / "paper"
            run_cli(tree, "sweep", str(PAPER_SWEEP), "--out", str(sources[tree.name]))
        folder = b.fresh("plot") / "paper"
        shutil.copytree(sources[tree.name], folder)
        workers = ["--workers", str(k)] if support[tree.name] else []
        run = run_cli(tree, "plot", str(folder), *workers)
        if tree is b.current and k not in drawn:
            drawn[k] = {p.name: p.read_bytes() for p in (folder / "plots").iterdir()}
        shutil.rmtree(folder.parent, ignore_errors=True)
        return {"wall_s": run.wall_s, "cpu_s": run.cpu_s}

    figures, errors = per_workers(b, support, measure)
    base = b.baseline.tree
    for k in SWEEP_WORKERS:
        cur = figures.get(("current", k))
        if cur is None:
            print(f"plot    : --workers {k}: this checkout failed ({errors.get('current')})")
            return
        other = figures.get((base.name, k)) if base else None
        text = r = None
        if other is not None and base is not None:
            mode = "" if support[base.name] else " (it has no --workers: one process)"
            text = f"{other['wall_s']:.1f} s wall, {other['cpu_s']:.1f} s CPU{mode}"
            r = ratio(cur["wall_s"], other["wall_s"], lower_is_better=True)
        print(
            f"plot    : the {PAPER_SWEEP.name} folder's figures, --workers {k}: "
            f"{cur['wall_s']:.1f} s wall, {cur['cpu_s']:.1f} s CPU (fresh process)"
            f"{b.versus(errors, text, r, ' wall', missing='no --workers option')}"
        )
    one, *_, last = SWEEP_WORKERS
    speedup = workers_speedup(figures, "current")
    if speedup is not None and one in drawn and last in drawn:
        same = "byte-identical" if drawn[one] == drawn[last] else "DIFFERENT"
        print(
            f"plot    : --workers {last} is {speedup:.2f}x faster than "
            f"--workers {one} (wall); the {len(drawn[one])} files in plots/ {same}"
        )


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

SECTIONS: dict[str, Callable[[Bench], None]] = {
    "evaluator": section_evaluator,
    "trials": section_trials,
    "optimize": section_optimize,
    "startup": section_startup,
    "reproduce": section_reproduce,
    "reproduce-cli": section_reproduce_cli,
    "sweep": section_sweep,
    "plot": section_plot,
    "memory": section_memory,
}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """``--against REV|none``, ``--only NAME[,NAME]``, ``--repeats N``, ``--trials N``,
    ``--seeds S[,S]``; ``sections`` in the bench's order, ``against`` None for none."""
    parser = argparse.ArgumentParser(
        prog="python -m elmoe_dse.bench",
        description="Speed figures next to their targets and to a baseline revision measured "
        "side by side in the same run (timings only).",
    )
    parser.add_argument(
        "--against",
        default=PREVIOUS_RELEASE,
        metavar="REV",
        help=f"baseline git revision, or 'none' [default: {PREVIOUS_RELEASE}, previous release]",
    )
    parser.add_argument("--only", metavar="NAME[,NAME]", help=f"sections: {', '.join(SECTIONS)}")
    parser.add_argument(
        "--repeats", type=int, default=DEFAULT_REPEATS, metavar="N", help="runs per tree, best kept"
    )
    parser.add_argument(
        "--trials",
        type=int,
        default=OPTIMIZE_TRIALS,
        metavar="N",
        help="optimize: trials per study",
    )
    parser.add_argument(
        "--seeds",
        default=",".join(map(str, OPTIMIZE_SEEDS)),
        metavar="S[,S]",
        help="optimize: seeds",
    )
    parser.add_argument(
        "--baseline-own-posterior",
        action="store_true",
        help="run the baseline on its own calibration posterior, not this checkout's",
    )
    args = parser.parse_args(argv)
    names = [s.strip() for s in (args.only or ",".join(SECTIONS)).split(",") if s.strip()]
    unknown = [s for s in names if s not in SECTIONS]
    if unknown or not names:
        parser.error(
            f"--only: unknown section {unknown[0] if unknown else ''!r}; use {', '.join(SECTIONS)}"
        )
    args.sections = tuple(s for s in SECTIONS if s in names)
    if args.repeats < 1 or args.trials < 1:
        parser.error("--repeats and --trials: at least 1")
    try:
        args.seeds = tuple(int(s) for s in args.seeds.split(","))
    except ValueError:
        parser.error(f"--seeds: comma-separated integers such as 0,1,2, not {args.seeds!r}")
    against = args.against.strip()
    args.against = None if against.lower() in ("none", "") else against
    return args


def describe(repo: Path, rev: str = "HEAD") -> str:
    """``abc1234 subject`` of ``rev`` in ``repo`` (``unknown`` outside git)."""
    out = _git(repo, "log", "-1", "--format=%h %s", rev)
    text = out.stdout.strip() if out.returncode == 0 else "unknown"
    return text if len(text) <= 70 else text[:67] + "..."


def importable(baseline: Baseline) -> Baseline:
    """``baseline``, or no tree (with the reason) if its subprocess does not import its own
    elmoe_dse."""
    if baseline.tree is None:
        return baseline
    try:
        run_script(baseline.tree, WHICH_SCRIPT)
    except (BenchError, ValueError, KeyError) as e:
        return Baseline(baseline.rev, None, baseline.method, f"its elmoe_dse does not import: {e}")
    return baseline


def header(b: Bench, sections: Sequence[str]) -> str:
    """The first line: what is measured against what, and how."""
    dirty = _git(REPO, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    here = f"this checkout ({describe(REPO)}{', with uncommitted changes' if dirty else ''})"
    base = b.baseline
    if base.tree is None:
        return f"bench   : {here}, no baseline ({base.reason}): figures without ratios"
    data = (
        f", on this checkout's {', '.join(Path(f).name for f in base.overlaid)} (its own "
        "differs: --baseline-own-posterior to keep it)"
        if base.overlaid
        else ""
    )
    return (
        f"bench   : {here} against {describe(REPO, base.tree.name)} ({base.method} in a "
        f"temporary folder{data}); sections {', '.join(sections)}; {b.repeats} interleaved "
        "run(s) per tree, the best printed; ratio > 1: better now"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not become_subreaper():
        print("bench   : no child subreaper here: worker processes' CPU may go uncounted")
    current = Tree("current", REPO)
    run_script(current, WHICH_SCRIPT)  # this checkout's subprocesses import this checkout
    with (
        tempfile.TemporaryDirectory(prefix="elmoe-bench-") as tmp,
        baseline_tree(args.against, own_posterior=args.baseline_own_posterior) as baseline,
    ):
        b = Bench(current, importable(baseline), Path(tmp), args.repeats, args.trials, args.seeds)
        print(header(b, args.sections), flush=True)
        for name in args.sections:
            SECTIONS[name](b)
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")  # one core
    sys.exit(main())
