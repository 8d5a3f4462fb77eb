"""The layout stage: a design on more than one device (:mod:`elmoe_dse.parallel`).

With ``tp = dp_attention = ep = pp = 1`` the stage is absent (:func:`device_layout` returns
None) and the evaluator runs exactly as on one device. Otherwise the footprint is the busiest
device's (capacity is checked per device), every pass's operator loads are the busiest device's
share, the collectives are added as operators (``link:device`` bound), energy and static power
count every device, and the pool an HB plan offers is the sum over the expert groups.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from elmoe_dse import parallel
from elmoe_dse.errors import KnobError
from elmoe_dse.knobs import Knobs
from elmoe_dse.platforms import MemoryPlan
from elmoe_dse.roofline import OpCost
from elmoe_dse.specs.link import DeviceLinkSpec
from elmoe_dse.specs.model import ModelSpec
from elmoe_dse.specs.platform import PlatformSpec
from elmoe_dse.units import GB
from elmoe_dse.workload import Footprint, OpLoad

Array = np.ndarray

#: Operators tensor-sharded over ``tp`` (weights and heads split, outputs all-reduced).
TP_WEIGHT_OPS = frozenset({"qkv_proj", "o_proj", "shared_experts", "dense_ffn", "lm_head"})
ATTENTION_OPS = frozenset({"attention", "attention_sliding"})
EXPERT_OPS = frozenset({"routed_experts", "routed_experts_wide"})


@dataclass(frozen=True)
class DeviceLayout:
    """A layout with what its stage needs: the model, the routing, the link."""

    layout: parallel.Layout
    model: ModelSpec
    p: Array
    link: DeviceLinkSpec
    batch: Array

    @property
    def kv_split(self) -> Array:
        """Devices of a stage a GQA KV cache splits over: min(tp, KV heads) (MLA: 1)."""
        if self.model.attention_kind == "mla":
            return np.ones_like(self.layout.tp)
        return np.minimum(self.layout.tp, self.model.num_kv_heads)

    @property
    def seq_share(self) -> Array:
        return parallel.sequence_share(self.batch, self.layout.dp)

    @property
    def experts_per_device(self) -> Array:
        """Shards of one expert per device: an expert spans n / ep devices of its group."""
        return self.layout.stage_devices / self.layout.ep


def device_layout(
    model: ModelSpec, spec: PlatformSpec, knobs: Knobs, p: Array
) -> DeviceLayout | None:
    """The layout of the knobs, or None on one device."""
    f = np.asarray
    tp, ep = f(knobs.tp, dtype=float), f(knobs.ep, dtype=float)
    dp = f(knobs.dp_attention, dtype=float)
    layout = parallel.Layout(
        tp=tp,
        dp=parallel.attention_groups(tp, ep, dp),
        ep=ep,
        pp=f(knobs.pp, dtype=float),
    )
    if layout.trivial:
        return None
    parallel.check_layout(layout, model.num_layers)
    if spec.device_link is None:
        raise KnobError(
            f"platform '{spec.name}' has no [device_link] section; add one (see a100-80g) or "
            "keep tp, ep, dp_attention and pp at 1"
        )
    return DeviceLayout(
        layout, model, np.asarray(p, dtype=float), spec.device_link, knobs.batch_size
    )


def device_footprint(dl: DeviceLayout, fp: Footprint) -> Footprint:
    """Bytes the busiest device holds: its share of weights, experts and KV, its expert slots."""
    lay = dl.layout
    return replace(
        fp,
        nonexpert_bytes=fp.nonexpert_bytes / (lay.tp * lay.pp),
        expert_bytes=fp.expert_bytes / (lay.stage_devices * lay.pp),
        kv_bytes=fp.kv_bytes * dl.seq_share / (dl.kv_split * lay.pp),
        # a device holds L_moe / pp layers: slots per layer = free / (L_moe / pp x slot)
        slot_bytes_per_expert=fp.slot_bytes_per_expert / (dl.experts_per_device * lay.pp),
    )


def device_plan(
    dl: DeviceLayout, plan: MemoryPlan, fp: Footprint, spec: PlatformSpec, num_experts: int
) -> MemoryPlan:
    """The per-device plan, with the pool summed over expert groups and a one-line refusal
    naming the per-device need and capacity."""
    tier = spec.main_tier
    need = fp.nonexpert_bytes + fp.expert_bytes + fp.reserved_bytes
    if plan.fast_tier is None:
        need = need + fp.kv_bytes
    cap = spec.tiers[tier].capacity_gb
    worst = float(np.max(np.where(plan.fits, 0.0, need))) / GB
    reason = (
        f"per device the weights{' + KV' if plan.fast_tier is None else ''} need "
        f"{worst:.1f} GB but the {tier} holds {cap:.0f} GB (layout tp x dp_attention x pp); "
        "raise tp, ep or pp, or use a smaller weight_format"
    )
    ep = dl.layout.ep
    slots = np.minimum(np.minimum(plan.expert_slots, np.ceil(num_experts / ep)) * ep, num_experts)
    return replace(plan, expert_slots=slots, reason=reason)


def shard_loads(dl: DeviceLayout, loads: list[OpLoad], unique: Array) -> list[OpLoad]:
    """The busiest device's share of each operator load of a pass with ``unique`` experts."""
    lay, share = dl.layout, dl.seq_share
    tokens = _pass_tokens(loads, dl)
    out = []
    for load in loads:
        if load.name in TP_WEIGHT_OPS:
            out.append(_scaled(load, 1.0 / lay.tp, share / lay.tp))
        elif load.name in ATTENTION_OPS:
            out.append(_scaled(load, share / dl.kv_split, share / lay.tp))
        elif load.name in EXPERT_OPS:
            n = lay.stage_devices
            bytes_f = parallel.expert_imbalance(dl.p, unique, lay.ep) / n
            ops_f = parallel.token_imbalance(dl.p, tokens, lay.ep) / n
            # each device's fused MoE holds E / ep experts and sees every token of its group
            held = replace(load, tokens_over_experts=np.asarray(load.tokens_over_experts) * lay.ep)
            out.append(_scaled(held, bytes_f, ops_f))
        else:
            # the router (replicated) and a separate draft model (one per attention group)
            out.append(_scaled(load, np.ones(()), share))
    return out


