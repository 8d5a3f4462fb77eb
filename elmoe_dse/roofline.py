"""Per-operator roofline over parallel memory tiers, energy, and the cost records (docs/model.md
§7-§8).

Combination rules (every record below follows them):

- inside one operator instance, compute, each memory tier and each link run in parallel::

      t_op = max(ops / peak_ops(precision), max_t bytes_t / (bw_t x eff_t), max_l bytes_l / bw_l)
             + overhead_op

- operators run one after another and repeat over their layers; passes add; a step is its passes
  (the ``operator`` overlap rule; under the ``pass`` rule, :func:`overlap_pass`, a pass takes as
  long as its busiest resource summed over its operators, plus the operators' fixed overheads);
- energy always adds: 8 x bytes_read_t x e_read_t + 8 x bytes_written_t x e_write_t
  + ops x e_op(precision) + 8 x link bytes x e_link, plus static power x step time.

Every quantity is a numpy array broadcast over the design grid; a scalar design is the 0-d case.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from elmoe_dse.units import BITS_PER_BYTE

Array = np.ndarray

COMPUTE = "compute"


@dataclass(frozen=True)
class Resources:
    """What one operator can use: compute peak, tier bandwidths, link bandwidths (SI).

    ``read_energy_j_per_bit`` may differ from the tier's host figure (near-memory reads).
    """

    unit: str
    peak_ops_per_s: dict[str, Array]
    energy_j_per_op: dict[str, float]
    bw_bytes_per_s: dict[str, Array]
    read_energy_j_per_bit: dict[str, float]
    write_energy_j_per_bit: dict[str, float]
    link_bw_bytes_per_s: dict[str, Array]
    link_energy_j_per_bit: dict[str, float]
    overhead_s: float


@dataclass(frozen=True)
class OpCost:
    """Cost of one operator over all its layers.

    ``terms_s`` holds the per-instance time of each parallel term (``compute``, each tier, each
    link); ``bound`` is the index into ``labels`` of the term that sets the time.
    """

    name: str
    layers: int
    unit: Array  # where it ran: a 0-d string, or an array where placement varies by point
    time_s: Array
    terms_s: dict[str, Array]
    labels: tuple[str, ...]
    bound: Array
    bytes_read: dict[str, Array]
    bytes_written: dict[str, Array]
    link_bytes: dict[str, Array]
    ops: Array
    precision: str
    energy_j: dict[str, Array]

    def bound_label(self) -> Array:
        """The binding term's name per design point."""
        return np.asarray(self.labels, dtype=object)[self.bound]


@dataclass(frozen=True)
class PassCost:
    """A forward pass (decode, draft or verify), its operators in order, run ``repeats`` times.

    ``repeats`` (an array; 0 allowed) lets identical passes, such as the gamma chain-draft steps
    of a speculative step, be costed once: the totals below include the repeats; ``operators``
    hold the cost of one pass.
    """

    kind: str
    tokens: Array
    sequences: Array
    unique_experts_per_layer: Array
    resident_experts_per_layer: Array
    operators: tuple[OpCost, ...]
    repeats: Array = field(default_factory=lambda: np.ones(()))

    @property
    def time_s(self) -> Array:
        return self.repeats * sum_arrays([op.time_s for op in self.operators])

    @property
    def device_link_time_s(self) -> Array:
        """Time of the collectives between devices (operators bound by ``link:device``)."""
        comm = [op.time_s for op in self.operators if "link:device" in op.terms_s]
        return self.repeats * sum_arrays(comm)

    @property
    def energy_j(self) -> dict[str, Array]:
        return scale_dict(add_dicts([op.energy_j for op in self.operators]), self.repeats)

    @property
    def bytes_by_tier(self) -> dict[str, Array]:
        return scale_dict(add_dicts([op.bytes_read for op in self.operators]), self.repeats)

    @property
    def bytes_written_by_tier(self) -> dict[str, Array]:
        return scale_dict(add_dicts([op.bytes_written for op in self.operators]), self.repeats)


def scale_dict(d: dict[str, Array], factor: Array) -> dict[str, Array]:
    """Every value times ``factor``."""
    return {k: v * factor for k, v in d.items()}


