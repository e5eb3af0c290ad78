"""``exact``: the assignment with the smallest estimated makespan, by branch and bound.

The reference the other strategies are measured against, for graphs of up to
:data:`MAX_NODES` non-constant nodes. Nodes are assigned in topological order; a partial
assignment is dropped as soon as a lower bound on every completion reaches the best makespan
found so far (initially the better of ``heft`` and ``capability``). The bounds:

- path: a node's earliest finish (its inputs' arrival, transfers included, plus its cost)
  plus the cheapest possible remaining path after it;
- load: each device runs its ops one at a time, so the makespan is at least its busy time,
  and at least the total work spread over all devices.

Both hold for :func:`hetnpu.scheduler.evaluate.estimate_makespan`'s list schedule, which
scores each complete assignment, so the result is optimal for that objective.
"""

from __future__ import annotations

from hetnpu.errors import ConfigError, ScheduleError
from hetnpu.scheduler.evaluate import HOST, CachedCosts, estimate_makespan, runtime_inputs
from hetnpu.scheduler.placement.common import Context, Placement, cpu_fallbacks

__all__ = ["MAX_EXPANSIONS", "MAX_NODES", "place_exact"]

MAX_NODES = 25
"""Largest number of non-constant nodes ``exact`` accepts."""
MAX_EXPANSIONS = 2_000_000
"""Search steps before giving up: a bound on run time, reported rather than silently cut."""


def place_exact(ctx: Context, incumbents: list[dict[str, str]]) -> Placement:
    """Search every assignment of the allowed devices; ``incumbents`` seed the best-so-far.

    Raises
    ------
    ConfigError
        The graph has more than :data:`MAX_NODES` non-constant nodes.
    ScheduleError
        The search needed more than :data:`MAX_EXPANSIONS` steps.
    """
    graph = ctx.graph
    names = [n for n in graph.topo_order() if n in ctx.candidates]
    if len(names) > MAX_NODES:
        raise ConfigError(
            f"strategy 'exact' handles at most {MAX_NODES} non-constant nodes; "
            f"{graph.model.graph.name!r} has {len(names)} (use 'heft')"
        )
    if ctx.costs is None:
        raise ValueError("exact needs a cost model")
    costs: CachedCosts = ctx.costs
    outputs = set(graph.outputs)
    n_devices = len({d for c in ctx.candidates.values() for d in c})

    def out_move(name: str, dev: str) -> float:
        node = graph.nodes[name]
        return max((costs.move(t, dev, HOST) for t in node.outputs if t in outputs), default=0.0)

    succs = {
        n: sorted({c.name for t in graph.nodes[n].outputs if t for c in graph.consumers(t)})
        for n in names
    }
    tail: dict[str, float] = {}
    for n in reversed(names):
        after = max((tail[s] for s in succs[n]), default=0.0)
        tail[n] = min(costs.node(n, d) + max(out_move(n, d), after) for d in ctx.candidates[n])
    after_tail = {n: max((tail[s] for s in succs[n]), default=0.0) for n in names}
    min_cost = {n: min(costs.node(n, d) for d in ctx.candidates[n]) for n in names}
    rest_work = [0.0] * (len(names) + 1)
    for i in range(len(names) - 1, -1, -1):
        rest_work[i] = rest_work[i + 1] + min_cost[names[i]]

    best_ms = float("inf")
    best: dict[str, str] = {}
    for inc in incumbents:
        ms = estimate_makespan(graph, inc, costs)
        if ms < best_ms:
            best_ms, best = ms, dict(inc)

    assignment: dict[str, str] = {}
    head: dict[str, float] = {}
    load: dict[str, float] = {}
    steps = 0

    def earliest_finish(name: str, dev: str) -> float:
        ready = 0.0
        for t in runtime_inputs(graph, graph.nodes[name]):
            prod = graph.producer(t)
            if prod is None:
                ready = max(ready, costs.move(t, HOST, dev))
            else:
                ready = max(ready, head[prod.name] + costs.move(t, assignment[prod.name], dev))
        return ready + costs.node(name, dev)

    def search(i: int, bound: float, work: float) -> None:
        nonlocal best_ms, best, steps
        if i == len(names):
            ms = estimate_makespan(graph, assignment, costs)
            if ms < best_ms - 1e-15:
                best_ms, best = ms, dict(assignment)
            return
        steps += 1
        if steps > MAX_EXPANSIONS:
            raise ScheduleError(
                f"strategy 'exact' gave up after {MAX_EXPANSIONS} search steps on "
                f"{graph.model.graph.name!r} ({len(names)} nodes); use 'heft'"
            )
        name = names[i]
        options = []
        for dev in ctx.candidates[name]:
            f = earliest_finish(name, dev)
            c = costs.node(name, dev)
            lb = max(
                bound,
                f + max(out_move(name, dev), after_tail[name]),
                load.get(dev, 0.0) + c,
                (work + c + rest_work[i + 1]) / n_devices,
            )
            options.append((lb, f, dev, c))
        options.sort()
        for lb, f, dev, c in options:
            if lb >= best_ms:
                break
            assignment[name], head[name] = dev, f
            load[dev] = load.get(dev, 0.0) + c
            search(i + 1, lb, work + c)
            load[dev] -= c
            del assignment[name], head[name]

    search(0, 0.0, 0.0)
    return Placement(best, cpu_fallbacks(ctx, best))
