"""Queries over a results folder: "the cheapest design that reaches X" (``elmoe-dse best``).

A query is a list of conditions on result columns (``metric.throughput_tok_per_s >= 200``,
``meta.dataset == mt-bench``), one objective column to minimize or maximize, and the columns to
group by (one answer per group). Only feasible rows count. Ties on the objective go to the higher
throughput, then to the lower energy per token.

The table is read in record batches with only the columns the query needs, and each batch is
reduced to its best row per group before the next is read, so memory stays bounded whatever the
number of rows. Column names may be written in full or by their unique short name (``model`` for
``meta.model``, ``throughput_tok_per_s`` for ``metric.throughput_tok_per_s``).
"""

from __future__ import annotations

import difflib
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from elmoe_dse.columns import ENERGY_PER_TOKEN_J, FEASIBLE, THROUGHPUT_TOK_PER_S
from elmoe_dse.errors import SpecError

if TYPE_CHECKING:
    import pandas as pd

#: Comparison operators a condition may use, longest first (so ``>=`` is not read as ``>``).
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_CONDITION = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*(>=|<=|==|!=|>|<)\s*(.+?)\s*$")
#: Rows read per batch.
BATCH_ROWS = 65_536
#: Tie-breaks after the objective: (column, larger is better).
TIE_BREAKS: tuple[tuple[str, bool], ...] = (
    (THROUGHPUT_TOK_PER_S, True),
    (ENERGY_PER_TOKEN_J, False),
)


@dataclass(frozen=True)
class Condition:
    """``column OP value``; value is a float when it parses as one, else a string."""

    column: str
    op: str
    value: float | str

    def text(self) -> str:
        return f"{self.column} {self.op} {self.value}"


def resolve_column(name: str, columns: Sequence[str], where: str) -> str:
    """The full column name for ``name`` (exact, or the unique column ending in ``.name``)."""
    if name in columns:
        return name
    matches = [c for c in columns if c.split(".", 1)[-1] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise SpecError(
            f"column '{name}' is ambiguous ({', '.join(matches)}); write it in full", field=where
        )
    near = difflib.get_close_matches(name, [*columns, *(c.split(".", 1)[-1] for c in columns)], 1)
    hint = f"; did you mean '{near[0]}'?" if near else "; see the columns of results.parquet"
    raise SpecError(f"no column '{name}'{hint}", field=where)


def parse_conditions(texts: Sequence[str], columns: Sequence[str]) -> list[Condition]:
    """Parse ``--where`` texts; each may hold several conditions joined by ``and`` or commas."""
    out: list[Condition] = []
    for text in texts:
        for part in re.split(r"\s+and\s+|,", text):
            if not part.strip():
                continue
            m = _CONDITION.match(part)
            if m is None:
                raise SpecError(
                    f"cannot read condition '{part.strip()}'; write COLUMN OP VALUE with OP one "
                    f"of {' '.join(OPERATORS)} (e.g. 'metric.throughput_tok_per_s >= 200')",
                    field="--where",
                )
            name, op, raw = m.groups()
            raw = raw.strip().strip("'\"")
            try:
                value: float | str = float(raw)
            except ValueError:
                value = raw
            out.append(Condition(resolve_column(name, columns, "--where"), op, value))
    return out


@dataclass(frozen=True)
class Query:
    """A parsed query over one results table."""

    conditions: tuple[Condition, ...]
    objective: str
    minimize: bool
    by: tuple[str, ...]
    show: tuple[str, ...]


def build_query(
    columns: Sequence[str],
    where: Sequence[str],
    objective: str,
    *,
    minimize: bool,
    by: Sequence[str] = (),
) -> Query:
    """Resolve every name of a query against ``columns`` (one-line errors naming the option)."""
    conds = tuple(parse_conditions(where, columns))
    obj = resolve_column(objective, columns, "--minimize" if minimize else "--maximize")
    groups = tuple(resolve_column(b, columns, "--by") for b in by if b.strip())
    shown = [*groups, obj, *(c.column for c in conds)]
    shown += [c for c in columns if c.startswith("knob.")]
    shown += [c for c, _ in TIE_BREAKS if c in columns]
    shown += [c for c in ("meta.platform", "meta.policy") if c in columns]
    return Query(conds, obj, minimize, groups, tuple(dict.fromkeys(shown)))


def _mask(frame: pd.DataFrame, conditions: Sequence[Condition]) -> Any:
    import numpy as np

    keep = np.ones(len(frame), dtype=bool)
    if FEASIBLE in frame.columns:
        keep &= frame[FEASIBLE].to_numpy(dtype=bool)
    for c in conditions:
        col = frame[c.column]
        value = c.value
        if isinstance(value, str) and col.dtype.kind in "biuf":
            raise SpecError(
                f"column '{c.column}' is numeric; compare it with a number, not '{value}'",
                field="--where",
            )
        if not isinstance(value, str) and col.dtype.kind not in "biuf":
            value = str(value).removesuffix(".0")
            col = col.astype(str)
        keep &= np.asarray(OPERATORS[c.op](col, value), dtype=bool)
    return keep


def _best_per_group(frame: pd.DataFrame, query: Query) -> pd.DataFrame:
    keys = [query.objective, *(c for c, _ in TIE_BREAKS if c in frame.columns)]
    ascending = [query.minimize, *(not big for c, big in TIE_BREAKS if c in frame.columns)]
    ordered = frame.sort_values(keys, ascending=ascending, kind="stable")
    if not query.by:
        return ordered.head(1)
    return ordered.drop_duplicates(list(query.by), keep="first")


def best_designs(results: Path, query: Query) -> pd.DataFrame:
    """The best feasible row per group of ``results`` (a parquet file) under ``query``."""
    import pandas as pd
    import pyarrow.parquet as pq

    needed = list(dict.fromkeys([*query.show, *(c.column for c in query.conditions)]))
    file = pq.ParquetFile(results)
    if FEASIBLE in file.schema_arrow.names:
        needed.append(FEASIBLE)
    best: pd.DataFrame | None = None
    for batch in file.iter_batches(batch_size=BATCH_ROWS, columns=needed):
        frame = batch.to_pandas()
        frame = frame[_mask(frame, query.conditions)]
        if frame.empty:
            continue
        merged = frame if best is None else pd.concat([best, frame], ignore_index=True)
        best = _best_per_group(merged, query)
    if best is None:
        return pd.DataFrame(columns=list(query.show))
    out = best[list(query.show)].reset_index(drop=True)
    return out.sort_values(list(query.by)).reset_index(drop=True) if query.by else out


def varying(frame: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """The columns of ``columns`` whose value differs between rows (or all of them for one row)."""
    if len(frame) <= 1:
        return [c for c in columns if frame[c].notna().all()]
    return [c for c in columns if frame[c].nunique(dropna=False) > 1]
