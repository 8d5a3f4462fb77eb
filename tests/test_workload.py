"""Bytes and ops of one decode pass, counted by hand for a GQA and an MLA model.

Both passes: B = 2 sequences, T = 1 token each (N = 2), context s = 1024, INT8 G32 weights
(8 + 16/32 = 8.5 bit = 1.0625 B per parameter), FP16 KV (2 B per element), no expert cache, so
every unique expert is read whole from the main tier (``expert_slow``).
"""

from __future__ import annotations

import numpy as np
import pytest

from elmoe_dse.specs.model import load_model
from elmoe_dse.workload import OpLoad, decode_pass, footprint, no_cache_traffic

B, S = 2.0, 1024.0


def one_pass(model_id: str, unique: float) -> dict[str, OpLoad]:
    model = load_model(model_id)
    loads = decode_pass(
        model,
        sequences=np.asarray(B),
        tokens_per_sequence=np.ones(()),
        context_len=np.asarray(S),
        weight_format="int8",
        kv_format="fp16",
        experts=no_cache_traffic(model, np.asarray(unique), "int8"),
    )
    return {load.name: load for load in loads}


def check(load: OpLoad, layers: int, reads: dict[str, float], ops: float, psum: float) -> None:
    assert load.layers == layers
    assert {k: float(v) for k, v in load.read_bytes.items() if np.any(v)} == reads
    assert float(load.ops) == ops
    assert float(load.psum_elements) == psum


def test_qwen3_30b_a3b_gqa_pass_by_hand() -> None:
    """Qwen3-30B-A3B: d 2048, 48 layers, GQA 32 query / 4 KV heads of 128, 128 experts top-8,
    f 768, V 151936 untied, per-head q/k RMSNorm (2 x 128 weights). U = 16 unique experts."""
    ops = one_pass("qwen3-30b-a3b", unique=16.0)
    assert list(ops) == ["qkv_proj", "attention", "o_proj", "router", "routed_experts", "lm_head"]
    # qkv: q 2048 x 4096 = 8,388,608 + k, v 2 x 2048 x 512 = 2,097,152 + norms 256 = 10,486,016
    #      x 1.0625 = 11,141,392 B; ops 2 N P = 4 x 10,486,016 = 41,944,064
    check(ops["qkv_proj"], 48, {"weights": 11_141_392.0}, 41_944_064.0, 0.0)
    # attention: KV per token per layer 2 x 4 x 128 = 1024 elements = 2048 B;
    #   read B s 2048 = 2 x 1024 x 2048 = 4,194,304 B; write N x 2048 = 4096 B;
    #   ops 2 N s H (hd + hd) = 2 x 2 x 1024 x 32 x 256 = 33,554,432
    check(ops["attention"], 48, {"kv": 4_194_304.0}, 33_554_432.0, 0.0)
    assert float(ops["attention"].write_bytes["kv"]) == 4096.0
    # o_proj: 4096 x 2048 = 8,388,608 params = 8,912,896 B; ops 33,554,432; psum N d = 4096
    check(ops["o_proj"], 48, {"weights": 8_912_896.0}, 33_554_432.0, 4096.0)
    # router: 2048 x 128 = 262,144 params = 278,528 B; ops 1,048,576
    check(ops["router"], 48, {"weights": 278_528.0}, 1_048_576.0, 0.0)
    # experts: one is 3 x 2048 x 768 = 4,718,592 params; 16 whole = 75,497,472 params
    #   = 80,216,064 B; ops 2 N k pe = 2 x 2 x 8 x 4,718,592 = 150,994,944; psum 4096
    check(ops["routed_experts"], 48, {"expert_slow": 80_216_064.0}, 150_994_944.0, 4096.0)
    assert ops["routed_experts"].precision == "w8a8"
    # LM head: 151,936 x 2048 = 311,164,928 params = 330,612,736 B; ops 1,244,659,712
    check(ops["lm_head"], 1, {"weights": 330_612_736.0}, 1_244_659_712.0, 0.0)


