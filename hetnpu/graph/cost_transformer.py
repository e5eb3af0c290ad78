"""The work of ONNX's transformer ops (opset 23): Attention and RotaryEmbedding.

Counting conventions (those of :mod:`hetnpu.graph.cost`):

- **Attention** MACs are ``Q Kᵀ`` and ``P V``: ``2·B·q_heads·S·T·head_dim`` with ``T`` the
  keys each query sees: those before the queries (the past, or the keys of K beyond the S
  queries) plus the S new ones, of which a causal query sees ``(S + 1) / 2`` on average, as a
  flash-attention kernel skips the blocks above the diagonal (``is_causal``). A mask input
  alone is counted over every key: a kernel given only a mask tensor cannot know its pattern,
  so it computes every block and applies the mask to it. FLOPs add the softmax's 5 per
  score (max, subtract, exp, sum, divide, as ``Softmax`` is counted) and the scale's 1.
- **RotaryEmbedding**: 3 FLOPs per rotated element (two multiplies and an add) of the
  ``rotary_embedding_dim`` dims of each head (all of them when 0).
- RMSNormalization is counted in :mod:`hetnpu.graph.cost` with the other normalisations.
"""

from __future__ import annotations

import math

from hetnpu.graph.ir import Graph, Node

__all__ = ["attention_work", "rotary_work"]


def _shape(graph: Graph, name: str) -> tuple[int, ...] | None:
    t = graph.tensors.get(name) if name else None
    if t is None or t.shape is None:
        return None
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in t.shape)


def attention_work(graph: Graph, node: Node) -> tuple[int, int]:
    """(MACs, FLOPs) of an ``Attention`` node; (0, 0) when its query's shape is unknown."""
    q = _shape(graph, node.inputs[0])
    if q is None or len(q) not in (3, 4):
        return 0, 0
    k = _shape(graph, node.inputs[1])
    if len(q) == 3:
        heads = max(int(node.attrs.get("q_num_heads", 1)), 1)
        batch, seq, head_dim = q[0], q[1], q[2] // heads
        new_keys = k[1] if k and len(k) == 3 else seq
    else:
        batch, heads, seq, head_dim = q
        new_keys = k[2] if k and len(k) == 4 else seq
    past = _shape(graph, node.inputs[4]) if len(node.inputs) > 4 else None
    kv_len = (past[2] if past else 0) + new_keys - seq  # keys before the queries
    causal = seq > 1 and bool(node.attrs.get("is_causal", 0))
    keys = kv_len + ((seq + 1) / 2 if causal else seq)
    scores = math.ceil(batch * heads * seq * keys)
    macs = 2 * scores * head_dim
    return macs, 2 * macs + 6 * scores


def rotary_work(graph: Graph, node: Node) -> tuple[int, int]:
    """(0, FLOPs) of a ``RotaryEmbedding`` node."""
    x = _shape(graph, node.inputs[0])
    if x is None:
        return 0, 0
    numel = math.prod(x)
    rot = int(node.attrs.get("rotary_embedding_dim", 0))
    if rot and len(x) == 4:
        numel = numel // x[-1] * rot
    elif rot and len(x) == 3:
        heads = max(int(node.attrs.get("num_heads", 1)), 1)
        numel = numel // x[-1] * rot * heads
    return 0, 3 * numel
