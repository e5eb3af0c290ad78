"""Whole-model figures for ``hetnpu info``: parameters, work, memory, op histogram."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from hetnpu.graph.control import ControlOptions
from hetnpu.graph.cost import graph_cost
from hetnpu.graph.ir import Graph

__all__ = ["ModelStats", "model_stats", "peak_activation_bytes"]


@dataclass(frozen=True)
class ModelStats:
    """Summary figures of a loaded model."""

    name: str
    nodes: int
    parameters: int
    """Elements of the constant tensors ops read (weights, folded constants), excluding shapes."""
    parameter_bytes: int
    macs: int
    flops: int
    activation_bytes: int
    """Bytes of every non-constant tensor the model computes (each counted once)."""
    peak_activation_bytes: int
    """Largest live set of activations when ops run one at a time in topological order."""
    op_histogram: dict[str, int]
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    opsets: dict[str, int]

    def to_dict(
        self, graph: Graph | None = None, *, control: ControlOptions | None = None
    ) -> dict[str, Any]:
        """JSON-ready form; with ``graph``, per-node details are included (costed with the
        same ``control`` choices as the totals)."""
        out: dict[str, Any] = {
            "name": self.name,
            "nodes": self.nodes,
            "parameters": self.parameters,
            "parameter_bytes": self.parameter_bytes,
            "macs": self.macs,
            "flops": self.flops,
            "activation_bytes": self.activation_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "op_histogram": self.op_histogram,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "opsets": self.opsets,
        }
        if graph is not None:
            costs = graph_cost(graph, control=control)
            out["node_list"] = [
                {
                    "name": n.name,
                    "op_type": n.op_type,
                    "domain": n.domain,
                    "inputs": [t for t in n.inputs],
                    "outputs": [t for t in n.outputs],
                    "output_shapes": [_shape(graph, t) for t in n.outputs if t],
                    "constant": n.is_constant,
                    "macs": costs[n.name].macs,
                    "flops": costs[n.name].flops,
                    "bytes_read": costs[n.name].bytes_read,
                    "bytes_written": costs[n.name].bytes_written,
                    "kind": costs[n.name].kind,
                }
                for n in graph
            ]
        return out


def _shape(graph: Graph, tensor: str) -> list[int | str | None] | None:
    t = graph.tensors.get(tensor)
    if t is None or t.shape is None:
        return None
    return [
        d if d is not None else s
        for d, s in zip(t.shape, t.symbols or (None,) * len(t.shape), strict=True)
    ]


def _io(graph: Graph, names: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    return {n: {"shape": _shape(graph, n), "dtype": graph.tensors[n].dtype} for n in names}


def peak_activation_bytes(graph: Graph) -> int:
    """Peak bytes of live non-constant tensors, running nodes in topological order.

    A tensor is live from its producer (or from the start, for inputs) until its last consumer
    has run; graph outputs stay live to the end. Unknown sizes count as zero.
    """
    last_use: dict[str, int] = {}
    order = list(graph)
    for i, node in enumerate(order):
        for t in node.all_inputs:
            last_use[t] = i
    end = len(order)
    for t in graph.outputs:
        last_use[t] = end

    def size(t: str) -> int:
        tensor = graph.tensors.get(t)
        if tensor is None or tensor.is_constant:
            return 0
        return tensor.nbytes or 0

    live = sum(size(t) for t in graph.inputs)
    peak = live
    frees: dict[int, int] = Counter()
    for t in graph.inputs:
        frees[last_use.get(t, -1)] += size(t)
    for i, node in enumerate(order):
        for t in node.outputs:
            if t:
                live += size(t)
                frees[last_use.get(t, i)] += size(t)
        peak = max(peak, live)
        live -= frees.pop(i, 0)
    return peak


def model_stats(graph: Graph, *, control: ControlOptions | None = None) -> ModelStats:
    """Compute :class:`ModelStats` for ``graph`` (``control``: If/Loop/Scan choices, as
    :func:`hetnpu.graph.cost.graph_cost` takes them)."""
    costs = graph_cost(graph, control=control)
    weights: set[str] = set()
    for node in graph:
        if node.is_constant:
            continue
        for t in node.inputs:
            tensor = graph.tensors.get(t) if t else None
            # Integer constants are shapes, axes and indices, not learned parameters.
            if (
                tensor is not None
                and tensor.is_constant
                and tensor.dtype.startswith(("float", "bfloat"))
            ):
                weights.add(t)
    params = sum(graph.tensors[t].size or 0 for t in weights)
    param_bytes = sum(graph.tensors[t].nbytes or 0 for t in weights)
    activations = sum(
        t.nbytes or 0
        for t in graph.tensors.values()
        if not t.is_constant and t.name not in graph.inputs
    )
    hist = Counter(n.op_type for n in graph if not n.is_constant)
    return ModelStats(
        name=graph.model.graph.name,
        nodes=len(graph),
        parameters=params,
        parameter_bytes=param_bytes,
        macs=sum(c.macs for c in costs.values()),
        flops=sum(c.flops for c in costs.values()),
        activation_bytes=activations,
        peak_activation_bytes=peak_activation_bytes(graph),
        op_histogram=dict(sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
        inputs=_io(graph, graph.inputs),
        outputs=_io(graph, graph.outputs),
        opsets=dict(graph.opsets),
    )
