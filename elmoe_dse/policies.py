"""Decoding policies: one table of frozen :class:`Policy` records (docs/model.md §6).

Every policy is ``gamma`` draft passes of one kind, then one verify pass (plain decoding is
``gamma = 0``). A row says which draft it uses and what it needs from the platform; the evaluator,
the knobs' choices and help text, the reproduction's speculative systems and the plots read this
table, so a policy that reuses an existing draft kind is one row here (or one
:func:`register_policy` call).

Draft kinds:

- ``none``: no draft; plain decoding.
- ``self``: the target's own bit-nested MSB slices of the pool experts (Elastic-SD).
- ``quant``: a separate INT4 copy of each pool expert stored beside its MSB slice.
- ``eagle``: an EAGLE draft head (one decoder layer plus a fusion FC).
- ``slm``: a small separate language model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

DraftKind = Literal["none", "self", "quant", "eagle", "slm"]
#: Draft kinds that read the target's expert pool (they need it fixed and bit-nested).
POOL_DRAFTS: tuple[DraftKind, ...] = ("self", "quant")
#: Draft kinds that are a separate model with weights and KV of their own.
MODEL_DRAFTS: tuple[DraftKind, ...] = ("eagle", "slm")


@dataclass(frozen=True)
class Policy:
    """One decoding policy.

    Attributes:
        name: the ``policy`` knob value.
        draft: the draft kind (module docstring).
        needs_fast_tier: the policy holds an expert pool in a fast tier; refused on a platform
            without one.
        caches_experts: the policy uses the platform's expert pool or cache where there is one
            (plain ``ar`` reads every expert from the main tier).
        fixed_pool: the pool is a fixed set of experts the draft reads (a self-draft): its
            replacement is ``hot`` by default and LRU is refused.
        mode_switch: per design point, speculate at batch sizes >= ``mode_threshold`` B* (or
            where it is faster), else decode plainly from the same pool (ELMoE-3D).
        help: one phrase for the knob's help text.
        label: the name figures and tables show (the paper's, where it names the policy).
    """

    name: str
    draft: DraftKind
    needs_fast_tier: bool
    caches_experts: bool
    fixed_pool: bool
    mode_switch: bool
    help: str
    label: str = ""

    @property
    def speculative(self) -> bool:
        """The policy drafts tokens (its ``draft_length`` knob matters)."""
        return self.draft != "none"

    @property
    def reads_pool(self) -> bool:
        """The draft reads MSB slices (or a quantized copy) of the pool experts."""
        return self.draft in POOL_DRAFTS

    @property
    def separate_draft(self) -> bool:
        """The draft is a separate model whose weights and KV are reserved before expert slots."""
        return self.draft in MODEL_DRAFTS


def _row(
    name: str,
    draft: DraftKind,
    label: str,
    help: str,
    *,
    fast: bool = False,
    cache: bool = True,
    fixed: bool = False,
    switch: bool = False,
) -> Policy:
    return Policy(name, draft, fast, cache, fixed, switch, help, label)


_TABLE: tuple[Policy, ...] = (
    _row("ar", "none", "AR", "plain autoregressive decoding", cache=False),
    _row("ar-cache", "none", "AR + cache", "AR with an expert cache in the fast tier", fast=True),
    _row(
        "elastic-sd",
        "self",
        "Elastic-SD",
        "bit-nested self-draft from the expert pool",
        fast=True,
        fixed=True,
    ),
    _row("eagle-sd", "eagle", "EAGLE-SD", "EAGLE draft head"),
    _row("slm-sd", "slm", "SLM-SD", "small separate LM"),
    _row(
        "quant-sd",
        "quant",
        "Quant-SD",
        "separate 4-bit copy of the pool experts",
        fast=True,
        fixed=True,
    ),
    _row(
        "elmoe3d",
        "self",
        "ELMoE-3D (AR/SD switch)",
        "ar-cache below the batch threshold B*, elastic-sd at or above it",
        fast=True,
        fixed=True,
        switch=True,
    ),
)

#: Every policy by name, in table order.
POLICIES: dict[str, Policy] = {p.name: p for p in _TABLE}


def register_policy(policy: Policy) -> None:
    """Add a policy row at run time (e.g. a test's throwaway policy); a duplicate name raises."""
    if policy.name in POLICIES or policy.name == "auto":
        raise ValueError(f"policy '{policy.name}' is already defined")
    POLICIES[policy.name] = policy


def unregister_policy(name: str) -> None:
    """Remove a policy added by :func:`register_policy`; the shipped rows cannot be removed."""
    if name in {p.name for p in _TABLE}:
        raise ValueError(f"policy '{name}' is a shipped row of the table")
    POLICIES.pop(name, None)


def policy_names() -> tuple[str, ...]:
    """Names of every policy, in table order."""
    return tuple(POLICIES)


def is_speculative(name: str) -> bool:
    """Whether the policy ``name`` drafts tokens (False for ``auto`` and unknown names)."""
    policy = POLICIES.get(name)
    return policy is not None and policy.speculative
