"""The public API: importing the package loads nothing heavy, and every documented name
resolves."""

from __future__ import annotations


def test_public_api_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    code = (
        "import sys, elmoe_dse; assert 'numpy' not in sys.modules; "
        "from elmoe_dse import evaluate, Knobs, load_model, load_platform, "
        "expert_probabilities, reproduce; print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.stdout.strip() == "ok", result.stderr


def _readme_api_block() -> str:
    """The indented code block of the README that starts with ``from elmoe_dse import Scenario``."""
    from pathlib import Path

    lines = (Path(__file__).resolve().parent.parent / "README.md").read_text().splitlines()
    start = lines.index("    from elmoe_dse import Scenario")
    block = []
    for line in lines[start:]:
        if line and not line.startswith("    "):
            break
        block.append(line[4:])
    return "\n".join(block).strip() + "\n"


def test_readme_python_example_gives_the_numbers_of_explain() -> None:
    """The README's Python example, run as written, prints what ``explain --json`` gives at
    B = 1, 4, 16 (same calibration, dataset overlap and routing): bit-identical."""
    import contextlib
    import io
    import json
    import re

    from typer.testing import CliRunner

    from elmoe_dse.cli.main import app

    code = _readme_api_block()
    comment = re.search(r"# = elmoe-dse (explain .*)$", code, re.M)
    assert comment is not None, "the README example names its explain line"
    out = io.StringIO()
    scope: dict[str, object] = {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), scope)
    step = scope["step"]
    args = comment.group(1).split()
    for i, b in enumerate((1, 4, 16)):
        argv = [a if args[j - 1] != "-b" else str(b) for j, a in enumerate(args)]
        res = CliRunner().invoke(app, argv)
        assert res.exit_code == 0, res.output
        m = json.loads(res.stdout)["metrics"]
        assert float(step.throughput_tok_per_s[i]) == m["throughput_tok_per_s"]  # type: ignore[attr-defined]
        assert float(step.energy_per_token_j[i]) == m["energy_per_token_j"]  # type: ignore[attr-defined]
    assert out.getvalue().strip(), "the example prints its numbers"


def test_scenario_differs_from_the_uncalibrated_specs_and_takes_sets() -> None:
    from elmoe_dse import Scenario

    shipped = Scenario("qwen3-30b-a3b", "elmoe3d-8g").evaluate(batch_size=4)
    raw = Scenario("qwen3-30b-a3b", "elmoe3d-8g", calibration="none").evaluate(batch_size=4)
    assert float(shipped.energy_per_token_j) != float(raw.energy_per_token_j)
    faster = Scenario(
        "qwen3-30b-a3b", "elmoe3d-8g", sets=["tiers.lpddr.peak_bw_gb_per_s=204.8"]
    ).evaluate(batch_size=4)
    assert float(faster.throughput_tok_per_s) > float(shipped.throughput_tok_per_s)
