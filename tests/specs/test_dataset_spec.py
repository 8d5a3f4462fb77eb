"""DatasetProfile and AcceptanceParams: shipped files load, fallback, ranges and schema errors.

Every user-caused failure must be a SpecError naming the file and the field (ARCHITECTURE rule 2).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from elmoe_dse.errors import SpecError
from elmoe_dse.specs.dataset import (
    ACCEPTANCE_PATH,
    DATASETS_DIR,
    AcceptanceParams,
    DatasetProfile,
    ModelProfile,
    list_datasets,
    load_acceptance_params,
    load_dataset,
)

SHIPPED = ("alpaca", "benchmark", "gsm8k", "humaneval", "mt-bench")
PAPER_MODELS = ("qwen3-30b-a3b", "glm-4.7-flash", "deepseek-v2-lite", "gpt-oss-20b")
NUMERIC_FIELDS = (
    "zipf_exponent",
    "overlap_frac",
    "alpha_max",
    "eagle_acceptance_frac",
    "slm_acceptance_frac",
)


def _shipped_text(name: str) -> str:
    return (DATASETS_DIR / f"{name}.toml").read_text()


def _in_table(text: str, model: str, field: str, new: str) -> str:
    """``text`` with ``field = ...`` of model table ``model`` replaced by ``new`` (a line or '')."""
    head = f'[models."{model}"]' if "." in model else f"[models.{model}]"
    start = text.index(head)
    line_start = text.index(f"\n{field} = ", start) + 1
    line_end = text.index("\n", line_start) + 1
    return text[:line_start] + new + text[line_end:]


def _write(tmp_path: Path, text: str, name: str = "custom.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


# ---- shipped files ----------------------------------------------------------------------------


def test_list_datasets() -> None:
    assert tuple(list_datasets()) == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_profiles_load(name: str) -> None:
    profile = load_dataset(name)
    assert isinstance(profile, DatasetProfile)
    assert profile.name == name
    assert profile.source and profile.description
    assert set(profile.models) == {*PAPER_MODELS, "default"}
    ranged = profile.expanded_ranges()
    for key, model in profile.models.items():
        assert "assumed" in model.source
        for field in NUMERIC_FIELDS:
            # every value has a range that calibration can move it in
            assert f"models.{key}.{field}" in ranged


def test_load_is_case_insensitive_and_accepts_paths() -> None:
    assert load_dataset("MT-Bench") is load_dataset("mt-bench")
    by_path = load_dataset(DATASETS_DIR / "gsm8k.toml")
    assert by_path == load_dataset("gsm8k")


def test_profiles_are_differentiated() -> None:
    """Code and math are more predictable than chat (higher alpha_max) and route more skewed."""
    for model_id in PAPER_MODELS:
        alpha = {n: load_dataset(n).for_model(model_id).alpha_max for n in SHIPPED}
        skew = {n: load_dataset(n).for_model(model_id).zipf_exponent for n in SHIPPED}
        for code_or_math in ("humaneval", "gsm8k"):
            for chat in ("mt-bench", "alpaca"):
                assert alpha[code_or_math] > alpha[chat]
                assert skew[code_or_math] > skew[chat]


def test_for_model_falls_back_to_default() -> None:
    profile = load_dataset("mt-bench")
    assert profile.for_model("glm-4.7-flash") is profile.models["glm-4.7-flash"]
    assert profile.for_model("GLM-4.7-Flash") is profile.models["glm-4.7-flash"]
    assert profile.for_model("mixtral-8x7b") is profile.models["default"]
    assert isinstance(profile.for_model("anything"), ModelProfile)


def test_shipped_acceptance_params_load() -> None:
    params = load_acceptance_params()
    assert isinstance(params, AcceptanceParams)
    assert load_acceptance_params(ACCEPTANCE_PATH) == params
    assert set(params.ranges) == set(AcceptanceParams.parameter_names())
    for name in AcceptanceParams.parameter_names():
        rng = params.ranges[name]
        assert rng.min <= getattr(params, name) <= rng.max
        assert "assumed" in rng.source


# ---- errors: dataset profiles -----------------------------------------------------------------


def test_unknown_name() -> None:
    with pytest.raises(SpecError, match=r"unknown dataset 'sharegpt'.*mt-bench"):
        load_dataset("sharegpt")


def test_unknown_key_names_file_and_field(tmp_path: Path) -> None:
    text = _shipped_text("mt-bench").replace(
        "[models.default]\n", "[models.default]\nzipf_exponnent = 0.5\n"
    )
    path = _write(tmp_path, text)
    with pytest.raises(SpecError, match=r"models.default.zipf_exponnent.*unknown key") as err:
        load_dataset(path)
    assert err.value.path == str(path)
    assert err.value.field == "models.default.zipf_exponnent"


def test_value_outside_hard_bounds(tmp_path: Path) -> None:
    text = _in_table(_shipped_text("gsm8k"), "glm-4.7-flash", "alpha_max", "alpha_max = 1.3\n")
    path = _write(tmp_path, text)
    with pytest.raises(SpecError) as err:
        load_dataset(path)
    assert err.value.path == str(path)
    assert err.value.field == "models.glm-4.7-flash.alpha_max"


def test_value_outside_stated_range_names_file_and_field(tmp_path: Path) -> None:
    # 0.2 is a valid fraction but below the prior's support [0.55, 0.98].
    text = _in_table(_shipped_text("gsm8k"), "glm-4.7-flash", "alpha_max", "alpha_max = 0.2\n")
    path = _write(tmp_path, text)
    with pytest.raises(SpecError, match=r"models.glm-4.7-flash.alpha_max' = 0.2 is outside") as err:
        load_dataset(path)
    assert str(path) in str(err.value)


def test_exact_range_beats_wildcard(tmp_path: Path) -> None:
    text = _shipped_text("gsm8k") + (
        '\n[ranges."models.glm-4.7-flash.alpha_max"]\nmin = 0.1\nmax = 0.95\nsource = "test"\n'
    )
    text = _in_table(text, "glm-4.7-flash", "alpha_max", "alpha_max = 0.2\n")
    profile = load_dataset(_write(tmp_path, text))
    assert profile.for_model("glm-4.7-flash").alpha_max == 0.2
    assert profile.expanded_ranges()["models.glm-4.7-flash.alpha_max"].min == 0.1


def test_bad_range_path(tmp_path: Path) -> None:
    text = _shipped_text("alpaca") + '\n[ranges."models.mixtral.alpha_max"]\nmin = 0\nmax = 1\n'
    text += 'source = "test"\n'
    with pytest.raises(SpecError, match=r"range path 'models.mixtral.alpha_max'"):
        load_dataset(_write(tmp_path, text))
    text = _shipped_text("alpaca") + '\n[ranges."models.*.alpha"]\nmin = 0\nmax = 1\n'
    text += 'source = "test"\n'
    with pytest.raises(SpecError, match="'alpha' is not a model-profile field"):
        load_dataset(_write(tmp_path, text))


def test_missing_default_table(tmp_path: Path) -> None:
    text = _shipped_text("humaneval")
    start = text.index("[models.default]")
    end = text.index("[models.", start + 1)
    path = _write(tmp_path, text[:start] + text[end:])
    with pytest.raises(SpecError, match=r"no \[models\.default\] table") as err:
        load_dataset(path)
    assert err.value.field == "models"
    assert err.value.path == str(path)


def test_missing_key_in_model_table(tmp_path: Path) -> None:
    text = _in_table(_shipped_text("humaneval"), "qwen3-30b-a3b", "overlap_frac", "")
    path = _write(tmp_path, text)
    with pytest.raises(SpecError, match="required key is missing") as err:
        load_dataset(path)
    assert err.value.field == "models.qwen3-30b-a3b.overlap_frac"


def test_bad_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, "schema_version = 1\nname = \n")
    with pytest.raises(SpecError, match="TOML syntax error") as err:
        load_dataset(path)
    assert err.value.path == str(path)


def test_wrong_type(tmp_path: Path) -> None:
    text = _in_table(
        _shipped_text("mt-bench"), "glm-4.7-flash", "zipf_exponent", 'zipf_exponent = "x"\n'
    )
    with pytest.raises(SpecError) as err:
        load_dataset(_write(tmp_path, text))
    assert err.value.field == "models.glm-4.7-flash.zipf_exponent"


def test_upper_case_model_key_rejected(tmp_path: Path) -> None:
    text = _shipped_text("mt-bench").replace('[models."glm-4.7-flash"]', '[models."GLM-4.7-Flash"]')
    with pytest.raises(SpecError, match="lower-case model id"):
        load_dataset(_write(tmp_path, text))


# ---- errors: acceptance parameters ------------------------------------------------------------


def test_acceptance_out_of_range(tmp_path: Path) -> None:
    text = ACCEPTANCE_PATH.read_text().replace("bias_coherence = 12.0", "bias_coherence = 40.0")
    path = _write(tmp_path, text, "acceptance.toml")
    with pytest.raises(SpecError, match=r"'bias_coherence' = 40.0 is outside") as err:
        load_acceptance_params(path)
    assert err.value.path == str(path)


def test_acceptance_missing_range(tmp_path: Path) -> None:
    text = ACCEPTANCE_PATH.read_text()
    start = text.index("[ranges.bias_coherence]")
    end = text.index("[ranges.", start + 1)
    path = _write(tmp_path, text[:start] + text[end:], "acceptance.toml")
    with pytest.raises(SpecError, match=r"no range for 'bias_coherence'"):
        load_acceptance_params(path)


def test_acceptance_unknown_key_and_inverted_anchors(tmp_path: Path) -> None:
    text = ACCEPTANCE_PATH.read_text()
    bad = text.replace("bias_coherence = 12.0", "bias_coherence = 12.0\nnsr_scale = 0.3")
    with pytest.raises(SpecError, match="unknown key") as err:
        load_acceptance_params(_write(tmp_path, bad, "a.toml"))
    assert err.value.field == "nsr_scale"
    bad = text.replace("round_2bit_quality_frac = 0.12", "round_2bit_quality_frac = 0.95")
    with pytest.raises(SpecError, match="must be below round_4bit_quality_frac"):
        load_acceptance_params(_write(tmp_path, bad, "b.toml"))
