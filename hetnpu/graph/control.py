"""What runs inside control flow: the branch an ``If`` takes and how many trips a ``Loop`` or
``Scan`` makes (each subgraph as a standalone graph: :mod:`hetnpu.graph.subgraphs`).

The rule, per node, in this order:

1. **Known**: an ``If`` whose condition is a constant, or computable from the values the user
   feeds, takes that branch; a ``Loop`` whose trip count ``M`` is known makes ``M`` trips (an
   upper bound when its body's condition can stop it earlier, and said so); a ``Scan`` makes as
   many trips as its scanned inputs are long.
2. **Chosen**: otherwise the user's choice (``branches={"If_0": "then"}``,
   ``trips={"Loop_0": 8}``). A choice that contradicts a known value is a ConfigError.
3. **Both / one**: otherwise an ``If`` reports both branches and shows the larger (by MACs,
   then FLOPs); a ``Loop`` of unknown trip count shows one trip.

A condition inside a body is known when it follows from fed values alone (through the body's
probing run, :func:`~hetnpu.graph.subgraphs.body_graph`) or from outer constants.

Left out: conditions computed from more than :data:`MAX_EVAL_NODES` ops are not evaluated
(onnx's reference evaluator is slow on real work); give the branch instead. A Loop's early
exit by its body's condition is not predicted (``M`` is then an upper bound).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import onnx

from hetnpu.errors import ConfigError, ModelError
from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.subgraphs import MAX_EVAL_NODES, body_graph, known_value, truth

__all__ = [
    "CONTROL_OPS",
    "MAX_EVAL_NODES",
    "Choice",
    "ControlOptions",
    "Selection",
    "body_graph",
    "describe",
    "known_value",
    "nested_control_nodes",
    "select",
]

CONTROL_OPS = frozenset({"If", "Loop", "Scan"})


@dataclass(frozen=True)
class ControlOptions:
    """The user's part of the rule: branch and trip choices, and input values they feed."""

    branches: Mapping[str, str] = field(default_factory=dict)
    """If node name → ``"then"`` or ``"else"``."""
    trips: Mapping[str, int] = field(default_factory=dict)
    """Loop or Scan node name → trip count."""
    feeds: Mapping[str, Any] = field(default_factory=dict)
    """Graph input name → value (array-like), to compute conditions and trip counts from."""

    def __post_init__(self) -> None:
        for name, which in self.branches.items():
            if which not in ("then", "else"):
                raise ConfigError(f"branch {name}={which!r}: expected then or else")
        for name, n in self.trips.items():
            if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
                raise ConfigError(f"trips {name}={n!r}: expected a whole number >= 0")

    def check(self, graph: Graph) -> None:
        """Refuse choices naming no If (branches) or Loop/Scan (trips) anywhere in ``graph``."""
        kinds = dict(nested_control_nodes(graph.model.graph))
        for option, names, ops in (
            ("branch", self.branches, ("If",)),
            ("trips", self.trips, ("Loop", "Scan")),
        ):
            for name in names:
                if kinds.get(name) not in ops:
                    found = kinds.get(name)
                    what = f"is a {found}" if found else "is no control-flow node"
                    raise ConfigError(
                        f"{option} {name!r}: {what}; the model's "
                        f"{'/'.join(ops)} nodes include "
                        f"{sorted(n for n, k in kinds.items() if k in ops)[:5]}"
                    )


@dataclass(frozen=True)
class Choice:
    """One subgraph that runs: its attribute name and how many times."""

    attr: str
    """``then_branch``, ``else_branch`` or ``body``."""
    trips: int


@dataclass(frozen=True)
class Selection:
    """What a control-flow node runs under the rule, and why."""

    node: str
    op_type: str
    rule: str
    """``"constant"``, ``"fed"``, ``"chosen"``, ``"shapes"`` (Scan lengths), ``"both"``
    (If, unknown: every branch listed, ``shown`` picks one) or ``"unknown"`` (one trip)."""
    runs: tuple[Choice, ...]
    """Every candidate: one for a known or chosen case, both branches under ``"both"``."""
    shown: int = 0
    """Index in ``runs`` of the one counted; set by the caller under ``"both"``."""
    note: str = ""

    @property
    def chosen(self) -> Choice:
        return self.runs[self.shown]


def nested_control_nodes(g: onnx.GraphProto) -> list[tuple[str, str]]:
    """(name, op_type) of every If/Loop/Scan in ``g`` and in its subgraphs, at any depth."""
    out: list[tuple[str, str]] = []
    for n in g.node:
        if n.op_type in CONTROL_OPS:
            out.append((n.name, n.op_type))
        for a in n.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else list(a.graphs):
                out.extend(nested_control_nodes(sub))
    return out


