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
