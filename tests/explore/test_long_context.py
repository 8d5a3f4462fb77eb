"""The long-context speedup table and the halving context (elmoe_dse/explore/long_context.py)."""

import math

import pandas as pd

from elmoe_dse.explore.long_context import halving_context, speedup_table


def _frame() -> pd.DataFrame:
    rows = []
    for ctx, mine, xpu, pim in [
        (1024, 40.0, 10.0, 20.0),
        (4096, 30.0, 10.0, 40.0),
        (16384, 10.0, 5.0, 4.0),
    ]:
        for platform, tput in [("elmoe3d-8g", mine), ("xpu", xpu), ("xpu-pim", pim)]:
            rows.append(
                {
                    "meta.feasible": True,
                    "meta.model": "m",
                    "meta.platform": platform,
                    "knob.context_len": ctx,
                    "metric.throughput_tok_per_s": tput,
                    "metric.pool_experts_per_layer": 8.0,
                    "metric.hit_rate_frac": 0.5,
                }
            )
    return pd.DataFrame(rows)


def test_speedups_over_xpu_and_best_prior() -> None:
    t = speedup_table(_frame(), "elmoe3d-8g").set_index("knob.context_len")
    assert t.loc[1024, "speedup_over_xpu"] == 4.0
    assert t.loc[4096, "best_prior"] == "xpu-pim"
    assert t.loc[4096, "speedup_over_best_prior"] == 0.75
    assert t.loc[16384, "best_prior"] == "xpu"


def test_halving_context_interpolates_in_log2() -> None:
    t = speedup_table(_frame(), "elmoe3d-8g")
    # speedup over xPU: 4, 3, 2 at 2^10, 2^12, 2^14 -> falls to 2 exactly at 16384
    assert math.isclose(halving_context(t)["m"], 16384.0)
    # throughput 40 -> 30 -> 10: half (20) is halfway from 30 to 10 in value, at 2^13
    assert math.isclose(halving_context(t, "throughput_tok_per_s")["m"], 8192.0)


def test_halving_context_is_nan_when_never_halved() -> None:
    t = speedup_table(_frame(), "elmoe3d-8g")
    assert math.isnan(halving_context(t, "hit_rate_frac")["m"])


def test_figure_table_and_figure(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from elmoe_dse.explore.long_context import write_figure

    _frame().to_parquet(tmp_path / "results.parquet")
    table_path, png = write_figure(tmp_path)
    import pandas as pd

    table = pd.read_parquet(table_path)
    assert set(table["meta.platform"]) == {"elmoe3d-8g"}
    assert len(table) == 3
    assert png.stat().st_size > 0


def test_report_section_names_the_halving_contexts(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from elmoe_dse.report_design import long_context_section

    _frame().to_parquet(tmp_path / "results.parquet")
    text = long_context_section(tmp_path)
    assert "| elmoe3d-8g | m | 4.00x -> 2.00x | 16.0k | 8.0k |" in text
    assert "long_context.png" not in text


def test_cli_writes_section_and_fails_cleanly(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from elmoe_dse.cli.main import app

    runner = CliRunner()
    missing = runner.invoke(app, ["long-context", str(tmp_path)])
    assert missing.exit_code == 2
    _frame().to_parquet(tmp_path / "results.parquet")
    ok = runner.invoke(app, ["long-context", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "16.0k" in (tmp_path / "long_context.md").read_text()
    assert (tmp_path / "long_context.png").exists()
