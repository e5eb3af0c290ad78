"""``heft``: Heterogeneous Earliest Finish Time (Topcuoglu, Hariri and Wu, 2002).

Nodes are visited by decreasing upward rank (the longest path to the end, with each node's
cost averaged over the devices allowed to run it and each edge's transfer averaged over the
device pairs), and each goes to the allowed device where it would finish first, counting the
transfers its inputs need and, for a graph output, the copy back to the host. So a supported
op stays on the CPU when moving its data costs more than the accelerator saves.

Devices are compared with PEFT's lookahead by default (see :func:`place_heft`). HEFT times
its choices with its own schedule, not the list schedule every strategy is scored by
(:mod:`hetnpu.scheduler.evaluate`), and on big graphs that can make its assignment score
worse than the greedy ``capability`` one; :func:`hetnpu.scheduler.placement.place` then keeps
the greedy one, so ``heft`` never scores worse than ``capability``.

Left out: HEFT's insertion policy (an op never fills an idle gap before its device's last op),
which keeps placement linear in the graph size and matches :mod:`hetnpu.scheduler.evaluate`.
"""

from __future__ import annotations

from hetnpu.scheduler.evaluate import HOST, CachedCosts, topology
from hetnpu.scheduler.placement.common import Context, Placement, cpu_fallbacks

__all__ = ["cost_table", "mean_upward_ranks", "optimistic_costs", "place_heft"]


def cost_table(ctx: Context, costs: CachedCosts) -> dict[str, dict[str, float]]:
    """Node -> candidate device -> op cost, asked once: the passes below read each entry
    several times, and a dict lookup costs a fraction of a memoised call."""
    node_cost = costs.node
    return {n: {d: node_cost(n, d) for d in ds} for n, ds in ctx.candidates.items()}


def mean_upward_ranks(
    ctx: Context, costs: CachedCosts, table: dict[str, dict[str, float]] | None = None
) -> dict[str, float]:
    """Upward rank of each non-constant node with device-averaged costs."""
    topo = topology(ctx.graph)
    cands = ctx.candidates
    move = costs.move
    table = cost_table(ctx, costs) if table is None else table
    rank: dict[str, float] = {}
    # A tensor's mean move depends only on the two candidate sets, and consumers share both.
    mean_move: dict[tuple[str, tuple[str, ...], tuple[str, ...]], float] = {}
    for name in reversed(topo.order):
        mine = cands[name]
        own = sum(table[name].values()) / len(mine)
        tail = 0.0
        for t, is_output, consumers in topo.outputs[name]:
            if is_output:
                tail = max(tail, sum(move(t, d, HOST) for d in mine) / len(mine))
            for c in consumers:
                theirs = cands[c]
                key = (t, mine, theirs)
                m = mean_move.get(key)
                if m is None:
                    total = sum(move(t, a, b) for a in mine for b in theirs)
                    m = mean_move[key] = total / (len(mine) * len(theirs))
                tail = max(tail, m + rank[c])
        rank[name] = own + tail
    return rank


def optimistic_costs(
    ctx: Context, costs: CachedCosts, table: dict[str, dict[str, float]] | None = None
) -> dict[str, dict[str, float]]:
    """PEFT's optimistic cost table: ``oct[n][d]`` is the shortest time from ``n`` finishing on
    ``d`` to the end, each successor on its best device, with the transfers that choice needs.
    """
    topo = topology(ctx.graph)
    cands = ctx.candidates
    move = costs.move
    cost = cost_table(ctx, costs) if table is None else table
    octs: dict[str, dict[str, float]] = {}
    for name in reversed(topo.order):
        row = {}
        outs = topo.outputs[name]
        for d in cands[name]:
            worst = 0.0
            for t, is_output, consumers in outs:
                if is_output:
                    worst = max(worst, move(t, d, HOST))
                for c in consumers:
                    after, own = octs[c], cost[c]
                    best = min(after[e] + own[e] + move(t, d, e) for e in cands[c])
                    worst = max(worst, best)
            row[d] = worst
        octs[name] = row
    return octs


def place_heft(ctx: Context, *, lookahead: bool = True) -> Placement:
    """Place by HEFT; ties between devices go to the one listed first.

    With ``lookahead`` a device is judged by its earliest finish time plus the optimistic
    cost of the rest of the graph from there (PEFT, Arabnejad and Barbosa, 2014), so a node is
    not moved where its successors would pay transfers to get its result back.
    """
    if ctx.costs is None:
        raise ValueError("heft needs a cost model")
    costs = ctx.costs
    move = costs.move
    topo = topology(ctx.graph)
    table = cost_table(ctx, costs)
    rank = mean_upward_ranks(ctx, costs, table)
    ahead = optimistic_costs(ctx, costs, table) if lookahead else None
    position = {n: i for i, n in enumerate(topo.order)}
    order = sorted(rank, key=lambda n: (-rank[n], position[n]))
    assignment: dict[str, str] = {}
    finish: dict[str, float] = {}
    free: dict[str, float] = {}
    arrival: dict[tuple[str, str], float] = {}
    producer: dict[str, str] = {}

    def arrive(t: str, dev: str) -> float:
        when = arrival.get((t, dev))
        if when is not None:
            return when
        prod = producer.get(t)
        if prod is None:
            return move(t, HOST, dev)
        return finish[prod] + move(t, assignment[prod], dev)

    for name in order:
        inputs = topo.inputs[name]
        outs = topo.outputs[name]
        best: tuple[float, float, str] | None = None
        own = table[name]
        for dev in ctx.candidates[name]:
            ready = max((arrive(t, dev) for t in inputs), default=0.0)
            eft = max(ready, free.get(dev, 0.0)) + own[dev]
            if ahead is not None:
                rest = ahead[name][dev]
            else:  # judge an output-producing node by when its result is back on the host
                rest = max((move(t, dev, HOST) for t, is_out, _ in outs if is_out), default=0.0)
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
        for t, _, _ in outs:
            producer[t] = name
            arrival[(t, dev)] = eft
    return Placement(assignment, cpu_fallbacks(ctx, assignment))
