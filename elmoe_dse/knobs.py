"""Design knobs: one frozen record, numeric knobs may be numpy arrays that broadcast.

Units, ranges, choices and help text live once, in :data:`KNOB_INFO` (the policy choices come
from :mod:`elmoe_dse.policies`), and defaults on :class:`Knobs`; the CLI's ``--set`` and sweep
files read them from here. ``nan`` in an ``auto`` knob means "let the platform decide"
(e.g. ``pool_experts``: as many experts as fit in the fast tier).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np

from elmoe_dse import policies, units
from elmoe_dse.errors import KnobError

Array = np.ndarray
AUTO = math.nan


@dataclass(frozen=True)
class KnobInfo:
    """Metadata of one knob: help, unit, valid range or choices, whether ``auto`` is allowed.

    ``options`` is the tuple of choices, or a function returning it when the choices come from a
    table that can grow at run time (the policies).
    """

    help: str
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    integer: bool = False
    options: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()
    auto: bool = False

    @property
    def choices(self) -> tuple[str, ...]:
        """The allowed names of a categorical knob (empty for a numeric one)."""
        return self.options() if callable(self.options) else self.options


def policy_choices() -> tuple[str, ...]:
    """``auto`` and every policy of :data:`elmoe_dse.policies.POLICIES`."""
    return ("auto", *policies.policy_names())


def _policy_help() -> str:
    rows = ", ".join(f"{p.name} ({p.help})" for p in policies.POLICIES.values())
    return f"decoding policy: auto (the platform's default), {rows}"


KNOB_INFO: dict[str, KnobInfo] = {
    "policy": KnobInfo(_policy_help(), options=policy_choices),
    "batch_size": KnobInfo("sequences decoded together, B", "sequences", 1, 4096, integer=True),
    "context_len": KnobInfo("tokens already in each sequence's KV cache, s", "tokens", 0, 2**22),
    "weight_format": KnobInfo(
        "storage format of the weights (experts keep a model's native MXFP4)",
        options=("int8", "bf16", "mxfp4"),
    ),
    "kv_format": KnobInfo("KV-cache element format", options=("fp16", "bf16", "int8")),
    "overlap_frac": KnobInfo(
        "rho: share of a token's experts already chosen by the previous token of its sequence",
        "fraction",
        0.0,
        1.0,
    ),
    "cache_policy": KnobInfo(
        "expert cache in the fast tier: auto (platform default), none, lru, hot (static hot set),"
        " random (random pool, ablation)",
        options=("auto", "none", "lru", "hot", "random"),
    ),
    "pool_experts": KnobInfo(
        "experts per MoE layer held in the fast tier (auto: as many as fit)",
        "experts per layer",
        0,
        4096,
        integer=True,
        auto=True,
    ),
    "hb_capacity_gb": KnobInfo(
        "capacity of the HB stack (auto: the platform's)", "GB", 0.0, 1024.0, auto=True
    ),
    "pe_count": KnobInfo(
        "logic-die PEs, each with one HB bank; scales HB bandwidth and PE compute (auto: the"
        " platform's)",
        "PEs",
        1,
        1024,
        integer=True,
        auto=True,
    ),
    "draft_length": KnobInfo(
        "gamma: draft depth, tokens drafted per sequence on each branch before each verify"
        " (0 = plain decoding; search 1..16, see speculative.DRAFT_LENGTH_SEARCH)",
        "tokens",
        0,
        16,
        integer=True,
    ),
    "draft_width": KnobInfo(
        "w: draft candidates per depth (1 = a chain; w > 1 = a tree of w branches from the root,"
        " per-depth acceptance 1 - (1 - alpha)^w assuming independent candidates; the verify"
        " pass runs all 1 + w gamma nodes of each sequence, rejected ones included)",
        "candidates",
        1,
        16,
        integer=True,
    ),
    "draft_bits": KnobInfo(
        "b_d: top bits of each INT8 expert weight held in a bit-nested pool slot and used by the"
        " self-draft; under plain decoding with a bit-nested cache (ar-cache on elmoe3d-*) it"
        " still sets the bits each slot holds (the cache precision; explain warns), elsewhere"
        " under plain decoding it does nothing",
        "bits",
        1,
        8,
        integer=True,
    ),
    "rounding": KnobInfo(
        "how the draft's dropped bits are treated: truncate, round, lsb-augmented (a constant 1"
        " in the dropped position = mid-point rounding at no storage cost)",
        options=("truncate", "round", "lsb-augmented"),
    ),
    "acceptance": KnobInfo(
        "fixed per-token acceptance alpha; overrides the acceptance model (auto: modelled)",
        "fraction",
        0.0,
        1.0,
        auto=True,
    ),
    "mode_threshold": KnobInfo(
        "B*: batch size at and above which the elmoe3d policy speculates (auto: per point, the"
        " faster of ar-cache and elastic-sd)",
        "sequences",
        1,
        4096,
        integer=True,
        auto=True,
    ),
    "slm_params": KnobInfo(
        "parameters of the slm-sd draft model (default: Qwen2.5-0.5B, 494 M, Qwen2.5 technical"
        " report, arXiv 2412.15115)",
        "parameters",
        1e6,
        1e11,
    ),
    "slm_kv_bytes_per_token": KnobInfo(
        "KV bytes per token of the slm-sd draft model, all layers (default: Qwen2.5-0.5B, 24"
        " layers x 2 KV heads x 64 x 2 (K, V) x 2 B FP16 = 12288 B)",
        "bytes",
        0.0,
        1e8,
    ),
    "tp": KnobInfo(
        "tensor-parallel devices of attention and dense layers (each holds 1/tp of their"
        " weights and heads; an all-reduce after each block; elmoe_dse.parallel)",
        "devices",
        1,
        64,
        integer=True,
    ),
    "ep": KnobInfo(
        "expert-parallel groups over the tp x dp_attention devices of a stage (each holds 1/ep"
        " of the experts; dispatch and combine all-to-all; the busiest group sets the time)",
        "groups",
        1,
        64,
        integer=True,
    ),
    "dp_attention": KnobInfo(
        "attention data-parallel groups (each decodes ceil(B/dp) sequences with a full copy of"
        " the non-expert weights; experts shared through ep; auto: ep / tp where ep > tp, else"
        " 1, so that tp x dp_attention devices hold the ep expert groups)",
        "groups",
        1,
        64,
        integer=True,
        auto=True,
    ),
    "pp": KnobInfo(
        "pipeline stages (each holds 1/pp of the layers; stages run one after another in a"
        " decode step, with a send between them)",
        "stages",
        1,
        64,
        integer=True,
    ),
}


@dataclass(frozen=True)
class Knobs:
    """Knob values of a design point (or a grid of them). See :data:`KNOB_INFO`."""

    policy: str = "auto"
    batch_size: Any = 1
    context_len: Any = 1024
    weight_format: str = "int8"
    kv_format: str = "fp16"
    overlap_frac: Any = 0.0
    cache_policy: str = "auto"
    pool_experts: Any = AUTO
    hb_capacity_gb: Any = AUTO
    pe_count: Any = AUTO
    draft_length: Any = 4
    draft_width: Any = 1
    draft_bits: Any = 4
    rounding: str = "lsb-augmented"
    acceptance: Any = AUTO
    mode_threshold: Any = AUTO
    slm_params: Any = 494e6
    slm_kv_bytes_per_token: Any = 12288.0
    tp: Any = 1
    ep: Any = 1
    dp_attention: Any = AUTO
    pp: Any = 1

    def numeric_names(self) -> list[str]:
        return [f.name for f in fields(self) if not KNOB_INFO[f.name].choices]

    def validated(self, *, broadcast: bool = True) -> Knobs:
        """Check every knob against its range or choices; arrays broadcast to one shape.

        ``broadcast=False`` checks that they broadcast but keeps each array's own shape (an open
        mesh: a knob varying along one axis stays of shape (1, .., n, .., 1), so the work that
        depends on it alone is done once per value; :attr:`shape` is the grid's)."""
        updates: dict[str, Any] = {}
        for name, info in KNOB_INFO.items():
            value = getattr(self, name)
            if info.choices:
                if value not in info.choices:
                    raise KnobError(
                        f"knob '{name}' = {value!r}; use one of {', '.join(info.choices)}"
                    )
                continue
            if type(value) is float or type(value) is int:  # the common scalar: no numpy
                _check_scalar(name, info, value)
                updates[name] = np.asarray(value, dtype=float)
                continue
            arr = np.asarray(value, dtype=float)
            finite = np.isfinite(arr)
            if not info.auto and not finite.all():
                raise KnobError(f"knob '{name}' must be a finite number; got {value!r}")
            if np.isinf(arr).any():
                raise KnobError(f"knob '{name}' must be finite or auto; got {value!r}")
            vals = arr[finite]
            if info.lo is not None and (vals < info.lo).any():
                raise KnobError(f"knob '{name}' = {value!r} is below {info.lo}; raise it")
            if info.hi is not None and (vals > info.hi).any():
                raise KnobError(f"knob '{name}' = {value!r} is above {info.hi}; lower it")
            if info.integer and (vals != np.round(vals)).any():
                raise KnobError(f"knob '{name}' = {value!r} must be a whole number")
            updates[name] = arr
        try:
            if not broadcast:
                np.broadcast_shapes(*(np.shape(v) for v in updates.values()))
                return replace(self, **updates)
            shaped = np.broadcast_arrays(*updates.values())
        except ValueError as err:
            raise KnobError(f"knob arrays do not broadcast together: {err}") from None
        shaped_values: dict[str, Any] = dict(zip(updates, shaped, strict=True))
        return replace(self, **shaped_values)

    @property
    def hb_capacity_bytes(self) -> Array:
        """The ``hb_capacity_gb`` knob in bytes (``nan`` = the platform's)."""
        return np.asarray(self.hb_capacity_gb, dtype=float) * units.GB

    @property
    def shape(self) -> tuple[int, ...]:
        """The grid's shape: every numeric knob's broadcast together."""
        return tuple(
            np.broadcast_shapes(*(np.shape(getattr(self, n)) for n in self.numeric_names()))
        )


