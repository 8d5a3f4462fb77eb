"""Calibration files applied to specs: exactly the named fields change, unknown keys are refused,
a user's own spec file is taken as written, and the module sits below scenario and explore."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path
from typing import Any

import pytest

import elmoe_dse
from elmoe_dse.calibration import (
    CalibratedValue,
    Calibration,
    apply_calibration,
    calibration_toml,
    load_calibration,
    load_ensemble,
    median_calibration,
    resolve_calibration,
)
from elmoe_dse.errors import ElmoeError, SpecError
from elmoe_dse.explore.reproduce import load_inputs
from elmoe_dse.scenario import build_scenario, resolve_inputs
from elmoe_dse.specs._base import DATA_DIR
from elmoe_dse.specs.dataset import load_acceptance_params, load_dataset
from elmoe_dse.specs.platform import load_platform

PACKAGE = Path(elmoe_dse.__file__).parent


def calibration(values: dict[str, float]) -> Calibration:
    """A calibration setting the keys of ``values``."""
    return Calibration(
        seed=0,
        trials=0,
        date="2026-01-01",
        loss=0.0,
        parameters={
            key: CalibratedValue(value=v, min=0.0, max=1e9, source="test")
            for key, v in values.items()
        },
    )


def flat(data: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every leaf of a spec's dump, keyed by its path."""
    if isinstance(data, dict):
        out: dict[tuple[str, ...], Any] = {}
        for key, value in data.items():
            out.update(flat(value, (*prefix, str(key))))
        return out
    return {prefix: data}


def changed(before: Any, after: Any) -> dict[tuple[str, ...], tuple[Any, Any]]:
    a, b = flat(before.model_dump()), flat(after.model_dump())
    assert a.keys() == b.keys()
    return {k: (a[k], b[k]) for k in a if a[k] != b[k]}


def test_applying_a_calibration_changes_exactly_the_named_fields() -> None:
    xpu, pim = load_platform("xpu"), load_platform("xpu-pim")
    gsm8k, alpaca = load_dataset("gsm8k"), load_dataset("alpaca")
    params = load_acceptance_params()
    assert xpu.static_power is not None
    cal = Calibration(
        seed=0,
        trials=0,
        date="2026-01-01",
        loss=0.0,
        parameters={
            "platform.xpu.static_power.host_w": CalibratedValue(
                value=xpu.static_power.host_w + 1.5, min=0.0, max=100.0, source="test"
            ),
            "platform.xpu-pim.near_memory.internal_bw_multiplier": CalibratedValue(
                value=10.0, min=0.0, max=1e6, source="test"
            ),
            "dataset.gsm8k.models.*.alpha_max": CalibratedValue(
                value=0.8, min=0.0, max=1.0, source="test"
            ),
            "acceptance.expert_coverage_exponent": CalibratedValue(
                value=params.expert_coverage_exponent * 1.1, min=0.0, max=100.0, source="test"
            ),
        },
    )
    plats, dsets, new_params = apply_calibration(
        cal, {"xpu": xpu, "xpu-pim": pim}, {"gsm8k": gsm8k, "alpaca": alpaca}, params
    )

    assert changed(xpu, plats["xpu"]) == {
        ("static_power", "host_w"): (xpu.static_power.host_w, xpu.static_power.host_w + 1.5)
    }
    assert pim.near_memory is not None
    assert changed(pim, plats["xpu-pim"]) == {
        ("near_memory", "internal_bw_multiplier"): (pim.near_memory.internal_bw_multiplier, 10.0)
    }
    # models.*.FIELD sets FIELD for every model of that dataset, nothing else
    assert set(changed(gsm8k, dsets["gsm8k"])) == {
        ("models", key, "alpha_max") for key in gsm8k.models if gsm8k.models[key].alpha_max != 0.8
    }
    assert all(p.alpha_max == 0.8 for p in dsets["gsm8k"].models.values())
    assert dsets["alpaca"] == alpaca
    assert set(changed(params, new_params)) == {("expert_coverage_exponent",)}


