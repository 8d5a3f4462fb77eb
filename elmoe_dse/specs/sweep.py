"""Sweep files: the design space to enumerate (``sweep``) or search (``optimize``), strict.

A sweep file (TOML, ``sweeps/*.toml``) names the scenarios and the knob axes::

    schema_version = 1
    name = "quick"                       # output folder results/<name>; default: the file stem
    models = ["qwen3-30b-a3b"]           # registered ids, or model .toml / config.json paths
    platforms = ["elmoe3d-8g"]           # shipped names, or platform .toml paths
    datasets = ["mt-bench"]              # dataset profiles: routing skew, overlap, acceptance
    group_by = ["batch_size"]            # one Pareto front (and one Optuna study) per group
    seed = 0

    [knobs]                              # any knob of elmoe_dse.knobs.KNOB_INFO
    policy = "elmoe3d"                   # a scalar fixes the knob
    batch_size = [1, 4, 16]              # a list is an axis
    draft_bits = { start = 2, stop = 8 } # an inclusive range (integers: step 1 by default)
    hb_capacity_gb = { start = 2, stop = 16, num = 4, log = true }   # 2, 4, 8, 16
    pool_experts = ["auto", 16, 32]      # "auto" where the knob allows it

    [[objectives]]
    metric = "metric.throughput_tok_per_s"
    direction = "maximize"

    [[objectives]]
    metric = "metric.energy_per_token_j"
    direction = "minimize"

    constraints = ["metric.latency_per_token_s <= 0.05"]

    [optimize]                           # defaults of the optimize command (CLI flags win)
    trials = 300
    sampler = "tpe"

    [design]                             # optional: fronts over hardware designs
    hardware = ["hb_capacity_gb", "pe_count"]        # fixed when the chip is built
    runtime = ["draft_length", "draft_bits"]         # chosen per design and condition
    conditions = ["model", "dataset", "batch_size"]  # what one design must serve
    aggregate = "mean"                               # or "worst", "geomean"
    select = "metric.throughput_tok_per_s"           # what the run-time choice optimizes

With ``[design]`` the sweep is run by :mod:`elmoe_dse.explore.design`: one result row per
hardware design (per ``group_by`` value, which must be conditions), its metrics aggregated over
the conditions at the best run-time setting of each.

Layering, lowest first: the knob defaults of :data:`~elmoe_dse.knobs.KNOB_INFO`, then the dataset
profile (``overlap_frac``), then the sweep file's ``[knobs]``, then command-line flags.

Categorical knobs (``policy``, ``rounding``, ``cache_policy``, ``weight_format``, ``kv_format``)
and the model/platform/dataset lists are looped over; numeric knobs are evaluated as flat numpy
arrays. Every value is checked against the knob's range, integrality and choices, so a file either
loads whole or fails with one line naming the file, the field and the fix.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field, model_validator

from elmoe_dse.columns import (
    COST_COLUMNS,
    EXTRA_METRIC_COLUMNS,
    KNOB,
    METRIC,
    METRIC_COLUMNS,
    THROUGHPUT_TOK_PER_S,
    is_metric_column,
)
from elmoe_dse.errors import ElmoeError, SpecError
from elmoe_dse.knobs import KNOB_INFO, KnobInfo
from elmoe_dse.specs._base import Spec, load_toml, validate

#: Scenario axes that are not knobs; their result columns are ``meta.<name>``.
SCENARIO_AXES = ("model", "platform", "dataset")

_CONSTRAINT = re.compile(
    r"^\s*(?P<column>[a-z]+\.[A-Za-z0-9_]+)\s*(?P<op><=|>=)\s*"
    r"(?P<limit>[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?)\s*$"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

#: Largest axis a range may expand to (a typo such as step = 0.0001 fails instead of running).
MAX_AXIS_VALUES = 10_000

Number = int | float
Value = float | str  # numeric knob values are floats (NaN = auto); categorical ones are strings


class SweepFieldError(SpecError):
    """A sweep-file value is invalid; carries the bare message so the loader can add the path."""

    def __init__(self, message: str, *, field: str, path: str | None = None) -> None:
        self.message = message
        super().__init__(message, path=path, field=field)


class RangeAxis(Spec):
    """An inclusive numeric range: ``{start, stop, step}`` or ``{start, stop, num[, log]}``."""

    start: Number
    stop: Number
    step: Number | None = Field(None, gt=0)
    num: int | None = Field(None, ge=2)
    log: bool = False


AxisInput = Number | str | list[Number | str] | RangeAxis


class Objective(Spec):
    """One objective: a result column and whether it is minimized or maximized."""

    metric: str = Field(description="a metric.* (or numeric knob.*) column")
    direction: Literal["minimize", "maximize"]

    @property
    def sign(self) -> float:
        """+1 to minimize, -1 to maximize: ``sign x value`` is always minimized."""
        return 1.0 if self.direction == "minimize" else -1.0


@dataclass(frozen=True)
class Constraint:
    """``column <= limit`` or ``column >= limit``; a design point must satisfy every one."""

    column: str
    op: Literal["<=", ">="]
    limit: float

    @property
    def text(self) -> str:
        return f"{self.column} {self.op} {self.limit:g}"

    def violation(self, value: np.ndarray) -> np.ndarray:
        """How much ``value`` violates the constraint (<= 0 where satisfied, Optuna's rule)."""
        v = np.asarray(value, dtype=float)
        return v - self.limit if self.op == "<=" else self.limit - v


@dataclass(frozen=True)
class Axis:
    """A resolved knob axis: the knob name and its values (floats, NaN = auto; or strings)."""

    name: str
    values: tuple[Value, ...]

    @property
    def categorical(self) -> bool:
        """True for knobs with choices (looped over); False for numeric knobs (arrays)."""
        return bool(KNOB_INFO[self.name].choices)


class OptimizeSection(Spec):
    """Defaults of ``elmoe-dse optimize`` for this space (command-line flags override them)."""

    trials: int = Field(100, ge=1, description="completed trials per study")
    sampler: Literal["tpe", "random"] = Field("tpe", description="Optuna sampler (seeded)")


#: How a design's per-condition metrics are combined (``worst``: the lowest of a
#: higher-is-better metric, the highest of the others).
Aggregate = Literal["mean", "worst", "geomean"]


class DesignSection(Spec):
    """``[design]``: which knobs the hardware fixes, which are tuned at run time, and the
    operating conditions one design must serve (see :mod:`elmoe_dse.explore.design`).

    Every axis of the sweep with more than one value is exactly one of: a ``hardware`` knob
    (with the platform, it names a design), a ``runtime`` knob (chosen per design and condition
    to optimize ``select``), or a condition (``conditions``: ``model``, ``dataset`` or a knob such
    as ``batch_size``). ``group_by`` names conditions that split the fronts (one front per
    value); the other conditions are aggregated (``aggregate``).
    """

    hardware: Annotated[list[str], Field(min_length=1)]
    runtime: list[str] = Field(default_factory=list)
    conditions: list[str] = Field(default_factory=list)
    aggregate: Aggregate = "mean"
    select: str = Field(
        THROUGHPUT_TOK_PER_S, description="metric the run-time setting optimizes per condition"
    )
    select_direction: Literal["minimize", "maximize"] = "maximize"


class SweepSpec(Spec):
    """A design space: scenarios x knob axes, objectives and constraints. See the module doc."""

    schema_version: int = Field(ge=1, le=1)
    name: str | None = Field(None, description="output folder name; default: the file stem")
    description: str = ""
    models: Annotated[list[str], Field(min_length=1)]
    platforms: Annotated[list[str], Field(min_length=1)]
    datasets: Annotated[list[str], Field(min_length=1)] = Field(
        default_factory=lambda: ["mt-bench"]
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["batch_size"],
        description="axes that split the space into Pareto groups (and Optuna studies)",
    )
    seed: int = Field(0, ge=0)
    calibration: str = Field(
        "shipped",
        description="calibration applied to shipped platform and dataset specs: 'shipped', "
        "'none' or a calibration file path",
    )
    knobs: dict[str, AxisInput] = Field(default_factory=dict)
    objectives: Annotated[list[Objective], Field(min_length=1)]
    constraints: list[str] = Field(default_factory=list)
    optimize: OptimizeSection = Field(default_factory=lambda: OptimizeSection())
    design: DesignSection | None = Field(
        None, description="hardware vs run-time knobs and conditions: fronts over designs"
    )

    @model_validator(mode="before")
    @classmethod
    def _plain_knob_values(cls, data: Any) -> Any:
        """Reject what a union type would report obscurely: booleans, unknown range keys, and
        top-level keys that TOML put inside a table because they were written after its header."""
        if not isinstance(data, dict):
            return data
        tables: list[tuple[str, Any]] = [
            ("knobs", data.get("knobs")),
            ("optimize", data.get("optimize")),
            ("design", data.get("design")),
        ]
        objectives = data.get("objectives")
        if isinstance(objectives, list):
            tables += [(f"objectives[{i}]", o) for i, o in enumerate(objectives)]
        top_level = set(cls.model_fields) - {"knobs"}
        for where, table in tables:
            if isinstance(table, dict):
                misplaced = sorted(set(table) & top_level)
                if misplaced:
                    raise SweepFieldError(
                        f"'{misplaced[0]}' is a top-level key: TOML puts a key written after a "
                        "[section] header into that section; move it above the first [section]",
                        field=f"{where}.{misplaced[0]}",
                    )
        knobs = data.get("knobs")
        if not isinstance(knobs, dict):
            return data
        for name, raw in knobs.items():
            field = f"knobs.{name}"
            for item in raw if isinstance(raw, list) else [raw]:
                if isinstance(item, bool):
                    raise SweepFieldError(
                        f"{item!r} is not a knob value; give a number, a name or 'auto'",
                        field=field,
                    )
                if isinstance(item, dict | list) and isinstance(raw, list):
                    raise SweepFieldError(
                        "a list holds numbers or names only; write a range table on its own",
                        field=field,
                    )
            if isinstance(raw, dict):
                unknown = sorted(set(raw) - set(RangeAxis.model_fields))
                if unknown:
                    raise SweepFieldError(
                        f"unknown range key '{unknown[0]}'; a range takes start, stop and step, "
                        "or start, stop, num and optionally log = true",
                        field=field,
                    )
                for key in ("start", "stop"):
                    if key not in raw:
                        raise SweepFieldError(f"the range needs '{key}'; add it", field=field)
        return data

    @model_validator(mode="after")
    def _consistent(self) -> SweepSpec:
        if self.name is not None and not _NAME.match(self.name):
            raise SweepFieldError(
                f"'{self.name}' is not a folder name; use letters, digits, '.', '_' or '-'",
                field="name",
            )
        for list_name in ("models", "platforms", "datasets"):
            values = getattr(self, list_name)
            if len(set(values)) != len(values):
                raise SweepFieldError("lists a value twice; remove the duplicate", field=list_name)
        for name, raw in self.knobs.items():
            resolve_axis(name, raw)
        for i, name in enumerate(self.group_by):
            if name not in (*SCENARIO_AXES, *KNOB_INFO):
                close = difflib.get_close_matches(name, [*SCENARIO_AXES, *KNOB_INFO], n=1)
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise SweepFieldError(
                    f"'{name}' is not an axis; {hint}use model, platform, dataset or a knob name",
                    field=f"group_by[{i}]",
                )
        if len(set(self.group_by)) != len(self.group_by):
            raise SweepFieldError("lists an axis twice; remove the duplicate", field="group_by")
        columns = [o.metric for o in self.objectives]
        for i, column in enumerate(columns):
            check_column(column, field=f"objectives[{i}].metric")
        if len(set(columns)) != len(columns):
            raise SweepFieldError("an objective appears twice; remove one", field="objectives")
        for i, text in enumerate(self.constraints):
            parse_constraint(text, field=f"constraints[{i}]")
        if self.design is not None:
            check_design(self, self.design)
        return self

    def axes(self) -> dict[str, Axis]:
        """Every knob set in the file, resolved to its values (file order)."""
        return {name: Axis(name, resolve_axis(name, raw)) for name, raw in self.knobs.items()}

    def parsed_constraints(self) -> tuple[Constraint, ...]:
        return tuple(
            parse_constraint(t, field=f"constraints[{i}]") for i, t in enumerate(self.constraints)
        )

    def group_columns(self) -> tuple[str, ...]:
        """Result columns of the ``group_by`` axes (``meta.model``, ``knob.batch_size`` ...)."""
        return tuple(axis_column(name) for name in self.group_by)


def check_design(spec: SweepSpec, design: DesignSection) -> None:
    """Raise unless ``[design]`` sorts every varying axis into exactly one role (module doc of
    :mod:`elmoe_dse.explore.design`) and the objectives are design-level columns."""
    roles = {"hardware": design.hardware, "runtime": design.runtime}
    roles["conditions"] = design.conditions
    seen: dict[str, str] = {}
    for role, names in roles.items():
        allowed = (*SCENARIO_AXES, *KNOB_INFO) if role == "conditions" else tuple(KNOB_INFO)
        for i, name in enumerate(names):
            if name == "platform" or name not in allowed:
                what = "model, dataset or a knob" if role == "conditions" else "a knob"
                raise SweepFieldError(
                    f"'{name}' is not {what}; the platform is always part of the design",
                    field=f"design.{role}[{i}]",
                )
            if name in seen:
                raise SweepFieldError(
                    f"'{name}' is already a {seen[name]} axis; give each axis one role",
                    field=f"design.{role}[{i}]",
                )
            seen[name] = role
    varying = [n for n in ("model", "dataset") if len(getattr(spec, f"{n}s")) > 1]
    varying += [n for n, raw in spec.knobs.items() if len(resolve_axis(n, raw)) > 1]
    for name in varying:
        if name not in seen:
            raise SweepFieldError(
                f"axis '{name}' takes several values but has no role; list it under "
                "design.hardware, design.runtime or design.conditions",
                field="design",
            )
    for i, name in enumerate(spec.group_by):
        if name not in design.conditions:
            raise SweepFieldError(
                f"'{name}' is not a condition; with [design], fronts are split by conditions only "
                "(add it to design.conditions)",
                field=f"group_by[{i}]",
            )
    check_column(design.select, field="design.select")
    hardware = {f"{KNOB}{n}" for n in design.hardware}
    for i, objective in enumerate(spec.objectives):
        if objective.metric.startswith(KNOB) and objective.metric not in hardware:
            raise SweepFieldError(
                f"'{objective.metric}' is not a hardware knob; a design objective is a metric or "
                "a design.hardware knob",
                field=f"objectives[{i}].metric",
            )


def axis_column(name: str) -> str:
    """The results column of an axis: ``meta.<scenario>`` or ``knob.<knob>``."""
    return f"meta.{name}" if name in SCENARIO_AXES else f"{KNOB}{name}"


def check_column(column: str, *, field: str) -> None:
    """Raise unless ``column`` is a results column an objective or constraint may use."""
    if is_metric_column(column):
        return
    if column.startswith(KNOB):
        name = column[len(KNOB) :]
        if name in KNOB_INFO and not KNOB_INFO[name].choices:
            return
    numeric_knobs = [f"{KNOB}{n}" for n, i in KNOB_INFO.items() if not i.choices]
    known = [*METRIC_COLUMNS, *EXTRA_METRIC_COLUMNS, *COST_COLUMNS, *numeric_knobs]
    close = difflib.get_close_matches(column, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    raise SweepFieldError(
        f"'{column}' is not a numeric results column; {hint}use a {METRIC}* column such as "
        f"{THROUGHPUT_TOK_PER_S} or a numeric {KNOB}* column",
        field=field,
    )


def parse_constraint(text: str, *, field: str) -> Constraint:
    """Parse ``"metric.latency_per_token_s <= 0.05"`` (operators ``<=`` and ``>=``)."""
    m = _CONSTRAINT.match(text)
    if not m:
        raise SweepFieldError(
            f"'{text}' is not a constraint; write 'COLUMN <= NUMBER' or 'COLUMN >= NUMBER', "
            "e.g. 'metric.latency_per_token_s <= 0.05'",
            field=field,
        )
    check_column(m["column"], field=field)
    op: Literal["<=", ">="] = "<=" if m["op"] == "<=" else ">="
    return Constraint(m["column"], op, float(m["limit"]))


# ----------------------------------------------------------------------------------------------
# Knob axes
# ----------------------------------------------------------------------------------------------


def resolve_axis(name: str, raw: Any) -> tuple[Value, ...]:
    """Values of knob ``name`` from a scalar, a list or a range table, checked against KNOB_INFO."""
    field = f"knobs.{name}"
    if name not in KNOB_INFO:
        close = difflib.get_close_matches(name, list(KNOB_INFO), n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise SweepFieldError(f"unknown knob; {hint}use one of {', '.join(KNOB_INFO)}", field=field)
    info = KNOB_INFO[name]
    if isinstance(raw, RangeAxis):
        if info.choices:
            raise SweepFieldError(
                f"'{name}' takes names, not a range; write a list of {', '.join(info.choices)}",
                field=field,
            )
        values: tuple[Value, ...] = _expand_range(name, info, raw, field)
    else:
        items = raw if isinstance(raw, list) else [raw]
        if not items:
            raise SweepFieldError("is an empty list; give at least one value", field=field)
        values = tuple(_check_value(name, info, item, field) for item in items)
    keys = ["auto" if isinstance(v, float) and math.isnan(v) else v for v in values]
    if len(set(keys)) != len(keys):
        raise SweepFieldError("lists a value twice; remove the duplicate", field=field)
    return values


def _check_value(name: str, info: KnobInfo, item: Any, field: str) -> Value:
    if info.choices:
        if not isinstance(item, str) or item not in info.choices:
            raise SweepFieldError(
                f"{item!r} is not a choice of '{name}'; use one of {', '.join(info.choices)}",
                field=field,
            )
        return item
    if isinstance(item, str):
        if item.strip().lower() == "auto":
            if not info.auto:
                raise SweepFieldError(f"'{name}' has no auto setting; give a number", field=field)
            return math.nan
        raise SweepFieldError(
            f"{item!r} is not a number; give a number ({info.unit or 'no unit'})"
            + (" or 'auto'" if info.auto else ""),
            field=field,
        )
    value = float(item)
    if not math.isfinite(value):
        raise SweepFieldError(f"{item!r} is not finite; give a finite number", field=field)
    if info.lo is not None and value < info.lo:
        raise SweepFieldError(
            f"{value:g} is below the knob's range [{info.lo:g}, {info.hi:g}]; raise it",
            field=field,
        )
    if info.hi is not None and value > info.hi:
        raise SweepFieldError(
            f"{value:g} is above the knob's range [{info.lo:g}, {info.hi:g}]; lower it",
            field=field,
        )
    if info.integer and value != round(value):
        raise SweepFieldError(f"{value:g} must be a whole number ({info.unit})", field=field)
    return value


def _expand_range(name: str, info: KnobInfo, rng: RangeAxis, field: str) -> tuple[float, ...]:
    start, stop = float(rng.start), float(rng.stop)
    if stop < start:
        raise SweepFieldError(f"stop {rng.stop} is below start {rng.start}; swap them", field=field)
    if rng.step is not None and rng.num is not None:
        raise SweepFieldError("give step or num, not both", field=field)
    if rng.log:
        if rng.num is None or start <= 0:
            raise SweepFieldError(
                "a log range needs num and a positive start, e.g. { start = 2, stop = 16, "
                "num = 4, log = true }",
                field=field,
            )
        values = np.asarray(np.geomspace(start, stop, rng.num), dtype=float)
    elif rng.num is not None:
        values = np.linspace(start, stop, rng.num)
    else:
        if rng.step is None and not info.integer:
            raise SweepFieldError(
                f"'{name}' is not an integer knob; give step or num, e.g. "
                f"{{ start = {rng.start}, stop = {rng.stop}, num = 5 }}",
                field=field,
            )
        step = float(rng.step) if rng.step is not None else 1.0
        count = math.floor((stop - start) / step * (1 + 1e-12) + 1e-9) + 1
        if count > MAX_AXIS_VALUES:
            raise SweepFieldError(
                f"expands to {count} values (limit {MAX_AXIS_VALUES}); use a larger step",
                field=field,
            )
        values = np.asarray(start + step * np.arange(count), dtype=float)
    if values.size > MAX_AXIS_VALUES:
        raise SweepFieldError(
            f"expands to {values.size} values (limit {MAX_AXIS_VALUES}); use a smaller num",
            field=field,
        )
    values = np.round(values, 12)
    if info.integer:
        rounded = np.round(values)
        if not np.allclose(values, rounded, rtol=0, atol=1e-9):
            raise SweepFieldError(
                f"'{name}' takes whole numbers but the range gives {values.tolist()}; use an "
                "integer step (or a list)",
                field=field,
            )
        values = rounded
    checked = tuple(_check_value(name, info, float(v), field) for v in values)
    return tuple(float(v) for v in checked)


# ----------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------


def resolve_ref(entry: str, base: Path | None) -> str:
    """A spec reference: a registered name as is; a relative file path from the sweep's folder."""
    path = Path(entry)
    if base is not None and path.suffix.lower() in (".toml", ".json") and not path.is_absolute():
        candidate = base / path
        if candidate.exists():
            return str(candidate)
    return entry


def sweep_from_dict(data: Any, *, path: str | Path | None = None) -> SweepSpec:
    """Validate a parsed sweep file; every failure names ``path``, the field and the fix."""
    where = str(path) if path is not None else None
    try:
        return validate(SweepSpec, data, path=where)
    except SweepFieldError as err:
        raise SweepFieldError(err.message, field=err.field or "", path=where) from None


def check_references(spec: SweepSpec, *, path: str | Path | None = None) -> SweepSpec:
    """Load every model, platform and dataset the sweep names; return the spec with resolved paths.

    Relative ``.toml``/``.json`` paths are resolved against the sweep file's folder.
    """
    from elmoe_dse.specs.dataset import load_dataset
    from elmoe_dse.specs.model import load_model
    from elmoe_dse.specs.platform import load_platform

    where = str(path) if path is not None else None
    base = Path(path).resolve().parent if path is not None else None
    loaders = {"models": load_model, "platforms": load_platform, "datasets": load_dataset}
    resolved: dict[str, list[str]] = {}
    for list_name, loader in loaders.items():
        resolved[list_name] = []
        for i, entry in enumerate(getattr(spec, list_name)):
            ref = resolve_ref(entry, base)
            try:
                loader(ref)
            except ElmoeError as err:
                raise SpecError(str(err), path=where, field=f"{list_name}[{i}]") from None
            resolved[list_name].append(ref)
    return spec.model_copy(update=resolved)


def load_sweep(path: str | Path) -> SweepSpec:
    """Load and check a sweep file (TOML): structure, knob values and every referenced spec."""
    spec = sweep_from_dict(load_toml(path), path=path)
    if spec.name is None:
        spec = spec.model_copy(update={"name": Path(path).stem})
    return check_references(spec, path=path)
