"""The work of control flow: an If's branch, a Loop's or Scan's body times its trips.

Which subgraph runs, and how often, is :func:`hetnpu.graph.control.select`'s rule. A
control-flow node's MACs and FLOPs are those of what it runs (its subgraphs' nodes by
:func:`hetnpu.graph.cost.total_cost`, nested control flow included); under the rule's
``"both"`` case every branch is costed and the larger (MACs, then FLOPs) is the one counted.
Its bytes stay those of the node itself (what it reads from the outer scope and writes):
tensors internal to a body are not graph activations.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hetnpu.errors import ModelError
from hetnpu.graph.control import ControlOptions, Selection, body_graph, select
from hetnpu.graph.ir import Graph, Node

__all__ = ["ControlCost", "control_cost", "control_nodes"]


@dataclass(frozen=True)
class ControlCost:
    """What a control-flow node runs, and the work of each candidate."""

    selection: Selection
    macs: tuple[int, ...]
    """MACs of each of ``selection.runs``, trips included."""
    flops: tuple[int, ...]
    error: str = ""
    """Why the subgraphs could not be costed (a body that does not shape-infer), else ``""``."""

    @property
    def shown_macs(self) -> int:
        return self.macs[self.selection.shown] if self.macs else 0

    @property
    def shown_flops(self) -> int:
        return self.flops[self.selection.shown] if self.flops else 0


def control_cost(graph: Graph, node: Node, options: ControlOptions | None = None) -> ControlCost:
    """Cost of an If/Loop/Scan node under the selection rule.

    Raises
    ------
    ConfigError
        A user choice contradicts a known condition or trip count.
    """
    from hetnpu.graph.cost import total_cost

    try:
        sel = select(graph, node, options)
    except ModelError as exc:  # a malformed node (no subgraph) counts nothing
        return ControlCost(Selection(node.name, node.op_type, "unknown", ()), (), (), str(exc))
    nested = ControlOptions(
        branches=(options or ControlOptions()).branches,
        trips=(options or ControlOptions()).trips,
    )
    macs: list[int] = []
    flops: list[int] = []
    errors: list[str] = []
    for run in sel.runs:
        try:
            body = body_graph(graph, node, run.attr, (options or ControlOptions()).feeds)
        except ModelError as exc:
            # A branch that does not shape-infer counts nothing; if none does, say why.
            errors.append(str(exc))
            macs.append(0)
            flops.append(0)
            continue
        work = total_cost(body, control=nested)
        macs.append(work.macs * run.trips)
        flops.append(work.flops * run.trips)
    if len(errors) == len(sel.runs):
        return ControlCost(sel, (), (), errors[0])
    if sel.rule == "both":
        best = max(range(len(macs)), key=lambda i: (macs[i], flops[i], -i))
        sel = replace(sel, shown=best)
    return ControlCost(sel, tuple(macs), tuple(flops))


def control_nodes(graph: Graph, options: ControlOptions | None = None) -> dict[str, ControlCost]:
    """Every top-level control-flow node of ``graph`` with its cost, in topological order."""
    return {
        n.name: control_cost(graph, n, options)
        for n in graph
        if n.op_type in ("If", "Loop", "Scan") and n.domain in ("", "ai.onnx")
    }
