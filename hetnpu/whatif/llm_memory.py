"""Device memory of an LLM request on one NPU, and the largest batch and context that fit.

Weights (parameters × element bytes), the KV cache at the final context
(:meth:`~hetnpu.models.decoder.DecoderConfig.kv_bytes_per_token`), activations (the live
tensors of a prefill layer, see :func:`memory`) and a runtime workspace
(:data:`WORKSPACE_BYTES`), against the chip's HBM. :mod:`hetnpu.whatif.llm` reports it next
to the simulated times; :mod:`hetnpu.whatif.parallel_search` applies it to one rank's shard.

Left out: fragmentation of the framework's caching allocator, and the KV cache's paging
granularity (a paged cache rounds each sequence up to whole blocks).
"""

from __future__ import annotations

from dataclasses import dataclass

from hetnpu.models.decoder import DecoderConfig

__all__ = ["ITEMSIZE", "WORKSPACE_BYTES", "Memory", "memory"]

WORKSPACE_BYTES = 1 << 30
"""Runtime workspace reserved on the device (assumption: 1 GiB for the framework's caching
allocator, HCCL and operator workspaces; no source gives a figure, and torch_npu reserves it
dynamically)."""

ITEMSIZE = {"fp16": 2, "bf16": 2, "fp32": 4}


@dataclass(frozen=True)
class Memory:
    """Device memory in bytes, and what fits."""

    weights: int
    kv_cache: int
    activations: int
    workspace: int
    capacity: int
    max_batch: int
    """Largest batch whose memory fits at this context (0: not even one sequence)."""
    max_context: int
    """Largest prompt + generated tokens that fits at this batch, at most the model's
    ``max_positions`` (what its position embeddings were trained for)."""

    @property
    def total(self) -> int:
        return self.weights + self.kv_cache + self.activations + self.workspace

    @property
    def fits(self) -> bool:
        return self.total <= self.capacity


def memory(
    config: DecoderConfig,
    capacity: int,
    *,
    batch: int,
    prompt: int,
    generate: int,
    precision: str,
    workspace: int = WORKSPACE_BYTES,
) -> Memory:
    """Device memory of a request, and the largest batch and context that fit.

    ``activations`` are the live tensors of one prefill layer, per token: the residual stream,
    the normalised input and the attention output (3 × hidden), Q, K and V, and the FFN's gate
    and up outputs (2 × intermediate, per expert routed for MoE); plus the last position's
    float32 logits (4 × vocab per sequence).
    """
    item = ITEMSIZE[precision]
    weights = config.param_count() * item
    context = prompt + generate
    kv_token = config.kv_bytes_per_token(item)
    ffn = config.active_intermediate
    qkv = (config.heads + 2 * config.kv_heads) * config.head_dim
    act_token = (3 * config.hidden + qkv + 2 * ffn) * item
    per_seq_fixed = 4 * config.vocab

    free = capacity - weights - workspace
    per_seq = context * kv_token + prompt * act_token + per_seq_fixed
    max_batch = max(0, free // per_seq) if free > 0 else 0
    # Largest context at this batch, the prompt taking the same share of it as asked.
    per_token = batch * (kv_token + act_token * prompt / context)
    room = free - batch * per_seq_fixed
    max_context = min(int(room // per_token), config.max_positions) if room > 0 else 0
    return Memory(
        weights=weights,
        kv_cache=batch * context * kv_token,
        activations=batch * (prompt * act_token + per_seq_fixed),
        workspace=workspace,
        capacity=capacity,
        max_batch=int(max_batch),
        max_context=max_context,
    )