def max_and_argmax(values: list[Array]) -> tuple[Array, Array]:
    """Element-wise max over broadcastable arrays and the index of the first maximal one.

    Equivalent to ``np.max``/``np.argmax`` of the stacked arrays along the new axis, without
    materializing the stack (faster on large grids).
    """
    arrays = [np.asarray(v, dtype=float) for v in values]
    shape = broadcast_shape(*(a.shape for a in arrays))
    best = np.empty(shape)
    np.copyto(best, arrays[0])
    index = np.zeros(shape, dtype=np.int8)
    for i, arr in enumerate(arrays[1:], start=1):
        larger = np.greater(arr, best)
        np.copyto(best, arr, where=larger)
        np.copyto(index, i, where=larger)
    return best, index


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    """``np.broadcast_shapes`` for the few short shapes of a design grid, without its overhead
    (it raises the same ValueError where they do not broadcast)."""
    ndim = max(map(len, shapes), default=0)
    out = [1] * ndim
    for shape in shapes:
        offset = ndim - len(shape)
        for i, n in enumerate(shape):
            if n != 1:
                have = out[offset + i]
                if have == 1:
                    out[offset + i] = n
                elif have != n:
                    return np.broadcast_shapes(*shapes)  # raises
    return tuple(out)


def compact(a: Array) -> Array:
    """``a`` without the axes it is only broadcast along (stride 0): a view of length 1 there,
    which broadcasts back to ``a`` (work on it is done once per distinct value)."""
    arr = np.asarray(a)
    if 0 not in arr.strides:
        return arr
    index = tuple(slice(0, 1) if st == 0 else slice(None) for st in arr.strides)
    return arr[index]


def sum_arrays(values: list[Array]) -> Array:
    """Sum a list of broadcastable arrays (0-d zero if empty), left to right from 0.0 (the
    additions after the first are done in place where the sum keeps its shape)."""
    total: Array = np.zeros(())
    own = False
    for v in values:
        total, own = add_into(total, v, own)
    return total


def add_into(
    total: Array, v: Array | float, own: bool, where: Array | None = None
) -> tuple[Array, bool]:
    """``total + v`` (``where``: only where True, ``total`` elsewhere), written into ``total``
    when ``own`` (an array no one else holds) and of the result's shape, else a new array;
    returns it and whether it is owned. The same numbers as ``total + np.where(where, v, 0)``
    for a float ``total`` (adding 0.0 changes no float but -0.0, which no cost here is)."""
    shape = np.shape(total)
    shapes = (shape, np.shape(v)) if where is None else (shape, np.shape(v), np.shape(where))
    if own and shape == broadcast_shape(*shapes):
        np.add(total, v, out=total, where=True if where is None else where)
        return total, True
    if where is not None:
        v = np.where(where, v, 0.0)
    out = total + v
    return out, isinstance(out, np.ndarray) and out.ndim > 0


def add_dicts(dicts: list[dict[str, Array]]) -> dict[str, Array]:
    """Key-wise sum of dicts of arrays."""
    out: dict[str, Array] = {}
    for d in dicts:
        for k, v in d.items():
            out[k] = out[k] + v if k in out else np.asarray(v)
    return out