def test_a_spec_the_calibration_does_not_name_is_unchanged() -> None:
    cal = calibration({"platform.xpu.static_power_w": 7.0})
    shipped = load_platform("elmoe3d-8g")
    plats, _, params = apply_calibration(cal, {"elmoe3d-8g": shipped}, {}, load_acceptance_params())
    assert plats["elmoe3d-8g"] == shipped
    assert params == load_acceptance_params()


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("platform.nonexistent.static_power_w", "no shipped platform 'nonexistent'"),
        ("dataset.no-such-dataset.models.*.alpha_max", "no shipped dataset 'no-such-dataset'"),
        ("static_power_w", "write platform.NAME.FIELD"),
        ("model.xpu.static_power_w", "write platform.NAME.FIELD"),
        ("platform.xpu.no_such_field", "'no_such_field' is not a field of PlatformSpec"),
        ("acceptance.no_such_field", "'no_such_field' is not a field of AcceptanceParams"),
    ],
)
def test_an_unknown_key_is_refused(key: str, message: str) -> None:
    with pytest.raises(ElmoeError, match=message):
        resolve_inputs(["xpu"], ["gsm8k"], calibration({key: 1.0}))


def test_a_calibration_file_with_an_unknown_top_level_key_is_refused(tmp_path: Path) -> None:
    text = calibration_toml(load_calibration()).replace("seed = ", "sede = ", 1)
    path = tmp_path / "cal.toml"
    path.write_text(text)
    with pytest.raises(SpecError, match="unknown key") as err:
        load_calibration(path)
    assert str(path) in str(err.value)


def test_a_users_copy_of_a_shipped_platform_is_taken_as_written(tmp_path: Path) -> None:
    cal = load_calibration().model_copy(
        update={
            "parameters": {
                **load_calibration().parameters,
                "platform.xpu.static_power.host_w": CalibratedValue(
                    value=2.0, min=0.2, max=5.0, source="test"
                ),
            }
        }
    )
    fitted = 2.0
    copy = tmp_path / "xpu.toml"
    shutil.copy(DATA_DIR / "platforms" / "xpu.toml", copy)
    as_written = load_platform(copy)
    assert as_written.name == "xpu" and as_written.static_power is not None
    assert as_written.static_power.host_w != fitted

    mine = build_scenario("qwen3-30b-a3b", str(copy), "mt-bench", cal)
    shipped = build_scenario("qwen3-30b-a3b", "xpu", "mt-bench", cal)
    assert mine.platform == as_written
    assert shipped.platform.static_power is not None
    assert shipped.platform.static_power.host_w == fitted
    # the dataset and the acceptance shape are still calibrated
    assert mine.profile == shipped.profile and mine.quality == shipped.quality


def test_a_users_copy_of_a_shipped_dataset_is_taken_as_written(tmp_path: Path) -> None:
    cal = load_calibration()
    copy = tmp_path / "gsm8k.toml"
    shutil.copy(DATA_DIR / "datasets" / "gsm8k.toml", copy)
    inputs = resolve_inputs(["xpu"], ["gsm8k", str(copy)], cal)
    assert inputs.datasets[str(copy)] == load_dataset(copy)
    for key, profile in inputs.datasets["gsm8k"].models.items():
        cv = cal.parameters.get(f"dataset.gsm8k.models.{key}.alpha_max")
        if cv is not None:
            assert profile.alpha_max == cv.value, key


def test_reproduce_and_the_scenarios_build_the_same_calibrated_specs() -> None:
    cal = load_calibration()
    inputs = load_inputs(cal)
    for platform in ("xpu", "xpu-pim", "hb-xpu", "elmoe3d-8g"):
        sc = build_scenario("gpt-oss-20b", platform, "humaneval", cal)
        assert sc.platform == inputs.platforms[platform]
        assert sc.profile == inputs.datasets["humaneval"].for_model("gpt-oss-20b")
        assert sc.quality.params == inputs.params


def test_resolve_calibration_options(tmp_path: Path) -> None:
    assert resolve_calibration("none") is None
    assert resolve_calibration("shipped") == load_calibration()
    assert load_calibration() == median_calibration(load_ensemble())
    path = tmp_path / "cal.toml"
    path.write_text(calibration_toml(calibration({"platform.xpu.static_power_w": 5.0})))
    assert resolve_calibration(str(path)) == calibration({"platform.xpu.static_power_w": 5.0})