def select(graph: Graph, node: Node, options: ControlOptions | None = None) -> Selection:
    """What ``node`` (an If, Loop or Scan of ``graph``) runs under the module's rule.

    Raises
    ------
    ConfigError
        The user's choice for ``node`` contradicts a known condition or trip count.
    ModelError
        The node lacks its subgraphs or inputs.
    """
    opts = options or ControlOptions()
    needed = ("then_branch", "else_branch") if node.op_type == "If" else ("body",)
    missing = [a for a in needed if not isinstance(node.attrs.get(a), onnx.GraphProto)]
    if missing or not node.inputs:
        raise ModelError(
            f"node {node.name!r} ({node.op_type}) has no "
            f"{' or '.join(missing) or 'inputs'}: nothing to count or time"
        )
    if node.op_type == "If":
        return _select_if(graph, node, opts)
    if node.op_type == "Loop":
        return _select_loop(graph, node, opts)
    return _select_scan(graph, node, opts)


def _select_if(graph: Graph, node: Node, opts: ControlOptions) -> Selection:
    value = truth(graph.constant_value(node.inputs[0]))
    rule = "constant"
    if value is None:
        value, rule = truth(known_value(graph, node.inputs[0], opts.feeds)), "fed"
    user = opts.branches.get(node.name)
    if value is not None:
        which = "then" if value else "else"
        if user is not None and user != which:
            raise ConfigError(
                f"branch {node.name}={user}: its condition {node.inputs[0]!r} is known "
                f"({rule}) and selects {which}"
            )
        return Selection(node.name, "If", rule, (Choice(f"{which}_branch", 1),))
    if user is not None:
        return Selection(node.name, "If", "chosen", (Choice(f"{user}_branch", 1),))
    return Selection(node.name, "If", "both", (Choice("then_branch", 1), Choice("else_branch", 1)))


def _select_loop(graph: Graph, node: Node, opts: ControlOptions) -> Selection:
    m = node.inputs[0] if node.inputs else ""
    value = graph.constant_value(m) if m else None
    rule = "constant"
    if value is None and m and opts.feeds:
        value, rule = known_value(graph, m, opts.feeds), "fed"
    user = opts.trips.get(node.name)
    if value is not None and value.size == 1:
        trips = int(value.reshape(()))
        note = "" if _runs_to_count(graph, node) else "an upper bound: the body may stop earlier"
        if user is not None and user != trips and not note:
            raise ConfigError(
                f"trips {node.name}={user}: its trip count {m!r} is known ({rule}): {trips}"
            )
        if user is not None and user > trips:  # the condition may stop it early, never later
            raise ConfigError(
                f"trips {node.name}={user}: more than its maximum trip count {m!r} ({rule}): "
                f"{trips}"
            )
        if user is None or not note:
            return Selection(node.name, "Loop", rule, (Choice("body", trips),), note=note)
    if user is not None:
        return Selection(node.name, "Loop", "chosen", (Choice("body", user),))
    return Selection(node.name, "Loop", "unknown", (Choice("body", 1),), note="one trip shown")


def _runs_to_count(graph: Graph, node: Node) -> bool:
    """Whether the Loop's condition can never stop it: absent or constant true on entry, and
    the body passes its condition through unchanged or returns a constant true."""
    cond = node.inputs[1] if len(node.inputs) > 1 else ""
    if cond and truth(graph.constant_value(cond)) is not True:
        return False
    body = node.attrs["body"]
    cond_in, cond_out = body.input[1].name, body.output[0].name
    if cond_out == cond_in:
        return True
    for n in body.node:
        if cond_out in n.output:
            if n.op_type == "Identity" and n.input[0] == cond_in:
                return True
            if n.op_type == "Constant" and n.attribute:
                return truth(onnx.numpy_helper.to_array(n.attribute[0].t)) is True
    return False


def _select_scan(graph: Graph, node: Node, opts: ControlOptions) -> Selection:
    m = node.attrs.get("num_scan_inputs", 1)
    n_state = len(node.inputs) - m
    axes = list(node.attrs.get("scan_input_axes", [0] * m))
    t = graph.tensors.get(node.inputs[n_state])
    trips = None
    if t is not None and t.shape is not None:
        trips = t.shape[axes[0] % len(t.shape)]
    user = opts.trips.get(node.name)
    if trips is not None:
        if user is not None and user != trips:
            raise ConfigError(
                f"trips {node.name}={user}: its scanned input {t.name!r} is {trips} long"  # type: ignore[union-attr]
            )
        return Selection(node.name, "Scan", "shapes", (Choice("body", trips),))
    if user is not None:
        return Selection(node.name, "Scan", "chosen", (Choice("body", user),))
    return Selection(node.name, "Scan", "unknown", (Choice("body", 1),), note="one trip shown")


def describe(selection: Selection) -> Mapping[str, Any]:
    """JSON-ready summary of a selection."""
    return MappingProxyType(
        {
            "rule": selection.rule,
            "runs": [{"subgraph": c.attr, "trips": c.trips} for c in selection.runs],
            "shown": selection.chosen.attr,
            "note": selection.note,
        }
    )