def test_deepseek_v2_lite_mla_pass_by_hand() -> None:
    """DeepSeek-V2-Lite: d 2048, 27 layers (1 dense, f 10944; 26 MoE), MLA 16 heads (nope 128,
    rope 64, v 128, kv_lora 512, no q LoRA), 64 experts top-6 + 2 shared, f 1408, V 102400
    untied. U = 12 unique experts."""
    ops = one_pass("deepseek-v2-lite", unique=12.0)
    assert list(ops) == [
        *("qkv_proj", "attention", "o_proj", "router", "shared_experts", "routed_experts"),
        *("dense_ffn", "lm_head"),
    ]
    # qkv: q 2048 x 16 x 192 = 6,291,456 + kv_a 2048 x 576 = 1,179,648 + norm 512
    #      + kv_b 512 x 16 x 256 = 2,097,152 -> 9,568,768 params = 10,166,816 B; ops 38,275,072
    check(ops["qkv_proj"], 27, {"weights": 10_166_816.0}, 38_275_072.0, 0.0)
    # attention (absorbed): the latent 512 + rope 64 = 576 elements per token per layer
    #   = 1152 B; read 2 x 1024 x 1152 = 2,359,296 B; write 2 x 1152 = 2304 B;
    #   ops 2 N s H (d_qk + d_v) = 2 x 2 x 1024 x 16 x (576 + 512) = 71,303,168
    check(ops["attention"], 27, {"kv": 2_359_296.0}, 71_303_168.0, 0.0)
    assert float(ops["attention"].write_bytes["kv"]) == 2304.0
    # o_proj: 16 x 128 x 2048 = 4,194,304 params = 4,456,448 B; ops 16,777,216; psum 4096
    check(ops["o_proj"], 27, {"weights": 4_456_448.0}, 16_777_216.0, 4096.0)
    # router: 2048 x 64 = 131,072 params = 139,264 B; ops 524,288 (26 MoE layers)
    check(ops["router"], 26, {"weights": 139_264.0}, 524_288.0, 0.0)
    # shared: 2 x 3 x 2048 x 1408 = 17,301,504 params = 18,382,848 B; ops 69,206,016
    check(ops["shared_experts"], 26, {"weights": 18_382_848.0}, 69_206_016.0, 4096.0)
    # experts: one is 3 x 2048 x 1408 = 8,650,752 params; 12 whole = 110,297,088 B;
    #   ops 2 x 2 x 6 x 8,650,752 = 207,618,048
    check(ops["routed_experts"], 26, {"expert_slow": 110_297_088.0}, 207_618_048.0, 4096.0)
    # dense FFN: 3 x 2048 x 10944 = 67,239,936 params = 71,442,432 B; ops 268,959,744
    check(ops["dense_ffn"], 1, {"weights": 71_442_432.0}, 268_959_744.0, 4096.0)
    # LM head: 102,400 x 2048 = 209,715,200 params = 222,822,400 B; ops 838,860,800
    check(ops["lm_head"], 1, {"weights": 222_822_400.0}, 838_860_800.0, 0.0)


def test_footprint_by_hand() -> None:
    """Qwen3-30B-A3B held bytes at B = 2, s = 1024, INT8 weights, FP16 KV.

    non-expert: 48 x (18,874,624 attention + 262,144 router) + 311,164,928 head
      = 1,229,729,792 params = 1,306,587,904 B
    experts: 48 x 128 x 4,718,592 = 28,991,029,248 params = 30,802,968,576 B
    KV: 2 x 1024 x 48 x 2048 B = 201,326,592 B
    """
    fp = footprint(
        load_model("qwen3-30b-a3b"),
        batch_size=np.asarray(B),
        context_len=np.asarray(S),
        weight_format="int8",
        kv_format="fp16",
        slot_bytes=1.0,
    )
    assert float(fp.nonexpert_bytes) == 1_306_587_904.0
    assert float(fp.expert_bytes) == 30_802_968_576.0
    assert float(fp.kv_bytes) == 201_326_592.0
    assert (fp.num_moe_layers, fp.num_experts) == (48, 128)


@pytest.mark.parametrize("model_id", ["qwen3-30b-a3b", "deepseek-v2-lite"])
def test_weight_bytes_do_not_grow_with_tokens(model_id: str) -> None:
    """Weights are read once per pass whatever the batch; KV reads grow with B."""
    small, large = one_pass(model_id, 8.0), one_pass(model_id, 8.0)
    model = load_model(model_id)
    wide = decode_pass(
        model,
        sequences=np.asarray(64.0),
        tokens_per_sequence=np.ones(()),
        context_len=np.asarray(S),
        weight_format="int8",
        kv_format="fp16",
        experts=no_cache_traffic(model, np.asarray(8.0), "int8"),
    )
    for load in wide:
        if "weights" in load.read_bytes:
            assert float(load.read_bytes["weights"]) == float(
                small[load.name].read_bytes["weights"]
            )
    assert float(next(w for w in wide if w.name == "attention").read_bytes["kv"]) == 32 * float(
        large["attention"].read_bytes["kv"]
    )
