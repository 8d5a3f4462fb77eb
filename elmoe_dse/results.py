"""Tidy results tables: their columns, the output file names, the JSON sidecar, atomic writes.

One row per design point. Columns are prefixed by role and suffixed by unit: ``knob.*`` (inputs),
``metric.*`` (outputs, SI), ``meta.*`` (model, platform, dataset, policy, feasibility); the names
are defined in :mod:`elmoe_dse.columns` (which the spec layer may import) and re-exported here,
with the file names of a run directory (:data:`RUN_FILE`, :data:`RESULTS_FILE` ...). Files are
written to a temporary name in the same folder and renamed into place, so a reader never sees a
half-written file and an interrupted run leaves nothing partial behind. Nothing is appended.

A run folder is one consistent thing (:func:`staged_run`): a run writes every file into a fresh
hidden stage folder inside its output folder (``.run.<pid>.XXXX.stage``), then commits in one
step under the folder's lock (``flock`` on the folder): ``manifest.json`` is first replaced by a
*pending* one, the files are renamed into place, and the final ``manifest.json`` (every file with
its sha256 and size) is renamed into place last. Readers (:func:`verify_run`) refuse a folder whose
manifest is pending (a run killed while committing) or whose files differ from it (a mix of two
runs, a truncated or edited file), in one line. A folder without a manifest was written by an
older elmoe-dse and is read as it is. Subfolders (``reproduce/``) are run folders of their own;
``plots/`` and the report are derived artefacts outside the manifest.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from elmoe_dse import __version__
from elmoe_dse.columns import (
    ACCEPTANCE_FRAC,
    BOUND,
    DEVICE_LINK_TIME_PER_STEP_S,
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
    "MANIFEST_FILE",
    "META",
    "METRIC",
    "METRIC_COLUMNS",
    "REPRODUCE_DIR",
    "RESULTS_FILE",
    "RUN_FILE",
    "SYSTEMS_CSV_FILE",
    "SYSTEMS_FILE",
    "OutputError",
    "RunFolderError",
    "Stage",
    "atomic_write",
    "ensure_dir",
    "git_commit",
    "sidecar",
    "spec_hash",
    "staged_run",
    "step_columns",
    "verify_run",
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
#: Every file of a run folder with its sha256 and size, written last (see the module docstring).
MANIFEST_FILE = "manifest.json"
#: Test hook: seconds to pause in the middle of a commit (after the first file is renamed), so a
#: test can kill the run at its commit point.
COMMIT_PAUSE_ENV = "ELMOE_DSE_COMMIT_PAUSE_S"


class OutputError(ElmoeError):
    """An output directory or file cannot be written."""


class RunFolderError(ElmoeError):
    """A run folder's files do not belong together (or its manifest cannot be read)."""


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
    link = sum((np.asarray(p.device_link_time_s) for p in step.passes), np.zeros(()))
    cols[DEVICE_LINK_TIME_PER_STEP_S] = np.broadcast_to(link, shape)
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


_TEMP_FILE = re.compile(r"^\..+\.(\d+)\.[^.]*\.(tmp|spool|stage)$")


def remove_stale_temps(folder: Path) -> list[Path]:
    """Remove the temporary files and stage folders (``.NAME.<pid>.XXXX.tmp|spool|stage``) that
    runs killed before they finished left in ``folder``: those whose process no longer exists.
    Returns them."""
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
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
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


# ----------------------------------------------------------------------------------------------
# Run folders: staged writes, one commit, a manifest every reader checks
# ----------------------------------------------------------------------------------------------


#: How ``run.json``'s ``inputs`` name a spec shipped with the package.
SHIPPED_PREFIX = "shipped:"
_DATA_DIR = Path(__file__).resolve().parent / "data"


def shipped_file(axis: str, name: str) -> Path:
    """The file of a shipped model, platform or dataset spec."""
    return _DATA_DIR / f"{axis}s" / f"{name}.toml"


