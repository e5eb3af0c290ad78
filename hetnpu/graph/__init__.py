"""ONNX models as a graph IR: loading, exporting node sets, and per-node work estimates."""

from hetnpu.graph._check import WEIGHTS_KEY, weights_absent
from hetnpu.graph.ir import Graph, Node, Tensor
from hetnpu.graph.onnx_io import as_graph, extract, load

__all__ = [
    "WEIGHTS_KEY",
    "Graph",
    "Node",
    "Tensor",
    "as_graph",
    "extract",
    "load",
    "weights_absent",
]