def _pass_tokens(loads: list[OpLoad], dl: DeviceLayout) -> Array:
    """Tokens N of a pass, from the routed experts' ops (2 N k params per expert; a pass split
    into a narrow and a wide expert operator has its ops in the two)."""
    ops = [np.asarray(load.ops) for load in loads if load.name in EXPERT_OPS]
    per_token = 2.0 * dl.model.experts_per_token * dl.model.expert_params()
    return np.asarray(sum(ops)) / per_token if ops else np.zeros(())


def _scaled(load: OpLoad, bytes_f: Array, ops_f: Array) -> OpLoad:
    return replace(
        load,
        read_bytes={k: np.asarray(v) * bytes_f for k, v in load.read_bytes.items()},
        write_bytes={k: np.asarray(v) * bytes_f for k, v in load.write_bytes.items()},
        ops=np.asarray(load.ops) * ops_f,
        psum_elements=np.asarray(load.psum_elements) * ops_f,
    )


def collectives(dl: DeviceLayout, tokens: Array) -> list[OpCost]:
    """The collectives of one target pass of ``tokens`` tokens (module docstring of
    :mod:`elmoe_dse.parallel`), as operators bound by the device link."""
    lay, m, link = dl.layout, dl.model, dl.link
    k = link.value
    bw = link.bw_bytes_per_s
    n_rep = np.asarray(tokens) * dl.seq_share
    act = n_rep * m.hidden_size * parallel.ACT_BYTES
    n = lay.stage_devices

    def ar(message: Array, devices: Array) -> Array:
        return parallel.allreduce_time_s(
            message, devices, k("allreduce_t0_s"), k("allreduce_eta_frac"), bw
        )

    def sent(nbytes: Array, active: Array) -> Array:
        return parallel.p2p_time_s(nbytes, k("p2p_t0_s"), k("p2p_eta_frac"), bw, active)

    moe_group = np.where(lay.ep > 1, np.where(n / lay.ep > 1, n / lay.ep, lay.tp), n)
    a2a = n_rep / lay.tp * m.experts_per_token * m.hidden_size * parallel.ACT_BYTES
    a2a = a2a * (lay.ep - 1.0) / lay.ep
    logits = n_rep * m.vocab_size * parallel.ACT_BYTES / lay.tp
    gather = 0.5 * lay.tp * logits  # all-gather = half an all-reduce of the gathered logits

    def ring(message: Array, devices: Array) -> Array:
        return 2.0 * (devices - 1.0) / devices * message

    rows = [
        ("allreduce_attention", m.num_layers, ar(act, lay.tp), ring(act, lay.tp)),
        ("allreduce_moe", m.num_moe_layers, ar(act, moe_group), ring(act, moe_group)),
        ("dispatch", m.num_moe_layers, sent(a2a, lay.ep > 1), a2a),
        ("combine", m.num_moe_layers, sent(a2a, lay.ep > 1), a2a),
        ("allreduce_dense", m.num_dense_layers, ar(act, lay.tp), ring(act, lay.tp)),
        ("allgather_logits", 1, ar(gather, lay.tp), ring(gather, lay.tp)),
        ("send_stage", 1, (lay.pp - 1) * sent(act, lay.pp > 1), (lay.pp - 1) * act),
    ]
    active = [row for row in rows if row[1] > 0 and np.any(np.asarray(row[2]) > 0)]
    return [_link_op(name, layers, t, b, link) for name, layers, t, b in active]


