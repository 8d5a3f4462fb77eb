"""Column names of the figure tables (``figure_*.parquet``) beyond :mod:`elmoe_dse.columns`.

Names only, no I/O and no imports of the model: :mod:`elmoe_dse.explore.figure_tables` writes
these tables with the evaluator, :mod:`elmoe_dse.plots` reads them. Role prefixes and unit
suffixes follow :mod:`elmoe_dse.columns`; every other quantity (throughput, energy, acceptance,
hit rate, latency, knobs, model, platform, system ...) uses the names defined there.
"""

from __future__ import annotations

from elmoe_dse.columns import DATASET, MODEL, PLATFORM, knob_column

#: Position of a roofline panel in the figure (0, 1, ...), one panel per platform.
PANEL = "meta.panel"
#: An operator of a decode pass (``expert_ffn``, ``attention`` ...) and the pass it ran in.
OPERATOR = "meta.operator"
PASS = "meta.pass"
#: The execution unit an operator ran on (``xpu``, ``pe-array``, ``bank-pim`` ...).
UNIT = "meta.unit"
#: The operator's arithmetic precision (``w8a8`` ...).
PRECISION = "meta.precision"
#: Operations per byte moved (reads and writes, every tier).
INTENSITY_OPS_PER_BYTE = "metric.intensity_ops_per_byte"
#: Operations per second the operator attained.
ATTAINED_OPS_PER_S = "metric.attained_ops_per_s"
#: The operator's share of the step's time (its time x the pass's repeats over the step time).
TIME_SHARE_FRAC = "metric.time_share_frac"
#: A roof: ``compute`` (``metric.roof_per_s`` in ops/s, named by precision) or ``memory``
#: (bytes/s, named by tier), per unit.
ROOF_KIND = "meta.roof_kind"
ROOF_NAME = "meta.roof_name"
ROOF_PER_S = "metric.roof_per_s"
#: The legend label of a hit-rate line (``HB-xPU, LRU full precision`` ...).
LINE = "meta.line"

#: A results table's rows that decide a sweep's figure tables: per workload, platform and batch
#: size, the fastest (the first of equals). Every fastest row of any coarser grouping (per batch
#: size, per platform, overall) is among them.
FASTEST_KEYS = (MODEL, DATASET, knob_column("context_len"), PLATFORM, knob_column("batch_size"))
