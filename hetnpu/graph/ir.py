"""The graph IR: ONNX nodes as a networkx DAG, tensors as frozen records.

A :class:`Graph` is built once by :func:`hetnpu.graph.load` and is read-only afterwards, so
every algorithm (costs, placement, lowering) can be a free function over it, as networkx's
algorithms are over a ``DiGraph`` they do not own. Nodes are ops; an edge ``a -> b`` carries
the names of the tensors ``a`` produces and ``b`` consumes. Besides tensors, a value may be any
of ONNX's other types (a sequence of tensors, an optional value); :attr:`Tensor.kind` says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import networkx as nx
import numpy as np
import onnx
from onnx import numpy_helper

__all__ = ["Graph", "Node", "Tensor", "type_kind", "type_string"]


@dataclass(frozen=True)
class Tensor:
    """A value flowing between ops.

    ``shape`` is ``None`` when even the rank is unknown; a ``None`` dim is unknown or symbolic
    (its name, if any, is in ``symbols`` at the same position).
    """

    name: str
    shape: tuple[int | None, ...] | None
    dtype: str
    """numpy dtype name (``"float32"``), or ``"undefined"`` when ONNX could not infer it."""
    elem_type: int
    """The ``onnx.TensorProto`` element type, kept for exporting exact value infos."""
    is_constant: bool
    """Known before run time: an initializer, a ``Constant`` output, or folded from those."""
    symbols: tuple[str | None, ...] = ()
    kind: str = "tensor"
    """``"tensor"``, or the ONNX value type it is instead: ``"sequence"``, ``"optional"``,
    ``"map"``, ``"sparse_tensor"`` or ``"opaque"``. Only tensors have a ``shape`` and a
    ``dtype`` here (the others have ``None`` and ``"undefined"``); their element types are in
    ``type_proto``."""
    type_proto: onnx.TypeProto | None = field(default=None, compare=False, repr=False)
    """The full ONNX type of a value that is no tensor (``None`` for tensors), kept for
    exporting it exactly."""

    @property
    def is_tensor(self) -> bool:
        return self.kind == "tensor"

    @property
    def type_str(self) -> str:
        """The type as ONNX and onnxruntime spell it: ``tensor(float)``, ``seq(tensor(int64))``,
        ``optional(seq(tensor(float)))``."""
        if self.type_proto is not None:
            return type_string(self.type_proto)
        if not self.elem_type:
            return "tensor(undefined)"
        return f"tensor({onnx.TensorProto.DataType.Name(self.elem_type).lower()})"

    @property
    def is_static(self) -> bool:
        return self.shape is not None and all(d is not None for d in self.shape)

    @property
    def size(self) -> int | None:
        """Number of elements, or ``None`` if the shape is not fully known."""
        if not self.is_static:
            return None
        return math.prod(self.shape)  # type: ignore[arg-type]

    @property
    def itemsize(self) -> int:
        try:
            return np.dtype(self.dtype).itemsize
        except TypeError:
            return 0

    @property
    def nbytes(self) -> int | None:
        size = self.size
        return None if size is None else size * self.itemsize


_KINDS = {
    "tensor_type": "tensor",
    "sequence_type": "sequence",
    "optional_type": "optional",
    "map_type": "map",
    "sparse_tensor_type": "sparse_tensor",
    "opaque_type": "opaque",
}


def type_kind(type_proto: onnx.TypeProto | None) -> str:
    """Which of ONNX's value types ``type_proto`` is (``"tensor"`` when it says nothing)."""
    which = type_proto.WhichOneof("value") if type_proto is not None else None
    return _KINDS.get(which or "tensor_type", "tensor")


def type_string(type_proto: onnx.TypeProto) -> str:
    """``type_proto`` in the spelling of ONNX's type constraints: ``seq(tensor(float))``."""
    which = type_proto.WhichOneof("value")
    if which == "sequence_type":
        return f"seq({type_string(type_proto.sequence_type.elem_type)})"
    if which == "optional_type":
        return f"optional({type_string(type_proto.optional_type.elem_type)})"
    if which == "map_type":
        key = onnx.TensorProto.DataType.Name(type_proto.map_type.key_type).lower()
        return f"map({key},{type_string(type_proto.map_type.value_type)})"
    if which in ("tensor_type", "sparse_tensor_type"):
        elem = getattr(type_proto, which).elem_type
        name = onnx.TensorProto.DataType.Name(elem).lower() if elem else "undefined"
        return f"{'sparse_tensor' if which == 'sparse_tensor_type' else 'tensor'}({name})"
    return "undefined" if which is None else which.removesuffix("_type")


