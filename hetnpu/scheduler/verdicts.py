"""Who can run each node, asked once: a memo of :func:`hetnpu.devices.capability.can_run` per
graph, node, device and precision, shared by placement and :meth:`ExecutionPlan.validate`."""

from __future__ import annotations

import weakref
from typing import Any

from hetnpu.graph.ir import Graph
from hetnpu.scheduler.evaluate import node_signature

__all__ = ["verdict"]


_VERDICTS: weakref.WeakKeyDictionary[Graph, dict[tuple[Any, ...], Any]] = (
    weakref.WeakKeyDictionary()
)


def verdict(device: str, name: str, graph: Graph, precision: str) -> Any:
    """:func:`hetnpu.devices.capability.can_run`, asked once per graph, node, device and
    precision, so placement and :meth:`ExecutionPlan.validate` share the answers.

    A "yes" is also shared between nodes of one :func:`~hetnpu.scheduler.evaluate.
    node_signature` (a 10,000-node graph has a few dozen, and asking each node was a third of
    placement's time). A "no" is asked per node, as its reason may name a tensor.
    """
    from hetnpu.devices.capability import can_run

    answers = _VERDICTS.get(graph)
    if answers is None:
        answers = _VERDICTS[graph] = {}
    key = (device, name, precision)
    found = answers.get(key)
    if found is None:
        sig = node_signature(graph, name)
        shared = None if sig is None else answers.get((device, sig, precision))
        if shared is not None:
            found = shared
        else:
            found = can_run(device, graph.nodes[name], graph, precision=precision)
            if sig is not None and found.supported:
                answers[(device, sig, precision)] = found
        answers[key] = found
    return found
