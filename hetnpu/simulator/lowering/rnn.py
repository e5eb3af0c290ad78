"""LSTM, GRU and RNN as the chip runs them: one time step's cell, repeated per step and direction.

CANN runs ONNX's recurrent ops as one DynamicRNN/DynamicGRUV2 kernel that walks the sequence: per
step, the Cube multiplies ``[x_t, h]`` [B, I + H] by the stacked gate weights
[I + H, gates·H] and the Vector unit applies the gate equations. :func:`cell_graph` builds one
step of that as a small ONNX graph of ops the simulator already times (MatMul, Add, Sigmoid,
Tanh, Mul, Sub); :mod:`hetnpu.simulator.control` simulates one step and two consecutive
steps and charges the first step plus ``steps × directions - 1`` times the second (warm: the
weights stay in L2 between steps), all within the op's single kernel. The graph is a timing
skeleton: each gate slice is its own input of its size (the kernel reads it in place from the
gate buffer), so its numbers mean nothing.

Left out: peephole products (3·B·H multiplies and adds per LSTM step), non-default
activations (timed as the defaults), ``sequence_lens`` (every sequence runs full length), and
any overlap of one step's Vector work with the next step's Cube work; a step's input
projection is not hoisted out of the recurrence into one large MatMul.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper

from hetnpu.graph.cost_rnn import GATES, recurrent_shape
from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.onnx_io import load
from hetnpu.simulator.lowering.common import Unsupported

__all__ = ["RECURRENT_OPS", "cell_graph"]

RECURRENT_OPS = frozenset(GATES)


def _input(name: str, *shape: int) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, list(shape))


def cell_graph(graph: Graph, node: Node, unrolled: int = 1) -> tuple[Graph, int]:
    """(``unrolled`` consecutive time steps of ``node`` as a Graph, how many steps the op
    runs: T × directions).

    The steps share the weights (one initializer), so a simulation of two steps times the
    second with the weights already in L2, as the kernel's later steps find them.

    Raises
    ------
    Unsupported
        The node's input or weight shape is unknown.
    """
    s = recurrent_shape(graph, node)
    if s is None:
        raise Unsupported(f"{node.op_type} {node.name!r}: X or W has no known rank-3 shape")
    b, h, k = s.batch, s.hidden, s.input_size + s.hidden
    gates = GATES[node.op_type]
    inits = [helper.make_tensor("w", TensorProto.FLOAT, [k, gates * h], np.zeros(k * gates * h))]
    if s.has_bias:
        inits.append(helper.make_tensor("b", TensorProto.FLOAT, [gates * h], np.zeros(gates * h)))
    ew = _LSTM if node.op_type == "LSTM" else _GRU if node.op_type == "GRU" else _RNN
    inputs: list[onnx.ValueInfoProto] = []
    nodes: list[onnx.NodeProto] = []
    outputs: list[onnx.ValueInfoProto] = []
    for step in range(unrolled):
        at = f"_t{step}"
        inputs.append(_input(f"xh{at}", b, k))
        nodes.append(
            helper.make_node("MatMul", [f"xh{at}", "w"], [f"gates{at}"], name=f"projection{at}")
        )
        last = f"gates{at}"
        if s.has_bias:
            nodes.append(helper.make_node("Add", [last, "b"], [f"gates_b{at}"], name=f"bias{at}"))
            last = f"gates_b{at}"
        for op, ins, out in ew:
            names = [last if t == "@" else t + at for t in ins]
            for t, name in zip(ins, names, strict=True):
                if t.startswith("in_") and name not in {i.name for i in inputs}:
                    inputs.append(_input(name, b, h * _WIDE.get(t, 1)))
            nodes.append(helper.make_node(op, names, [out + at], name=out + at))
        outputs += [helper.make_empty_tensor_value_info(t) for t in (nodes[-1].output[0], last)]
    model = helper.make_model(
        helper.make_graph(nodes, f"{node.op_type}_cell", inputs, outputs, initializer=inits),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    return load(model), s.steps * s.directions


# (op, inputs, output); "@" is the gate projection, "in_*" a gate slice [B, H], or as many
# hidden widths as _WIDE says.
_WIDE = {"in_ifo": 3, "in_zr": 2}
_LSTM = (
    ("Sigmoid", ("in_ifo",), "ifo"),  # i, f, o
    ("Tanh", ("in_g",), "g"),
    ("Mul", ("in_f", "in_c"), "fc"),
    ("Mul", ("in_i", "g"), "ig"),
    ("Add", ("fc", "ig"), "c_next"),
    ("Tanh", ("c_next",), "tanh_c"),
    ("Mul", ("in_o", "tanh_c"), "h_next"),
)
_GRU = (
    ("Sigmoid", ("in_zr",), "zr"),  # z and r
    ("Mul", ("in_r", "in_hr"), "r_hr"),  # r ⊙ (h·Rh + Rbh)
    ("Add", ("in_xw", "r_hr"), "pre_n"),
    ("Tanh", ("pre_n",), "n"),
    ("Sub", ("in_h", "n"), "h_minus_n"),
    ("Mul", ("in_z", "h_minus_n"), "z_dh"),
    ("Add", ("n", "z_dh"), "h_next"),  # h' = n + z ⊙ (h - n) = (1 - z) ⊙ n + z ⊙ h
)
_RNN = (("Tanh", ("@",), "h_next"),)
