"""The MoE model spec: architecture numbers, parameter counts and the loaders that make one.

A :class:`ModelSpec` is read from three kinds of input, all ending in the same validated, frozen
record:

- a registered id (``load_model("qwen3-30b-a3b")``): the shipped TOML in
  ``elmoe_dse/data/models/<id>.toml``;
- the project's own TOML (``load_model("my-model.toml")``): every ModelSpec field at top level;
- a Hugging Face ``config.json`` (``load_model("config.json")`` or :func:`from_hf_config`): the HF
  field names are mapped per ``model_type`` (``qwen3_moe``, ``qwen2_moe``, ``deepseek_v2``,
  ``deepseek_v3``, ``glm4_moe``, ``glm4_moe_lite``, ``gpt_oss``, ``mixtral``, ``phimoe``,
  ``olmoe``).

Parameter counts (docs/model.md §2) are pure integer functions of the spec. Symbols
used in the docstrings: d = hidden_size, L = num_layers, V = vocab_size, H = num_attention_heads,
KV = num_kv_heads, hd = head_dim, E = num_experts, k = experts_per_token, f =
moe_intermediate_size. Every norm is an RMSNorm with a weight vector and no bias (PhiMoE's
LayerNorm biases, 2 d per layer, and its LM-head bias, V, are not counted: under 0.01 %).
Multi-token-prediction layers (``num_nextn_predict_layers``) are draft heads outside the decoding
model and are never counted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from elmoe_dse.errors import SpecError
from elmoe_dse.specs._base import SCHEMA_VERSION, Spec, load_json, load_toml, validate

MODELS_DIR = Path(__file__).resolve().parent.parent / "data" / "models"

PositiveInt = Annotated[int, Field(gt=0)]
NonNegativeInt = Annotated[int, Field(ge=0)]

_ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._+-]*$")


class ModelSpec(Spec):
    """One Mixture-of-Experts decoder LLM, as the cost model sees it (frozen, strict)."""

    model_config = ConfigDict(strict=True)

    schema_version: int = Field(1, description="Spec schema version; write 1.")
    id: str = Field(description="Lower-case registry id, e.g. 'qwen3-30b-a3b'.")
    display_name: str = Field(description="Name for tables and plots, e.g. 'Qwen3-30B-A3B'.")
    source: str = Field(description="Where the architecture numbers come from (config URL).")
    model_type: str = Field(description="The Hugging Face model_type, e.g. 'qwen3_moe'.")

    hidden_size: PositiveInt = Field(description="Model width d.")
    num_layers: PositiveInt = Field(description="Decoder layers L (HF num_hidden_layers).")
    vocab_size: PositiveInt = Field(description="Vocabulary size V.")
    tie_word_embeddings: bool = Field(description="True if the LM head shares the embedding.")

    attention_kind: Literal["gqa", "mla"] = Field(
        description="'gqa' (grouped-query, incl. MHA) or 'mla' (multi-head latent attention)."
    )
    num_attention_heads: PositiveInt = Field(description="Query heads H.")
    num_kv_heads: PositiveInt = Field(description="KV heads (GQA); equal to H for MLA.")
    head_dim: PositiveInt = Field(description="Head dim hd (GQA); qk_nope + qk_rope for MLA.")
    q_lora_rank: NonNegativeInt = Field(0, description="MLA query LoRA rank; 0 = no q LoRA.")
    kv_lora_rank: NonNegativeInt = Field(0, description="MLA KV latent rank (MLA only).")
    qk_nope_head_dim: NonNegativeInt = Field(0, description="MLA non-rotary q/k head dim.")
    qk_rope_head_dim: NonNegativeInt = Field(0, description="MLA rotary q/k head dim.")
    v_head_dim: NonNegativeInt = Field(0, description="MLA value head dim.")
    attention_bias: bool = Field(False, description="q/k/v projections carry biases.")
    attention_out_bias: bool = Field(
        False,
        description="The output projection carries a bias (d per layer), e.g. GPT-OSS. "
        "Added for the parameter count.",
    )
    qk_norm: Literal["none", "per_head", "full"] = Field(
        "none",
        description="RMSNorm on q and k: 'per_head' over hd (Qwen3, 2 hd per layer), 'full' over "
        "the whole projection (OLMoE, H hd + KV hd per layer). Added for the parameter count.",
    )
    attention_sinks: bool = Field(
        False,
        description="One learned sink logit per query head (GPT-OSS, H per layer). Added for the "
        "parameter count.",
    )
    sliding_window: NonNegativeInt = Field(0, description="Sliding window in tokens; 0 = none.")
    num_sliding_layers: NonNegativeInt = Field(0, description="Layers that use the window.")

    num_experts: PositiveInt = Field(description="Routed experts per MoE layer E.")
    experts_per_token: PositiveInt = Field(description="Routed experts chosen per token k.")
    moe_intermediate_size: PositiveInt = Field(description="FFN width f of one routed expert.")
    num_shared_experts: NonNegativeInt = Field(0, description="Always-on shared experts.")
    shared_expert_intermediate_size: NonNegativeInt = Field(
        0, description="FFN width of ONE shared expert."
    )
    shared_expert_gate: bool = Field(
        False,
        description="A sigmoid gate scales the shared experts (Qwen2-MoE, d per MoE layer). "
        "Added for the parameter count.",
    )
    router_bias: bool = Field(
        False,
        description="The router has a per-expert bias (E per MoE layer): GPT-OSS router bias, "
        "DeepSeek-V3 / GLM-4.x e_score_correction_bias. Added for the parameter count.",
    )
    expert_bias: bool = Field(
        False,
        description="Routed experts carry biases (2 f + d per expert), e.g. GPT-OSS. Added for "
        "the parameter count.",
    )
    num_dense_layers: NonNegativeInt = Field(
        0, description="Leading dense-FFN layers (HF first_k_dense_replace)."
    )
    dense_intermediate_size: NonNegativeInt = Field(0, description="FFN width of a dense layer.")
    native_expert_format: Literal["mxfp4"] | None = Field(
        None,
        description="Storage format the experts are released in when the bit-slice axis does "
        "not apply (GPT-OSS: 'mxfp4'); omit otherwise.",
    )

    card_total_params: float = Field(ge=0, description="Total parameters the model card states.")
    card_active_params: float = Field(
        ge=0, description="Active parameters per token the model card states."
    )
    card_source: str = Field(description="Where the card figures are stated; 'not given' if none.")

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, value: int) -> int:
        if value != SCHEMA_VERSION:
            raise ValueError(f"schema_version {value} is not supported; write {SCHEMA_VERSION}")
        return value

    @field_validator("id")
    @classmethod
    def _registry_id(cls, value: str) -> str:
        if not _ID_PATTERN.match(value):
            raise ValueError(
                f"id {value!r} must be lower-case letters, digits and . _ + -, e.g. 'qwen3-30b-a3b'"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ModelSpec:
        if self.experts_per_token > self.num_experts:
            raise ValueError(
                f"experts_per_token ({self.experts_per_token}) exceeds num_experts "
                f"({self.num_experts}); write a top-k no larger than the expert count"
            )
        if self.num_dense_layers >= self.num_layers:
            raise ValueError(
                f"num_dense_layers ({self.num_dense_layers}) must be below num_layers "
                f"({self.num_layers}); an MoE model needs at least one MoE layer"
            )
        if (self.num_dense_layers > 0) != (self.dense_intermediate_size > 0):
            raise ValueError(
                "num_dense_layers and dense_intermediate_size go together; set both > 0 "
                "or both to 0"
            )
        if (self.num_shared_experts > 0) != (self.shared_expert_intermediate_size > 0):
            raise ValueError(
                "num_shared_experts and shared_expert_intermediate_size go together; set both "
                "> 0 or both to 0"
            )
        if self.shared_expert_gate and self.num_shared_experts == 0:
            raise ValueError("shared_expert_gate needs num_shared_experts > 0; set it to false")
        if self.num_sliding_layers > self.num_layers:
            raise ValueError(
                f"num_sliding_layers ({self.num_sliding_layers}) exceeds num_layers "
                f"({self.num_layers}); write at most num_layers"
            )
        if (self.sliding_window > 0) != (self.num_sliding_layers > 0):
            raise ValueError(
                "sliding_window and num_sliding_layers go together; set both > 0, or both to 0 "
                "for full attention everywhere"
            )
        if self.attention_kind == "mla":
            self._check_mla()
        else:
            self._check_gqa()
        return self

    def _check_mla(self) -> None:
        for name in ("kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"):
            if getattr(self, name) <= 0:
                raise ValueError(f"attention_kind 'mla' needs {name} > 0; write the model's value")
        if self.num_kv_heads != self.num_attention_heads:
            raise ValueError(
                f"for attention_kind 'mla' write num_kv_heads = num_attention_heads "
                f"({self.num_attention_heads})"
            )
        qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
        if self.head_dim != qk_dim:
            raise ValueError(
                f"for attention_kind 'mla' write head_dim = qk_nope_head_dim + qk_rope_head_dim "
                f"({qk_dim})"
            )
        if self.attention_bias or self.attention_out_bias or self.qk_norm != "none":
            raise ValueError(
                "attention biases and qk_norm are modelled for 'gqa' only; set attention_bias = "
                "false, attention_out_bias = false, qk_norm = 'none'"
            )
        if self.attention_sinks:
            raise ValueError("attention_sinks is modelled for 'gqa' only; set it to false")

    def _check_gqa(self) -> None:
        mla_only = ("q_lora_rank", "kv_lora_rank", "qk_nope_head_dim", "qk_rope_head_dim")
        for name in (*mla_only, "v_head_dim"):
            if getattr(self, name) != 0:
                raise ValueError(
                    f"{name} applies to attention_kind 'mla' only; set it to 0 or write "
                    "attention_kind = 'mla'"
                )
        if self.num_attention_heads % self.num_kv_heads != 0:
            raise ValueError(
                f"num_attention_heads ({self.num_attention_heads}) must be a multiple of "
                f"num_kv_heads ({self.num_kv_heads})"
            )

    # ---- layer counts ---------------------------------------------------------------------

    @property
    def num_moe_layers(self) -> int:
        """MoE layers: L_moe = L - num_dense_layers."""
        return self.num_layers - self.num_dense_layers

    # ---- parameters per component ---------------------------------------------------------

    def attention_params_per_layer(self) -> int:
        """Attention weights of one layer, in parameters.

        GQA: q d H hd + k d KV hd + v d KV hd + o H hd d; plus H hd + 2 KV hd if attention_bias,
        d if attention_out_bias, H if attention_sinks, and the q/k norms (per_head: 2 hd; full:
        H hd + KV hd).

        MLA (DeepSeek-V2 section 2.1): q = d H (nope + rope), or with a q LoRA
        d q_lora + q_lora (its RMSNorm) + q_lora H (nope + rope); kv_a = d (kv_lora + rope);
        latent RMSNorm kv_lora; kv_b = kv_lora H (nope + v); o = H v d.
        """
        d, heads = self.hidden_size, self.num_attention_heads
        if self.attention_kind == "mla":
            qk_dim = self.qk_nope_head_dim + self.qk_rope_head_dim
            if self.q_lora_rank > 0:
                q = d * self.q_lora_rank + self.q_lora_rank + self.q_lora_rank * heads * qk_dim
            else:
                q = d * heads * qk_dim
            kv_a = d * (self.kv_lora_rank + self.qk_rope_head_dim)
            kv_norm = self.kv_lora_rank
            kv_b = self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
            o = heads * self.v_head_dim * d
            return q + kv_a + kv_norm + kv_b + o
        q_width = heads * self.head_dim
        kv_width = self.num_kv_heads * self.head_dim
        params = d * q_width + 2 * d * kv_width + q_width * d
        if self.attention_bias:
            params += q_width + 2 * kv_width
        if self.attention_out_bias:
            params += d
        if self.attention_sinks:
            params += heads
        if self.qk_norm == "per_head":
            params += 2 * self.head_dim
        elif self.qk_norm == "full":
            params += q_width + kv_width
        return params

    def router_params_per_layer(self) -> int:
        """Router of one MoE layer: d E, plus E if router_bias."""
        params = self.hidden_size * self.num_experts
        if self.router_bias:
            params += self.num_experts
        return params

    def expert_params(self) -> int:
        """ONE routed expert (SwiGLU gate, up, down): 3 d f, plus 2 f + d if expert_bias."""
        d, f = self.hidden_size, self.moe_intermediate_size
        params = 3 * d * f
        if self.expert_bias:
            params += 2 * f + d
        return params

    def shared_expert_params_per_layer(self) -> int:
        """Shared experts of one MoE layer: n_shared 3 d f_shared, plus d if shared_expert_gate."""
        params = (
            self.num_shared_experts * 3 * self.hidden_size * self.shared_expert_intermediate_size
        )
        if self.shared_expert_gate:
            params += self.hidden_size
        return params

    def dense_ffn_params_per_layer(self) -> int:
        """FFN of one leading dense layer (SwiGLU): 3 d f_dense."""
        return 3 * self.hidden_size * self.dense_intermediate_size

    def norm_params_per_layer(self) -> int:
        """The RMSNorms before attention and before the FFN: 2 d.

        q/k norms and the MLA latent norms are counted in :meth:`attention_params_per_layer`.
        """
        return 2 * self.hidden_size

    def final_norm_params(self) -> int:
        """The final RMSNorm before the LM head: d."""
        return self.hidden_size

    def embedding_params(self) -> int:
        """Input embedding table: V d."""
        return self.vocab_size * self.hidden_size

    def lm_head_params(self) -> int:
        """LM head: V d, or 0 if tied to the embedding."""
        return 0 if self.tie_word_embeddings else self.vocab_size * self.hidden_size

    def all_routed_expert_params(self) -> int:
        """Every routed expert of the model: L_moe E (one expert)."""
        return self.num_moe_layers * self.num_experts * self.expert_params()

    def _params_with_routed(self, routed_per_moe_layer: int) -> int:
        per_layer = self.attention_params_per_layer() + self.norm_params_per_layer()
        per_moe_layer = (
            self.router_params_per_layer()
            + self.shared_expert_params_per_layer()
            + routed_per_moe_layer
        )
        return (
            self.embedding_params()
            + self.lm_head_params()
            + self.final_norm_params()
            + self.num_layers * per_layer
            + self.num_moe_layers * per_moe_layer
            + self.num_dense_layers * self.dense_ffn_params_per_layer()
        )

    def total_params(self) -> int:
        """All parameters: embedding + LM head + final norm + L (attention + norms)
        + L_moe (router + shared + E expert) + num_dense_layers dense FFN.
        """
        return self._params_with_routed(self.num_experts * self.expert_params())

    def active_params(self) -> int:
        """Parameters one token touches, the project's convention: embedding + LM head + final
        norm + L (attention + norms) + L_moe (router + shared + k expert) + dense FFNs.

        Cards count differently in places: DeepSeek-V2-Lite's 2.4B and GPT-OSS-20B's 3.6B match
        this count without the input embedding table (a row lookup, not a matrix product);
        GLM counts without embedding and LM head (GLM-4.5's "32B active"), and for
        GLM-4.7-Flash publishes only the label "A3B". The tests say which convention each card
        figure follows.
        """
        return self._params_with_routed(self.experts_per_token * self.expert_params())

    def non_expert_params(self) -> int:
        """Everything but the routed experts: total - L_moe E (one expert)."""
        return self.total_params() - self.all_routed_expert_params()

    def kv_elements_per_token_per_layer(self) -> int:
        """KV-cache elements stored per token per layer: GQA 2 KV hd; MLA kv_lora + qk_rope."""
        if self.attention_kind == "mla":
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim


# ---- Hugging Face config.json ----------------------------------------------------------------

_EXPERT_COUNT_KEYS = ("num_experts", "n_routed_experts", "num_local_experts")


class _HFReader:
    """Typed access to one config.json, raising SpecError that names the HF key."""

    def __init__(self, config: dict[str, Any], model_type: str, where: str) -> None:
        self.config = config
        self.model_type = model_type
        self.where = where

    def fail(self, key: str, message: str) -> SpecError:
        return SpecError(message, path=self.where, field=key)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 1) -> int:
        """An integer >= minimum; a missing or null key takes ``default`` (None = required)."""
        value = self.config.get(key)
        if value is None:
            if default is None:
                raise self.fail(key, f"required for model_type '{self.model_type}'; add it")
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}; write a whole number")
        if value < minimum:
            raise self.fail(key, f"is {value}; write an integer >= {minimum}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def text(self, key: str, default: str) -> str:
        value = self.config.get(key)
        if value is None:
            return default
        if not isinstance(value, str):
            raise self.fail(key, f"expected a string, got {value!r}")
        return value

    def int_list(self, key: str) -> list[int]:
        value = self.config.get(key)
        if value is None:
            return []
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise self.fail(key, f"expected a list of layer indices, got {value!r}")
        return value

    def str_list(self, key: str) -> list[str] | None:
        value = self.config.get(key)
        if value is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, f"expected a list of strings, got {value!r}")
        return value

    def first_integer(self, keys: tuple[str, ...]) -> int:
        """The first present key of ``keys`` (aliases of one field); required."""
        for key in keys:
            if self.config.get(key) is not None:
                return self.integer(key)
        raise self.fail(keys[0], f"required for model_type '{self.model_type}'; add it")


def _leading_dense_layers(reader: _HFReader, dense: list[int], num_layers: int, key: str) -> int:
    """Check the dense layers are the first k and return k."""
    if dense != list(range(len(dense))):
        raise reader.fail(
            key,
            f"dense layers {dense} are not a leading block; elmoe-dse models dense FFN layers "
            "only as the first k layers (first_k_dense_replace)",
        )
    if len(dense) >= num_layers:
        raise reader.fail(key, "leaves no MoE layer; this is a dense model, give an MoE config")
    return len(dense)


def _qwen_dense_layers(reader: _HFReader, num_layers: int) -> int:
    """Qwen2/3-MoE: layer i is dense if in mlp_only_layers or (i + 1) % decoder_sparse_step != 0."""
    step = reader.integer("decoder_sparse_step", 1)
    only = set(reader.int_list("mlp_only_layers"))
    dense = [i for i in range(num_layers) if i in only or (i + 1) % step != 0]
    key = "mlp_only_layers" if only else "decoder_sparse_step"
    return _leading_dense_layers(reader, dense, num_layers, key)


def _deepseek_dense_layers(reader: _HFReader, num_layers: int) -> int:
    """DeepSeek/GLM: layer i is MoE if i >= first_k_dense_replace and i % moe_layer_freq == 0."""
    first_k = reader.integer("first_k_dense_replace", 0, minimum=0)
    freq = reader.integer("moe_layer_freq", 1)
    dense = [i for i in range(num_layers) if i < first_k or i % freq != 0]
    return _leading_dense_layers(reader, dense, num_layers, "first_k_dense_replace")


def _sliding_layers(reader: _HFReader, num_layers: int) -> tuple[int, int]:
    """(window, layers using it) from sliding_window, layer_types or use_sliding_window."""
    window = reader.integer("sliding_window", 0, minimum=0)
    layer_types = reader.str_list("layer_types")
    mt = reader.model_type
    if layer_types is not None:
        if len(layer_types) != num_layers:
            raise reader.fail(
                "layer_types", f"has {len(layer_types)} entries for {num_layers} layers"
            )
        n_sliding = sum(t == "sliding_attention" for t in layer_types)
    elif mt in ("qwen2_moe", "qwen3_moe"):
        # HF Qwen2/3: layers from max_window_layers on use the window, if use_sliding_window.
        if reader.flag("use_sliding_window", False):
            first = reader.integer("max_window_layers", num_layers, minimum=0)
            n_sliding = max(num_layers - first, 0)
        else:
            n_sliding = 0
    elif mt == "gpt_oss":
        n_sliding = (num_layers + 1) // 2  # HF default: even layers sliding, odd layers full
    else:
        n_sliding = num_layers if window > 0 else 0  # Mistral-style: one window for all layers
    if n_sliding == 0 or window == 0:
        return 0, 0
    return window, n_sliding


def _dense_model_error(model_type: str, where: str, field: str) -> SpecError:
    return SpecError(
        f"model_type '{model_type}' has no routed experts (no {', '.join(_EXPERT_COUNT_KEYS)} "
        "above 0): a dense model; elmoe-dse needs a Mixture-of-Experts config (supported model "
        f"types: {', '.join(_SUPPORTED_TYPES)})",
        path=where,
        field=field,
    )


def _reject_unsupported(config: dict[str, Any], model_type: str, where: str) -> None:
    supported = ", ".join(_SUPPORTED_TYPES)
    if not any(config.get(key) for key in _EXPERT_COUNT_KEYS):
        raise _dense_model_error(model_type, where, "model_type")
    raise SpecError(
        f"unknown model_type '{model_type}'; supported: {supported}; or write the project's "
        "model TOML by hand (see elmoe_dse/data/models/)",
        path=where,
        field="model_type",
    )


def _check_model_type(config: dict[str, Any], where: str) -> str:
    """The config's model_type, if supported; else the SpecError the config deserves."""
    if not isinstance(config, dict):
        raise SpecError("expected a JSON object (a config.json)", path=where)
    raw_type = config.get("model_type")
    if raw_type is None:
        raise SpecError("required; add the Hugging Face model_type", path=where, field="model_type")
    if not isinstance(raw_type, str):
        raise SpecError(f"expected a string, got {raw_type!r}", path=where, field="model_type")
    if raw_type not in _SUPPORTED_TYPES:
        _reject_unsupported(config, raw_type, where)
    for key in _EXPERT_COUNT_KEYS:
        if config.get(key) == 0 and not any(config.get(k) for k in _EXPERT_COUNT_KEYS):
            raise _dense_model_error(raw_type, where, key)
    return raw_type


def _common_fields(r: _HFReader, *, id: str, source: str) -> dict[str, Any]:
    """The fields every model_type maps the same way (sizes, experts, card placeholders)."""
    hidden = r.integer("hidden_size")
    num_layers = r.integer("num_hidden_layers")
    heads = r.integer("num_attention_heads")
    return {
        "schema_version": SCHEMA_VERSION,
        "id": id,
        "display_name": id,
        "source": source,
        "model_type": r.model_type,
        "hidden_size": hidden,
        "num_layers": num_layers,
        "vocab_size": r.integer("vocab_size"),
        "tie_word_embeddings": r.flag("tie_word_embeddings", False),
        "num_attention_heads": heads,
        "num_experts": r.first_integer(_EXPERT_COUNT_KEYS),
        "experts_per_token": r.first_integer(("num_experts_per_tok", "experts_per_token")),
        "card_total_params": 0.0,
        "card_active_params": 0.0,
        "card_source": "not given",
    }


# ---- attention, per model_type: (reader, hidden, heads) -> ModelSpec fields -----------------


def _mla_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """DeepSeek-V2/V3, GLM-4.7-Flash: multi-head latent attention, no biases."""
    nope = r.integer("qk_nope_head_dim")
    rope = r.integer("qk_rope_head_dim")
    data = {
        "attention_kind": "mla",
        "num_kv_heads": heads,  # MLA: every head has its own k and v, rebuilt from the latent
        "head_dim": nope + rope,
        "q_lora_rank": r.integer("q_lora_rank", 0, minimum=0),
        "kv_lora_rank": r.integer("kv_lora_rank"),
        "qk_nope_head_dim": nope,
        "qk_rope_head_dim": rope,
        "v_head_dim": r.integer("v_head_dim"),
    }
    if r.flag("attention_bias", False):
        raise r.fail("attention_bias", "biases in MLA are not modelled; only false is supported")
    return data


def _gqa_shape(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """Grouped-query attention: head_dim (default hidden / heads) and the KV heads."""
    if "head_dim" in r.config and r.config["head_dim"] is not None:
        head_dim = r.integer("head_dim")
    elif hidden % heads == 0:
        head_dim = hidden // heads
    else:
        raise r.fail("head_dim", "required when hidden_size is not a multiple of the heads")
    return {
        "attention_kind": "gqa",
        "num_kv_heads": r.integer("num_key_value_heads", heads),
        "head_dim": head_dim,
        "attention_sinks": False,
    }


def _mixtral_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """Mixtral: GQA without biases or q/k norms."""
    return _gqa_shape(r, hidden, heads)


def _qwen2_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """Qwen2-MoE: q/k/v bias=True in HF Qwen2-MoE (key qkv_bias); o has none."""
    return _gqa_shape(r, hidden, heads) | {"attention_bias": r.flag("qkv_bias", True)}


def _all_bias(r: _HFReader, default: bool) -> dict[str, Any]:
    """HF: q, k, v and o all take config.attention_bias."""
    bias = r.flag("attention_bias", default)
    return {"attention_bias": bias, "attention_out_bias": bias}


def _gpt_oss_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """GPT-OSS: biases on q, k, v and o (default on) and one sink logit per head."""
    return _gqa_shape(r, hidden, heads) | _all_bias(r, True) | {"attention_sinks": True}


def _phimoe_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """PhiMoE: optional biases on q, k, v and o."""
    return _gqa_shape(r, hidden, heads) | _all_bias(r, False)


def _qwen3_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """Qwen3-MoE: optional biases on q, k, v and o; per-head q/k RMSNorm."""
    return _gqa_shape(r, hidden, heads) | _all_bias(r, False) | {"qk_norm": "per_head"}


def _olmoe_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """OLMoE: optional biases on q, k, v and o; q/k RMSNorm over the whole projection."""
    return _gqa_shape(r, hidden, heads) | _all_bias(r, False) | {"qk_norm": "full"}


def _glm4_attention(r: _HFReader, hidden: int, heads: int) -> dict[str, Any]:
    """GLM-4.x MoE: optional q/k/v biases (o has none); per-head q/k norm if use_qk_norm."""
    data = _gqa_shape(r, hidden, heads) | {"attention_bias": r.flag("attention_bias", False)}
    if r.flag("use_qk_norm", False):
        data["qk_norm"] = "per_head"
    return data


# ---- shared experts and router bias, per model_type -----------------------------------------


def _no_shared(r: _HFReader, expert_width: int) -> dict[str, Any]:
    return {}


def _qwen2_shared(r: _HFReader, expert_width: int) -> dict[str, Any]:
    """Qwen2-MoE: one sigmoid-gated shared expert of shared_expert_intermediate_size."""
    width = r.integer("shared_expert_intermediate_size", minimum=0)
    if width == 0:
        return {}
    return {
        "num_shared_experts": 1,
        "shared_expert_intermediate_size": width,
        "shared_expert_gate": True,
    }


def _deepseek_shared(r: _HFReader, expert_width: int) -> dict[str, Any]:
    """DeepSeek/GLM: n_shared_experts shared experts as wide as a routed expert."""
    n_shared = r.integer("n_shared_experts", 0, minimum=0)
    if n_shared == 0:
        return {}
    return {"num_shared_experts": n_shared, "shared_expert_intermediate_size": expert_width}


def _no_dense(r: _HFReader, num_layers: int) -> int:
    return 0


def _no_router_bias(r: _HFReader) -> bool:
    return False


def _always_router_bias(r: _HFReader) -> bool:
    return True


def _deepseek_v2_router_bias(r: _HFReader) -> bool:
    """DeepSeek-V2 registers e_score_correction_bias only with the noaux_tc top-k method."""
    return r.text("topk_method", "greedy") == "noaux_tc"


@dataclass(frozen=True)
class _HFMapper:
    """How one Hugging Face model_type maps onto ModelSpec fields.

    ``router_bias``: GPT-OSS router bias; DeepSeek-V3 / GLM-4.x e_score_correction_bias (always
    registered by HF); DeepSeek-V2 only with the noaux_tc top-k method.
    """

    attention: Callable[[_HFReader, int, int], dict[str, Any]]
    expert_width_key: str  # the HF key of one routed expert's FFN width
    dense_layers: Callable[[_HFReader, int], int]
    shared_experts: Callable[[_HFReader, int], dict[str, Any]]
    router_bias: Callable[[_HFReader], bool] = _no_router_bias
    expert_bias: bool = False


_HF_MAPPERS: dict[str, _HFMapper] = {
    "deepseek_v2": _HFMapper(
        _mla_attention,
        "moe_intermediate_size",
        _deepseek_dense_layers,
        _deepseek_shared,
        _deepseek_v2_router_bias,
    ),
    "deepseek_v3": _HFMapper(
        _mla_attention,
        "moe_intermediate_size",
        _deepseek_dense_layers,
        _deepseek_shared,
        _always_router_bias,
    ),
    "glm4_moe": _HFMapper(
        _glm4_attention,
        "moe_intermediate_size",
        _deepseek_dense_layers,
        _deepseek_shared,
        _always_router_bias,
    ),
    "glm4_moe_lite": _HFMapper(
        _mla_attention,
        "moe_intermediate_size",
        _deepseek_dense_layers,
        _deepseek_shared,
        _always_router_bias,
    ),
    "gpt_oss": _HFMapper(
        _gpt_oss_attention,
        "intermediate_size",
        _no_dense,
        _no_shared,
        _always_router_bias,
        expert_bias=True,
    ),
    "mixtral": _HFMapper(_mixtral_attention, "intermediate_size", _no_dense, _no_shared),
    "olmoe": _HFMapper(_olmoe_attention, "intermediate_size", _no_dense, _no_shared),
    "phimoe": _HFMapper(_phimoe_attention, "intermediate_size", _no_dense, _no_shared),
    "qwen2_moe": _HFMapper(
        _qwen2_attention, "moe_intermediate_size", _qwen_dense_layers, _qwen2_shared
    ),
    "qwen3_moe": _HFMapper(
        _qwen3_attention, "moe_intermediate_size", _qwen_dense_layers, _no_shared
    ),
}


_SUPPORTED_TYPES = tuple(sorted(_HF_MAPPERS))


def _ffn_fields(r: _HFReader, mapper: _HFMapper, num_layers: int) -> dict[str, Any]:
    """Routed expert width, leading dense layers and shared experts."""
    width = r.integer(mapper.expert_width_key)
    data: dict[str, Any] = {"moe_intermediate_size": width}
    n_dense = mapper.dense_layers(r, num_layers)
    if n_dense > 0:
        data |= {
            "num_dense_layers": n_dense,
            "dense_intermediate_size": r.integer("intermediate_size"),
        }
    return data | mapper.shared_experts(r, width)


def _validated(data: dict[str, Any], config: dict[str, Any], where: str) -> ModelSpec:
    try:
        return validate(ModelSpec, data, path=where)
    except SpecError as err:
        # Name the config.json keys behind our field names, so the user knows what to edit.
        keys = [f"'{k}'" for f, k in HF_KEYS.items() if f in str(err) and k in config]
        if not keys:
            raise
        raise SpecError(f"{err} (config.json key {', '.join(keys)})") from None


def from_hf_config(
    config: dict[str, Any], *, id: str, source: str, path: str | None = None
) -> ModelSpec:
    """Map a Hugging Face ``config.json`` (already parsed) onto a :class:`ModelSpec`.

    Field mapping, per model_type (one :class:`_HFMapper` each in ``_HF_MAPPERS``): routed
    experts from ``num_experts`` (Qwen, OLMoE), ``n_routed_experts`` (DeepSeek, GLM) or
    ``num_local_experts`` (Mixtral, PhiMoE, GPT-OSS); top-k from ``num_experts_per_tok``; expert
    width from ``moe_intermediate_size`` (Qwen, DeepSeek, GLM) or ``intermediate_size``
    (Mixtral, PhiMoE, GPT-OSS, OLMoE). DeepSeek/GLM shared experts are ``n_shared_experts`` of
    width ``moe_intermediate_size``; Qwen2-MoE has one gated shared expert of
    ``shared_expert_intermediate_size``. Leading dense layers come from
    ``first_k_dense_replace`` / ``moe_layer_freq`` or ``mlp_only_layers`` /
    ``decoder_sparse_step``, with width ``intermediate_size``; dense layers elsewhere than at the
    start are rejected. ``head_dim`` defaults to hidden / heads and ``num_key_value_heads`` to
    the head count. The card fields are 0 with card_source "not given".

    ``path`` (else ``source``) names the file in error messages. Every failure a config can
    cause raises :class:`SpecError` naming the HF key.
    """
    where = path if path is not None else source
    model_type = _check_model_type(config, where)
    mapper = _HF_MAPPERS[model_type]
    r = _HFReader(config, model_type, where)
    data = _common_fields(r, id=id, source=source)
    num_layers = data["num_layers"]
    data |= mapper.attention(r, data["hidden_size"], data["num_attention_heads"])
    window, n_sliding = _sliding_layers(r, num_layers)
    data |= {"sliding_window": window, "num_sliding_layers": n_sliding}
    data |= _ffn_fields(r, mapper, num_layers)
    data["router_bias"] = mapper.router_bias(r)
    data["expert_bias"] = mapper.expert_bias
    quant = config.get("quantization_config")
    if isinstance(quant, dict) and quant.get("quant_method") == "mxfp4":
        data["native_expert_format"] = "mxfp4"
    return _validated(data, config, where)


#: The Hugging Face key behind a ModelSpec field, for error messages.
HF_KEYS: dict[str, str] = {
    "experts_per_token": "num_experts_per_tok",
    "num_experts": "num_experts",
    "hidden_size": "hidden_size",
    "num_layers": "num_hidden_layers",
    "num_attention_heads": "num_attention_heads",
    "num_kv_heads": "num_key_value_heads",
    "moe_intermediate_size": "moe_intermediate_size",
    "num_dense_layers": "first_k_dense_replace",
    "kv_lora_rank": "kv_lora_rank",
    "vocab_size": "vocab_size",
}


# ---- loading ------------------------------------------------------------------------------


def list_models() -> list[str]:
    """Registered model ids: the shipped ``data/models/*.toml`` stems, sorted."""
    return sorted(p.stem for p in MODELS_DIR.glob("*.toml"))


def path_id(name: str) -> str:
    """A model id derived from a file or folder name (``My Modèl`` -> ``my-model``): accents
    dropped, every character the id pattern does not allow replaced by ``-``."""
    import unicodedata

    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9._+-]", "-", ascii_name))
    cleaned = cleaned.lstrip("._+-").rstrip("-")
    return cleaned or "model"


def load_model(name_or_path: str) -> ModelSpec:
    """A registered id (case-insensitive), a project model ``.toml`` or a HF ``config.json``.

    A ``.json`` path is read as a Hugging Face config: id = file stem lower-cased (the folder's
    name for a file called ``config.json``), source = the path, card fields 0 / "not given". A
    folder holding a ``config.json`` (a downloaded model snapshot) is read the same way.
    """
    as_path = Path(name_or_path)
    if as_path.is_dir():
        if not (as_path / "config.json").is_file():
            raise SpecError(
                "is a directory without a config.json; give a model .toml or a config.json",
                path=str(as_path),
            )
        name_or_path = str(as_path / "config.json")
    suffix = Path(name_or_path).suffix.lower()
    if suffix == ".toml":
        return validate(ModelSpec, load_toml(name_or_path), path=name_or_path)
    if suffix == ".json":
        config = load_json(name_or_path)
        stem = Path(name_or_path).stem.lower()
        if stem == "config":
            stem = Path(name_or_path).resolve().parent.name.lower() or stem
        stem = path_id(stem)  # derived from a path: sanitized, never validated as user input
        return from_hf_config(config, id=stem, source=str(name_or_path), path=str(name_or_path))
    key = name_or_path.strip().lower()
    registered = list_models()
    if key not in registered:
        raise SpecError(
            f"unknown model '{name_or_path}'; registered: {', '.join(registered)}; or give a "
            "path to a model .toml or a Hugging Face config.json"
        )
    path = MODELS_DIR / f"{key}.toml"
    spec = validate(ModelSpec, load_toml(path), path=path)
    if spec.id != key:
        raise SpecError(
            f"is '{spec.id}' in {key}.toml; make it '{key}'", path=str(path), field="id"
        )
    return spec
