"""The rotary position embedding of a decoder's queries and keys, in either form.

``fused``: the opset-23 ``RotaryEmbedding`` op (CANN's ``RotaryMul``/``ApplyRotaryPosEmb``
kernels, ``npu_apply_rotary_pos_emb``). ``decomposed``: the same maths in basic ops (Gather of
the position's cos/sin, Split, Mul, Sub, Add, Concat), as modeling code that keeps its Python
RoPE runs. Half-split (Llama) and interleaved-pair (ChatGLM) rotations, on the whole head or on
its first ``rotary_dim`` dims, in both.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["rotary_embedding"]


def _tables(net: Any) -> tuple[str, str]:
    """cos and sin of every position the graph addresses, [L + S, rotary_dim / 2]."""
    if net.rope_tables is None:
        c = net.c
        inv_freq = c.rope_theta ** (-np.arange(0, c.rotary_dim, 2, dtype=np.float64) / c.rotary_dim)
        angles = np.outer(np.arange(net.total, dtype=np.float64), inv_freq)
        cos = net.b.constant("/rotary_emb", np.cos(angles).astype(np.float32))
        sin = net.b.constant("/rotary_emb", np.sin(angles).astype(np.float32))
        net.rope_tables = (cos, sin)
    return net.rope_tables


def rotary_embedding(net: Any, x: str, scope: str, heads: int) -> str:
    """Rotary embedding of x [B, S, heads * head_dim] at ``position_ids`` in ``net`` (a decoder
    under construction), in the form its ``fused_rope`` asks for."""
    c, b = net.c, net.b
    cos, sin = _tables(net)
    if net.fused_rope:
        attrs: dict[str, Any] = {"num_heads": heads, "interleaved": int(c.rope_interleaved)}
        if c.rotary_dim != c.head_dim:
            attrs["rotary_embedding_dim"] = c.rotary_dim
        return b.node("RotaryEmbedding", [x, cos, sin, "position_ids"], scope, **attrs)
    bsz, s, d, r = net.batch, net.seq, c.head_dim, c.rotary_dim
    x4 = net.reshape(x, scope, [bsz, s, heads, d])
    unsq = b.constant(scope, np.array([2], np.int64))
    cos = b.node("Unsqueeze", [b.node("Gather", [cos, "position_ids"], scope), unsq], scope)
    sin = b.node("Unsqueeze", [b.node("Gather", [sin, "position_ids"], scope), unsq], scope)
    if r < d:
        split = b.constant(scope, np.array([r, d - r], np.int64))
        rot, rest = net.split(x4, scope, split, 2)
    else:
        rot, rest = x4, None
    if c.rope_interleaved:
        pairs = net.reshape(rot, scope, [bsz, s, heads, r // 2, 2])
        x1, x2 = net.split(pairs, scope, b.constant(scope, np.array([1, 1], np.int64)), 2)
        last = b.constant(scope, np.array([-1], np.int64))
        cos = b.node("Unsqueeze", [cos, last], scope)
        sin = b.node("Unsqueeze", [sin, last], scope)
    else:
        half = b.constant(scope, np.array([r // 2, r // 2], np.int64))
        x1, x2 = net.split(rot, scope, half, 2)
    y1 = b.node("Sub", [b.node("Mul", [x1, cos], scope), b.node("Mul", [x2, sin], scope)], scope)
    y2 = b.node("Add", [b.node("Mul", [x2, cos], scope), b.node("Mul", [x1, sin], scope)], scope)
    y = b.node("Concat", [y1, y2], scope, axis=-1)
    if c.rope_interleaved:
        y = net.reshape(y, scope, [bsz, s, heads, r])
    if rest is not None:
        y = b.node("Concat", [y, rest], scope, axis=-1)
    return net.reshape(y, scope, [bsz, s, heads * d])
