"""Small results directories (reproduce, sweep, optimize), written as the commands write them."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from elmoe_dse.explore.figure_tables import write_figure_tables
from elmoe_dse.explore.reproduce import reproduce, save_reproduce
from elmoe_dse.results import REPRODUCE_DIR

#: A small design space: one model, one platform, one dataset, two batch sizes.
SMALL_SWEEP: dict[str, Any] = {
    "schema_version": 1,
    "name": "small",
    "models": ["deepseek-v2-lite"],
    "platforms": ["elmoe3d-8g"],
    "datasets": ["mt-bench"],
    "group_by": ["batch_size"],
    "knobs": {
        "policy": "elastic-sd",
        "batch_size": [1, 16],
        "draft_bits": [3, 4, 5],
        "draft_length": [1, 2, 4],
        "pool_experts": ["auto", 16],
    },
    "objectives": [
        {"metric": "metric.throughput_tok_per_s", "direction": "maximize"},
        {"metric": "metric.energy_per_token_j", "direction": "minimize"},
    ],
}


def write_reproduce(folder: Path, models: tuple[str, ...] = ("deepseek-v2-lite",)) -> Path:
    """``folder/reproduce`` as ``elmoe-dse reproduce --calibration none`` writes it (with its
    figure tables), for a subset of the paper's models on MT-Bench."""
    save_reproduce(reproduce(None, models=models, datasets=("mt-bench",)), folder / REPRODUCE_DIR)
    write_figure_tables(folder / REPRODUCE_DIR)
    return folder


@pytest.fixture(scope="session")
def reproduce_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_reproduce(tmp_path_factory.mktemp("reproduce"))


@pytest.fixture(scope="session")
def sweep_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from elmoe_dse.explore.sweep import run_sweep, save_sweep
    from elmoe_dse.specs.sweep import check_references, sweep_from_dict

    spec = check_references(sweep_from_dict(SMALL_SWEEP))
    out = tmp_path_factory.mktemp("sweep")
    save_sweep(run_sweep(spec), out, sweep_file="small.toml")
    write_figure_tables(out)
    return out


@pytest.fixture(scope="session")
def optimize_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from elmoe_dse.explore.optimize import run_optimize, save_optimize
    from elmoe_dse.specs.sweep import check_references, sweep_from_dict

    spec = check_references(sweep_from_dict(SMALL_SWEEP))
    out = tmp_path_factory.mktemp("optimize")
    result = run_optimize(spec, out_dir=out, trials=12, seed=0)
    save_optimize(result, out, sweep_file="small.toml")
    write_figure_tables(out)
    return out


def _copy(master: Path, tmp_path: Path) -> Path:
    dest = tmp_path / master.name
    shutil.copytree(master, dest)
    return dest


@pytest.fixture
def reproduce_dir(reproduce_master: Path, tmp_path: Path) -> Path:
    """A fresh copy (tests may break it or write plots into it)."""
    return _copy(reproduce_master, tmp_path)


@pytest.fixture
def sweep_dir(sweep_master: Path, tmp_path: Path) -> Path:
    return _copy(sweep_master, tmp_path)
