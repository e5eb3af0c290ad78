"""The makespan of an assignment, by list scheduling: the one yardstick every strategy is scored by.

Each device runs one op at a time, in order of decreasing upward rank (a topological order
that serves the critical path first). An op starts when its device is free and every input
has arrived: an input produced on another device arrives a link transfer after its producer
finishes, and is copied once per destination device. Host inputs start on the CPU at time 0;
outputs end on the CPU. Constant-folded nodes cost nothing and their tensors are everywhere.

Left out: contention on links (transfers overlap each other freely) and insertion of an op
into an idle gap of its device (HEFT's insertion policy); both make this a slightly
pessimistic estimate on busy devices.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hetnpu.devices import names
from hetnpu.graph.ir import Graph, Node

__all__ = [
    "HOST",
    "CachedCosts",
    "CostModel",
    "Timeline",
    "Topology",
    "estimate_makespan",
    "list_schedule",
    "node_signature",
    "topology",
]

HOST = names.HOST
"""Where graph inputs start and outputs end."""


@runtime_checkable
class CostModel(Protocol):
    """What placement needs to know about time: op costs and tensor moves, in seconds."""

    def cost(self, graph: Graph, node: Node, device: str) -> float:
        """Seconds ``device`` takes to run ``node``."""
        ...

    def transfer(self, graph: Graph, tensor: str, src: str, dst: str) -> float:
        """Seconds to move tensor ``tensor`` (by name) from device ``src`` to ``dst``."""
        ...


class CachedCosts:
    """A memo over a :class:`CostModel` for one graph: each (node, device) and each
    (tensor, src, dst) is asked once, however often a strategy looks.

    A model whose op costs depend on nothing but what :func:`node_signature` captures may say
    so with a true ``by_signature`` attribute; then nodes of one signature are asked once.
    """

    def __init__(self, graph: Graph, model: CostModel) -> None:
        self.graph = graph
        self.model = model
        self._node: dict[tuple[str, str], float] = {}
        self._by_sig: dict[tuple[object, str], float] | None = (
            {} if getattr(model, "by_signature", False) else None
        )
        self._move: dict[tuple[str, str, str], float] = {}
        self.makespans: dict[frozenset[tuple[str, str]], float] = {}
        """Assignment -> estimated makespan: placement scores an assignment and the plan
        builder asks again for the same one."""

    def node(self, name: str, device: str) -> float:
        key = (name, device)
        value = self._node.get(key)
        if value is None:
            value = self._node[key] = self._ask(name, device)
        return value

    def _ask(self, name: str, device: str) -> float:
        node = self.graph.nodes[name]
        if node.is_constant:
            return 0.0
        shared = self._by_sig
        sig = None if shared is None else node_signature(self.graph, name)
        if sig is None:
            return float(self.model.cost(self.graph, node, device))
        value = shared.get((sig, device))
        if value is None:
            value = shared[(sig, device)] = float(self.model.cost(self.graph, node, device))
        return value

    def move(self, tensor: str, src: str, dst: str) -> float:
        if src == dst:
            return 0.0
        key = (tensor, src, dst)
        value = self._move.get(key)
        if value is None:
            value = float(self.model.transfer(self.graph, tensor, src, dst))
            self._move[key] = value
        return value


_SIGNATURES: weakref.WeakKeyDictionary[Graph, tuple[dict[str, object], dict[str, object]]] = (
    weakref.WeakKeyDictionary()
)


def node_signature(graph: Graph, name: str) -> tuple[object, ...] | None:
    """What a node is, without its name: op, attributes, and the dtype, shape and constness of
    each tensor it reads and writes (which inputs are one tensor, whether an output is read).

    Capability rules and analytical costs read nothing else, so nodes of one signature share
    their answers. ``None`` for constant nodes and nodes with subgraphs (their bodies would
    have to be compared too). Memoised per graph.
    """
    memo = _SIGNATURES.get(graph)
    if memo is None:
        memo = _SIGNATURES[graph] = ({}, {})
    nodes, tensors = memo
    if name in nodes:
        return nodes[name]  # type: ignore[return-value]
    node = graph.nodes[name]
    if node.is_constant or node.has_subgraphs:
        nodes[name] = None
        return None

    def tensor(t: str) -> object:
        found = tensors.get(t)
        if found is None:
            info = graph.tensors.get(t)
            found = tensors[t] = (
                ()
                if info is None
                else (info.dtype, info.elem_type, info.shape, info.symbols, info.is_constant)
            )
        return found

    sig = (
        node.op_type,
        node.domain,
        b"".join(a.SerializeToString() for a in node.proto.attribute),
        tuple(tensor(t) if t else None for t in node.inputs),
        tuple(node.inputs.index(t) for t in node.inputs),
        # Whether an output is read decides whether its shape must be static (on the NPU).
        tuple(
            (tensor(t), bool(graph.consumers(t)) or t in graph.outputs) if t else None
            for t in node.outputs
        ),
    )
    nodes[name] = sig
    return sig


def as_cached(graph: Graph, costs: CostModel | CachedCosts) -> CachedCosts:
    """``costs`` itself if it is already a memo for ``graph``, else a new memo over it."""
    if isinstance(costs, CachedCosts) and costs.graph is graph:
        return costs
    return CachedCosts(graph, costs.model if isinstance(costs, CachedCosts) else costs)


def runtime_inputs(graph: Graph, node: Node) -> list[str]:
    """The tensors ``node`` reads that exist only at run time (no constants), each once."""
    return [t for t in dict.fromkeys(node.all_inputs) if not graph.tensors[t].is_constant]


@dataclass(frozen=True)
class Topology:
    """The run-time data flow between a graph's non-constant nodes, worked out once per graph
    (every strategy, the plan builder and the list scheduler walk it)."""

    order: tuple[str, ...]
    """Non-constant nodes in graph (topological) order."""
    inputs: Mapping[str, tuple[str, ...]]
    """Node -> the run-time tensors it reads, each once."""
    outputs: Mapping[str, tuple[tuple[str, bool, tuple[str, ...]], ...]]
    """Node -> (tensor, is a graph output, the nodes reading it) for each tensor it writes."""
    preds: Mapping[str, tuple[str, ...]]
    """Node -> the nodes producing its run-time inputs, each once."""


_TOPOLOGY: weakref.WeakKeyDictionary[Graph, Topology] = weakref.WeakKeyDictionary()


def topology(graph: Graph) -> Topology:
    """The :class:`Topology` of ``graph`` (computed on first use, then kept with the graph)."""
    found = _TOPOLOGY.get(graph)
    if found is not None:
        return found
    graph_outputs = set(graph.outputs)
    order, inputs, outputs, preds = [], {}, {}, {}
    for node in graph:
        if node.is_constant:
            continue
        name = node.name
        order.append(name)
        ins = tuple(runtime_inputs(graph, node))
        inputs[name] = ins
        producers = (graph.producer(t) for t in ins)
        preds[name] = tuple(dict.fromkeys(p.name for p in producers if p is not None))
        outputs[name] = tuple(
            (t, t in graph_outputs, tuple(c.name for c in graph.consumers(t) if not c.is_constant))
            for t in node.outputs
            if t
        )
    found = _TOPOLOGY[graph] = Topology(tuple(order), inputs, outputs, preds)
    return found


@dataclass(frozen=True)
class Timeline:
    """The list schedule of an assignment: per-node start and finish times in seconds."""

    start: Mapping[str, float]
    finish: Mapping[str, float]
    makespan: float


def upward_ranks(
    graph: Graph, assignment: Mapping[str, str], costs: CachedCosts
) -> dict[str, float]:
    """Longest remaining path from each node to the end, with the assignment's costs."""
    topo = topology(graph)
    rank: dict[str, float] = {}
    move, node_cost = costs.move, costs.node
    for name in reversed(topo.order):
        dev = assignment[name]
        tail = 0.0
        for t, is_output, consumers in topo.outputs[name]:
            if is_output:
                tail = max(tail, move(t, dev, HOST))
            for c in consumers:
                tail = max(tail, move(t, dev, assignment[c]) + rank[c])
        rank[name] = node_cost(name, dev) + tail
    return rank


