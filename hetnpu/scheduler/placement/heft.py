"""``heft``: Heterogeneous Earliest Finish Time (Topcuoglu, Hariri and Wu, 2002).

Nodes are visited by decreasing upward rank (the longest path to the end, with each node's
cost averaged over the devices allowed to run it and each edge's transfer averaged over the
device pairs), and each goes to the allowed device where it would finish first, counting the
transfers its inputs need and, for a graph output, the copy back to the host. So a supported
op stays on the CPU when moving its data costs more than the accelerator saves.

Devices are compared with PEFT's lookahead by default (see :func:`place_heft`).

Left out: HEFT's insertion policy (an op never fills an idle gap before its device's last op),
which keeps placement linear in the graph size and matches :mod:`hetnpu.scheduler.evaluate`.
"""

from __future__ import annotations

from hetnpu.scheduler.evaluate import HOST, CachedCosts, runtime_inputs
from hetnpu.scheduler.placement.common import Context, Placement, cpu_fallbacks

__all__ = ["mean_upward_ranks", "optimistic_costs", "place_heft"]


def mean_upward_ranks(ctx: Context, costs: CachedCosts) -> dict[str, float]:
    """Upward rank of each non-constant node with device-averaged costs."""
    graph = ctx.graph
    outputs = set(graph.outputs)
    rank: dict[str, float] = {}
    for name in reversed(graph.topo_order()):
        if name not in ctx.candidates:
            continue
        mine = ctx.candidates[name]
        own = sum(costs.node(name, d) for d in mine) / len(mine)
        tail = 0.0
        for t in graph.nodes[name].outputs:
            if not t:
                continue
            if t in outputs:
                tail = max(tail, sum(costs.move(t, d, HOST) for d in mine) / len(mine))
            for c in graph.consumers(t):
                if c.name not in rank:
                    continue
                theirs = ctx.candidates[c.name]
                move = sum(costs.move(t, a, b) for a in mine for b in theirs)
                tail = max(tail, move / (len(mine) * len(theirs)) + rank[c.name])
        rank[name] = own + tail
    return rank


def optimistic_costs(ctx: Context, costs: CachedCosts) -> dict[str, dict[str, float]]:
    """PEFT's optimistic cost table: ``oct[n][d]`` is the shortest time from ``n`` finishing on
    ``d`` to the end, each successor on its best device, with the transfers that choice needs.
    """
    graph = ctx.graph
    outputs = set(graph.outputs)
    table: dict[str, dict[str, float]] = {}
    for name in reversed(graph.topo_order()):
        if name not in ctx.candidates:
            continue
        node = graph.nodes[name]
        row = {}
        for d in ctx.candidates[name]:
            worst = 0.0
            for t in node.outputs:
                if not t:
                    continue
                if t in outputs:
                    worst = max(worst, costs.move(t, d, HOST))
                for c in graph.consumers(t):
                    if c.name in table:
                        best = min(
                            table[c.name][e] + costs.node(c.name, e) + costs.move(t, d, e)
                            for e in ctx.candidates[c.name]
                        )
                        worst = max(worst, best)
            row[d] = worst
        table[name] = row
    return table


def place_heft(ctx: Context, *, lookahead: bool = True) -> Placement:
    """Place by HEFT; ties between devices go to the one listed first.

    With ``lookahead`` a device is judged by its earliest finish time plus the optimistic
    cost of the rest of the graph from there (PEFT, Arabnejad and Barbosa, 2014), so a node is
    not moved where its successors would pay transfers to get its result back.
    """
    if ctx.costs is None:
        raise ValueError("heft needs a cost model")
    costs = ctx.costs
    graph = ctx.graph
    outputs = set(graph.outputs)
    rank = mean_upward_ranks(ctx, costs)
    ahead = optimistic_costs(ctx, costs) if lookahead else None
    order = sorted(rank, key=lambda n: (-rank[n], graph.nodes[n].index))
    assignment: dict[str, str] = {}
    finish: dict[str, float] = {}
    free: dict[str, float] = {}
    arrival: dict[tuple[str, str], float] = {}

    def arrive(t: str, dev: str) -> float:
        when = arrival.get((t, dev))
        if when is not None:
            return when
        prod = graph.producer(t)
        if prod is None:
            return costs.move(t, HOST, dev)
        return finish[prod.name] + costs.move(t, assignment[prod.name], dev)

    for name in order:
        node = graph.nodes[name]
        inputs = runtime_inputs(graph, node)
        best: tuple[float, float, str] | None = None
        for dev in ctx.candidates[name]:
            ready = max((arrive(t, dev) for t in inputs), default=0.0)
            eft = max(ready, free.get(dev, 0.0)) + costs.node(name, dev)
            if ahead is not None:
                rest = ahead[name][dev]
            else:  # judge an output-producing node by when its result is back on the host
                rest = max(
                    (costs.move(t, dev, HOST) for t in node.outputs if t in outputs), default=0.0
                )
            key = (eft + rest, eft, dev)
            if best is None or key[:2] < best[:2]:
                best = key
        assert best is not None  # candidates are never empty (make_context guarantees it)
        _, eft, dev = best
        assignment[name] = dev
        finish[name] = eft
        free[dev] = eft
        for t in inputs:
            arrival.setdefault((t, dev), arrive(t, dev))
        for t in node.outputs:
            if t:
                arrival[(t, dev)] = eft
    return Placement(assignment, cpu_fallbacks(ctx, assignment))
