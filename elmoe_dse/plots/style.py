"""One look for every figure: palette, names, sizes, and the style context they are drawn in.

- **A colour per platform**, the same in every figure, from the Okabe-Ito palette (safe for the
  common colour-vision deficiencies; Okabe & Ito, "Color Universal Design", 2008). ELMoE-3D (8 GB)
  is vermillion, the naive xPU black. A platform outside the shipped ones gets a colour from Paul
  Tol's "muted" scheme, chosen by a stable hash of its name, so it too keeps its colour.
- **A hatch per decoding policy** where several policies share a platform (ELMoE-3D hardware runs
  the full mode-switching system, Elastic-SD and EAGLE-SD).
- **Energy components** (stacked bars) use Tol's "muted" scheme, lighter than the platform colours,
  so a component is never mistaken for a platform.
- **Sizes** for a two-column paper: :data:`COLUMN_WIDTH_IN` (one column) and
  :data:`PAGE_WIDTH_IN` (both), 7-8 pt text.

Nothing here changes global matplotlib state: :func:`style_context` is a ``rc_context`` that is
restored on exit, and figures are built from :class:`matplotlib.figure.Figure` on an explicit Agg
canvas (:func:`new_figure`), never through ``pyplot``. matplotlib is imported inside functions
only, so importing this module stays cheap.
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING, Any

from elmoe_dse.render import si

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: One column of a two-column paper (IEEE/ACM), inches.
COLUMN_WIDTH_IN = 3.5
#: Both columns, inches.
PAGE_WIDTH_IN = 7.16
#: Raster resolution of PNG output, dots per inch.
PNG_DPI = 200
FORMATS = ("png", "svg", "pdf")

#: Okabe-Ito colours by platform (the shipped ones).
PLATFORM_COLORS: dict[str, str] = {
    "xpu": "#000000",  # black: the reference every ratio is taken against
    "xpu-pim": "#E69F00",  # orange
    "xpu-logicpim": "#0072B2",  # blue
    "xpu-nmp": "#56B4E9",  # sky blue
    "hb-xpu": "#009E73",  # bluish green
    "elmoe3d-8g": "#D55E00",  # vermillion
    "elmoe3d-4g": "#CC79A7",  # reddish purple
    "a100-80g": "#F0E442",  # yellow (GPU presets appear only when a user sweeps them)
    "h100": "#999999",
    "h200": "#332288",
}
#: Paul Tol "muted": colours for platforms not in :data:`PLATFORM_COLORS`.
FALLBACK_COLORS = (
    "#882255",
    "#44AA99",
    "#117733",
    "#AA4499",
    "#88CCEE",
    "#999933",
    "#DDCC77",
    "#CC6677",
)

PLATFORM_LABELS: dict[str, str] = {
    "xpu": "xPU",
    "xpu-pim": "xPU+PIM",
    "xpu-logicpim": "xPU+Logic-PIM",
    "xpu-nmp": "xPU+NMP",
    "hb-xpu": "HB-xPU",
    "elmoe3d-8g": "ELMoE-3D 8 GB",
    "elmoe3d-4g": "ELMoE-3D 4 GB",
    "a100-80g": "A100-80GB",
    "h100": "H100",
    "h200": "H200",
}

#: Systems of ``elmoe-dse reproduce`` (meta.system) as the paper names them.
SYSTEM_LABELS: dict[str, str] = {
    "elmoe3d": "ELMoE-3D",
    "xpu": "xPU",
    "xpu-pim": "PIM",
    "xpu-logicpim": "Logic-PIM",
    "xpu-nmp": "NMP",
    "hb-xpu": "HB-xPU",
    "elastic-sd": "Elastic-SD",
    "eagle-sd": "EAGLE-SD",
}

POLICY_LABELS: dict[str, str] = {
    "ar": "AR",
    "ar-cache": "AR + cache",
    "elastic-sd": "Elastic-SD",
    "eagle-sd": "EAGLE-SD",
    "slm-sd": "SLM-SD",
    "quant-sd": "Quant-SD",
    "elmoe3d": "ELMoE-3D (AR/SD switch)",
}

#: Hatches of the speculative policies; plain decoding and the full ELMoE-3D system are solid.
POLICY_HATCHES: dict[str, str] = {
    "elastic-sd": "////",
    "eagle-sd": "....",
    "quant-sd": "xxxx",
    "slm-sd": "\\\\\\\\",
}

#: Energy components in stacking order, with their labels and colours (Tol "muted"/"light").
COMPONENT_ORDER = ("read_hb", "read_hbm", "read_lpddr", "write", "compute", "link", "static")
COMPONENT_LABELS: dict[str, str] = {
    "read_hb": "HB read",
    "read_hbm": "HBM read",
    "read_lpddr": "LPDDR read",
    "write": "writes",
    "compute": "compute",
    "link": "link",
    "static": "static",
}
COMPONENT_COLORS: dict[str, str] = {
    "read_hb": "#88CCEE",
    "read_hbm": "#44AA99",
    "read_lpddr": "#332288",
    "write": "#DDCC77",
    "compute": "#CC6677",
    "link": "#999933",
    "static": "#BBBBBB",
}

#: Markers of decode operators (roofline), in pass order.
OPERATOR_MARKERS: dict[str, str] = {
    "qkv_proj": "o",
    "attention": "s",
    "attention_sliding": "P",
    "o_proj": "^",
    "router": "v",
    "shared_experts": "D",
    "routed_experts": "*",
    "dense_ffn": "X",
    "lm_head": "h",
    "draft_model": "<",
    "draft_attention": ">",
}

#: rcParams of every figure (7-8 pt text at paper size; no top/right spines; light grid).
RC: dict[str, Any] = {
    "font.size": 7.5,
    "axes.titlesize": 8.0,
    "axes.labelsize": 7.5,
    "xtick.labelsize": 7.0,
    "ytick.labelsize": 7.0,
    "legend.fontsize": 6.5,
    "legend.title_fontsize": 7.0,
    "legend.frameon": False,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.linewidth": 0.4,
    "grid.alpha": 0.35,
    "axes.axisbelow": True,
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.2,
    "lines.markersize": 4.0,
    "patch.linewidth": 0.4,
    "hatch.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "savefig.dpi": PNG_DPI,
    "svg.fonttype": "none",
    "svg.hashsalt": "elmoe-dse",
    "pdf.fonttype": 42,
}


def platform_color(platform: str) -> str:
    """The colour of a platform: Okabe-Ito for the shipped ones, a stable fallback otherwise."""
    if platform in PLATFORM_COLORS:
        return PLATFORM_COLORS[platform]
    return FALLBACK_COLORS[zlib.crc32(platform.encode()) % len(FALLBACK_COLORS)]


def platform_label(platform: str) -> str:
    return PLATFORM_LABELS.get(platform, platform)


def designs_label(platform: str, hb_gb: tuple[float, ...] = ()) -> str:
    """The legend label of a platform's design cloud; where the designs vary the HB capacity
    (``hb_gb``: its distinct values) it says so instead of the preset's own capacity."""
    label = platform_label(platform)
    if len(hb_gb) < 2:
        return f"{label} designs"
    lo, hi = min(hb_gb), max(hb_gb)
    family = label.removesuffix(" GB").rsplit(" ", 1)[0] if label.endswith(" GB") else label
    return f"{family} designs (HB {lo:g}-{hi:g} GB)"