def check_inputs(folder: Path, record: Mapping[str, Any], *, missing_ok: bool = False) -> None:
    """Check that every model, platform and dataset file the run in ``folder`` read (its
    ``run.json``'s ``inputs``) is still there with the same sha256; one line naming the first
    that is not (a folder from an older elmoe-dse records none: nothing to check).

    ``missing_ok``: a file that no longer exists passes (``plot`` and ``report`` draw from the
    tables the run wrote, which need no spec; a file that is there but changed is refused, as
    the figures would no longer describe it)."""
    inputs = record.get("inputs")
    if inputs is None:
        return
    where = folder / RUN_FILE
    if not isinstance(inputs, dict):
        raise RunFolderError(f"{where}: 'inputs' is not a table; re-run the command that wrote it")
    for axis_key, refs in sorted(inputs.items()):
        if not isinstance(refs, dict):
            raise RunFolderError(f"{where}: 'inputs.{axis_key}' is not a table; re-run the run")
        for ref, entry in sorted(refs.items()):
            resolved = entry.get("resolved") if isinstance(entry, dict) else None
            digest = entry.get("sha256") if isinstance(entry, dict) else None
            if not isinstance(resolved, str) or not isinstance(digest, str):
                raise RunFolderError(
                    f"{where}: 'inputs.{axis_key}' entry {ref!r} lacks 'resolved' or 'sha256'; "
                    "re-run the command that wrote it"
                )
            _check_input(where, axis_key.rstrip("s"), resolved, digest, missing_ok)


def _check_input(where: Path, axis: str, resolved: str, digest: str, missing_ok: bool) -> None:
    if resolved.startswith(SHIPPED_PREFIX):
        path = shipped_file(axis, resolved[len(SHIPPED_PREFIX) :])
    else:
        path = Path(resolved)
    if missing_ok and not path.exists():
        return
    try:
        now = file_sha256(path)
    except OSError as err:
        raise RunFolderError(
            f"{where}: the {axis} file {path} the run read cannot be read now ({err.strerror}); "
            "restore it, or re-run the command to draw the figures for the files as they are"
        ) from None
    if now != digest:
        raise RunFolderError(
            f"{where}: the {axis} file {path} changed since the run (sha256 {digest[:12]} then, "
            f"{now[:12]} now); restore it, or re-run the command to draw the figures for the "
            "file as it is"
        )


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _entry(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "size": path.stat().st_size}


@contextmanager
def folder_lock(folder: Path, *, shared: bool = False) -> Iterator[None]:
    """Hold ``folder``'s lock (``flock`` on the folder itself, no lock file): exclusive for a
    commit, shared for a reader."""
    import fcntl

    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH if shared else fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


@dataclass
class Stage:
    """A run being written: files go to ``folder`` (a hidden stage inside ``target``); after the
    commit, ``written`` lists their final paths."""

    target: Path
    folder: Path
    keep: tuple[str, ...] = ()
    written: list[Path] = field(default_factory=list)


@contextmanager
def staged_run(target: Path, *, keep: Iterable[str] = ()) -> Iterator[Stage]:
    """Write a run into a fresh stage inside ``target`` and commit it in one step when the block
    ends without error (:func:`commit`); on any error (or a kill) nothing in ``target`` changes
    and the stage is removed (a killed run's stage by the next run's :func:`ensure_dir`).

    ``keep``: files of the folder's current run that belong to the new one unchanged (``analyze``
    recomputes the figure tables of a run and keeps its table and ``run.json``)."""
    ensure_dir(target)
    try:
        folder = Path(tempfile.mkdtemp(prefix=temp_prefix("run"), suffix=".stage", dir=target))
    except OSError as err:
        raise OutputError(
            f"{target}: cannot write ({err.strerror}); choose another --out"
        ) from None
    stage = Stage(target, folder, tuple(keep))
    try:
        yield stage
        stage.written = commit(stage)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def in_stage(folder: Path) -> bool:
    """Whether ``folder`` is the stage of a run being written (its writers write straight into
    it; elsewhere they stage and commit themselves)."""
    m = _TEMP_FILE.match(folder.name)
    return m is not None and m.group(2) == "stage"


#: The files of a run folder written by an older elmoe-dse (no manifest) that ``analyze`` keeps.
LEGACY_RUN_FILES = (
    RUN_FILE,
    RESULTS_FILE,
    SYSTEMS_FILE,
    SYSTEMS_CSV_FILE,
    CELLS_FILE,
    "bands.json",
)


def check_targets(target: Path, names: Iterable[str]) -> None:
    """Fail (before any work or any change) if a file of a run cannot replace what is at its
    place in ``target`` (a folder of that name)."""
    for name in (*names, MANIFEST_FILE):
        path = target / name
        if path.is_dir() and not path.is_symlink():
            raise OutputError(
                f"{path}: is a folder, where the run writes its file {name}; move it away or "
                "choose another --out (nothing was changed)"
            )


