"""A decoder-only transformer's shape, read from a Hugging Face ``config.json``.

:class:`DecoderConfig` holds what the graph builder needs and nothing of the weights. It reads
the keys of the ``transformers`` configuration classes of the families below (their names are
those of ``configuration_llama.py``, ``configuration_qwen2.py``, ... and of THUDM's
``configuration_chatglm.py``); a family is recognised by ``architectures[0]``, else by
``model_type``.

=====================  =========================================================================
family                 differences from Llama
=====================  =========================================================================
llama, mistral         none (Mistral's ``sliding_window`` is recorded, attention stays full)
qwen2                  bias on Q, K and V
qwen3                  per-head RMSNorm of Q and K (``q_norm``/``k_norm``), explicit ``head_dim``
mixtral, qwen2_moe,    MoE FFN: ``num_local_experts``/``num_experts`` experts, top
qwen3_moe              ``num_experts_per_tok``; Qwen2-MoE adds a gated shared expert
chatglm                ``num_layers``, ``ffn_hidden_size``, ``kv_channels``,
                       ``multi_query_group_num``, ``padded_vocab_size``, fused QKV with bias,
                       rotary embedding on half of each head, interleaved pairs
=====================  =========================================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from hetnpu.errors import ConfigError

__all__ = ["ARCHITECTURES", "KNOWN_CONFIGS", "DecoderConfig", "load_config"]

ARCHITECTURES: Mapping[str, str] = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "mistral",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "MixtralForCausalLM": "mixtral",
    "Qwen2MoeForCausalLM": "qwen2_moe",
    "Qwen3MoeForCausalLM": "qwen3_moe",
    "ChatGLMModel": "chatglm",
    "ChatGLMForConditionalGeneration": "chatglm",
}
"""``architectures[0]`` → family; ``model_type`` is matched against the families too."""

KNOWN_CONFIGS: tuple[str, ...] = (
    "llama-2-7b",
    "llama-2-70b",
    "llama-3-8b",
    "llama-3-70b",
    "qwen2-7b",
    "chatglm3-6b",
    "mixtral-8x7b",
)
"""Configs shipped as package data (``configs/SOURCES.md`` names their repositories)."""


@dataclass(frozen=True)
class DecoderConfig:
    """The shape of a decoder-only transformer."""

    name: str
    family: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    """FFN width of a dense layer (of one expert in an MoE layer: see ``expert_intermediate``)."""
    vocab: int
    rms_eps: float = 1e-6
    rope_theta: float = 10000.0
    rotary_dim: int = 0
    """Dims of each head the rotary embedding turns (the whole head when 0 is given)."""
    rope_interleaved: bool = False
    qkv_bias: bool = False
    qk_norm: bool = False
    fused_qkv: bool = False
    """One QKV projection and one gate-up projection (ChatGLM's ``query_key_value`` and
    ``dense_h_to_4h``), instead of one MatMul per projection."""
    tie_embeddings: bool = False
    max_positions: int = 4096
    experts: int = 0
    experts_per_token: int = 0
    expert_intermediate: int = 0
    shared_expert_intermediate: int = 0

    def __post_init__(self) -> None:
        if self.rotary_dim == 0:
            object.__setattr__(self, "rotary_dim", self.head_dim)

    @property
    def moe(self) -> bool:
        """The FFN is a mixture of experts."""
        return self.experts > 0

    @property
    def active_intermediate(self) -> int:
        """FFN width one token goes through: of its routed experts and the shared expert in an
        MoE layer, of the dense FFN otherwise."""
        if self.moe:
            return (
                self.experts_per_token * self.expert_intermediate + self.shared_expert_intermediate
            )
        return self.intermediate

    @property
    def groups(self) -> int:
        """Query heads per key/value head (1: MHA, heads: MQA)."""
        return self.heads // self.kv_heads

    def kv_bytes_per_token(self, itemsize: int) -> int:
        """Bytes of K and V one token adds to the cache, over all layers."""
        return 2 * self.layers * self.kv_heads * self.head_dim * itemsize

    def param_count(self) -> int:
        """Parameters, as ``model.num_parameters()`` counts them (the builder's initializers)."""
        h, d = self.hidden, self.head_dim
        q, kv = self.heads * d, self.kv_heads * d
        attn = h * (q + 2 * kv) + q * h
        if self.qkv_bias:
            attn += q + 2 * kv
        if self.qk_norm:
            attn += 2 * d
        if self.moe:
            ffn = self.experts * 3 * h * self.expert_intermediate + h * self.experts
            if self.shared_expert_intermediate:
                ffn += 3 * h * self.shared_expert_intermediate + h
        else:
            ffn = 3 * h * self.intermediate
        per_layer = attn + ffn + 2 * h
        head = 0 if self.tie_embeddings else self.vocab * h
        return self.layers * per_layer + self.vocab * h + head + h

    def with_layers(self, layers: int) -> DecoderConfig:
        """The same model cut (or grown) to ``layers`` layers."""
        return replace(self, layers=layers)

    @classmethod
    def from_hf(cls, config: Mapping[str, Any], where: str = "config.json") -> DecoderConfig:
        """Read a Hugging Face ``config.json`` (as a dict); ``where`` names it in errors.

        Raises
        ------
        ConfigError
            An architecture this module does not know, a missing or invalid key.
        """
        family = _family(config, where)
        get = _Reader(config, where)
        if family == "chatglm":
            hidden = get.integer("hidden_size")
            heads = get.integer("num_attention_heads")
            groups = (
                get.integer("multi_query_group_num") if config.get("multi_query_attention") else 0
            )
            head_dim = get.integer("kv_channels", hidden // heads)
            made = cls(
                name=str(config.get("_name_or_path", where)),
                family=family,
                layers=get.integer("num_layers"),
                hidden=hidden,
                heads=heads,
                kv_heads=groups or heads,
                head_dim=head_dim,
                intermediate=get.integer("ffn_hidden_size"),
                vocab=get.integer("padded_vocab_size", config.get("vocab_size")),
                rms_eps=get.number("layernorm_epsilon", 1e-5),
                rope_theta=10000.0 * get.number("rope_ratio", 1.0),
                rotary_dim=head_dim // 2,
                rope_interleaved=True,
                qkv_bias=bool(config.get("add_qkv_bias", False)),
                fused_qkv=True,
                tie_embeddings=bool(config.get("tie_word_embeddings", False)),
                max_positions=get.integer("seq_length", 8192),
            )
        else:
            hidden = get.integer("hidden_size")
            heads = get.integer("num_attention_heads")
            experts = get.integer("num_local_experts", get.optional("num_experts") or 0)
            made = cls(
                name=str(config.get("_name_or_path", where)),
                family=family,
                layers=get.integer("num_hidden_layers"),
                hidden=hidden,
                heads=heads,
                kv_heads=get.integer("num_key_value_heads", heads),
                head_dim=get.integer("head_dim", config.get("head_dim") or hidden // heads),
                intermediate=get.integer("intermediate_size"),
                vocab=get.integer("vocab_size"),
                rms_eps=get.number("rms_norm_eps", 1e-6),
                rope_theta=get.number("rope_theta", 10000.0),
                qkv_bias=family in ("qwen2", "qwen2_moe")
                or bool(config.get("attention_bias", False)),
                qk_norm=family in ("qwen3", "qwen3_moe"),
                tie_embeddings=bool(config.get("tie_word_embeddings", False)),
                max_positions=get.integer("max_position_embeddings", 4096),
                experts=experts,
                experts_per_token=get.integer("num_experts_per_tok") if experts else 0,
                expert_intermediate=(
                    get.integer("moe_intermediate_size", get.integer("intermediate_size"))
                    if experts
                    else 0
                ),
                shared_expert_intermediate=(
                    get.integer("shared_expert_intermediate_size", 0) if experts else 0
                ),
            )
        made.check(where)
        return made

    def check(self, where: str = "config") -> None:
        """Raise :class:`ConfigError` naming the first inconsistent size."""
        for key in ("layers", "hidden", "heads", "kv_heads", "head_dim", "vocab"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{where}: {key} must be a positive integer, got {value!r}")
        if self.heads % self.kv_heads:
            raise ConfigError(
                f"{where}: num_attention_heads {self.heads} is not a multiple of the "
                f"{self.kv_heads} key/value heads"
            )
        if self.rotary_dim % 2 or self.rotary_dim > self.head_dim:
            raise ConfigError(
                f"{where}: rotary dims {self.rotary_dim} must be even and at most head_dim "
                f"{self.head_dim}"
            )
        if self.moe and not 0 < self.experts_per_token <= self.experts:
            raise ConfigError(
                f"{where}: num_experts_per_tok {self.experts_per_token} must be in 1.."
                f"{self.experts} (the experts)"
            )


def load_config(model: str | Path | Mapping[str, Any] | DecoderConfig) -> DecoderConfig:
    """A :class:`DecoderConfig` from a shipped name (:data:`KNOWN_CONFIGS`), a path to a
    ``config.json`` (or to the directory holding one), a dict, or a config (returned as is).

    Raises
    ------
    ConfigError
        An unknown name or missing file, invalid JSON (with line:col), or a bad config.
    """
    if isinstance(model, DecoderConfig):
        return model
    if isinstance(model, Mapping):
        return DecoderConfig.from_hf(model)
    text = str(model)
    if text in KNOWN_CONFIGS:
        data = resources.files(__package__).joinpath("configs", f"{text}.json").read_text()
        return _named(DecoderConfig.from_hf(json.loads(data), f"{text}.json"), text)
    path = Path(text)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise ConfigError(
            f"{text}: neither a config.json file nor a known model ({', '.join(KNOWN_CONFIGS)})"
        )
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config.json holds a JSON object")
    return _named(DecoderConfig.from_hf(data, str(path)), path.parent.name or path.stem)


def _named(config: DecoderConfig, name: str) -> DecoderConfig:
    return replace(config, name=name)


def _family(config: Mapping[str, Any], where: str) -> str:
    archs = config.get("architectures") or []
    if isinstance(archs, list) and archs and archs[0] in ARCHITECTURES:
        return ARCHITECTURES[archs[0]]
    model_type = config.get("model_type")
    if model_type in set(ARCHITECTURES.values()):
        return str(model_type)
    named = archs[0] if isinstance(archs, list) and archs else model_type
    raise ConfigError(
        f"{where}: architectures/model_type {named!r} is not a decoder this builder knows; "
        f"known: {', '.join(ARCHITECTURES)}"
    )


class _Reader:
    """Typed reads of config keys; a missing or mistyped key is a ConfigError naming it."""

    def __init__(self, config: Mapping[str, Any], where: str) -> None:
        self.config, self.where = config, where

    _MISSING = object()

    def integer(self, key: str, default: Any = _MISSING) -> int:
        value = self.config.get(key, default)
        if value is self._MISSING or value is None:
            raise ConfigError(f"{self.where}: missing key {key!r}")
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{self.where}: {key} must be a non-negative integer, got {value!r}")
        return value

    def optional(self, key: str) -> int | None:
        return self.integer(key) if self.config.get(key) is not None else None

    def number(self, key: str, default: float) -> float:
        value = self.config.get(key, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{self.where}: {key} must be a positive number, got {value!r}")
        return float(value)
