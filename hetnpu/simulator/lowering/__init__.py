"""Lowering: each ONNX op to per-core instruction programs, by a registry keyed by op_type.

:data:`LOWERINGS` is the one place that lists which op types the simulator can time and which
function lowers them (as onnx/reference's ``_op_list.py``). :func:`lower` caches programs by
(op signature, chip, options), so the repeated layers of a model lower once.

Left out: op fusion beyond the epilogues listed in :data:`FUSED_EPILOGUES` and the residual Adds
of :func:`hetnpu.simulator.prepare.residual_adds` (ATC fuses more), and
ops that need AI CPU (they are reported unsupported).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.lowering.common import LowerCtx, Lowered, Unsupported, dev_nbytes
from hetnpu.simulator.lowering.matmul import lower_conv, lower_gemm, lower_matmul
from hetnpu.simulator.lowering.movement import (
    ZERO_WORK,
    lower_copy,
    lower_gather,
    lower_permute,
    lower_zero,
)
from hetnpu.simulator.lowering.vector import (
    ELEMENTWISE_CPR,
    NORM_PASSES,
    REDUCE_OPS,
    lower_elementwise,
    lower_norm,
    lower_pool,
    lower_reduce,
)

__all__ = [
    "FUSED_EPILOGUES",
    "LOWERINGS",
    "PARTIAL_READ_OPS",
    "LowerCtx",
    "Lowered",
    "Unsupported",
    "dev_nbytes",
    "lower",
    "signature",
]

Lowering = Callable[[Node, Graph, LowerCtx], Lowered]

LOWERINGS: dict[str, Lowering] = {
    "Conv": lower_conv,
    "MatMul": lower_matmul,
    "Gemm": lower_gemm,
    **dict.fromkeys(ELEMENTWISE_CPR, lower_elementwise),
    **dict.fromkeys(NORM_PASSES, lower_norm),
    **dict.fromkeys(REDUCE_OPS, lower_reduce),
    **dict.fromkeys(["MaxPool", "AveragePool", "LpPool"], lower_pool),
    **dict.fromkeys(ZERO_WORK, lower_zero),
    **dict.fromkeys(
        [
            "Concat",
            "Slice",
            "Split",
            "Pad",
            "Expand",
            "Tile",
            "ReverseSequence",
            "Trilu",
            "Compress",
            "ScatterND",
            "ScatterElements",
        ],
        lower_copy,
    ),
    **dict.fromkeys(["Gather", "GatherElements", "GatherND"], lower_gather),
    **dict.fromkeys(
        ["Transpose", "DepthToSpace", "SpaceToDepth", "Resize", "Upsample", "TransData"],
        lower_permute,
    ),
}
"""op_type → lowering function."""

PARTIAL_READ_OPS: frozenset[str] = frozenset(
    op for op, fn in LOWERINGS.items() if fn in (lower_copy, lower_gather)
)
"""Ops that read only part of an input, so their bandwidth bound counts the bytes moved."""

FUSED_EPILOGUES: frozenset[str] = frozenset({"Relu", "Clip", "LeakyRelu", "BatchNormalization"})
"""Ops ATC folds into a preceding Conv/Gemm/MatMul output path (BN into the weights, the
activation into the L0C→UB or FixPipe conversion); they cost nothing when so fused."""

FUSE_INTO: frozenset[str] = frozenset({"Conv", "Gemm", "MatMul"})

_CACHE: dict[tuple[Any, ...], Lowered] = {}
_CACHE_LIMIT = 4096


def signature(node: Node, graph: Graph) -> tuple[Any, ...]:
    """What a lowering may depend on: op type, attributes, and input/output shapes and dtypes."""
    tensors = tuple(
        (graph.tensors[t].shape, graph.tensors[t].dtype) if t in graph.tensors else None
        for t in (*node.inputs, *node.outputs)
    )
    attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
    return (node.op_type, node.domain, attrs, tensors)


def lower(node: Node, graph: Graph, ctx: LowerCtx, chip_key: tuple[Any, ...]) -> Lowered:
    """Lower ``node`` (cached); :class:`Unsupported` when no lowering applies."""
    fn = LOWERINGS.get(node.op_type)
    if fn is None or node.domain not in ("", "ai.onnx"):
        raise Unsupported(f"no NPU lowering for {node.domain or 'ai.onnx'}::{node.op_type}")
    key = (signature(node, graph), chip_key, ctx.prec.name, ctx.double_buffer, ctx.force_tile)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    lowered = fn(node, graph, ctx)
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[key] = lowered
    return lowered