def _check_scalar(name: str, info: KnobInfo, value: float) -> None:
    """The checks of :meth:`Knobs.validated` on one Python number (the same messages)."""
    v = float(value)
    if math.isnan(v):
        if not info.auto:
            raise KnobError(f"knob '{name}' must be a finite number; got {value!r}")
        return
    if math.isinf(v):
        if not info.auto:
            raise KnobError(f"knob '{name}' must be a finite number; got {value!r}")
        raise KnobError(f"knob '{name}' must be finite or auto; got {value!r}")
    if info.lo is not None and v < info.lo:
        raise KnobError(f"knob '{name}' = {value!r} is below {info.lo}; raise it")
    if info.hi is not None and v > info.hi:
        raise KnobError(f"knob '{name}' = {value!r} is above {info.hi}; lower it")
    if info.integer and v != round(v):
        raise KnobError(f"knob '{name}' = {value!r} must be a whole number")


def parse_knob_value(name: str, text: str) -> Any:
    """Parse a ``--set`` value for knob ``name`` (``auto`` allowed where the knob says so)."""
    info = KNOB_INFO[name]
    if info.choices:
        if text not in info.choices:
            raise KnobError(f"--set {name}={text}: use one of {', '.join(info.choices)}")
        return text
    if info.auto and text.lower() == "auto":
        return AUTO
    try:
        value = float(text)
    except ValueError:
        raise KnobError(
            f"--set {name}={text}: expected a number ({info.unit or 'no unit'})"
        ) from None
    if not math.isfinite(value):
        hint = " or auto" if info.auto else ""
        raise KnobError(f"--set {name}={text}: write a finite number{hint}")
    return value


