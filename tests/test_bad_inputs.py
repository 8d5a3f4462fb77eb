"""The bad-input matrix: every file the tool reads and every command-line value, each defect
answered with one line naming the file, field and fix, exit code 2, no traceback, nothing written.

Generated spec files (hypothesis) are either accepted or refused with the tool's own error type.
"""

from __future__ import annotations

import contextlib
import json
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from elmoe_dse.cli.main import app
from elmoe_dse.errors import ElmoeError
from elmoe_dse.specs.dataset import load_dataset
from elmoe_dse.specs.model import load_model
from elmoe_dse.specs.platform import load_platform

DATA = Path(__file__).resolve().parents[1] / "elmoe_dse" / "data"
FIXTURES = Path(__file__).parent / "fixtures" / "hf_configs"

runner = CliRunner()


def cli(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stderr + result.stdout


def toml_text(data: dict[str, Any]) -> str:
    """A minimal TOML writer for the shapes our spec files use (tables of scalars/tables)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return json.dumps(v)
        if isinstance(v, float):
            return "nan" if v != v else ("inf" if v == float("inf") else repr(v))
        if isinstance(v, dict):
            return "{ " + ", ".join(f"{json.dumps(k)} = {value(x)}" for k, x in v.items()) + " }"
        return repr(v)

    lines = [f"{json.dumps(k)} = {value(v)}" for k, v in data.items()]
    return "\n".join(lines) + "\n"


def shipped(kind: str, name: str) -> dict[str, Any]:
    return tomllib.loads((DATA / kind / f"{name}.toml").read_text())


def hf_config(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"{name}.json").read_text())


# (id, file suffix, base data factory, mutation, field the message must name)
Mutation = Callable[[dict[str, Any]], None]
CASES: list[tuple[str, str, Callable[[], dict[str, Any]], Mutation, str]] = [
    # model, project TOML
    (
        "model-unknown-key",
        ".toml",
        lambda: shipped("models", "qwen3-30b-a3b"),
        lambda d: d.update(hidden_sise=2048),
        "hidden_sise",
    ),
    (
        "model-missing-key",
        ".toml",
        lambda: shipped("models", "qwen3-30b-a3b"),
        lambda d: d.pop("num_experts"),
        "num_experts",
    ),
    (
        "model-wrong-type",
        ".toml",
        lambda: shipped("models", "qwen3-30b-a3b"),
        lambda d: d.update(hidden_size="2048"),
        "hidden_size",
    ),
    (
        "model-negative",
        ".toml",
        lambda: shipped("models", "qwen3-30b-a3b"),
        lambda d: d.update(hidden_size=-1),
        "hidden_size",
    ),
    (
        "model-topk-gt-experts",
        ".toml",
        lambda: shipped("models", "qwen3-30b-a3b"),
        lambda d: d.update(experts_per_token=200),
        "experts_per_token",
    ),
    (
        "model-nan",
        ".toml",
        lambda: shipped("models", "qwen3-30b-a3b"),
        lambda d: d.update(card_total_params=float("nan")),
        "card_total_params",
    ),
    # model, Hugging Face config.json
    (
        "hf-missing-key",
        ".json",
        lambda: hf_config("mixtral-8x7b"),
        lambda d: d.pop("num_experts_per_tok"),
        "num_experts_per_tok",
    ),
    (
        "hf-wrong-type",
        ".json",
        lambda: hf_config("qwen3-30b-a3b"),
        lambda d: d.update(num_experts="many"),
        "num_experts",
    ),
    (
        "hf-topk-gt-experts",
        ".json",
        lambda: hf_config("olmoe-1b-7b"),
        lambda d: d.update(num_experts_per_tok=65),
        "experts_per_token",
    ),
    (
        "hf-unknown-type",
        ".json",
        lambda: hf_config("mixtral-8x7b"),
        lambda d: d.update(model_type="llama"),
        "model_type",
    ),
    (
        "hf-inf",
        ".json",
        lambda: hf_config("mixtral-8x7b"),
        lambda d: d.update(hidden_size=float("inf")),
        "hidden_size",
    ),
    # platform
    (
        "platform-unknown-key",
        ".toml",
        lambda: shipped("platforms", "xpu"),
        lambda d: d.update(static_power=3.0),
        "static_power",
    ),
    (
        "platform-missing-key",
        ".toml",
        lambda: shipped("platforms", "xpu"),
        lambda d: d.pop("op_overhead_s"),
        "op_overhead_s",
    ),
    (
        "platform-zero-bw",
        ".toml",
        lambda: shipped("platforms", "xpu"),
        lambda d: d["tiers"]["lpddr"].update(peak_bw_gb_per_s=0.0),
        "peak_bw_gb_per_s",
    ),
    (
        "platform-negative-capacity",
        ".toml",
        lambda: shipped("platforms", "hb-xpu"),
        lambda d: d["tiers"]["hb"].update(capacity_gb=-8.0),
        "capacity_gb",
    ),
    (
        "platform-frac-above-1",
        ".toml",
        lambda: shipped("platforms", "xpu"),
        lambda d: d["tiers"]["lpddr"].update(bw_efficiency_frac=99.0),
        "bw_efficiency_frac",
    ),
    (
        "platform-nan",
        ".toml",
        lambda: shipped("platforms", "xpu"),
        lambda d: d["tiers"]["lpddr"].update(read_energy_pj_per_bit=float("nan")),
        "read_energy_pj_per_bit",
    ),
    (
        "platform-out-of-range",
        ".toml",
        lambda: shipped("platforms", "xpu-pim"),
        lambda d: d["near_memory"].update(internal_bw_multiplier=500.0),
        "internal_bw_multiplier",
    ),
    (
        "platform-wrong-type",
        ".toml",
        lambda: shipped("platforms", "xpu"),
        lambda d: d.update(static_power_w="four"),
        "static_power_w",
    ),
    # dataset profile
    (
        "dataset-unknown-key",
        ".toml",
        lambda: shipped("datasets", "gsm8k"),
        lambda d: d["models"]["default"].update(alpha=0.5),
        "alpha",
    ),
    (
        "dataset-missing-default",
        ".toml",
        lambda: shipped("datasets", "gsm8k"),
        lambda d: d["models"].pop("default"),
        "default",
    ),
    (
        "dataset-frac-above-1",
        ".toml",
        lambda: shipped("datasets", "gsm8k"),
        lambda d: d["models"]["default"].update(overlap_frac=1.5),
        "overlap_frac",
    ),
    (
        "dataset-wrong-type",
        ".toml",
        lambda: shipped("datasets", "gsm8k"),
        lambda d: d["models"]["default"].update(alpha_max="high"),
        "alpha_max",
    ),
]


def _loader(case_id: str) -> Callable[[Path], Any]:
    if case_id.startswith(("model", "hf")):
        return lambda p: load_model(str(p))
    if case_id.startswith("platform"):
        return load_platform
    return load_dataset


def _command(case_id: str, path: Path) -> list[str]:
    if case_id.startswith(("model", "hf")):
        return ["models", "show", str(path)]
    if case_id.startswith("platform"):
        return ["platforms", "show", str(path)]
    return ["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--dataset", str(path)]


@pytest.mark.parametrize(
    ("case_id", "suffix", "base", "mutate", "field"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_spec_file(
    tmp_path: Path,
    case_id: str,
    suffix: str,
    base: Callable[[], dict[str, Any]],
    mutate: Mutation,
    field: str,
) -> None:
    data = base()
    mutate(data)
    path = tmp_path / f"bad{suffix}"
    path.write_text(json.dumps(data) if suffix == ".json" else toml_text(data))
    with pytest.raises(ElmoeError) as err:
        _loader(case_id)(path)
    assert str(path) in str(err.value) and field in str(err.value)
    before = sorted(tmp_path.iterdir())
    code, out = cli(*_command(case_id, path))
    assert code == 2, out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1
    assert field in out
    assert sorted(tmp_path.iterdir()) == before


@pytest.mark.parametrize("kind", ["model", "platform", "dataset", "calibration"])
@pytest.mark.parametrize(
    ("defect", "content", "needle"),
    [
        ("syntax", "x = [1, 2\n", "syntax error"),
        ("empty", "", "empty"),
        ("binary", b"\x00\x01\x02\xff", "binary"),
        ("missing", None, "not found"),
    ],
)
def test_unreadable_files(
    tmp_path: Path, kind: str, defect: str, content: Any, needle: str
) -> None:
    path = tmp_path / f"{kind}.toml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    args = {
        "model": ["models", "show", str(path)],
        "platform": ["platforms", "show", str(path)],
        "dataset": ["explain", "-m", "qwen3-30b-a3b", "-p", "xpu", "--dataset", str(path)],
        "calibration": ["reproduce", "--calibration", str(path), "--out", str(tmp_path / "o")],
    }[kind]
    code, out = cli(*args)
    assert code == 2, out
    assert needle in out and str(path) in out
    assert len(out.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_config_json_that_is_a_directory_or_array(tmp_path: Path) -> None:
    arr = tmp_path / "a.json"
    arr.write_text("[1, 2]")
    for path, needle in ((arr, "object"), (tmp_path, "directory")):
        code, out = cli("models", "show", str(path))
        assert code == 2 and needle in out


BASE = ["explain", "-m", "qwen3-30b-a3b", "-p", "elmoe3d-8g"]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--batch", "0"], "batch_size"),
        (["--context", "-5"], "context_len"),
        (["--set", "draft_bits=9"], "draft_bits"),
        (["--set", "draft_bits=0"], "draft_bits"),
        (["--set", "draft_length=2.5"], "draft_length"),
        (["--set", "experts_per_token=200"], "experts_per_token"),
        (["--set", "pool_experts=500"], "pool_experts"),
        (["--set", "pool_experts=128", "--set", "hb_capacity_gb=2"], "pool_experts"),
        (["--set", "acceptance=nan"], "acceptance"),
        (["--set", "acceptance=1.5"], "acceptance"),
        (["--set", "overlap_frac=-0.1"], "overlap_frac"),
        (["--set", "context_len=inf"], "context_len"),
        (["--set", "hb_capacity_gb=-1"], "hb_capacity_gb"),
        (["--set", "tiers.hb.capacity_gb=0"], "capacity_gb"),
        (["--set", "tiers.lpddr.bw_efficiency_frac=2"], "bw_efficiency_frac"),
        (["--set", "rounding=ceil"], "rounding"),
        (["--set", "policy=magic"], "policy"),
        (["--set", "weight_format=fp4"], "weight_format"),
        (["--set", "nope=1"], "unknown key"),
        (["--routing", "zipf:-1"], "zipf"),
        (["--routing", "pareto"], "uniform"),
        (["--dataset", "no-such-dataset"], "no-such-dataset"),
    ],
)
def test_bad_command_line_values(extra: list[str], needle: str) -> None:
    code, out = cli(*BASE, *extra)
    assert code == 2, out
    assert needle in out
    assert "Traceback" not in out and len(out.strip().splitlines()) == 1


def test_unwritable_output_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    code, out = cli("reproduce", "--out", str(blocker / "sub"))
    assert code == 2 and "output directory" in out
    assert len(out.strip().splitlines()) == 1


json_scalars = st.one_of(
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=8),
    st.none(),
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from(["xpu", "hb-xpu", "elmoe3d-8g", "xpu-nmp"]),
    path=st.lists(
        st.sampled_from(
            [
                "tiers",
                "lpddr",
                "hb",
                "compute",
                "peak_tops",
                "w8a8",
                "static_power_w",
                "capacity_gb",
                "logic_die",
                "pe_count",
                "ranges",
                "source",
                "near_memory",
                "family",
            ]
        ),
        min_size=1,
        max_size=3,
    ),
    value=json_scalars,
)
def test_generated_platform_files_load_or_raise_our_error(
    tmp_path: Path, base: str, path: list[str], value: Any
) -> None:
    data = shipped("platforms", base)
    node: Any = data
    for key in path[:-1]:
        if not isinstance(node, dict):
            break
        node = node.setdefault(key, {})
    if isinstance(node, dict):
        node[path[-1]] = value
    target = tmp_path / "gen.json"
    target.write_text(json.dumps(data))
    with contextlib.suppress(ElmoeError):  # anything else (KeyError, TypeError...) fails
        load_platform(target)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    base=st.sampled_from(["mixtral-8x7b", "qwen3-30b-a3b", "deepseek-v2-lite", "gpt-oss-20b"]),
    key=st.sampled_from(
        [
            "hidden_size",
            "num_hidden_layers",
            "num_experts",
            "num_local_experts",
            "n_routed_experts",
            "num_experts_per_tok",
            "moe_intermediate_size",
            "intermediate_size",
            "num_key_value_heads",
            "num_attention_heads",
            "kv_lora_rank",
            "first_k_dense_replace",
            "sliding_window",
            "layer_types",
            "model_type",
            "tie_word_embeddings",
            "head_dim",
            "vocab_size",
            "n_shared_experts",
            "q_lora_rank",
        ]
    ),
    value=json_scalars,
    drop=st.booleans(),
)
def test_generated_hf_configs_load_or_raise_our_error(
    tmp_path: Path, base: str, key: str, value: Any, drop: bool
) -> None:
    data = hf_config(base)
    if drop:
        data.pop(key, None)
    else:
        data[key] = value
    target = tmp_path / "config.json"
    target.write_text(json.dumps(data))
    with contextlib.suppress(ElmoeError):  # anything else (KeyError, TypeError...) fails
        load_model(str(target))


def test_config_json_errors_name_the_hugging_face_key(tmp_path: Path) -> None:
    data = hf_config("olmoe-1b-7b")
    data["num_experts_per_tok"] = 65
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    code, out = cli("models", "show", str(path))
    assert code == 2 and "'num_experts_per_tok'" in out


# ----------------------------------------------------------------------------------------------
# Absurd sizes, deep nesting, negative seeds, paths with spaces and accents (issue 15)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("num_experts", 1_000_000_000, "num_experts"),
        ("num_hidden_layers", 10_000_000, "num_layers"),
        ("hidden_size", 1_000_000_000, "hidden_size"),
    ],
)
def test_absurd_model_sizes_are_refused_before_any_allocation(
    tmp_path: Path, key: str, value: int, field: str
) -> None:
    import resource

    config = json.loads((FIXTURES / "qwen3-30b-a3b.json").read_text())
    config[key] = value
    path = tmp_path / "huge.json"
    path.write_text(json.dumps(config))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, out = cli("explain", "-m", str(path), "-p", "elmoe3d-8g")
    assert code == 2
    assert f"{field} = {value:g} is far beyond any real model" in out and str(path) in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 1_000_000  # the 7.45 GiB routing vector was never allocated


def test_the_largest_real_models_pass_the_size_check() -> None:
    for name in ("gpt-oss-120b", "mixtral-8x7b"):
        load_model(name)  # raises if a bound were below a real model


@pytest.mark.parametrize("suffix", [".toml", ".json"])
def test_deeply_nested_spec_files_are_one_line(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"nested{suffix}"
    if suffix == ".json":
        path.write_text('{"a":' * 5000 + "1" + "}" * 5000)
        code, out = cli("models", "show", str(path))
    else:
        path.write_text("schema_version = 1\n[knobs]\nbatch_size = " + "[" * 500 + "1" + "]" * 500)
        code, out = cli("sweep", str(path), "--out", str(tmp_path / "o"))
    assert code == 2 and "nested deeper than 16 levels" in out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out
    assert not (tmp_path / "o").exists()


def test_a_negative_seed_is_refused(tmp_path: Path) -> None:
    quick = Path(__file__).resolve().parents[1] / "sweeps" / "quick.toml"
    code, out = cli("optimize", str(quick), "--seed", "-1", "--out", str(tmp_path / "o"))
    assert code == 2 and "--seed" in out and "greater than or equal to 0" in out
    assert "Traceback" not in out and not (tmp_path / "o").exists()


@pytest.mark.parametrize("folder", ["My Model", "Mein Modèl", "模型 v2"])
def test_a_model_path_with_spaces_or_accents_is_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, folder: str
) -> None:
    (tmp_path / folder).mkdir()
    (tmp_path / folder / "config.json").write_text((FIXTURES / "mixtral-8x7b.json").read_text())
    monkeypatch.chdir(tmp_path)
    for ref in (f"{folder}/config.json", folder):
        code, out = cli("models", "show", ref, "--json")
        assert code == 0, out
        model_id = json.loads(out)["id"]
        assert model_id == {"My Model": "my-model", "Mein Modèl": "mein-model"}.get(folder, "v2")
