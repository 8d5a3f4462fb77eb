"""``elmoe-dse calibrate-hw PRESET --kernels DIR``: fit a GPU preset's kernel constants."""

from __future__ import annotations

from pathlib import Path

import typer

from elmoe_dse.cli._common import console, guarded


def calibrate_hw(
    preset: str = typer.Argument(..., help="a GPU preset name (a100-80g, h100, h200) or its path"),
    kernels: Path = typer.Option(  # noqa: B008
        ..., "--kernels", help="kernel database folder (aiconfigurator <gpu>/*.parquet)"
    ),
    out: Path | None = typer.Option(  # noqa: B008
        None, "--out", help="preset file to write (default: print the \\[kernels] section)"
    ),
    hosts: bool = typer.Option(
        True,
        "--host/--no-host",
        help="also fit kernel_gap_s on the shipped measured points at batch <= 4 of this GPU",
    ),
) -> None:
    """Fit the kernel terms of PRESET to a kernel database; write them with their fit error."""
    from elmoe_dse.explore.calibrate_hw import calibrate_preset, kernels_toml, with_kernels
    from elmoe_dse.platforms import load_platform
    from elmoe_dse.specs.platform import DATA_DIR, list_platforms

    with guarded():
        spec = load_platform(preset)
        command = f"elmoe-dse calibrate-hw {preset} --kernels {kernels.as_posix()}"
        fitted, note = calibrate_preset(spec, kernels, command, fit_host=hosts)
        con = console()
        for table, e in fitted.fit_error.items():
            con.print(
                f"{table}: {e.rows} rows, |error| median {e.median_abs_frac:.1%}, "
                f"p90 {e.p90_abs_frac:.1%}, worst {e.worst_abs_frac:.1%}"
            )
        con.print(note)
        if out is None:
            typer.echo(kernels_toml(fitted))
            return
        shipped = preset.strip().lower() in list_platforms()
        src = DATA_DIR / f"{preset.strip().lower()}.toml" if shipped else Path(preset)
        out.write_text(with_kernels(src.read_text(), fitted))
        con.print(f"wrote {out}")
