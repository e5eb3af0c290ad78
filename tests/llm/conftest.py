"""Small decoder configs for the LLM tests."""

from __future__ import annotations

from typing import Any


def tiny_config(**changes: Any) -> dict[str, Any]:
    """A Llama-family config small enough for onnxruntime and the simulator in milliseconds."""
    config: dict[str, Any] = {
        "architectures": ["LlamaForCausalLM"],
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "num_hidden_layers": 2,
        "vocab_size": 97,
        "max_position_embeddings": 256,
        "rms_norm_eps": 1e-6,
    }
    config.update(changes)
    return config