def _differs(value: Any, default: Any) -> bool:
    if isinstance(default, str) or isinstance(value, str):
        return bool(value != default)
    a, b = np.asarray(value, dtype=float), np.asarray(default, dtype=float)
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    return not bool(np.all(same))


def _idle_rules(
    *,
    tiers: tuple[str, ...],
    logic_die: bool,
    policy: str,
    draft: str,
    cache_policy: str,
    bit_nested: bool,
    plain: Any,
) -> dict[str, tuple[Any, str]]:
    """knob -> (where it cannot act: a bool or a per-point bool array, why)."""
    nodraft = f"policy {policy} decodes plainly (no draft)"
    return {
        "hb_capacity_gb": ("hb" not in tiers, "the platform has no HB tier"),
        "pe_count": (not logic_die, "the platform has no logic die"),
        "draft_length": (plain, nodraft),
        "draft_width": (plain, nodraft),
        "acceptance": (plain, nodraft),
        "draft_bits": (
            (np.asarray(plain) | (draft != "self")) & (not bit_nested),
            f"policy {policy} has no self-draft and no bit-nested cache",
        ),
        "rounding": (np.asarray(plain) | (draft != "self"), f"policy {policy} has no self-draft"),
        "slm_params": (draft != "slm", f"policy {policy} has no small-model draft"),
        "slm_kv_bytes_per_token": (draft != "slm", f"policy {policy} has no small-model draft"),
        "pool_experts": (cache_policy == "none", "no expert pool or cache at this point"),
        "mode_threshold": (policy != "elmoe3d", "only policy elmoe3d switches modes"),
    }