def operator_cost(
    *,
    name: str,
    layers: int,
    ops: Array,
    precision: str,
    bytes_read: dict[str, Array],
    bytes_written: dict[str, Array],
    link_bytes: dict[str, Array],
    res: Resources,
) -> OpCost:
    """Roofline time and energy of ``layers`` instances of one operator (per-instance inputs).

    Reads and writes of the same tier share its bandwidth. Returns totals over the layers.
    """
    terms: dict[str, Array] = {COMPUTE: np.asarray(ops) / res.peak_ops_per_s[precision]}
    tiers = sorted(set(bytes_read) | set(bytes_written))
    for tier in tiers:
        moved = bytes_read.get(tier, 0.0) + bytes_written.get(tier, 0.0)
        terms[tier] = np.asarray(moved) / res.bw_bytes_per_s[tier]
    for link, nbytes in link_bytes.items():
        terms[f"link:{link}"] = np.asarray(nbytes) / res.link_bw_bytes_per_s[link]
    labels = tuple(terms)
    longest, bound = max_and_argmax(list(terms.values()))
    per_instance = longest + res.overhead_s
    energy: dict[str, Array] = {}
    for tier, nbytes in bytes_read.items():
        energy[f"read_{tier}"] = (
            layers * np.asarray(nbytes) * BITS_PER_BYTE * res.read_energy_j_per_bit[tier]
        )
    for tier, nbytes in bytes_written.items():
        energy[f"write_{tier}"] = (
            layers * np.asarray(nbytes) * BITS_PER_BYTE * res.write_energy_j_per_bit[tier]
        )
    energy["compute"] = layers * np.asarray(ops) * res.energy_j_per_op[precision]
    link_energy = sum_arrays(
        [
            np.asarray(nb) * BITS_PER_BYTE * res.link_energy_j_per_bit[link]
            for link, nb in link_bytes.items()
        ]
    )
    energy["link"] = layers * link_energy
    return OpCost(
        name=name,
        layers=layers,
        unit=np.asarray(res.unit),
        time_s=layers * per_instance,
        terms_s=terms,
        labels=labels,
        bound=bound,
        bytes_read={k: layers * np.asarray(v) for k, v in bytes_read.items()},
        bytes_written={k: layers * np.asarray(v) for k, v in bytes_written.items()},
        link_bytes={k: layers * np.asarray(v) for k, v in link_bytes.items()},
        ops=layers * np.asarray(ops),
        precision=precision,
        energy_j=energy,
    )


def choose_faster(a: OpCost, b: OpCost) -> OpCost:
    """Per design point, the cost of whichever placement finishes sooner (``a`` on ties)."""
    use_b = b.time_s < a.time_s

    def pick(x: Array, y: Array) -> Array:
        return np.where(use_b, y, x)

    def pick_dict(x: dict[str, Array], y: dict[str, Array]) -> dict[str, Array]:
        return {k: pick(x.get(k, np.zeros(())), y.get(k, np.zeros(()))) for k in set(x) | set(y)}

    labels = tuple(dict.fromkeys(a.labels + b.labels))
    bound_a = np.asarray([labels.index(label) for label in a.labels])[a.bound]
    bound_b = np.asarray([labels.index(label) for label in b.labels])[b.bound]
    return OpCost(
        name=a.name,
        layers=a.layers,
        unit=pick(a.unit, b.unit),
        time_s=pick(a.time_s, b.time_s),
        terms_s=pick_dict(a.terms_s, b.terms_s),
        labels=labels,
        bound=pick(bound_a, bound_b),
        bytes_read=pick_dict(a.bytes_read, b.bytes_read),
        bytes_written=pick_dict(a.bytes_written, b.bytes_written),
        link_bytes=pick_dict(a.link_bytes, b.link_bytes),
        ops=pick(a.ops, b.ops),
        precision=a.precision,
        energy_j=pick_dict(a.energy_j, b.energy_j),
    )


def overlap_pass(costs: tuple[OpCost, ...]) -> tuple[OpCost, ...]:
    """Whole-pass overlap: the operators' times rescaled so that they sum to the pass's time.

    pass time = max over resources r of sum_ops layers x terms_s[r] + sum_ops overheads, where a
    resource is a term label (``compute``, a tier, a link): compute of the host and of a
    near-memory unit share the ``compute`` label (counted serially, a conservative choice). It
    never exceeds the ``operator`` rule's sum of per-operator maxima; bytes, energy and bounds
    are unchanged.
    """
    if not costs:
        return costs
    busy: dict[str, Array] = {}
    fixed: Array = np.zeros(())
    for op in costs:
        longest, _ = max_and_argmax(list(op.terms_s.values()))
        fixed = fixed + (op.time_s - op.layers * longest)
        for label, t in op.terms_s.items():
            busy[label] = busy.get(label, np.zeros(())) + op.layers * np.asarray(t)
    total = max_and_argmax(list(busy.values()))[0] + fixed
    serial = sum_arrays([op.time_s for op in costs])
    factor = np.where(serial > 0, total / np.where(serial > 0, serial, 1.0), 1.0)
    return tuple(replace(op, time_s=op.time_s * factor) for op in costs)
