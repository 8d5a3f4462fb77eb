"""Closed forms of the per-operator roofline and its energy sums."""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.roofline import OpCost, Resources, choose_faster, operator_cost


def resources(
    peak: float = 1e12, bw_a: float = 100e9, bw_b: float = 1000e9, unit: str = "x"
) -> Resources:
    return Resources(
        unit=unit,
        peak_ops_per_s={"w8a8": np.asarray(peak)},
        energy_j_per_op={"w8a8": 0.1e-12},
        bw_bytes_per_s={"a": np.asarray(bw_a), "b": np.asarray(bw_b)},
        read_energy_j_per_bit={"a": 4e-12, "b": 0.5e-12},
        write_energy_j_per_bit={"a": 5e-12, "b": 0.6e-12},
        link_bw_bytes_per_s={"l": np.asarray(10e9)},
        link_energy_j_per_bit={"l": 1e-12},
        overhead_s=0.0,
    )


def test_infinite_compute_gives_bytes_over_bandwidth_exactly() -> None:
    res = resources(peak=np.inf)
    cost = operator_cost(
        name="x",
        layers=3,
        ops=np.asarray(1e15),
        precision="w8a8",
        bytes_read={"a": np.asarray(2e9), "b": np.asarray(1e9)},
        bytes_written={},
        link_bytes={},
        res=res,
    )
    # tiers a and b are read in parallel: the slower one, 2e9 / 100e9 = 20 ms, per layer
    assert cost.time_s == pytest.approx(3 * 2e9 / 100e9, rel=1e-15)
    assert cost.bound_label() == "a"


def test_compute_bound_and_link_terms() -> None:
    res = resources(peak=1e12)
    cost = operator_cost(
        name="x",
        layers=1,
        ops=np.asarray(1e12),
        precision="w8a8",
        bytes_read={"a": np.asarray(1e9)},
        bytes_written={},
        link_bytes={"l": np.asarray(5e9)},
        res=res,
    )
    assert cost.time_s == pytest.approx(1.0)  # 1e12 ops / 1e12 ops/s beats 10 ms and 0.5 s
    assert cost.bound_label() == "compute"
    linked = operator_cost(
        name="x",
        layers=1,
        ops=np.asarray(1.0),
        precision="w8a8",
        bytes_read={"a": np.asarray(1e9)},
        bytes_written={},
        link_bytes={"l": np.asarray(5e9)},
        res=res,
    )
    assert linked.time_s == pytest.approx(0.5)
    assert linked.bound_label() == "link:l"


def test_reads_and_writes_share_a_tier_and_energy_adds() -> None:
    res = resources(peak=np.inf)
    cost = operator_cost(
        name="x",
        layers=2,
        ops=np.asarray(1e9),
        precision="w8a8",
        bytes_read={"a": np.asarray(1e9)},
        bytes_written={"a": np.asarray(1e9)},
        link_bytes={"l": np.asarray(1e6)},
        res=res,
    )
    assert cost.time_s == pytest.approx(2 * 2e9 / 100e9)
    assert cost.energy_j["read_a"] == pytest.approx(2 * 8e9 * 4e-12)
    assert cost.energy_j["write_a"] == pytest.approx(2 * 8e9 * 5e-12)
    assert cost.energy_j["compute"] == pytest.approx(2 * 1e9 * 0.1e-12)
    assert cost.energy_j["link"] == pytest.approx(2 * 8e6 * 1e-12)


def test_choose_faster_is_elementwise_min() -> None:
    slow = resources(bw_a=100e9, unit="host")
    nbytes = {"a": np.asarray([1e9, 2e9])}
    a = operator_cost(
        name="x",
        layers=1,
        ops=np.asarray([1e8, 1e12]),
        precision="w8a8",
        bytes_read=nbytes,
        bytes_written={},
        link_bytes={},
        res=slow,
    )
    fast = resources(peak=1e11, bw_a=400e9, unit="pim")
    b = operator_cost(
        name="x",
        layers=1,
        ops=np.asarray([1e8, 1e12]),
        precision="w8a8",
        bytes_read=nbytes,
        bytes_written={},
        link_bytes={},
        res=fast,
    )
    best = choose_faster(a, b)
    np.testing.assert_allclose(best.time_s, np.minimum(a.time_s, b.time_s))
    assert list(best.unit) == ["pim", "host"]
    assert list(best.bound_label()) == ["a", "compute"]


def test_max_and_argmax_equals_stacked_reference() -> None:
    from elmoe_dse.roofline import max_and_argmax

    rng = np.random.default_rng(3)
    arrays = [rng.integers(0, 4, (5, 7)).astype(float), np.asarray(2.0), rng.random((1, 7)) * 4]
    stacked = np.stack(np.broadcast_arrays(*arrays), axis=0)
    best, index = max_and_argmax(arrays)
    np.testing.assert_array_equal(best, stacked.max(axis=0))
    np.testing.assert_array_equal(index, stacked.argmax(axis=0))  # first maximum on ties


def test_pass_overlap_takes_the_busiest_resource_of_the_pass() -> None:
    from elmoe_dse.roofline import overlap_pass

    res = Resources(
        unit="x",
        peak_ops_per_s={"w8a8": np.asarray(1.0)},
        energy_j_per_op={"w8a8": 0.0},
        bw_bytes_per_s={"a": np.asarray(1.0), "b": np.asarray(1.0)},
        read_energy_j_per_bit={"a": 0.0, "b": 0.0},
        write_energy_j_per_bit={"a": 0.0, "b": 0.0},
        link_bw_bytes_per_s={},
        link_energy_j_per_bit={},
        overhead_s=0.5,
    )

    def op(name: str, a: float, b: float, layers: int = 1) -> OpCost:
        return operator_cost(
            name=name,
            layers=layers,
            ops=np.asarray(0.0),
            precision="w8a8",
            bytes_read={"a": np.asarray(a), "b": np.asarray(b)},
            bytes_written={},
            link_bytes={},
            res=res,
        )

    costs = (op("x", 4.0, 1.0), op("y", 1.0, 3.0, layers=2))
    serial = sum(float(c.time_s) for c in costs)
    assert serial == pytest.approx(4.5 + 2 * 3.5)
    out = overlap_pass(costs)
    # busiest resource: a = 4 + 2 x 1 = 6, b = 1 + 2 x 3 = 7; plus 3 overheads of 0.5
    assert sum(float(c.time_s) for c in out) == pytest.approx(7.0 + 1.5)
    assert [c.bytes_read for c in out] == [c.bytes_read for c in costs]
