"""The work of ONNX's recurrent ops: LSTM, GRU and RNN.

Counting conventions (those of :mod:`hetnpu.graph.cost`, applied per time step):

- **MACs**: every step of every direction multiplies the input ``x_t`` [B, I] by ``Wᵀ`` and the
  state ``h`` [B, H] by ``Rᵀ``, one column block per gate: ``dirs·T·B·gates·H·(I + H)``, with
  4 gates for LSTM, 3 for GRU and 1 for RNN.
- **FLOPs**: 2 per MAC, plus per hidden unit and step the element-wise work of the ONNX
  equations with their default activations: adding the two projections (and ``Wb + Rb`` when
  ``B`` is given) per gate, each activation (Sigmoid as 3, Tanh as 1, as in
  ``ELEMENTWISE_FLOPS``), and the state update (LSTM ``c' = f⊙c + i⊙g``, ``h' = o⊙tanh(c')``,
  with peepholes ``P`` 3 more multiplies and adds; GRU ``h' = (1 - z)⊙h̃ + z⊙h`` and the reset
  product). Non-default activations are counted as their defaults.
- ``T`` is ``X``'s time dim (dim 0, or dim 1 when ``layout = 1``); ``sequence_lens`` is ignored
  (every sequence counts as full length, an upper bound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from hetnpu.graph.ir import Graph, Node

__all__ = [
    "GATES",
    "RecurrentShape",
    "recurrent_flops",
    "recurrent_macs",
    "recurrent_shape",
    "rnn_work",
]

GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}
"""Gate blocks (column blocks of W and R) of each recurrent op."""

_SIGMOID, _TANH = 3, 1  # ELEMENTWISE_FLOPS["Sigmoid"], ["Tanh"]


@dataclass(frozen=True)
class RecurrentShape:
    """The sizes a recurrent op's work follows from."""

    directions: int
    steps: int
    batch: int
    input_size: int
    hidden: int
    has_bias: bool
    has_peepholes: bool


def _dims(graph: Graph, name: str) -> tuple[int, ...] | None:
    t = graph.tensors.get(name) if name else None
    if t is None or t.shape is None:
        return None
    return tuple(1 if d is None else d for d in t.shape)


def recurrent_shape(graph: Graph, node: Node) -> RecurrentShape | None:
    """Sizes of an LSTM/GRU/RNN node; ``None`` when ``X`` or ``W`` has no known rank-3 shape."""
    x, w = _dims(graph, node.inputs[0]), _dims(graph, node.inputs[1])
    if x is None or w is None or len(x) != 3 or len(w) != 3:
        return None
    batch_major = node.attrs.get("layout", 0) == 1
    steps, batch = (x[1], x[0]) if batch_major else (x[0], x[1])
    gates = GATES[node.op_type]
    hidden = node.attrs.get("hidden_size") or w[1] // gates
    has = lambda i: len(node.inputs) > i and bool(node.inputs[i])  # noqa: E731
    return RecurrentShape(
        directions=w[0],
        steps=steps,
        batch=batch,
        input_size=x[2],
        hidden=hidden,
        has_bias=has(3),
        has_peepholes=node.op_type == "LSTM" and has(7),
    )


def recurrent_macs(s: RecurrentShape, op_type: str) -> int:
    """``dirs·T·B·gates·H·(I + H)``."""
    per_step = s.batch * GATES[op_type] * s.hidden * (s.input_size + s.hidden)
    return s.directions * s.steps * per_step


def recurrent_flops(s: RecurrentShape, op_type: str) -> int:
    """2 per MAC plus the element-wise work of the gate equations (module docstring)."""
    sums = 1 + 2 * s.has_bias  # x·W + h·R (+ Wb + Rb)
    if op_type == "LSTM":
        per_unit = 4 * sums + 3 * _SIGMOID + 2 * _TANH + 3 + 1 + 6 * s.has_peepholes
    elif op_type == "GRU":
        per_unit = 3 * sums + 2 * _SIGMOID + _TANH + 1 + 4
    else:
        per_unit = sums + _TANH
    units = s.directions * s.steps * s.batch * s.hidden
    return 2 * recurrent_macs(s, op_type) + units * per_unit


def rnn_work(graph: Graph, node: Node) -> tuple[int, int]:
    """(MACs, FLOPs) of a recurrent node, zeros when its shapes are unknown."""
    s = recurrent_shape(graph, node)
    if s is None or math.prod((s.steps, s.batch, s.hidden)) == 0:
        return 0, 0
    return recurrent_macs(s, node.op_type), recurrent_flops(s, node.op_type)