def commit(stage: Stage) -> list[Path]:
    """Move the stage's files into place under the folder's lock: a pending manifest first, then
    every file, then the final manifest (the commit point); files of the previous run that the
    new one does not list are removed. Returns the final paths."""
    names = sorted(
        p.name for p in stage.folder.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    target = stage.target
    check_targets(target, names)
    files = {name: _entry(stage.folder / name) for name in names}
    with folder_lock(target):
        old = _manifest_files(target)
        for name in stage.keep:
            if name not in files:
                files[name] = _entry(target / name)
        manifest = {"format": 1, "package": "elmoe-dse", "version": __version__, "files": files}
        write_json(target / MANIFEST_FILE, {**manifest, "pending": True})
        pause = float(os.environ.get(COMMIT_PAUSE_ENV, "0") or 0)
        for i, name in enumerate(names):
            os.replace(stage.folder / name, target / name)
            if i == 0 and pause > 0:
                time.sleep(pause)
        write_json(target / MANIFEST_FILE, manifest)
        stale = set(old) | {p.name for p in target.iterdir() if is_figure_file(p.name)}
        for name in stale - set(files):  # the previous run's files (figure tables of any run)
            with suppress(OSError):
                (target / name).unlink()
    return [target / name for name in names]


def _manifest_files(folder: Path) -> dict[str, Any]:
    """The files the folder's manifest lists, {} if it has none or it cannot be read."""
    try:
        data = json.loads((folder / MANIFEST_FILE).read_text())
        files = data.get("files") if isinstance(data, dict) else None
    except (OSError, ValueError):
        return {}
    return files if isinstance(files, dict) else {}


def read_manifest(folder: Path) -> dict[str, dict[str, Any]] | None:
    """The files ``folder/manifest.json`` lists (name -> sha256, size), None if the folder has
    no manifest (written by an older elmoe-dse); a one-line error if it cannot be read or a
    run was killed while committing."""
    path = folder / MANIFEST_FILE
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise RunFolderError(
            f"{path}: cannot read it as JSON ({err}); re-run the command that wrote {folder}"
        ) from None
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict) or not all(
        isinstance(v, dict) and isinstance(v.get("sha256"), str) for v in files.values()
    ):
        raise RunFolderError(
            f"{path}: not a manifest of elmoe-dse (no 'files' with sha256); re-run the command "
            f"that wrote {folder}"
        )
    if data.get("pending"):
        raise RunFolderError(
            f"{folder}: a run was interrupted while writing this folder, so its files do not "
            "belong together; re-run the command that writes it"
        )
    return files


def is_figure_file(name: str) -> bool:
    """Whether ``name`` is a figure table or their sidecar (derived: ``analyze`` rewrites them)."""
    return name == FIGURES_FILE or (name.startswith("figure_") and name.endswith(".parquet"))


def verify_run(
    folder: Path,
    required: Iterable[str] = (),
    *,
    derived: Callable[[str], bool] | None = is_figure_file,
    skip_derived: bool = False,
) -> dict[str, dict[str, Any]] | None:
    """Check that the files of the run in ``folder`` belong together: every file its manifest
    lists is there with its size and sha256, and every ``required`` file is listed. None (and no
    check) for a folder without a manifest; a one-line :class:`RunFolderError` otherwise.

    A ``derived`` file (the figure tables) may be missing (a reader treats it as not computed);
    ``skip_derived`` leaves them unchecked (``analyze`` rewrites them)."""
    with folder_lock(folder, shared=True):
        files = read_manifest(folder)
        if files is None:
            return None
        for name in required:
            if name not in files:
                raise RunFolderError(
                    f"{folder}: {name} is not part of the run recorded in {MANIFEST_FILE} (left "
                    "from another run?); re-run the command that writes it"
                )
        for name, entry in sorted(files.items()):
            path = folder / name
            is_derived = derived is not None and derived(name)
            if is_derived and (skip_derived or not path.exists()):
                continue
            why = _differs(path, entry)
            if why:
                raise RunFolderError(
                    f"{path}: {why} since the run wrote {folder / MANIFEST_FILE}, so the folder's "
                    "files do not belong together (an interrupted or concurrent run, or an edit); "
                    "re-run the command that writes it"
                )
    return files


def _differs(path: Path, entry: Mapping[str, Any]) -> str:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "is missing"
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    if "size" in entry and size != entry["size"]:
        return "changed size"
    try:
        digest = file_sha256(path)
    except OSError as err:
        return f"cannot be read ({err.strerror})"
    return "" if digest == entry["sha256"] else "changed content"
