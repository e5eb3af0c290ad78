"""Small float models built in a test: the ONNX boilerplate around a list of nodes."""

from __future__ import annotations

from collections.abc import Sequence

import onnx
from onnx import TensorProto, helper

from hetnpu.graph import Graph, load


def float_graph(
    nodes: Sequence[onnx.NodeProto],
    inputs: Sequence[tuple[str, Sequence[int]]],
    outputs: Sequence[tuple[str, Sequence[int] | None]],
    initializers: Sequence[onnx.TensorProto] = (),
    name: str = "g",
) -> Graph:
    """``nodes`` as a loaded opset-17 model whose inputs and outputs are float tensors of the
    given (name, shape) pairs (an output's shape None: left to shape inference)."""
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        list(nodes),
        name,
        [vi(n, TensorProto.FLOAT, list(s)) for n, s in inputs],
        [vi(n, TensorProto.FLOAT, None if s is None else list(s)) for n, s in outputs],
        list(initializers),
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