def system_label(system: str) -> str:
    return SYSTEM_LABELS.get(system, system)


def policy_hatch(policy: str) -> str:
    return POLICY_HATCHES.get(policy, "")


def component_of(key: str) -> str:
    """The stacking group of an energy key: ``read_<tier>``, ``write`` (every tier), or the key."""
    return "write" if key.startswith("write_") else key


def component_label(component: str) -> str:
    if component in COMPONENT_LABELS:
        return COMPONENT_LABELS[component]
    if component.startswith("read_"):
        return f"{component[len('read_') :].upper()} read"
    return component


def component_color(component: str) -> str:
    if component in COMPONENT_COLORS:
        return COMPONENT_COLORS[component]
    return FALLBACK_COLORS[zlib.crc32(component.encode()) % len(FALLBACK_COLORS)]


def component_rank(component: str) -> tuple[int, str]:
    """Sort key: :data:`COMPONENT_ORDER` first (other tiers' reads after the known reads)."""
    if component in COMPONENT_ORDER:
        return COMPONENT_ORDER.index(component), component
    return (COMPONENT_ORDER.index("write") if component.startswith("read_") else 99), component


def tint(color: str, frac: float) -> str:
    """``color`` mixed with white: ``frac`` = 0 gives the colour, 1 gives white."""
    c = color.lstrip("#")
    rgb = [int(c[i : i + 2], 16) for i in (0, 2, 4)]
    mixed = [round(v + (255 - v) * frac) for v in rgb]
    return "#" + "".join(f"{v:02X}" for v in mixed)


