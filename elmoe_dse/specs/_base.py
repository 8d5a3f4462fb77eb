"""Strict, frozen spec base and the one loader that turns files into validated specs.

Every spec type derives from :class:`Spec` (pydantic v2, ``extra="forbid"``, frozen, strict
numbers). :func:`load_toml` and :func:`load_json` read a file and :func:`validate` turns a mapping
into a spec, converting every failure (syntax, unknown key, missing key, wrong type, out-of-range
value, NaN/inf) into a one-line :class:`~elmoe_dse.errors.SpecError` naming the file, the field and
what to write instead.
"""

from __future__ import annotations

import difflib
import functools
import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal, TypeVar, cast

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from elmoe_dse.errors import SpecError
from elmoe_dse.specs.model_limits import SIZE_LIMITS

SCHEMA_VERSION = 1

#: The package's shipped spec files: ``models/``, ``platforms/``, ``datasets/``,
#: ``acceptance.toml``, ``calibration.toml``.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


class Spec(BaseModel):
    """Base of every spec: frozen, unknown keys rejected, no coercion of strings to numbers."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, validate_default=True)

    @model_validator(mode="after")
    def _plausible_units(self) -> Spec:
        problems = _unit_violations(self)
        if problems:
            raise ValueError(problems[0])
        return self

    @model_validator(mode="before")
    @classmethod
    def _reject_non_finite(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, value in data.items():
                if isinstance(value, float) and not math.isfinite(value):
                    raise ValueError(f"field '{key}' is {value}; write a finite number")
        return data


S = TypeVar("S", bound=Spec)


@dataclass(frozen=True)
class UnitRule:
    """Plausible magnitudes of a field by its unit suffix, and the SI factor of that unit (so a
    value written in SI base units where the key wants a prefixed unit is recognized)."""

    unit: str
    lo: float
    hi: float
    si_factor: float
    si_unit: str


#: Unit suffixes of spec fields and what a plausible value is. A value outside [lo, hi] is
#: rejected; if it would be plausible after dividing by ``si_factor`` the message says the value
#: looks like it was written in SI base units.
UNIT_RULES: dict[str, UnitRule] = {
    "_gb_per_s": UnitRule("GB/s", 1e-3, 1e6, 1e9, "B/s"),
    "_gb": UnitRule("GB", 0.0, 1e5, 1e9, "bytes"),
    "_w_per_gb": UnitRule("W/GB", 0.0, 100.0, 1e-9, "W/B"),
    "_w_per_pe": UnitRule("W", 0.0, 1e3, 1.0, "W"),
    "_pj_per_bit": UnitRule("pJ/bit", 1e-4, 1e3, 1e-12, "J/bit"),
    "_pj_per_op": UnitRule("pJ/op", 1e-4, 1e3, 1e-12, "J/op"),
    "_tops": UnitRule("TOPS", 1e-4, 1e6, 1e12, "OPS"),
    "_w": UnitRule("W", 0.0, 1e5, 1.0, "W"),
    "_s": UnitRule("s", 0.0, 3600.0, 1.0, "s"),
    # hardware cost parts ([cost]): area in mm2 (a 300 mm wafer is 7e4 mm2), dollars
    "_mm2": UnitRule("mm2", 0.0, 1e5, 1e-6, "m2"),
    "_mm2_per_pe": UnitRule("mm2", 0.0, 1e4, 1e-6, "m2"),
    "_usd_per_mm2": UnitRule("USD/mm2", 0.0, 100.0, 1e6, "USD/m2"),
    "_usd_per_gb": UnitRule("USD/GB", 0.0, 1e4, 1e-9, "USD/B"),
}


#: Plausible spans of the numeric spec fields whose name carries no unit suffix (a field with a
#: suffix is covered by :data:`UNIT_RULES`): name -> (lo, hi, why). Wide on purpose: they catch a
#: slipped digit or a wrong quantity, not a design choice; a free parameter's prior under
#: ``[ranges]`` is the tight range. Every numeric field of a shipped spec has a rule, a unit rule
#: or a prior (tests/specs/test_unit_plausibility.py).
PLAUSIBLE: dict[str, tuple[float, float, str]] = {
    # fractions (dimensionless, 0..1)
    "bw_efficiency_frac": (0.01, 1.0, "achieved / peak bandwidth"),
    "overlap_frac": (0.0, 1.0, "a fraction"),
    "alpha_max": (0.0, 1.0, "an acceptance ceiling"),
    "eagle_acceptance_frac": (0.0, 1.0, "a per-token acceptance"),
    "slm_acceptance_frac": (0.0, 1.0, "a per-token acceptance"),
    "median_abs_frac": (0.0, 10.0, "a relative fit error"),
    "p90_abs_frac": (0.0, 10.0, "a relative fit error"),
    "worst_abs_frac": (0.0, 100.0, "a relative fit error"),
    # hardware counts and ratios
    "pe_count": (1, 65536, "logic-die PEs"),
    "internal_bw_multiplier": (1.0, 1024.0, "internal / external bandwidth of a memory"),
    "ops_per_byte": (1e-3, 1e4, "ops per internal byte of a near-memory unit"),
    "psum_bytes_per_element": (0.5, 16.0, "bytes of one partial-sum element (INT4 to FP128)"),
    # routing and acceptance shape
    "zipf_exponent": (0.0, 5.0, "Zipf skew of expert popularity (0 = uniform)"),
    "batch_locality_scale": (0.0, 1e5, "batch size at which the reuse halves, sequences"),
    "pool_window_tokens": (1.0, 1e7, "tokens of the hot-pool window"),
    # model architecture (Hugging Face config integers)
    "hidden_size": (16, SIZE_LIMITS["hidden_size"], "model width"),
    "num_layers": (1, SIZE_LIMITS["num_layers"], "decoder layers"),
    "vocab_size": (16, SIZE_LIMITS["vocab_size"], "vocabulary size"),
    "num_attention_heads": (1, SIZE_LIMITS["num_attention_heads"], "query heads"),
    "num_kv_heads": (1, SIZE_LIMITS["num_kv_heads"], "KV heads"),
    "head_dim": (1, SIZE_LIMITS["head_dim"], "head dim"),
    "q_lora_rank": (0, SIZE_LIMITS["q_lora_rank"], "MLA query LoRA rank"),
    "kv_lora_rank": (0, SIZE_LIMITS["kv_lora_rank"], "MLA KV latent rank"),
    "qk_nope_head_dim": (0, 100_000, "MLA head dim"),
    "qk_rope_head_dim": (0, 100_000, "MLA head dim"),
    "v_head_dim": (0, 100_000, "MLA head dim"),
    "sliding_window": (0, 100_000_000, "sliding window, tokens"),
    "num_sliding_layers": (0, 10_000, "layers with a window"),
    "num_experts": (1, SIZE_LIMITS["num_experts"], "routed experts per layer"),
    "experts_per_token": (1, SIZE_LIMITS["experts_per_token"], "experts per token"),
    "moe_intermediate_size": (1, SIZE_LIMITS["moe_intermediate_size"], "expert FFN width"),
    "num_shared_experts": (0, SIZE_LIMITS["num_shared_experts"], "shared experts"),
    "shared_expert_intermediate_size": (
        0,
        SIZE_LIMITS["shared_expert_intermediate_size"],
        "shared-expert FFN width",
    ),
    "num_dense_layers": (0, 10_000, "dense layers"),
    "dense_intermediate_size": (0, SIZE_LIMITS["dense_intermediate_size"], "dense FFN width"),
    "card_total_params": (0.0, 1e14, "parameters (a count, not billions)"),
    "card_active_params": (0.0, 1e14, "parameters (a count, not billions)"),
}


def check_plausible(name: str, value: float) -> str | None:
    """None if ``value`` is plausible for field ``name`` (:data:`UNIT_RULES` by suffix, else
    :data:`PLAUSIBLE` by name); else the reason and fix."""
    if unit_rule(name) is not None:
        return check_unit(name, value)
    if name not in PLAUSIBLE:
        return None
    lo, hi, why = PLAUSIBLE[name]
    if lo <= value <= hi:
        return None
    if value > hi and name in SIZE_LIMITS:
        return (
            f"{name} = {value:g} is far beyond any real model ({why}: at most {hi:,} is "
            "accepted, far above the largest published model; see elmoe_dse/specs/"
            "model_limits.py); check the value"
        )
    return f"{name} = {value:g} is outside its plausible span [{lo:g}, {hi:g}] ({why}); check it"


def unit_rule(name: str) -> UnitRule | None:
    """The rule of a field name by its suffix (the longest suffix wins: ``_gb_per_s`` before
    ``_s``), or None."""
    for suffix in sorted(UNIT_RULES, key=len, reverse=True):
        if name.endswith(suffix):
            return UNIT_RULES[suffix]
    return None


def check_unit(name: str, value: float) -> str | None:
    """None if ``value`` is a plausible magnitude for field ``name``; else the reason and fix."""
    rule = unit_rule(name)
    if rule is None or rule.lo <= value <= rule.hi:
        return None
    text = f"{name} = {value:g} is not a plausible value in {rule.unit}"
    scaled = value / rule.si_factor
    if rule.si_factor != 1.0 and rule.lo <= scaled <= rule.hi:
        return f"{text}: it looks like {rule.si_unit}; the key wants {rule.unit}, write {scaled:g}"
    return f"{text} (expected {rule.lo:g} to {rule.hi:g} {rule.unit}); check the unit"


def _unit_violations(spec: BaseModel) -> list[str]:
    out: list[str] = []
    for name in type(spec).model_fields:
        value = getattr(spec, name)
        if isinstance(value, BaseModel):  # a table of numbers under a unit (peak_tops.w8a8)
            value = {k: getattr(value, k) for k in type(value).model_fields}
        items = value.items() if isinstance(value, dict) else [(None, value)]
        for _, v in items:
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            message = check_plausible(name, float(v))
            if message is not None:
                out.append(message)
    return out


#: Prior distributions a parameter may declare (docs/calibration.md, "Priors").
PriorKind = Literal["uniform", "loguniform", "normal", "lognormal"]

_STD_NORMAL = NormalDist()


class RangeSpec(Spec):
    """Prior of a parameter the paper does not state: a distribution on a support [min, max].

    ``dist`` is ``uniform`` (the default, a bare range), ``loguniform``, ``normal`` (mean
    ``center``, standard deviation ``spread``) or ``lognormal`` (median ``center``, standard
    deviation of ln x ``spread``); normal and lognormal are truncated to the support. A value
    outside the support is rejected by the spec's validator. ``paper_informed`` says whether the
    paper's reported numbers may move the parameter in the posterior (workload, ELMoE-3D's own
    and structural parameters); a baseline's internals never are (docs/calibration.md).
    """

    min: float
    max: float
    source: str
    dist: PriorKind = "uniform"
    center: float | None = None
    spread: float | None = None
    paper_informed: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> RangeSpec:
        if not self.min <= self.max:
            raise ValueError(f"min {self.min} > max {self.max}; swap them")
        if self.dist in ("loguniform", "lognormal") and self.min <= 0.0:
            raise ValueError(f"a {self.dist} prior needs min > 0, got {self.min}")
        if self.dist in ("normal", "lognormal"):
            if self.center is None or self.spread is None or self.spread <= 0.0:
                raise ValueError(f"a {self.dist} prior needs center and spread > 0")
            if not self.min <= self.center <= self.max:
                raise ValueError(f"center {self.center} lies outside [{self.min}, {self.max}]")
        elif self.center is not None or self.spread is not None:
            raise ValueError(f"a {self.dist} prior takes no center or spread; remove them")
        return self

    def _gauss(self) -> tuple[float, float, float, float] | None:
        """(location, scale, z at min, z at max) in the space where the prior is Gaussian."""
        if self.dist not in ("normal", "lognormal"):
            return None
        assert self.center is not None and self.spread is not None
        log = self.dist == "lognormal"
        loc = math.log(self.center) if log else self.center
        lo = math.log(self.min) if log else self.min
        hi = math.log(self.max) if log else self.max
        return loc, self.spread, (lo - loc) / self.spread, (hi - loc) / self.spread

    def cdf(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Prior probability of a value <= x (0 below the support, 1 above)."""
        v = np.clip(np.asarray(x, dtype=np.float64), self.min, self.max)
        log = self.dist in ("loguniform", "lognormal")
        t = np.log(v) if log else v
        g = self._gauss()
        if g is None:
            lo, hi = (math.log(self.min), math.log(self.max)) if log else (self.min, self.max)
            return np.asarray((t - lo) / (hi - lo) if hi > lo else np.ones_like(t))
        loc, scale, za, zb = g
        fa, fb = _STD_NORMAL.cdf(za), _STD_NORMAL.cdf(zb)
        z = (t - loc) / scale
        phi = np.vectorize(_STD_NORMAL.cdf, otypes=[np.float64])(z)
        return np.asarray((phi - fa) / (fb - fa))

    def ppf(self, u: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The value at prior quantile u in [0, 1] (inverse of :meth:`cdf`)."""
        q = np.clip(np.asarray(u, dtype=np.float64), 0.0, 1.0)
        log = self.dist in ("loguniform", "lognormal")
        g = self._gauss()
        if g is None:
            lo, hi = (math.log(self.min), math.log(self.max)) if log else (self.min, self.max)
            t = lo + q * (hi - lo)
        else:
            loc, scale, za, zb = g
            fa, fb = _STD_NORMAL.cdf(za), _STD_NORMAL.cdf(zb)
            p = np.clip(fa + q * (fb - fa), 1e-15, 1.0 - 1e-15)
            t = loc + scale * np.vectorize(_STD_NORMAL.inv_cdf, otypes=[np.float64])(p)
        out = np.exp(t) if log else t
        return np.asarray(np.clip(out, self.min, self.max))

    def logpdf(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Log prior density up to a constant; ``-inf`` outside the support."""
        v = np.asarray(x, dtype=np.float64)
        inside = (v >= self.min) & (v <= self.max)
        safe = np.where(inside, v, self.min if self.min > 0 else 1.0)
        log = self.dist in ("loguniform", "lognormal")
        out = -np.log(safe) if log else np.zeros_like(safe)
        g = self._gauss()
        if g is not None:
            loc, scale, _, _ = g
            t = np.log(safe) if log else safe
            out = out - 0.5 * ((t - loc) / scale) ** 2
        return np.asarray(np.where(inside, out, -np.inf))

    def z_score(self, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Standard-normal score of the prior quantile of x (0 at the prior median): how far a
        value sits from its prior, comparable across parameters (the tension table)."""
        q = np.clip(self.cdf(x), 1e-12, 1.0 - 1e-12)
        return np.asarray(np.vectorize(_STD_NORMAL.inv_cdf, otypes=[np.float64])(q))


#: The same record under the name the docs use.
PriorSpec = RangeSpec


def _resolve(obj: object, parts: list[str], path: str) -> object:
    """Walk ``parts`` from ``obj``; at a dict, match the longest run of parts that is a key."""
    if not parts:
        return obj
    if isinstance(obj, dict):
        for n in range(len(parts), 0, -1):
            key = ".".join(parts[:n])
            if key in obj:
                return _resolve(obj[key], parts[n:], path)
        raise ValueError(f"range path '{path}': no key '{parts[0]}...'; check the spelling")
    if isinstance(obj, BaseModel) and parts[0] in type(obj).model_fields:
        return _resolve(getattr(obj, parts[0]), parts[1:], path)
    raise ValueError(f"range path '{path}': no field '{parts[0]}'; check the spelling")


def get_number(spec: Spec, path: str) -> float:
    """Read a number by dotted path; dict keys may contain dots (``models.glm-4.7-flash.x``)."""
    value = _resolve(spec, path.split("."), path)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"range path '{path}' does not name a number; name a numeric field")
    return float(value)


def check_ranges(spec: Spec, ranges: dict[str, RangeSpec]) -> None:
    """Raise ValueError naming the field if a value lies outside its stated range."""
    for path, rng in ranges.items():
        value = get_number(spec, path)
        if not rng.min <= value <= rng.max:
            raise ValueError(
                f"field '{path}' = {value} is outside its stated range [{rng.min}, {rng.max}]; "
                "choose a value inside it (the range's source says why)"
            )


def _format_validation_error(err: ValidationError) -> tuple[str, str]:
    """Return (field path, message with a fix) of the most useful error pydantic reports.

    Unknown keys come first: a misspelt key also shows up as a missing one, and the typo is the fix.
    """
    errors = sorted(err.errors(), key=lambda e: e.get("type") != "extra_forbidden")
    first = errors[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    kind = first.get("type", "")
    msg = str(first.get("msg", "invalid value"))
    if kind == "extra_forbidden":
        missing = [
            ".".join(str(p) for p in e.get("loc", ())) for e in errors if e.get("type") == "missing"
        ]
        close = difflib.get_close_matches(loc, missing, n=1)
        hint = f" (did you mean '{close[0].rsplit('.', 1)[-1]}'?)" if close else ""
        msg = f"unknown key{hint}; remove it or fix its spelling"
    elif kind == "missing":
        msg = "required key is missing; add it"
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        got = first.get("input")
        msg = f"{msg} (got {got!r})"
    elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        got = first.get("input")
        msg = f"{msg.replace('Input should be', 'must be')} (got {got!r}); change it"
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return loc, msg


def validate(spec_type: type[S], data: Any, *, path: str | Path | None = None) -> S:
    """Validate ``data`` as ``spec_type``; raise :class:`SpecError` naming file and field."""
    where = str(path) if path is not None else None
    if not isinstance(data, dict):
        raise SpecError(f"expected a table of keys, got {type(data).__name__}", path=where)
    try:
        return spec_type.model_validate(data)
    except ValidationError as err:
        loc, msg = _format_validation_error(err)
        raise SpecError(msg, path=where, field=loc or None) from None


def read_text(path: str | Path) -> str:
    """Read a spec file as UTF-8 text, with one-line errors for missing, binary or empty files."""
    p = Path(path)
    if not p.exists():
        raise SpecError("file not found; check the path", path=str(p))
    if p.is_dir():
        raise SpecError("is a directory; give a spec file", path=str(p))
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise SpecError(f"cannot read ({err.strerror}); check permissions", path=str(p)) from None
    if b"\x00" in raw:
        raise SpecError("is a binary file; give a TOML or JSON text file", path=str(p))
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise SpecError("is not UTF-8 text; save it as UTF-8", path=str(p)) from None
    if not text.strip():
        raise SpecError("is empty; see the shipped examples for the keys it needs", path=str(p))
    return text


def load_toml(path: str | Path) -> dict[str, Any]:
    """Parse a TOML file into a dict, with a one-line error on syntax errors."""
    text = read_text(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"TOML syntax error: {err}", path=str(path)) from None
    except RecursionError:
        raise SpecError(_TOO_DEEP, path=str(path)) from None
    return _shallow(data, path)


def load_json(path: str | Path) -> dict[str, Any]:
    """Parse a JSON file into a dict, with a one-line error on syntax errors."""
    text = read_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SpecError(f"JSON syntax error: {err}", path=str(path)) from None
    except RecursionError:
        raise SpecError(_TOO_DEEP, path=str(path)) from None
    if not isinstance(data, dict):
        raise SpecError("top level must be a JSON object", path=str(path))
    return _shallow(data, path)


#: Deepest nesting of tables and arrays a spec file may have (the real ones use 4).
MAX_NESTING = 16
_TOO_DEEP = f"is nested deeper than {MAX_NESTING} levels; a spec file is a few tables deep"


def _shallow(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    """``data`` if no table or array in it is nested deeper than :data:`MAX_NESTING`."""
    stack: list[tuple[object, int]] = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SpecError(_TOO_DEEP, path=str(path))
        children = list(node.values()) if isinstance(node, dict) else node
        if isinstance(children, list):
            stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return data


def load_spec_file(path: str | Path) -> dict[str, Any]:
    """Parse a ``.toml`` or ``.json`` file by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".toml":
        return load_toml(path)
    if suffix == ".json":
        return load_json(path)
    raise SpecError("unknown file type; use a .toml or .json file", path=str(path))


def shipped_names(data_dir: Path) -> list[str]:
    """Names (file stems) of the shipped spec files in ``data_dir``."""
    return sorted(p.stem for p in data_dir.glob("*.toml"))


@functools.cache
def _load_shipped(spec_type: type[Spec], path: Path) -> Spec:
    return validate(spec_type, load_spec_file(path), path=path)


def load_named_or_path(
    spec_type: type[S], name_or_path: str | Path, data_dir: Path, kind: str
) -> S:
    """A shipped spec by name (case-insensitive; parsed once per process) or a spec file by path.

    An unknown name that is not a file path gets one line listing the shipped names.
    """
    text = str(name_or_path).strip()
    if text.lower() in shipped_names(data_dir):
        return cast(S, _load_shipped(spec_type, data_dir / f"{text.lower()}.toml"))
    path = Path(text)
    if path.suffix.lower() in (".toml", ".json") or path.exists():
        return validate(spec_type, load_spec_file(path), path=path)
    raise SpecError(
        f"unknown {kind} '{text}'; use one of {', '.join(shipped_names(data_dir))} or a .toml path"
    )
