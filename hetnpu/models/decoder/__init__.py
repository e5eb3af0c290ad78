"""Decoder-only transformers (Llama, Mistral, Qwen2/Qwen3, Mixtral/Qwen-MoE, ChatGLM3) from a
Hugging Face ``config.json``, as ONNX graphs of one prefill or one decode step.

The API
-------
:func:`load_config` reads a config (a shipped name of :data:`KNOWN_CONFIGS`, a path, a dict)
into a :class:`DecoderConfig`: the network's shape, its parameter count
(:meth:`DecoderConfig.param_count`) and KV-cache bytes per token
(:meth:`DecoderConfig.kv_bytes_per_token`).

:func:`build_decoder` builds one forward pass::

    build_decoder(config, phase="prefill" | "decode", batch=1, seq=P, kv_len=L,
                  dtype="float32", weights="random" | "absent", attention="fused" | "decomposed",
                  layers=None, moe=None | "routed" | "even",
                  kv_cache="inplace" | "concat" | "concat-repeat",
                  rope=None | "fused" | "decomposed", mask="is_causal" | "tensor",
                  seed=0) -> onnx.ModelProto

Inputs ``input_ids`` and ``position_ids`` (int64 [B, S]) and, when ``kv_len > 0``, the past
cache ``past_key_values.{i}.key/value`` [B, kv_heads, L, head_dim] of each layer; outputs
``logits`` [B, vocab] (last position) and ``present.{i}.key/value`` [B, kv_heads, L + S,
head_dim]; :func:`cache_names` gives the four names of a layer. Nodes of layer ``i`` are scoped
``/model/layers.{i}/...`` and its weights named ``model.layers.{i}.<module>.weight`` as in the
Hugging Face checkpoint (stored [in, out], as exporters write MatMul weights), so a pass that
shards the model (tensor parallelism) finds each projection by name: ``q_proj``, ``k_proj``,
``v_proj`` (or ChatGLM's fused ``query_key_value``), ``o_proj``, ``gate_proj``, ``up_proj``
(``dense_h_to_4h``), ``down_proj`` (``dense_4h_to_h``), ``lm_head``. The metadata
``hetnpu.decoder`` (:data:`DECODER_KEY`) is the JSON record of what was built.

>>> from hetnpu.models.decoder import build_decoder, load_config
>>> load_config("llama-2-7b").param_count()
6738415616
>>> m = build_decoder("llama-2-7b", "decode", batch=1, kv_len=1024, weights="absent")
>>> [i.name for i in m.graph.input][:3]
['input_ids', 'position_ids', 'past_key_values.0.key']
"""

from hetnpu.models.decoder.config import ARCHITECTURES, KNOWN_CONFIGS, DecoderConfig, load_config
from hetnpu.models.decoder.graph import (
    DECODER_KEY,
    DTYPES,
    KV_CACHE_FORMS,
    MASK_FORMS,
    OPSET,
    PHASES,
    build_decoder,
    cache_names,
)

__all__ = [
    "ARCHITECTURES",
    "DECODER_KEY",
    "DTYPES",
    "KNOWN_CONFIGS",
    "KV_CACHE_FORMS",
    "MASK_FORMS",
    "OPSET",
    "PHASES",
    "DecoderConfig",
    "build_decoder",
    "cache_names",
    "load_config",
]