def text_color(color: str) -> str:
    """``color`` for text on white: light colours (yellow, grey) are darkened to stay legible."""
    c = color.lstrip("#")
    r, g, b = (int(c[i : i + 2], 16) / 255 for i in (0, 2, 4))
    if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.6:
        return color
    return "#" + "".join(f"{round(v * 255 * 0.55):02X}" for v in (r, g, b))


def si_text(value: float, unit: str) -> str:
    """``value`` (SI) with an engineering prefix and 3 significant digits: 1.5e12, "B/s" ->
    "1.5 TB/s" (:func:`elmoe_dse.render.si`, no prefixes below 1)."""
    return si(value, unit, sub_unit=False)


def batch_label(batch: float) -> str:
    return f"B = {batch:g}"


@contextmanager
def style_context() -> Iterator[None]:
    """The house style, for the duration of a ``with`` block (global rcParams restored after)."""
    import matplotlib

    rc: Any = RC  # matplotlib types the keys as a Literal of every rcParam name
    with matplotlib.rc_context(rc):
        yield


def new_figure(width_in: float, height_in: float) -> Figure:
    """A figure on its own Agg canvas (no pyplot, no global figure registry), laid out by
    matplotlib's constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def figure_bytes(fig: Figure, fmt: str) -> bytes:
    """The figure encoded as ``fmt`` (png, svg or pdf), without timestamps (same input, same
    bytes for svg and pdf)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown figure format '{fmt}'; use one of {', '.join(FORMATS)}")
    buf = io.BytesIO()
    metadata_by_format: dict[str, dict[str, Any]] = {
        "png": {"Software": "elmoe-dse"},
        "svg": {"Creator": "elmoe-dse", "Date": None},
        "pdf": {"Creator": "elmoe-dse", "CreationDate": None},
    }
    metadata = metadata_by_format[fmt]
    fig.savefig(buf, format=fmt, metadata=metadata)
    return buf.getvalue()


def plain_log_ticks(ax: Any, which: str = "both") -> None:
    """Label log axes with plain numbers at 1, 2, 5 x 10^k (no 2x10^1 notation)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def fmt(v: float, _pos: Any) -> str:
        return f"{v:g}"

    axes = {"x": [ax.xaxis], "y": [ax.yaxis], "both": [ax.xaxis, ax.yaxis]}[which]
    for axis in axes:
        if axis.get_scale() != "log":
            continue
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(fmt))
        axis.set_minor_formatter(NullFormatter())


def model_label(model_id: str) -> str:
    """A model's display name from its shipped spec (the id itself if it has none)."""
    return _model_labels().get(model_id, model_id)


@cache
def _model_labels() -> dict[str, str]:
    from elmoe_dse.specs.model import list_models, load_model

    return {m: load_model(m).display_name for m in list_models()}
