"""Mixture-of-experts FFN layers (Mixtral, Qwen2-MoE, Qwen3-MoE) in two forms.

Both run the router (a Linear to ``experts`` logits, top-k, softmax over the k picked) and hold
every expert's gate, up and down projections stacked ([E, hidden, F], [E, F, hidden]).

- ``routed``: the exact layer. Every expert runs on every token and the router's softmax
  weights, zero for the experts not picked, mix their outputs: the routed result, at
  ``experts / k`` times the FLOPs of a routed kernel. For numerics.
- ``even``: the work of a grouped-matmul MoE kernel under an even load. The ``T · k``
  (token, choice) assignments are dealt to the experts in turn (assignment ``a`` to expert
  ``a mod E``), each expert multiplies its ``ceil(T · k / E)`` rows by its own weights
  (one batched MatMul over the experts), and the rows are gathered back and mixed with the
  router's weights. With fewer assignments than experts (a small decode batch), only
  ``T · k`` experts are touched, and only their weights are read. The dispatch is a constant,
  not the router's choice: the form times the layer, its values are not the model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from onnx import helper

__all__ = ["moe_layer"]

INIT_STD = 0.02


def moe_layer(net: Any, h: str, scope: str, prefix: str, *, even: bool) -> str:
    """The MoE FFN of ``h`` [B, S, hidden] in ``net`` (a decoder under construction)."""
    c, b = net.c, net.b
    e, f, k = c.experts, c.expert_intermediate, c.experts_per_token
    logits = net.linear(h, f"{scope}/gate", f"{prefix}.gate", c.hidden, e, False)
    kk = b.constant(scope, np.array([k], np.int64))
    values, indices = f"{scope}/TopK_values", f"{scope}/TopK_indices"
    b.nodes.append(
        helper.make_node("TopK", [logits, kk], [values, indices], name=f"{scope}/TopK", axis=-1)
    )
    weights = b.node("Softmax", [values], scope, axis=-1)  # [B, S, k]
    # Under an even load only min(E, T·k) experts get rows; the others' weights are stored
    # apart (``..._idle``), never read.
    active = min(e, net.batch * net.seq * k) if even else e
    shapes = {"gate_proj": (c.hidden, f), "up_proj": (c.hidden, f), "down_proj": (f, c.hidden)}
    wg, wu, wd = (
        b.normal(f"{prefix}.experts.{name}.weight", (active, *dims), INIT_STD)
        for name, dims in shapes.items()
    )
    if active < e:
        for name, dims in shapes.items():
            b.normal(f"{prefix}.experts.{name}.weight_idle", (e - active, *dims), INIT_STD)
    y = (
        _even(net, h, weights, scope, (wg, wu, wd))
        if even
        else _routed(net, h, logits, weights, indices, scope, (wg, wu, wd))
    )
    if c.shared_expert_intermediate:
        shared = net.swiglu(
            h, f"{scope}/shared_expert", f"{prefix}.shared_expert", c.shared_expert_intermediate
        )
        sg = net.linear(
            h, f"{scope}/shared_expert_gate", f"{prefix}.shared_expert_gate", c.hidden, 1, False
        )
        gated = b.node("Mul", [shared, b.node("Sigmoid", [sg], scope)], scope)
        y = b.node("Add", [y, gated], scope)
    return y


def _swiglu(b: Any, x: str, scope: str, w: tuple[str, str, str]) -> str:
    gate, up = b.node("MatMul", [x, w[0]], scope), b.node("MatMul", [x, w[1]], scope)
    act = b.node("Mul", [b.node("Mul", [gate, b.node("Sigmoid", [gate], scope)], scope), up], scope)
    return b.node("MatMul", [act, w[2]], scope)


def _routed(
    net: Any, h: str, logits: str, weights: str, indices: str, scope: str, w: tuple[str, ...]
) -> str:
    b = net.b
    zeros = b.node("Mul", [logits, b.constant(scope, np.array(0.0, np.float32))], scope)
    gates = b.node("ScatterElements", [zeros, indices, weights], scope, axis=-1)  # [B, S, E]
    x5 = b.node("Unsqueeze", [h, b.constant(scope, np.array([2, 3], np.int64))], scope)
    out = _swiglu(b, x5, scope, w)  # [B, S, E, 1, hidden]
    out = b.node("Squeeze", [out, b.constant(scope, np.array([3], np.int64))], scope)
    last = b.constant(scope, np.array([-1], np.int64))
    mixed = b.node("Mul", [out, b.node("Unsqueeze", [gates, last], scope)], scope)
    axis = b.constant(scope, np.array([2], np.int64))
    return b.node("ReduceSum", [mixed, axis], scope, keepdims=0)


def _even(net: Any, h: str, weights: str, scope: str, w: tuple[str, ...]) -> str:
    c, b = net.c, net.b
    k = c.experts_per_token
    e = min(c.experts, net.batch * net.seq * k)  # experts that get rows
    tokens = net.batch * net.seq
    slots = -(-tokens * k // e)  # rows per expert
    # Slot (expert x, row r) holds assignment a = r·E + x, i.e. token a // k (padding: token 0).
    a = np.arange(slots)[None, :] * e + np.arange(e)[:, None]
    dispatch = np.where(a < tokens * k, a // k, 0).reshape(-1).astype(np.int64)
    assignments = np.arange(tokens * k)
    combine = ((assignments % e) * slots + assignments // e).astype(np.int64)
    flat = net.reshape(h, scope, [tokens, c.hidden])
    rows = b.node("Gather", [flat, b.constant(scope, dispatch)], scope, axis=0)
    rows = net.reshape(rows, scope, [e, slots, c.hidden])
    out = net.reshape(_swiglu(b, rows, scope, w), scope, [e * slots, c.hidden])
    back = b.node("Gather", [out, b.constant(scope, combine)], scope, axis=0)
    back = net.reshape(back, scope, [net.batch, net.seq, k, c.hidden])
    last = b.constant(scope, np.array([-1], np.int64))
    mixed = b.node("Mul", [back, b.node("Unsqueeze", [weights, last], scope)], scope)
    axis = b.constant(scope, np.array([2], np.int64))
    return b.node("ReduceSum", [mixed, axis], scope, keepdims=0)
