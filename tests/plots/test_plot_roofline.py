"""Rooflines: closed-form roofs from the spec, points at ops/bytes, nothing above its roof."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from elmoe_dse import units
from elmoe_dse.explore.figure_columns import PANEL
from elmoe_dse.explore.figure_steps import Specs, evaluate_at, roofline_rows
from elmoe_dse.plots import roofline, style
from elmoe_dse.specs.platform import load_platform


def steps(platform: str, policy: str, batches: tuple[float, ...] = (1.0, 16.0)) -> list:
    sc = Specs(None).scenario("deepseek-v2-lite", platform, "mt-bench")
    return [
        (b, evaluate_at(sc, sc.knobs(policy=policy, batch_size=b, draft_length=4.0)))
        for b in batches
    ]


def panel_of(steps: list, platform: str) -> roofline.RooflinePanel:
    """The panel drawn from the figure tables of ``steps`` (through a Parquet round trip)."""
    points, roofs = roofline_rows(steps, **{PANEL: 0, "meta.platform": platform})
    (panel,) = roofline.panels_from_tables(pd.DataFrame(points), pd.DataFrame(roofs))
    return panel


def test_xpu_roofs_are_the_spec_numbers() -> None:
    panel = panel_of(steps("xpu", "ar"), "xpu")
    spec = load_platform("xpu")
    roofs = {(r.unit, r.kind, r.name): r.value for r in panel.roofs}
    lpddr = spec.tiers["lpddr"]
    assert roofs[("xpu", "memory", "lpddr")] == pytest.approx(
        lpddr.peak_bw_gb_per_s * units.GB * lpddr.bw_efficiency_frac, rel=1e-6
    )
    assert roofs[("xpu", "compute", "w8a8")] == pytest.approx(
        spec.compute.peak_ops_per_s("w8a8"), rel=1e-6
    )


def test_points_sit_at_ops_per_byte_and_under_their_roof() -> None:
    step = steps("xpu", "ar", (1.0,))[0][1]
    panel = panel_of([(1.0, step)], "xpu")
    ops = {op.name: op for op in step.passes[0].operators}
    roofs = {(r.kind, r.name): r.value for r in panel.roofs}
    for p in panel.points:
        op = ops[p.operator]
        moved = sum(float(v) for v in op.bytes_read.values()) + sum(
            float(v) for v in op.bytes_written.values()
        )
        assert p.intensity_ops_per_byte == pytest.approx(float(op.ops) / moved)
        bound = min(
            roofs[("compute", p.precision)], p.intensity_ops_per_byte * roofs[("memory", "lpddr")]
        )
        assert p.attained_ops_per_s <= bound * (1 + 1e-9)
    assert sum(p.time_share for p in panel.points) == pytest.approx(1.0)


def test_speculative_steps_place_draft_operators() -> None:
    panel = panel_of(steps("elmoe3d-8g", "elastic-sd"), "elmoe3d-8g")
    kinds = {p.pass_kind for p in panel.points}
    assert kinds == {"draft", "verify"}
    assert {r.name for r in panel.roofs if r.kind == "memory"} == {"hb", "lpddr"}
    assert "B = 1" in roofline.caption([panel])


def test_reproduce_panels_one_per_platform(reproduce_master: Path) -> None:
    folder = reproduce_master / "reproduce"
    panels = roofline.panels_from_tables(
        pd.read_parquet(folder / "figure_roofline_points.parquet"),
        pd.read_parquet(folder / "figure_roofline_roofs.parquet"),
    )
    assert [p.platform for p in panels] == [
        "elmoe3d-8g",
        "xpu",
        "xpu-pim",
        "xpu-logicpim",
        "xpu-nmp",
        "hb-xpu",
    ]


def test_roofline_figure_renders() -> None:
    panel = panel_of(steps("xpu-pim", "ar"), "xpu-pim")
    with style.style_context():
        assert style.figure_bytes(roofline.roofline_figure([panel]), "png").startswith(b"\x89PNG")
        assert roofline.draw_roofline_panel(panel).get_xscale() == "log"
