"""Where ATC's Graph Engine inserts TransData between ops: at every format boundary.

Cube and pooling ops keep 4-D activations in the NPU's NC1HWC0 ("5HD") layout, and the ops
around them that are indifferent to the layout (elementwise, concatenation, slicing) pass it
on. Ops that reinterpret the element order (Reshape, Transpose, Flatten, Squeeze, Unsqueeze)
work on the framework's order (ND/NCHW) only, so a 5HD tensor entering one is converted to ND
first, and an ND 4-D tensor entering a Cube or pooling op is converted back (ascend-facts §3.5:
GE inserts TransData at format boundaries; msAdvisor's "Ops_Not_Support_Heavy_Format" finding
names exactly this cost). Each conversion is a TransData task of its own, timed like the input
TransData ATC puts before the first convolution.

A tensor is converted once per format, however many consumers want it.

Left out: the conversion of a 5HD graph output back to NCHW (the system simulator times the
plan's own TransData at stage boundaries), formats other than ND and 5HD (FRACTAL_NZ between
MatMuls), and ATC passes that remove a boundary by rewriting the ops around it.
"""

from __future__ import annotations

import onnx

from hetnpu.graph.ir import Graph, Node

__all__ = ["ND_ONLY", "NEEDS_5HD", "format_plan", "transdata_node"]

NEEDS_5HD = frozenset(
    {
        "Conv",
        "MaxPool",
        "AveragePool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "LpPool",
        "GlobalLpPool",
        "BatchNormalization",
        "InstanceNormalization",
        "LRN",
    }
)
"""Ops whose 4-D activation input and output are in NC1HWC0 on the chip."""

ND_ONLY = frozenset({"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze"})
"""Ops that work on the framework's element order only."""

_5HD, _ND = "NC1HWC0", "ND"


def _activation(graph: Graph, name: str) -> bool:
    t = graph.tensors.get(name)
    return (
        t is not None
        and not t.is_constant
        and t.dtype.startswith("float")
        and t.shape is not None
        and len(t.shape) == 4
    )


def transdata_node(tensor: str, dst: str, name: str | None = None) -> Node:
    """A synthetic TransData of ``tensor`` (in place) into ``dst`` (``NC1HWC0`` or ``ND``);
    index -1 marks it as ATC's, not an ONNX op to ask the capability check about."""
    return Node(
        name or f"TransData:{tensor}:{dst}",
        "TransData",
        "",
        (tensor,),
        (tensor,),
        {"dst_format": dst, "src_format": _ND if dst == _5HD else _5HD},
        (),
        -1,
        False,
        onnx.NodeProto(),
    )


def format_plan(
    graph: Graph, converted_inputs: frozenset[str]
) -> tuple[dict[str, list[Node]], dict[str, str]]:
    """(node name -> the TransData nodes that run just before it, tensor -> the layout
    (``"NC1HWC0"`` or ``"ND"``) it is in on the chip as its producer writes it; a TransData
    before a consumer converts a copy, not this).

    ``converted_inputs`` are graph inputs already brought into 5HD (ATC's input TransData).
    """
    fmt: dict[str, str] = {t: (_5HD if t in converted_inputs else _ND) for t in graph.inputs}
    done: set[tuple[str, str]] = set()
    before: dict[str, list[Node]] = {}

    def need(node: Node, tensor: str, want: str) -> None:
        if fmt.get(tensor, _ND) == want or (tensor, want) in done:
            return
        done.add((tensor, want))
        before.setdefault(node.name, []).append(transdata_node(tensor, want))

    for node in graph:
        if node.is_constant:
            continue
        acts = [t for t in node.inputs if t and _activation(graph, t)]
        if node.op_type in ND_ONLY:
            for t in acts:
                need(node, t, _ND)
            out = _ND
        elif node.op_type in NEEDS_5HD:
            for t in acts[:1]:
                need(node, t, _5HD)
            out = _5HD
        else:
            # Layout-indifferent: works in whichever layout its inputs are in; mixed inputs
            # are brought to 5HD (the layout of the ops around it).
            out = _5HD if any(fmt.get(t, _ND) == _5HD for t in acts) else _ND
            if out == _5HD:
                for t in acts:
                    need(node, t, _5HD)
        for t in node.outputs:
            if t and _activation(graph, t):
                fmt[t] = out
    return before, fmt
