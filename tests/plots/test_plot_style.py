"""The style module: one colour per platform (colour-blind-safe), no global state, lazy imports."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from elmoe_dse.plots import style
from elmoe_dse.specs.platform import list_platforms

#: Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "#000000",
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#F0E442",
    "#0072B2",
    "#D55E00",
    "#CC79A7",
}
PAPER_PLATFORMS = (
    "xpu",
    "xpu-pim",
    "xpu-logicpim",
    "xpu-nmp",
    "hb-xpu",
    "elmoe3d-8g",
    "elmoe3d-4g",
)


def test_every_shipped_platform_has_its_own_colour() -> None:
    colours = [style.platform_color(p) for p in list_platforms()]
    assert len(set(colours)) == len(colours)
    assert {style.platform_color(p) for p in PAPER_PLATFORMS} <= OKABE_ITO


def test_an_unknown_platform_keeps_one_colour() -> None:
    """The same colour in every process, whatever the string-hash seed (not ``hash()``)."""
    code = "from elmoe_dse.plots import style; print(style.platform_color('my-chip'))"
    seen = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert seen == {style.platform_color("my-chip")}
    assert style.platform_color("my-chip") in style.FALLBACK_COLORS


def test_text_colour_darkens_only_light_colours() -> None:
    assert style.text_color("#D55E00") == "#D55E00"
    assert style.text_color("#F0E442") != "#F0E442"


def test_si_text_and_tint() -> None:
    assert style.si_text(1.5893e12, "B/s") == "1.59 TB/s"
    assert style.si_text(524e12, "OPS") == "524 TOPS"
    assert style.tint("#000000", 1.0) == "#FFFFFF"
    assert style.tint("#D55E00", 0.0) == "#D55E00"


def test_style_context_restores_global_rcparams() -> None:
    import matplotlib

    before = dict(matplotlib.rcParams)
    with style.style_context():
        assert matplotlib.rcParams["font.size"] == style.RC["font.size"]
    assert dict(matplotlib.rcParams) == before


def test_figures_encode_deterministically() -> None:
    def draw(fmt: str) -> bytes:
        with style.style_context():
            fig = style.new_figure(style.COLUMN_WIDTH_IN, 2.0)
            fig.add_subplot().plot([1, 2], [3, 4])
            return style.figure_bytes(fig, fmt)

    assert draw("png").startswith(b"\x89PNG")
    assert draw("pdf").startswith(b"%PDF")
    assert draw("svg") == draw("svg")
    with pytest.raises(ValueError, match="unknown figure format"):
        draw("gif")


def test_importing_plots_report_and_cli_does_not_import_matplotlib() -> None:
    code = (
        "import sys\n"
        "import elmoe_dse.plots, elmoe_dse.plots.figures, elmoe_dse.plots.pareto\n"
        "import elmoe_dse.plots.speedup, elmoe_dse.plots.energy, elmoe_dse.plots.roofline\n"
        "import elmoe_dse.plots.sensitivity, elmoe_dse.plots.optimize, elmoe_dse.plots.style\n"
        "import elmoe_dse.report, elmoe_dse.cli.plot, elmoe_dse.cli.report\n"
        "heavy = [m for m in ('matplotlib', 'optuna') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_cloud_that_varies_hb_says_so_instead_of_the_presets_capacity() -> None:
    """The Pareto figures' design cloud of ELMoE-3D 8 GB over HB 2..16 GB is labelled with the
    range it covers, not '8 GB'; a cloud at one capacity keeps the preset's name."""
    import pandas as pd

    from elmoe_dse.plots.pareto import _clouds
    from elmoe_dse.plots.style import designs_label

    assert designs_label("elmoe3d-8g", (2.0, 4.0, 8.0, 16.0)) == "ELMoE-3D designs (HB 2-16 GB)"
    assert designs_label("elmoe3d-8g", (8.0,)) == "ELMoE-3D 8 GB designs"
    rows = pd.DataFrame(
        {
            "meta.platform": ["elmoe3d-8g"] * 4,
            "knob.hb_capacity_gb": [2.0, 4.0, 8.0, 16.0],
            "metric.energy_per_token_j": [0.1, 0.09, 0.08, 0.07],
            "metric.throughput_tok_per_s": [50.0, 60.0, 70.0, 80.0],
        }
    )
    (cloud,) = _clouds(rows, 64)
    assert cloud.hb_gb == (2.0, 4.0, 8.0, 16.0)
    assert cloud.label == "ELMoE-3D designs (HB 2-16 GB)"
    (single,) = _clouds(rows.assign(**{"knob.hb_capacity_gb": 8.0}), 64)
    assert single.label == "ELMoE-3D 8 GB designs"
