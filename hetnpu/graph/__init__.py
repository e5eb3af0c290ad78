"""ONNX models as a graph IR: loading, exporting node sets, and per-node work estimates."""

from hetnpu.graph.ir import Graph, Node, Tensor
from hetnpu.graph.onnx_io import as_graph, extract, load

__all__ = ["Graph", "Node", "Tensor", "as_graph", "extract", "load"]
