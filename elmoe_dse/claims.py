"""The report's plain statement of which of the paper's claims the model supports.

From the ensemble summary of ``reproduce`` (:func:`elmoe_dse.explore.ensemble.ensemble_bands`,
written to ``reproduce/bands.json``), each headline number of the paper (ELMoE-3D, arXiv
2604.14626) falls in one of three classes:

- **reproduced from priors**: the paper's value lies inside the prior predictive 90 % band (what
  the model predicts from the literature alone);
- **only under tension**: outside the prior band but inside the posterior band (the model agrees
  once the paper-informed parameters move; the tension table says how far);
- **not reproduced**: outside both bands.

:func:`claims_markdown` returns the statement as markdown lines; it reads only the summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FROM_PRIORS = "reproduced from priors"
UNDER_TENSION = "only under tension"
NOT_REPRODUCED = "not reproduced"


def _inside(paper: float, band: Mapping[str, Any] | None) -> bool:
    return band is not None and band.get("n", 0) > 0 and band["p5"] <= paper <= band["p95"]


def classify(target: Mapping[str, Any]) -> str:
    """The class of one target entry (``paper``, ``prior``, ``posterior`` bands)."""
    if _inside(target["paper"], target["prior"]):
        return FROM_PRIORS
    if _inside(target["paper"], target.get("posterior")):
        return UNDER_TENSION
    return NOT_REPRODUCED


def _fmt(band: Mapping[str, Any] | None) -> str:
    if band is None or band.get("n", 0) == 0:
        return "n/a"
    return f"{band['p50']:.2f}x [{band['p5']:.2f}, {band['p95']:.2f}]"


def claims_markdown(bands: Mapping[str, Any], alternative: str | None = None) -> list[str]:
    """Markdown lines: per target, the class, the paper's value and both bands, under the selected
    assumptions (or ``alternative``), then one line per other alternative that changes a class,
    then the parameters the posterior moved furthest."""
    from elmoe_dse.explore.reproduce import PAPER_TARGETS

    label = alternative or bands["selected"]
    alts = bands["alternatives"]
    given = alts[label]["targets"]
    order = [n for n in PAPER_TARGETS if n in given] + [n for n in given if n not in PAPER_TARGETS]
    targets = {n: given[n] for n in order}
    lines = [
        f"Claims of the paper against the model (assumptions: {label}; 90 % bands, "
        "median [p5, p95]):",
        "",
        "| claim | paper | prior band | posterior band | P(within 10 % prior) | verdict |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, t in targets.items():
        lines.append(
            f"| {name} | {t['paper']:.2f}x | {_fmt(t['prior'])} | {_fmt(t['posterior'])} | "
            f"{t['p_within_10pct_prior']:.2f} | {classify(t)} |"
        )
    lines.append("")
    for verdict in (FROM_PRIORS, UNDER_TENSION, NOT_REPRODUCED):
        names = [n for n, t in targets.items() if classify(t) == verdict]
        lines.append(f"- {verdict.capitalize()}: {', '.join(names) if names else 'none'}.")
    for other, alt in alts.items():
        if other == label:
            continue
        moved = [
            f"{n} ({classify(targets[n])} -> {classify(t)})"
            for n, t in alt["targets"].items()
            if classify(t) != classify(targets[n])
        ]
        if moved:
            lines.append(f"- Under {other}: {', '.join(moved)}.")
    top = bands.get("tension", [])[:3]
    if top:
        moved_text = "; ".join(
            f"{r['parameter']} (prior median {r['prior_p50']:.3g}, posterior median "
            f"{r['posterior']['p50']:.3g}, z = {r['z']:+.2f})"
            for r in top
        )
        lines.append(f"- Moved furthest by the paper's numbers: {moved_text}.")
    return lines
