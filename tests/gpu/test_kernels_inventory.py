"""The kernel inventory per decoder layer, counted by hand from vLLM's model files."""

from __future__ import annotations

from elmoe_dse.kernels import inventory, kernels_per_layer, launches_per_pass
from elmoe_dse.specs.model import load_model


def test_gqa_qwen3_layer_counted_by_hand() -> None:
    # Qwen3-30B-A3B (GQA with per-head q/k norm, 48 MoE layers, no shared experts):
    # input norm, QKV GEMM, q norm, k norm, RoPE | KV write, attention | o_proj |
    # post-attention norm, router GEMM, top-k | fused MoE  -> 12 kernels per layer
    model = load_model("qwen3-30b-a3b")
    assert kernels_per_layer(model) == {"gemm": 3, "elementwise": 7, "attention": 1, "moe": 1}
    # 48 layers x 12 + final norm + LM head
    assert launches_per_pass(model) == 48 * 12 + 2


def test_mla_deepseek_v2_lite_counted_by_hand() -> None:
    # DeepSeek-V2-Lite (MLA without q LoRA, 27 layers: 1 dense then 26 MoE with 2 shared experts)
    model = load_model("deepseek-v2-lite")
    inv = inventory(model)
    # attention block: input norm, q GEMM, kv_a GEMM, kv_a norm, W_UK bmm, RoPE | KV write,
    # MLA attention | W_UV bmm, o_proj -> 5 GEMMs, 4 elementwise, 1 attention
    attn = [*inv["qkv_proj"], *inv["attention"], *inv["o_proj"]]
    assert [k.kind for k in attn].count("gemm") == 5
    assert [k.kind for k in attn].count("elementwise") == 4
    assert [k.name for k in attn if k.kind == "attention"] == ["mla_decode_attention"]
    # MoE block: norm, router, top-k | fused MoE | shared gate-up, SiLU-mul, down, add
    moe = [*inv["router"], *inv["routed_experts"], *inv["shared_experts"]]
    assert len(moe) == 8
    # dense block: norm, gate-up, SiLU-mul, down
    assert len(inv["dense_ffn"]) == 4
    assert launches_per_pass(model) == 27 * 10 + 26 * 8 + 1 * 4 + 2


def test_q_lora_adds_its_norm_and_second_gemm() -> None:
    glm = inventory(load_model("glm-4.7-flash"))["qkv_proj"]
    names = [k.name for k in glm]
    assert "q_a_rmsnorm" in names and "q_b_proj" in names and "q_proj" not in names


def test_shared_expert_gate_adds_two_kernels() -> None:
    qwen15 = inventory(load_model("qwen1.5-moe-a2.7b"))["shared_experts"]
    plain = inventory(load_model("deepseek-v2-lite"))["shared_experts"]
    assert len(qwen15) == len(plain) + 2