@dataclass(frozen=True)
class Node:
    """One ONNX op. Control-flow ops keep their subgraphs inside ``proto`` and are opaque."""

    name: str
    op_type: str
    domain: str
    inputs: tuple[str, ...]
    """Input tensor names in ONNX order; ``""`` marks an omitted optional input."""
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any]
    implicit_inputs: tuple[str, ...]
    """Outer-scope tensors that this node's subgraphs read (If/Loop/Scan)."""
    index: int
    """Position in the model's (topologically sorted) node list."""
    is_constant: bool
    """Every output is a constant: the node folds away before run time."""
    proto: onnx.NodeProto = field(compare=False, repr=False)

    @property
    def has_subgraphs(self) -> bool:
        return bool(self.implicit_inputs) or any(
            a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
            for a in self.proto.attribute
        )

    @property
    def all_inputs(self) -> tuple[str, ...]:
        """Explicit then implicit inputs, without omitted optionals."""
        return tuple(t for t in self.inputs if t) + self.implicit_inputs


class Graph:
    """A loaded, shape-inferred ONNX model as a DAG of :class:`Node`.

    Build it with :func:`hetnpu.graph.load`; do not mutate it afterwards.

    Attributes
    ----------
    model : onnx.ModelProto
        The model after input binding, topological sorting, node naming and shape inference.
    dag : networkx.DiGraph
        Node names as vertices; edge attribute ``tensors`` lists the tensors along the edge.
    nodes : Mapping[str, Node]
        Every node, in the deterministic topological order.
    tensors : Mapping[str, Tensor]
        Every named value: graph inputs, initializers, node outputs.
    inputs, outputs : tuple[str, ...]
        Runtime inputs (initializers excluded) and graph outputs.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        nodes: list[Node],
        tensors: dict[str, Tensor],
        inputs: tuple[str, ...],
        outputs: tuple[str, ...],
        base_dir: str | None = None,
    ) -> None:
        self.model = model
        self.base_dir = base_dir
        """Folder that external-data initializers are relative to."""
        self.nodes: Mapping[str, Node] = MappingProxyType({n.name: n for n in nodes})
        self.tensors: Mapping[str, Tensor] = MappingProxyType(tensors)
        self.inputs = inputs
        self.outputs = outputs
        self.opsets: Mapping[str, int] = MappingProxyType(
            {o.domain or "": o.version for o in model.opset_import}
        )
        self._initializers = {t.name: t for t in model.graph.initializer}
        self._producer: dict[str, str] = {}
        self._consumers: dict[str, list[str]] = {}
        for node in nodes:
            for t in node.outputs:
                if t:
                    self._producer[t] = node.name
            for t in dict.fromkeys(node.all_inputs):
                self._consumers.setdefault(t, []).append(node.name)
        self.dag = nx.DiGraph()
        self.dag.add_nodes_from(n.name for n in nodes)
        for node in nodes:
            for t in dict.fromkeys(node.all_inputs):
                src = self._producer.get(t)
                if src is None:
                    continue
                if self.dag.has_edge(src, node.name):
                    self.dag.edges[src, node.name]["tensors"] += (t,)
                else:
                    self.dag.add_edge(src, node.name, tensors=(t,))

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def __repr__(self) -> str:
        return (
            f"Graph({self.model.graph.name!r}, nodes={len(self.nodes)}, "
            f"inputs={list(self.inputs)}, outputs={list(self.outputs)})"
        )

    def node(self, name: str) -> Node:
        return self.nodes[name]

    def producer(self, tensor: str) -> Node | None:
        """The node that produces ``tensor``; ``None`` for inputs and initializers."""
        name = self._producer.get(tensor)
        return None if name is None else self.nodes[name]

    def consumers(self, tensor: str) -> list[Node]:
        """Nodes reading ``tensor`` (explicitly or from a subgraph), in topological order."""
        return [self.nodes[n] for n in self._consumers.get(tensor, ())]

    def is_initializer(self, tensor: str) -> bool:
        return tensor in self._initializers

    def initializer(self, tensor: str) -> onnx.TensorProto | None:
        """The initializer proto, with external data loaded if the model keeps it outside."""
        proto = self._initializers.get(tensor)
        if proto is None or not onnx.external_data_helper.uses_external_data(proto):
            return proto
        loaded = onnx.TensorProto()
        loaded.CopyFrom(proto)
        onnx.external_data_helper.load_external_data_for_tensor(loaded, self.base_dir or ".")
        loaded.data_location = onnx.TensorProto.DEFAULT
        del loaded.external_data[:]
        return loaded

    def constant_value(self, tensor: str) -> np.ndarray | None:
        """The value of an initializer or a ``Constant`` output; ``None`` for anything else."""
        proto = self.initializer(tensor)
        if proto is not None:
            return numpy_helper.to_array(proto)
        node = self.producer(tensor)
        if node is not None and node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            attr = node.proto.attribute[0]
            if attr.name == "value":
                return numpy_helper.to_array(attr.t)
            return np.asarray(onnx.helper.get_attribute_value(attr))
        return None

    @property
    def batch(self) -> int:
        """The batch the model runs: dim 0 of its first input when that is a number (the dim
        ``--batch`` rebinds), else 1."""
        first = self.tensors[self.inputs[0]].shape if self.inputs else None
        return int(first[0]) if first and isinstance(first[0], int) and first[0] > 0 else 1

    def topo_order(self) -> list[str]:
        """Node names in the deterministic topological order (the model's sorted order)."""
        return list(self.nodes)