def _link_op(name: str, layers: int, t: Array, nbytes: Array, link: DeviceLinkSpec) -> OpCost:
    t = np.asarray(t, dtype=float)
    moved = np.where(t > 0, np.asarray(nbytes, dtype=float), 0.0)
    return OpCost(
        name=name,
        layers=layers,
        unit=np.asarray("link"),
        time_s=layers * t,
        terms_s={"link:device": t},
        labels=("link:device",),
        bound=np.zeros(np.shape(t), dtype=int),
        bytes_read={},
        bytes_written={},
        link_bytes={"device": layers * moved},
        ops=np.zeros(()),
        precision="w16a16",
        energy_j={"link": layers * moved * 8.0 * link.energy_j_per_bit},
    )


def all_devices(dl: DeviceLayout, ops: tuple[OpCost, ...]) -> tuple[OpCost, ...]:
    """Operator energies times the devices (each device runs its share; the busiest's bound)."""
    d = dl.layout.devices
    return tuple(replace(op, energy_j={c: e * d for c, e in op.energy_j.items()}) for op in ops)


def is_target_pass(loads: list[OpLoad]) -> bool:
    """A pass of the target model (it has attention projections), not a separate draft."""
    return any(load.name == "qkv_proj" for load in loads)


def device_loads(dl: DeviceLayout, loads: list[OpLoad], unique: Array) -> list[OpLoad]:
    """The loads of a target pass sharded to the busiest device (a separate draft's loads: one
    copy per attention group, its sequences' share)."""
    return shard_loads(dl, loads, unique)


def device_ops(
    dl: DeviceLayout, loads: list[OpLoad], ops: tuple[OpCost, ...], tokens: Array
) -> tuple[OpCost, ...]:
    """A pass's operator costs on the busiest device, its collectives after them (a target
    pass), energies counted on every device."""
    comm = collectives(dl, tokens) if is_target_pass(loads) else []
    return all_devices(dl, (*ops, *comm))
