"""Tidy results tables: their columns, the output file names, the JSON sidecar, atomic writes.

One row per design point. Columns are prefixed by role and suffixed by unit: ``knob.*`` (inputs),
``metric.*`` (outputs, SI), ``meta.*`` (model, platform, dataset, policy, feasibility); the names
are defined in :mod:`elmoe_dse.columns` (which the spec layer may import) and re-exported here,
with the file names of a run directory (:data:`RUN_FILE`, :data:`RESULTS_FILE` ...). Files are
written to a temporary name in the same folder and renamed into place, so a reader never sees a
half-written file and an interrupted run leaves nothing partial behind. Nothing is appended.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse import __version__
from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    BOUND,
    DRAFT_LENGTH_TOKENS,
    FEASIBLE,
    HIT_RATE_FRAC,
    INFEASIBLE_REASON,
    KNOB,
    META,
    METRIC,
    METRIC_COLUMNS,
    POOL_EXPERTS_PER_LAYER,
    TAU_TOKENS,
    bytes_read_column,
    energy_column,
)
from elmoe_dse.errors import ElmoeError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CELLS_FILE",
    "KNOB",
    "META",
    "METRIC",
    "METRIC_COLUMNS",
    "REPRODUCE_DIR",
    "RESULTS_FILE",
    "RUN_FILE",
    "SYSTEMS_CSV_FILE",
    "SYSTEMS_FILE",
    "OutputError",
    "atomic_write",
    "ensure_dir",
    "git_commit",
    "sidecar",
    "spec_hash",
    "step_columns",
    "write_json",
    "write_table",
    "write_text",
]

# Output files of a run directory.
#: The sidecar of every run: command, resolved configuration, version, commit, calibration.
RUN_FILE = "run.json"
#: A sweep's or optimize's table, one row per design point.
RESULTS_FILE = "results.parquet"
#: The folder ``reproduce --out DIR`` writes into (``DIR/reproduce``).
REPRODUCE_DIR = "reproduce"
#: ``reproduce``'s per-system rows (Parquet, what the plots read) and the same rows as CSV.
SYSTEMS_FILE = "systems.parquet"
SYSTEMS_CSV_FILE = "systems.csv"
#: ``reproduce``'s per-cell ratios (the golden table's layout).
CELLS_FILE = "cells.csv"
#: What the figures draw, computed with the run's specs when it is written (or by ``analyze``):
#: the sidecar of the figure tables, then one tidy table per figure need.
FIGURES_FILE = "figures.json"
FIGURE_BASELINES_FILE = "figure_baselines.parquet"
FIGURE_ENERGY_FILE = "figure_energy.parquet"
FIGURE_ROOFLINE_POINTS_FILE = "figure_roofline_points.parquet"
FIGURE_ROOFLINE_ROOFS_FILE = "figure_roofline_roofs.parquet"
FIGURE_ACCEPTANCE_FILE = "figure_acceptance.parquet"
FIGURE_HIT_RATE_FILE = "figure_hit_rate.parquet"
FIGURE_DRAFT_LENGTH_FILE = "figure_draft_length.parquet"


class OutputError(ElmoeError):
    """An output directory or file cannot be written."""


def step_columns(step: Any) -> dict[str, np.ndarray]:
    """Flat metric columns of a (vectorized) :class:`~elmoe_dse.evaluator.StepCost`, including
    energy components and cache (typed ``Any`` so that readers of results, the plots, do not
    depend on the evaluator)."""
    shape = np.shape(step.time_per_step_s)
    cols: dict[str, np.ndarray] = {
        f"{METRIC}{k}": np.broadcast_to(v, shape) for k, v in step.metrics().items()
    }
    for comp, v in step.energy_by_component_j.items():
        cols[energy_column(comp)] = np.broadcast_to(v, shape)
    for tier, v in step.bytes_by_tier.items():
        cols[bytes_read_column(tier)] = np.broadcast_to(v, shape)
    cols[POOL_EXPERTS_PER_LAYER] = np.broadcast_to(step.cache.pool_experts_per_layer, shape)
    cols[HIT_RATE_FRAC] = np.broadcast_to(step.cache.hit_rate_frac, shape)
    cols[ACCEPTANCE_FRAC] = np.broadcast_to(step.speculative.acceptance_frac, shape)
    cols[TAU_TOKENS] = np.broadcast_to(step.speculative.tau_tokens, shape)
    cols[DRAFT_LENGTH_TOKENS] = np.broadcast_to(step.speculative.draft_length_tokens, shape)
    cols[BOUND] = np.broadcast_to(step.bound, shape)
    cols[FEASIBLE] = np.broadcast_to(step.feasible, shape)
    cols[INFEASIBLE_REASON] = np.broadcast_to(step.reason_per_point(), shape)
    return cols


def ensure_dir(path: Path) -> Path:
    """Create an output directory, with a one-line error if it cannot be created or written."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(
            f"{path}: cannot create output directory ({err.strerror}); choose another --out"
        ) from None
    if not os.access(path, os.W_OK):
        raise OutputError(f"{path}: output directory is not writable; choose another --out")
    remove_stale_temps(path)  # temporary files of runs killed before they finished
    return path


def temp_prefix(name: str) -> str:
    """Prefix of this process's temporary files for ``name``: ``.NAME.<pid>.`` (hidden; the pid
    lets a later run tell a dead run's leftovers from a live run's files)."""
    return f".{name}.{os.getpid()}."


_TEMP_FILE = re.compile(r"^\..+\.(\d+)\.[^.]*\.(tmp|spool)$")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files (``.NAME.<pid>.XXXX.tmp|spool``) that runs killed before
    they finished left in ``folder``: those whose process no longer exists. Returns them."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for path in entries:
        m = _TEMP_FILE.match(path.name)
        if m is None or _pid_alive(int(m.group(1))):
            continue
        try:
            path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Write via ``write(tmp_path)`` to a temporary file beside ``path``, then rename into place."""
    ensure_dir(path.parent)
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give results the usual file mode
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"{path}: cannot write ({err.strerror})") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    """Atomically write a text file."""

    def _write(tmp: Path) -> None:
        tmp.write_text(text)

    return atomic_write(path, _write)


def write_json(path: Path, data: Any) -> Path:
    """Atomically write JSON (sorted keys, stable floats)."""
    text = json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n"
    return write_text(path, text)


def write_table(path: Path, frame: pd.DataFrame) -> Path:
    """Atomically write a DataFrame as Parquet (``.parquet``) or CSV (``.csv``)."""
    if path.suffix == ".parquet":
        return atomic_write(path, lambda tmp: frame.to_parquet(tmp, index=False))
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False, float_format="%.10g"))


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def git_commit() -> str | None:
    """The working tree's git commit, if it is a checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def spec_hash(data: Mapping[str, Any]) -> str:
    """A short content hash of a spec's data (sorted JSON)."""
    text = json.dumps(data, sort_keys=True, default=_json_default)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def sidecar(**extra: Any) -> dict[str, Any]:
    """The common sidecar fields: package version and git commit, plus ``extra``."""
    return {"package": "elmoe-dse", "version": __version__, "git_commit": git_commit(), **extra}