def _imports(path: Path) -> set[str]:
    """Every ``elmoe_dse`` module a file imports, function-local imports included."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return {m for m in out if m.startswith("elmoe_dse")}


@pytest.mark.parametrize(
    "module",
    [
        "calibration.py",
        "scenario.py",
        "columns.py",
        *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "specs").glob("*.py")),
    ],
)
def test_the_spec_layer_imports_nothing_from_explore(module: str) -> None:
    imported = _imports(PACKAGE / module)
    assert not {m for m in imported if m.startswith("elmoe_dse.explore")}, module


def test_the_paper_grid_does_not_import_the_search() -> None:
    """explore/posterior uses explore/reproduce, never the other way round (no cycle)."""
    assert "elmoe_dse.explore.reproduce" in _imports(PACKAGE / "explore" / "posterior.py")
    grid = _imports(PACKAGE / "explore" / "reproduce.py")
    assert not {m for m in grid if "posterior" in m or "ensemble" in m}


def _copy_as(tmp_path: Path, name: str, opt_in: str | None) -> Path:
    """A byte copy of the shipped elmoe3d-8g.toml under another name (and file), optionally
    opting in to a shipped platform's calibration."""
    text = (DATA_DIR / "platforms" / "elmoe3d-8g.toml").read_text()
    text = text.replace('name = "elmoe3d-8g"', f'name = "{name}"')
    if opt_in is not None:
        text = f'calibration = "{opt_in}"\n' + text
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _energy(platform: str, calibrate_as: str | None = None) -> tuple[float, tuple[str, ...]]:
    from elmoe_dse.evaluator import evaluate

    sc = build_scenario("qwen3-30b-a3b", platform, "mt-bench", load_calibration(), calibrate_as)
    step = evaluate(sc.model, sc.platform, sc.knobs(batch_size=4), sc.p, quality=sc.quality)
    return float(step.energy_per_token_j), sc.notes


def test_a_copy_that_opts_in_gives_exactly_the_shipped_numbers(tmp_path: Path) -> None:
    shipped, notes = _energy("elmoe3d-8g")
    assert notes == ()
    mine, notes = _energy(str(_copy_as(tmp_path, "my-3d", "shipped:elmoe3d-8g")))
    assert mine == shipped  # bit-identical
    assert len(notes) == 1 and "calibrated as the shipped elmoe3d-8g" in notes[0]
    flag, _ = _energy(str(_copy_as(tmp_path, "my-flag", None)), calibrate_as="elmoe3d-8g")
    assert flag == shipped


def test_a_copy_without_opt_in_runs_uncalibrated_and_says_so(tmp_path: Path) -> None:
    path = _copy_as(tmp_path, "my-3d", None)
    mine, notes = _energy(str(path))
    as_written = build_scenario("qwen3-30b-a3b", str(path), "mt-bench", None).platform
    assert build_scenario("qwen3-30b-a3b", str(path), "mt-bench", load_calibration()).platform == (
        as_written
    )
    assert mine != _energy("elmoe3d-8g")[0]
    assert len(notes) == 1 and "runs uncalibrated" in notes[0]
    assert 'calibration = "shipped:NAME"' in notes[0]


def test_opt_in_must_name_a_shipped_platform(tmp_path: Path) -> None:
    path = _copy_as(tmp_path, "my-3d", "shipped:elmoe3d-9g")
    with pytest.raises(SpecError, match=r"calibration = 'shipped:elmoe3d-9g'.*elmoe3d-8g"):
        load_platform(path)
    with pytest.raises(SpecError, match="no shipped platform"):
        _energy(str(_copy_as(tmp_path, "b", None)), calibrate_as="nope")


def test_the_shipped_calibration_says_which_spec_files_it_applies_to() -> None:
    from elmoe_dse.calibration import fitted_on, spec_sha256

    fitted = fitted_on(load_calibration())
    assert fitted["platform.elmoe3d-8g"] == spec_sha256("platform", "elmoe3d-8g")
    assert len(fitted["dataset.mt-bench"]) == 64
    stale = load_calibration().model_copy(
        update={"applies_to": {**fitted, "platform.elmoe3d-8g": "0" * 64}}
    )
    sc = build_scenario("qwen3-30b-a3b", "elmoe3d-8g", "mt-bench", stale)
    assert len(sc.notes) == 1 and "rerun elmoe-dse calibrate" in sc.notes[0]