def list_schedule(
    graph: Graph, assignment: Mapping[str, str], cost_model: CostModel | CachedCosts
) -> Timeline:
    """Schedule ``assignment`` (node name -> device, every non-constant node) and time it.

    Raises
    ------
    KeyError
        A non-constant node has no device (a bug in the caller, not a user error).
    """
    costs = as_cached(graph, cost_model)
    topo = topology(graph)
    rank = upward_ranks(graph, assignment, costs)
    position = {n: i for i, n in enumerate(topo.order)}
    # Ties go to the earlier node: with zero-cost ops a producer and its consumer can tie.
    order = sorted(rank, key=lambda n: (-rank[n], position[n]))
    free: dict[str, float] = {}
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    arrival: dict[tuple[str, str], float] = {}
    producer_device: dict[str, str] = {}
    producer_name: dict[str, str] = {}

    def arrive(t: str, dev: str) -> float:
        key = (t, dev)
        when = arrival.get(key)
        if when is None:
            prod = producer_name.get(t)
            if prod is None:  # a host input
                when = costs.move(t, HOST, dev)
            else:
                when = finish[prod] + costs.move(t, producer_device[t], dev)
            arrival[key] = when
        return when

    for name in order:
        dev = assignment[name]
        ready = max((arrive(t, dev) for t in topo.inputs[name]), default=0.0)
        s = max(ready, free.get(dev, 0.0))
        f = s + costs.node(name, dev)
        start[name], finish[name], free[dev] = s, f, f
        for t, _, _ in topo.outputs[name]:
            producer_device[t] = dev
            producer_name[t] = name
            arrival[(t, dev)] = f
    end = max(finish.values(), default=0.0)
    for t in graph.outputs:
        if not graph.tensors[t].is_constant:
            end = max(end, arrive(t, HOST))
    return Timeline(start, finish, end)


def estimate_makespan(
    graph: Graph, assignment: Mapping[str, str], cost_model: CostModel | CachedCosts
) -> float:
    """Estimated end-to-end seconds of ``assignment`` under ``cost_model``.

    Parameters
    ----------
    graph
        The loaded graph.
    assignment
        Device of every non-constant node (constant nodes may be present; they are ignored).
    cost_model
        Op and transfer costs, e.g. :class:`hetnpu.devices.roofline.RooflineCostModel`.

    Returns
    -------
    float
        Seconds from the host inputs' availability to the last output's arrival on the host.
    """
    costs = as_cached(graph, cost_model)
    key = frozenset(assignment.items())
    found = costs.makespans.get(key)
    if found is None:
        if len(costs.makespans) >= 16:
            costs.makespans.clear()
        found = costs.makespans[key] = list_schedule(graph, assignment, costs).makespan
    return found
