"""``--set`` overrides and dotted field paths: dict keys that contain dots, unknown keys listed,
and values that break a spec's types or ranges rejected with the field named."""

from __future__ import annotations

import pytest

from elmoe_dse.errors import KnobError, SpecError
from elmoe_dse.knobs import Knobs
from elmoe_dse.overrides import apply_overrides, field_paths, settable_paths, split_path, with_field
from elmoe_dse.specs.dataset import load_dataset
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import load_platform


def test_split_path_takes_the_longest_key_at_each_level() -> None:
    data = {"models": {"glm-4.7-flash": {"alpha_max": 0.8}, "glm-4": {"7-flash": {"x": 1}}}}
    assert split_path(data, "models.glm-4.7-flash.alpha_max") == [
        "models",
        "glm-4.7-flash",
        "alpha_max",
    ]
    assert split_path(data, "models.glm-4.7-flash") == ["models", "glm-4.7-flash"]
    with pytest.raises(KeyError):
        split_path(data, "models.glm-4.7-flash.alpha_max.deeper")
    with pytest.raises(KeyError):
        split_path(data, "models.glm")


def test_field_paths_reach_every_scalar_of_a_nested_spec() -> None:
    paths = field_paths(load_platform("elmoe3d-8g"))
    assert "tiers.hb.peak_bw_gb_per_s" in paths and "static_power_w" in paths
    assert "tiers" not in paths and "tiers.hb" not in paths
    profile_paths = field_paths(load_dataset("gsm8k"))
    assert "models.glm-4.7-flash.alpha_max" in profile_paths


def test_with_field_sets_a_value_under_a_dotted_key_and_revalidates() -> None:
    profile = load_dataset("gsm8k")
    changed = with_field(profile, "models.glm-4.7-flash.alpha_max", 0.6)
    assert changed.models["glm-4.7-flash"].alpha_max == 0.6
    assert changed.models["default"] == profile.models["default"]
    assert profile.models["glm-4.7-flash"].alpha_max != 0.6  # the original is untouched
    with pytest.raises(SpecError, match="alpha_max"):
        with_field(profile, "models.glm-4.7-flash.alpha_max", 1.5)  # outside (0, 1)


def test_with_field_names_an_unknown_path() -> None:
    unknown = r"test: 'tiers\.nope\.peak_bw_gb_per_s' is not a field of PlatformSpec"
    with pytest.raises(KnobError, match=unknown):
        with_field(load_platform("xpu"), "tiers.nope.peak_bw_gb_per_s", 1.0, where="test")


def test_apply_overrides_routes_knob_model_and_platform_keys() -> None:
    model, platform = load_model("qwen3-30b-a3b"), load_platform("xpu")
    m, p, k = apply_overrides(
        model,
        platform,
        Knobs(),
        ["batch_size=8", "num_experts=64", "tiers.lpddr.peak_bw_gb_per_s=204.8"],
    )
    assert k.batch_size == 8 and m.num_experts == 64
    assert p.tiers["lpddr"].peak_bw_gb_per_s == 204.8
    assert p.model_dump(exclude={"tiers"}) == platform.model_dump(exclude={"tiers"})
    assert model.num_experts == 128 and Knobs().batch_size != 8


def test_an_unknown_key_gets_a_did_you_mean_among_settable_keys_only() -> None:
    model, platform = load_model("qwen3-30b-a3b"), load_platform("xpu")
    with pytest.raises(KnobError, match=r"unknown key 'bach_size'; did you mean 'batch_size'"):
        apply_overrides(model, platform, Knobs(), ["bach_size=8"])
    with pytest.raises(KnobError, match=r"did you mean 'tiers.lpddr.peak_bw_gb_per_s'"):
        apply_overrides(model, platform, Knobs(), ["tiers.lpddr.peak_bw=8"])
    for documentation in ("source", "description", "name", "tiers.lpddr.source"):
        with pytest.raises(KnobError, match="unknown key") as err:
            apply_overrides(model, platform, Knobs(), [f"{documentation}=x"])
        assert len(str(err.value)) < 300  # a suggestion, not a dump of every key
    with pytest.raises(KnobError, match="write KEY=VALUE"):
        apply_overrides(model, platform, Knobs(), ["batch_size"])


def test_settable_paths_are_parameters_not_documentation() -> None:
    paths = settable_paths(load_platform("xpu-pim"))
    assert "tiers.lpddr.peak_bw_gb_per_s" in paths and "near_memory.kind" in paths
    assert not [p for p in paths if p.endswith("source") or p.startswith("ranges.")]
    assert "num_experts" in settable_paths(load_model("qwen3-30b-a3b"))


@pytest.mark.parametrize(
    ("pair", "field"),
    [
        ("num_experts=many", "num_experts"),
        ("num_experts=1.5", "num_experts"),
        ("tiers.lpddr.peak_bw_gb_per_s=fast", "peak_bw_gb_per_s"),
        ("static_power_w=-1", "static_power_w"),
    ],
)
def test_apply_overrides_rejects_a_wrong_type_naming_the_field(pair: str, field: str) -> None:
    model, platform = load_model("qwen3-30b-a3b"), load_platform("xpu")
    with pytest.raises(KnobError, match=field):
        apply_overrides(model, platform, Knobs(), [pair])
