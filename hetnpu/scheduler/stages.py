"""Cutting an assignment into stages: same-device regions whose stage graph is acyclic.

A stage runs as one unit on one device (one exported ONNX model), so two regions may merge
only if no path leaves the merged stage and comes back into it through another stage: such
a cycle would make the stage wait for itself. OpenVINO's HETERO plugin splits subgraphs for
the same reason.

The method, linear in the graph size: give each node the rank
``r(n) = max over predecessors p of (r(p) if dev(p) == dev(n) else r(p) + 1)`` and group
nodes by ``(rank, device)``. A cross-group edge then always goes strictly up in rank, so the
groups form a DAG. Then same-device groups merge, in rank order, wherever no path of two or
more stage-graph edges joins them (see :func:`_merge`).
"""

from __future__ import annotations

from collections.abc import Mapping

from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import topology

__all__ = ["group_stages", "node_preds"]


def node_preds(graph: Graph) -> dict[str, list[str]]:
    """Non-constant node -> the non-constant nodes producing its run-time inputs."""
    return {name: list(ps) for name, ps in topology(graph).preds.items()}


def group_stages(
    graph: Graph, assignment: Mapping[str, str], preds: Mapping[str, list[str]]
) -> list[list[str]]:
    """Partition the non-constant nodes into same-device groups with an acyclic group graph.

    Returns
    -------
    list[list[str]]
        Groups in a topological order of the group graph, each group's nodes in graph order.
    """
    rank: dict[str, int] = {}
    for name in preds:  # graph order is topological
        dev = assignment[name]
        r = 0
        for p in preds[name]:
            r = max(r, rank[p] if assignment[p] == dev else rank[p] + 1)
        rank[name] = r
    keys = sorted({(rank[n], assignment[n]) for n in preds})
    index = {k: i for i, k in enumerate(keys)}
    member = {n: index[(rank[n], assignment[n])] for n in preds}
    groups = _merge(keys, member, preds)
    # Groups as lists, ordered topologically by their first node's position.
    by_group: dict[int, list[str]] = {}
    for name in preds:
        by_group.setdefault(groups[member[name]], []).append(name)
    return _topological(by_group, member, groups, preds)


def _merge(
    keys: list[tuple[int, str]], member: Mapping[str, int], preds: Mapping[str, list[str]]
) -> list[int]:
    """Union same-device groups where that keeps the group graph acyclic; -> group -> root."""
    n = len(keys)
    succ: list[set[int]] = [set() for _ in range(n)]
    for name, ps in preds.items():
        for p in ps:
            a, b = member[p], member[name]
            if a != b:
                succ[a].add(b)
    root = list(range(n))
    low = [k[0] for k in keys]  # smallest original rank inside each merged group

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    def joined_by_long_path(a: int, b: int, rank_b: int) -> bool:
        # Is there a path a -> x -> ... -> b with x != b? Only groups holding a rank below b's
        # can lie on it, since every original edge goes strictly up in rank.
        stack = [s for s in {find(x) for x in succ[a]} if s not in (a, b)]
        seen = set(stack)
        while stack:
            x = stack.pop()
            if low[x] >= rank_b:
                continue
            for y in {find(z) for z in succ[x]}:
                if y == b:
                    return True
                if y not in seen and y != a:
                    seen.add(y)
                    stack.append(y)
        return False

    last: dict[str, int] = {}
    for i, (rank_i, dev) in enumerate(keys):
        a = last.get(dev)
        if a is not None:
            a = find(a)
            # Groups later in rank order cannot reach back into a (all its ranks are <= rank_i),
            # so a path from a to i is the only way a merge could close a cycle.
            if not joined_by_long_path(a, i, rank_i):
                # Edge sets keep old indices; readers map them through find().
                root[i] = a
                succ[a] |= succ[i]
                low[a] = min(low[a], low[i])
                continue
        last[dev] = i
    return [find(i) for i in range(n)]


def _topological(
    by_group: dict[int, list[str]],
    member: Mapping[str, int],
    groups: list[int],
    preds: Mapping[str, list[str]],
) -> list[list[str]]:
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(by_group)
    for name, ps in preds.items():
        b = groups[member[name]]
        for p in ps:
            a = groups[member[p]]
            if a != b:
                dag.add_edge(a, b)
    position = {name: i for i, name in enumerate(preds)}
    # Each group's list is in graph order, so its first node is its earliest.
    order = nx.lexicographical_topological_sort(dag, key=lambda g: position[by_group[g][0]])
    return [by_group[g] for g in order]
