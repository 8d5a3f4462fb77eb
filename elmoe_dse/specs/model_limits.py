"""Sizes no real MoE model comes near, refused before anything is allocated for them.

These are the upper bounds of the model-architecture entries of ``specs._base.PLAUSIBLE``, which
every spec checks field by field while it is parsed (before any array is sized from it).

A model spec with ``num_experts = 1e9`` would make the routing vectors (one float per expert)
7.45 GiB; a million layers or a hidden size of 1e9 make the per-layer tables and the parameter
counts absurd. Each bound is far above the largest published model of its kind, so a real model
is never refused:

- routed experts: 1,048,576 (PEER, "Mixture of A Million Experts", He 2024, arXiv:2407.04202,
  the largest expert count published; DeepSeek-V3 has 256);
- layers: 1,024 (Llama 3.1 405B has 126, arXiv:2407.21783 table 3);
- hidden size and FFN widths: 131,072 (PaLM 540B's width is 18,432, arXiv:2204.02311 table 1);
- vocabulary: 8,388,608 (Gemma 3 has 262,144, arXiv:2503.19786);
- attention heads and head dimension: 4,096 (PaLM 540B has 48 heads of 256).
"""

from __future__ import annotations

#: Field -> the largest value accepted (see the module docstring for the sources).
SIZE_LIMITS: dict[str, int] = {
    "num_experts": 1 << 20,
    "experts_per_token": 1 << 20,
    "num_shared_experts": 1 << 20,
    "num_layers": 1 << 10,
    "hidden_size": 1 << 17,
    "moe_intermediate_size": 1 << 17,
    "shared_expert_intermediate_size": 1 << 17,
    "dense_intermediate_size": 1 << 17,
    "vocab_size": 1 << 23,
    "num_attention_heads": 1 << 12,
    "num_kv_heads": 1 << 12,
    "head_dim": 1 << 12,
    "kv_lora_rank": 1 << 17,
    "q_lora_rank": 1 << 17,
}
