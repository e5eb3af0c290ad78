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

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hetnpu.graph.ir import Graph, Node

__all__ = ["HOST", "CachedCosts", "CostModel", "Timeline", "estimate_makespan", "list_schedule"]

HOST = "cpu"
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
    (tensor, src, dst) is asked once, however often a strategy looks."""

    def __init__(self, graph: Graph, model: CostModel) -> None:
        self.graph = graph
        self.model = model
        self._node: dict[tuple[str, str], float] = {}
        self._move: dict[tuple[str, str, str], float] = {}

    def node(self, name: str, device: str) -> float:
        key = (name, device)
        value = self._node.get(key)
        if value is None:
            node = self.graph.nodes[name]
            value = 0.0 if node.is_constant else float(self.model.cost(self.graph, node, device))
            self._node[key] = value
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


def as_cached(graph: Graph, costs: CostModel | CachedCosts) -> CachedCosts:
    """``costs`` itself if it is already a memo for ``graph``, else a new memo over it."""
    if isinstance(costs, CachedCosts) and costs.graph is graph:
        return costs
    return CachedCosts(graph, costs.model if isinstance(costs, CachedCosts) else costs)


def runtime_inputs(graph: Graph, node: Node) -> list[str]:
    """The tensors ``node`` reads that exist only at run time (no constants), each once."""
    return [t for t in dict.fromkeys(node.all_inputs) if not graph.tensors[t].is_constant]


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
    rank: dict[str, float] = {}
    outputs = set(graph.outputs)
    for name in reversed(graph.topo_order()):
        node = graph.nodes[name]
        if node.is_constant:
            continue
        dev = assignment[name]
        tail = 0.0
        for t in node.outputs:
            if not t:
                continue
            if t in outputs:
                tail = max(tail, costs.move(t, dev, HOST))
            for c in graph.consumers(t):
                if c.name in rank:
                    tail = max(tail, costs.move(t, dev, assignment[c.name]) + rank[c.name])
        rank[name] = costs.node(name, dev) + tail
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
    rank = upward_ranks(graph, assignment, costs)
    # Ties go to the earlier node: with zero-cost ops a producer and its consumer can tie.
    order = sorted(rank, key=lambda n: (-rank[n], graph.nodes[n].index))
    free: dict[str, float] = {}
    start: dict[str, float] = {}
    finish: dict[str, float] = {}
    arrival: dict[tuple[str, str], float] = {}
    producer_device: dict[str, str] = {}

    def arrive(t: str, dev: str) -> float:
        key = (t, dev)
        when = arrival.get(key)
        if when is None:
            prod = graph.producer(t)
            if prod is None:  # a host input
                when = costs.move(t, HOST, dev)
            else:
                src = producer_device[t]
                when = finish[prod.name] + costs.move(t, src, dev)
            arrival[key] = when
        return when

    for name in order:
        node = graph.nodes[name]
        dev = assignment[name]
        ready = max((arrive(t, dev) for t in runtime_inputs(graph, node)), default=0.0)
        s = max(ready, free.get(dev, 0.0))
        f = s + costs.node(name, dev)
        start[name], finish[name], free[dev] = s, f, f
        for t in node.outputs:
            if t:
                producer_device[t] = dev
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
    return list_schedule(graph, assignment, cost_model).makespan
