"""The reproduction's target rows of S draws at once, one evaluator call per system and cell.

Each draw keeps its own specs, memo and rows (:class:`Draw`); every system of a cell is costed
for all of them by :func:`elmoe_dse.evaluator.ensemble.evaluate_draws` (their spec constants and
routing on a leading sample axis). Draw s's rows are those
:func:`~elmoe_dse.explore.reproduce.target_rows` gives it alone, bit for bit, and its memo is
read and written as there: a mode-switching run already in a draw's memo is taken from it, and
only the draws without it are evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from elmoe_dse.evaluator import ResidencyMemo
from elmoe_dse.evaluator.ensemble import evaluate_draws
from elmoe_dse.explore.reproduce import (
    PAPER_DATASETS,
    PAPER_MODELS,
    DrawMemo,
    SystemRun,
    best_over_gamma,
    cell_rows,
    cell_runs,
    cell_scenario,
    mode_columns,
    mode_key,
    paper_model,
    remember_modes,
    run_settings,
    select_mode,
)
from elmoe_dse.scenario import Inputs

Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Draw:
    """One draw of a stack: its specs, its systems (the same systems in the same order in
    every draw of a stack), its memo and the memo's key of the draw."""

    inputs: Inputs
    runs: tuple[SystemRun, ...]
    memo: DrawMemo | None = None
    key: tuple[Any, ...] = ()


def target_rows_draws(
    draws: Sequence[Draw],
    models: tuple[str, ...] = PAPER_MODELS,
    datasets: tuple[str, ...] = PAPER_DATASETS,
    residency: ResidencyMemo | None = None,
) -> list[list[dict[str, Any]]]:
    """Per draw, :func:`~elmoe_dse.explore.reproduce.target_rows` of its inputs and runs
    (``residency``: residencies of the stacked routing processes, shared across calls)."""
    out: list[list[dict[str, Any]]] = [[] for _ in draws]
    for dataset in datasets:
        keeps = [cell_runs(d.runs, dataset) for d in draws]
        for model_id in models:
            for j in range(len(keeps[0])):
                runs = [keep[j] for keep in keeps]
                best = _columns(draws, runs, (model_id, dataset), residency)
                for rows, run, b in zip(out, runs, best, strict=True):
                    rows += cell_rows(model_id, dataset, run, b)
    return out


def _columns(
    draws: Sequence[Draw],
    runs: list[SystemRun],
    cell: tuple[str, str],
    residency: ResidencyMemo | None,
) -> list[Columns]:
    """Per draw, the best columns of one system on one cell (a mode-switching run from each
    draw's memo where it is there, the other draws evaluated together)."""
    switch, threshold, _ = run_settings(runs[0])
    bases = [(*d.key, *cell) for d in draws]
    found: list[tuple[Columns, Columns] | None] = [
        d.memo.modes.get(mode_key(r, b)) if d.memo is not None else None
        for d, r, b in zip(draws, runs, bases, strict=True)
    ]
    todo = [s for s, hit in enumerate(found) if hit is None]
    if todo:
        fresh = _evaluate([draws[s] for s in todo], [runs[s] for s in todo], cell, residency)
        for s, columns in zip(todo, fresh, strict=True):
            found[s] = columns
            if switch:
                remember_modes(draws[s].memo, runs[s], bases[s], columns)
    out: list[Columns] = []
    for hit in found:
        assert hit is not None
        out.append(select_mode(*hit, threshold) if switch else hit[1])
    return out


def _evaluate(
    draws: Sequence[Draw],
    runs: list[SystemRun],
    cell: tuple[str, str],
    residency: ResidencyMemo | None,
) -> list[tuple[Columns, Columns]]:
    """Per draw, (AR, speculation) columns of a mode-switching run, or ({}, best columns)."""
    model_id, dataset = cell
    switch, _, settings = run_settings(runs[0])
    scs = [
        cell_scenario(d.inputs, model_id, r, dataset, d.memo, d.key)
        for d, r in zip(draws, runs, strict=True)
    ]
    step = evaluate_draws(
        paper_model(model_id),
        [r.platform for r in runs],
        [sc.knobs(**settings) for sc in scs],
        [sc.p for sc in scs],
        [sc.quality for sc in scs],
        residency_memo=residency,
    )
    n = len(draws)
    if not switch:
        best = best_over_gamma(step)
        return [({}, {k: v[s] for k, v in best.items()}) for s in range(n)]
    ar, sd = mode_columns(step)
    return [({k: v[s] for k, v in ar.items()}, {k: v[s] for k, v in sd.items()}) for s in range(n)]
