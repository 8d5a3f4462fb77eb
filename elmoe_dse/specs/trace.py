"""Routing trace files: the CSV reader (file I/O lives in the spec layer, not in the model).

A trace has header ``token,layer,expert`` and one row per routed selection; the model functions
that use it (:func:`elmoe_dse.routing.probabilities_from_trace`,
:func:`elmoe_dse.routing.trace_unique_experts`) take the array this module returns.
"""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt

from elmoe_dse.errors import SpecError
from elmoe_dse.routing import TRACE_COLUMNS, IntArray


def load_routing_trace(path: str | Path) -> IntArray:
    """Read a routing trace CSV with header ``token,layer,expert``, one row per selection.

    Columns may come in any order; ids are non-negative integers (token and layer ids are
    labels, expert ids index the layer's experts from 0).

    Args:
        path: CSV file.

    Returns:
        int64 array (rows, 3) with columns (token, layer, expert), in file order.

    Raises:
        SpecError: naming the file, the column and the fix, for a missing file, a wrong header,
            a non-integer or negative id, or a file without rows.
    """
    where = str(path)
    file = Path(path)
    if not file.is_file():
        raise SpecError("trace file not found; check the path", path=where)
    try:
        with file.open(newline="", encoding="utf-8") as fh:
            header_line = fh.readline()
            reader_header = next(csv.reader([header_line]), [])
            header = [h.strip().lower() for h in reader_header]
            if sorted(header) != sorted(TRACE_COLUMNS):
                raise SpecError(
                    f"header is {','.join(header) or '(empty)'}; the first line must be "
                    f"'token,layer,expert'",
                    path=where,
                    field="header",
                )
            columns = [header.index(c) for c in TRACE_COLUMNS]
            data: npt.NDArray[np.int64] | None = None
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # an empty body is reported below
                    data = np.loadtxt(fh, delimiter=",", dtype=np.int64, ndmin=2)
            except ValueError:
                data = None
    except UnicodeDecodeError:
        raise SpecError("is not a UTF-8 text CSV file", path=where) from None
    if data is None:
        _raise_first_bad_row(file, header, where)
        raise SpecError("could not parse the rows as integers", path=where)  # pragma: no cover
    if data.shape[0] == 0:
        raise SpecError("has no rows; add one 'token,layer,expert' row per selection", path=where)
    if data.shape[1] != 3:
        raise SpecError(
            f"rows have {data.shape[1]} values; write 3 per row (token,layer,expert)", path=where
        )
    trace = np.ascontiguousarray(data[:, columns])
    negative = trace < 0
    if negative.any():
        row, col = np.argwhere(negative)[0]
        raise SpecError(
            f"row {row + 1} has id {trace[row, col]}; ids must be >= 0",
            path=where,
            field=TRACE_COLUMNS[col],
        )
    return trace


def _raise_first_bad_row(file: Path, header: list[str], where: str) -> None:
    with file.open(newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        next(reader, None)
        for line_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise SpecError(
                    f"line {line_no} has {len(row)} values; write 3 per row (token,layer,expert)",
                    path=where,
                )
            for name, cell in zip(header, row, strict=True):
                try:
                    int(cell.strip())
                except ValueError:
                    raise SpecError(
                        f"line {line_no}: {cell.strip()!r} is not an integer id",
                        path=where,
                        field=name,
                    ) from None
