"""Chains of elementwise ops that ATC fuses into one kernel (CANN's ``AutomaticUbFusion``).

After its pattern-specific passes, ATC's buffer fusion runs ``AutomaticUbFusion``: connected
Elemwise operators that no other UB-fusion pattern took are fused into one kernel, at most 28
of them, in static-shape networks only (CANN 8.0.0 graph fusion reference, "AutomaticUbFusion",
https://www.hiascend.com/document/detail/en/canncommercial/800/graph/graphubfusionref/atlasrr_30_0140.html).
A fused chain is one task: one launch, one read of what enters it, one write of what leaves,
its intermediates staying in the Unified Buffer.

The simulator times the chain's first op (the root) as the kernel: its launch, its reads and
a write of the chain's last output in place of its own. Each follower is recorded as fused
into the root and costs nothing, like a Cube op's epilogue. A follower is taken only when the
tensor it continues from is read by it alone (nothing else needs the intermediate in GM), and
its other inputs are tensors the chain already reads or broadcast constants (scalars,
per-channel operands: fewer elements than its output), so that the root's reads are, to
within those constants, all the fused kernel reads. Inference BatchNormalization (CANN's
BNInfer, a per-channel scale and shift) joins as an elementwise op.

Left out: the followers' own Vector instructions (a transcendental such as Erf takes several
repeats per element; memory-bound chains hide them, compute-bound ones are timed too fast),
followers with a second input the chain does not already read (a residual Add), and the
``AddN`` limit of six inputs (AddN has no ONNX counterpart but Sum, which is kept out).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.opfamilies import FAMILY

__all__ = ["MAX_CHAIN", "chain_outputs", "elementwise_chains"]

MAX_CHAIN = 28
"""Most Elemwise operators one AutomaticUbFusion kernel takes (CANN 8.0.0 reference)."""

_EXCLUDED = frozenset({"Sum", "Max", "Min", "Mean", "Cast", "CastLike"})
"""Variadic ops (Sum is ATC's AddN, limited to six inputs; the simulator keeps them whole) and
casts (a precision change at a fusion boundary, kept as its own task)."""


def _fusable(node: Node) -> bool:
    if node.is_constant or node.domain not in ("", "ai.onnx") or node.op_type in _EXCLUDED:
        return False
    return FAMILY.get(node.op_type) == "elementwise" or node.op_type == "BatchNormalization"


def elementwise_chains(graph: Graph, taken: Mapping[str, str]) -> dict[str, str]:
    """Follower node -> the root of its fused elementwise chain.

    ``taken`` maps nodes already fused by a pattern pass (Cube epilogues, residual Adds) to
    their root; neither those nodes nor their roots start or join a chain here.
    """
    roots_of_taken = set(taken.values())
    chain_of: dict[str, str] = {}  # follower -> root
    size: dict[str, int] = {}  # root -> ops in its chain
    have: dict[str, set[str]] = {}  # root -> tensors its kernel reads or its members produce
    for node in graph:
        if not _fusable(node) or node.name in taken or node.name in roots_of_taken:
            continue
        root = _joins(graph, node, taken, roots_of_taken, chain_of, size, have)
        if root is None:
            root = node.name
            size[root], have[root] = 0, set(_dynamic_inputs(graph, node))
        else:
            chain_of[node.name] = root
        size[root] += 1
        have[root].update(o for o in node.outputs if o)
    return chain_of


def _dynamic_inputs(graph: Graph, node: Node) -> list[str]:
    """The non-constant inputs, in the node's order (a set's order would vary by run)."""
    return [t for t in node.inputs if t and not _constant(graph, t)]


def _large_constant(graph: Graph, node: Node) -> bool:
    """Whether ``node`` reads a constant as large as its output (a weight tensor, not a
    broadcast operand such as a scalar or a per-channel vector): the root's reads would leave
    it out."""
    out = graph.tensors.get(node.outputs[0]) if node.outputs else None
    if out is None or out.shape is None:
        return True
    size = math.prod(out.shape)
    for t in node.inputs:
        info = graph.tensors.get(t) if t else None
        if info is None or not info.is_constant:
            continue
        if info.shape is None or math.prod(info.shape) >= size:
            return True
    return False


def _constant(graph: Graph, name: str) -> bool:
    t = graph.tensors.get(name)
    return t is not None and t.is_constant


def _joins(
    graph: Graph,
    node: Node,
    taken: Mapping[str, str],
    roots_of_taken: set[str],
    chain_of: Mapping[str, str],
    size: Mapping[str, int],
    have: Mapping[str, set[str]],
) -> str | None:
    """The chain root ``node`` continues, or None when it starts a chain of its own."""
    if _large_constant(graph, node):
        return None
    inputs = _dynamic_inputs(graph, node)
    for tensor in inputs:
        prod = graph.producer(tensor)
        if prod is None or not _fusable(prod) or prod.name in taken:
            continue
        if prod.name in roots_of_taken or len(graph.consumers(tensor)) != 1:
            continue
        if tensor in graph.outputs:  # the intermediate must reach GM anyway
            continue
        root = chain_of.get(prod.name, prod.name)
        if size[root] >= MAX_CHAIN:
            continue
        if any(t not in have[root] for t in inputs):
            continue
        return root
    return None


def chain_outputs(graph: Graph, chains: Mapping[str, str]) -> dict[str, str]:
    """Root of each chain of ``chains`` (as :func:`elementwise_chains` returns them) -> the
    tensor its fused kernel writes: the last member's output."""
    out: dict[str, str] = {}
    for node in graph:  # topological: the last member seen is the chain's end
        root = chains.get(node.name)
        if root is not None:
            out[root] = node.outputs[0]
    return out