def _differs_mask(value: Any, default: Any) -> Any:
    if isinstance(default, str) or isinstance(value, str):
        return np.asarray(value != default)
    a, b = np.asarray(value, dtype=float), np.asarray(default, dtype=float)
    return ~((a == b) | (np.isnan(a) & np.isnan(b)))


def inactive_knobs(
    knobs: Knobs,
    *,
    tiers: tuple[str, ...],
    logic_die: bool,
    policy: str,
    draft: str,
    cache_policy: str,
    bit_nested: bool,
) -> dict[str, str]:
    """Knobs set away from their default that do not act at this (one) design point (knob ->
    "does not act here: why"), and ``draft_bits`` under plain decoding with a bit-nested cache
    (it sets the cache precision there, set or not). ``policy``/``draft``/``cache_policy``: as
    resolved; ``draft = "none"`` is plain decoding."""
    plain = draft == "none"
    rules = _idle_rules(
        tiers=tiers, logic_die=logic_die, policy=policy, draft=draft,
        cache_policy=cache_policy, bit_nested=bit_nested, plain=plain,
    )  # fmt: skip
    default = Knobs()
    out = {
        name: f"does not act here: {why}"
        for name, (idle, why) in rules.items()
        if bool(np.all(idle))
        and bool(np.any(_differs_mask(getattr(knobs, name), getattr(default, name))))
    }
    if plain and bit_nested:
        out["draft_bits"] = (
            f"= {np.asarray(knobs.draft_bits).item():g} acts as the cache precision: under plain "
            "decoding it sets the MSB bits each bit-nested pool slot holds (there is no draft)"
        )
    return out


def inactive_knob_names(
    knobs: Knobs,
    shape: tuple[int, ...],
    *,
    tiers: tuple[str, ...],
    logic_die: bool,
    policy: str,
    draft: str,
    cache_policy: str,
    bit_nested: bool,
    plain: Any,
) -> np.ndarray:
    """Per design point of a grid of ``shape``, the knobs set away from their default that do
    not act there, comma-joined in :data:`KNOB_INFO` order ('' where none): the
    ``meta.inactive_knobs`` column. ``plain``: where the point decodes plainly (per point)."""
    rules = _idle_rules(
        tiers=tiers, logic_die=logic_die, policy=policy, draft=draft,
        cache_policy=cache_policy, bit_nested=bit_nested, plain=plain,
    )  # fmt: skip
    from elmoe_dse.roofline import broadcast_shape, compact

    default = Knobs()
    names = list(rules)
    # each knob's idle mask on the axes it varies along (an open mesh, :func:`compact`): the
    # codes once per distinct point, then broadcast to the grid (a read-only view)
    idle = [
        compact(
            np.asarray(
                np.asarray(rules[name][0])
                & _differs_mask(getattr(knobs, name), getattr(default, name))
            )
        )
        for name in names
    ]
    codes = np.zeros(broadcast_shape(*(m.shape for m in idle)), dtype=np.int64)
    for bit, mask in enumerate(idle):
        codes |= mask.astype(np.int64) << bit
    present = np.flatnonzero(np.bincount(codes.reshape(-1), minlength=1))  # no sort
    table = np.empty(len(present) and int(present[-1]) + 1, dtype=object)
    for c in present.tolist():
        table[c] = ",".join(n for b, n in enumerate(names) if c >> b & 1)
    return np.broadcast_to(table[codes], shape)
