"""Named unit constants. SI inside; prefixed units only at the file and display boundary.

Multiply a prefixed quantity by its constant to get SI (``bw_gb_per_s * GB`` is bytes/s) and
divide to display (``energy_j / PJ`` is picojoules). Decimal prefixes unless the name says ``IB``.
"""

from __future__ import annotations

KB = 1e3
MB = 1e6
GB = 1e9
TB = 1e12
KIB = 2.0**10
MIB = 2.0**20
GIB = 2.0**30

TERA = 1e12
GIGA = 1e9
MEGA = 1e6

PJ = 1e-12
NJ = 1e-9
UJ = 1e-6
MJ = 1e-3

NS = 1e-9
US = 1e-6
MS = 1e-3

BITS_PER_BYTE = 8.0
