"""Numbers as text for tables, reports and figure labels (no heavy imports).

Two formatters, used by every front end:

- :func:`si` writes an SI value with an engineering prefix and 3 significant digits
  (``1.23e-3, "s"`` -> ``"1.23 ms"``);
- :func:`unit_text` writes a raw value of a results column by the unit suffix its name carries
  (``_s``, ``_j``, ``_bytes``, ``_frac``, ``_tok_per_s``), either with engineering prefixes or in
  the fixed display units of the report (time in ms, energy per token in mJ, other energy in J).
"""

from __future__ import annotations

import math
from typing import Any

#: Engineering prefixes, largest first; the ones below 1 are used only when asked for.
PREFIXES = ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""))
SUB_UNIT_PREFIXES = ((1e-3, "m"), (1e-6, "µ"), (1e-9, "n"), (1e-12, "p"))


def si(value: float | None, unit: str, *, sub_unit: bool = True) -> str:
    """``value`` (SI) with an engineering prefix and 3 significant digits: ``1.5e12, "B/s"`` ->
    ``"1.5 TB/s"``; None -> ``"-"``. ``sub_unit=False`` keeps values below 1 unprefixed
    (``0.5 OPS``, not ``500 mOPS``)."""
    if value is None:
        return "-"
    if value == 0:
        return f"0 {unit}"
    mag = abs(value)
    for scale, prefix in PREFIXES + (SUB_UNIT_PREFIXES if sub_unit else ()):
        if mag >= scale:
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def unit_text(column: str, value: Any, *, engineering: bool = True) -> str:
    """A raw value of results column ``column`` as text, by the unit suffix of its name.

    None is ``-``; booleans ``yes``/``no``; strings are returned as they are (escape them for
    the target); NaN is ``auto`` for a knob and ``-`` otherwise. Throughput is ``1,234 tok/s``
    and fractions have 3 decimals. With ``engineering`` (the CLI tables) ``_s``, ``_j`` and
    ``_bytes`` get :func:`si` prefixes; without it (the report) time is in ms, energy per token
    in mJ and other energy in J (4 significant digits), and bytes are plain.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    v = float(value)
    if math.isnan(v):
        return "auto" if column.startswith("knob.") else "-"
    if column.endswith("_tok_per_s"):
        return f"{v:,.4g} tok/s"
    if column.endswith("_frac"):
        return f"{v:.3f}"
    if engineering:
        for suffix, unit in (("_j", "J"), ("_s", "s"), ("_bytes", "B")):
            if column.endswith(suffix):
                return si(v, unit)
        return f"{v:g}"
    if column.endswith("energy_per_token_j"):
        return f"{v * 1e3:.4g} mJ"
    if column.endswith("_j"):
        return f"{v:.4g} J"
    if column.endswith("_s"):
        return f"{v * 1e3:.4g} ms"
    return f"{v:g}"
