"""Vector ops: elementwise arithmetic and activations, pooling, Softmax and normalisations,
reductions.

Each op is a stream through UB (MTE2 in, Vector, MTE3 out) whose Vector work is the bytes of
256-B repeats it issues times cycles per repeat. One repeat per cycle for simple ops follows
ascend-facts §8; the extra cycles of transcendental functions and the pass counts of composite
ops (Softmax = max, subtract, exp, sum, divide) are assumptions, flagged as unpublished in §7.7.

Left out: masks and partial repeats at tile edges, the vector unit's reduction trees (a
reduction is counted as one pass over its input), and UB bank conflicts.
"""

from __future__ import annotations

import math

from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.lowering.common import (
    LowerCtx,
    Lowered,
    node_in_out,
    shape_of,
)
from hetnpu.simulator.lowering.vector_template import vector_lowering

__all__ = [
    "ELEMENTWISE_CPR",
    "NORM_PASSES",
    "REDUCE_OPS",
    "lower_elementwise",
    "lower_norm",
    "lower_pool",
    "lower_reduce",
]

TRANSCENDENTAL_CPR = 4
"""Cycles per repeat of exp/log/tanh-class functions (assumption; unpublished, §7.7)."""

ELEMENTWISE_CPR: dict[str, int] = {
    **dict.fromkeys(
        [
            "Add",
            "Sub",
            "Mul",
            "Max",
            "Min",
            "Sum",
            "Mean",
            "Relu",
            "Abs",
            "Neg",
            "Clip",
            "LeakyRelu",
            "PRelu",
            "Cast",
            "Floor",
            "Ceil",
            "Round",
            "Sign",
            "Not",
            "And",
            "Or",
            "Xor",
            "Equal",
            "Less",
            "Greater",
            "LessOrEqual",
            "GreaterOrEqual",
            "Where",
            "HardSigmoid",
            "HardSwish",
            "ThresholdedRelu",
            "IsNaN",
            "IsInf",
            "BitShift",
            "BitwiseAnd",
            "BitwiseOr",
            "BitwiseXor",
            "BitwiseNot",
            "Shrink",
            "Mod",
            "CastLike",
        ],
        1,
    ),
    **dict.fromkeys(["Div", "Reciprocal", "Sqrt", "Pow"], 2),
    **dict.fromkeys(
        [
            "Exp",
            "Log",
            "Sigmoid",
            "Tanh",
            "Erf",
            "Softplus",
            "Softsign",
            "Elu",
            "Selu",
            "Celu",
            "Gelu",
            "Mish",
            "Sin",
            "Cos",
            "Tan",
            "Asin",
            "Acos",
            "Atan",
            "Sinh",
            "Cosh",
            "Asinh",
            "Acosh",
            "Atanh",
        ],
        TRANSCENDENTAL_CPR,
    ),
}
"""Cycles per 256-B repeat by elementwise op (1 = ascend-facts §8's one repeat per cycle)."""

NORM_PASSES: dict[str, int] = {
    "Softmax": 4 + TRANSCENDENTAL_CPR,
    "LogSoftmax": 4 + 2 * TRANSCENDENTAL_CPR,
    "LayerNormalization": 7,
    "InstanceNormalization": 7,
    "GroupNormalization": 7,
    "BatchNormalization": 2,
    "LpNormalization": 4,
    "MeanVarianceNormalization": 7,
    "LRN": 6 + 2 * TRANSCENDENTAL_CPR,
}
"""Passes over the input (in repeats) of composite normalisation ops (assumption)."""

REDUCE_OPS: tuple[str, ...] = (
    "ReduceMean",
    "ReduceSum",
    "ReduceMax",
    "ReduceMin",
    "ReduceProd",
    "ReduceL1",
    "ReduceL2",
    "ReduceSumSquare",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ArgMax",
    "ArgMin",
    "TopK",
)
"""Reductions the simulator times (each one pass over its input)."""


def lower_elementwise(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """An elementwise op: one pass of repeats over the output (broadcast inputs read once).

    Without outputs (a residual Add folded into its convolution, whose write carries the sum)
    the pass runs over the input it reads.
    """
    ins, out = node_in_out(graph, node, ctx.prec)
    return vector_lowering(
        ins,
        out,
        out or sum(ins),
        ctx,
        cycles_per_repeat=ELEMENTWISE_CPR[node.op_type],
        name=node.op_type.lower(),
        op=node.name,
    )


def lower_norm(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Softmax and normalisations: several passes over the input held in UB."""
    ins, out = node_in_out(graph, node, ctx.prec)
    return vector_lowering(
        ins,
        out,
        ins[0] * NORM_PASSES[node.op_type],
        ctx,
        name=node.op_type.lower(),
        ub_buffers=1.5,
        op=node.name,
    )


def lower_reduce(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Reductions: one pass over the input."""
    ins, out = node_in_out(graph, node, ctx.prec)
    return vector_lowering(
        ins[:1] + [b for b in ins[1:] if b <= 1024],
        out,
        ins[0],
        ctx,
        name=node.op_type.lower(),
        op=node.name,
    )


def lower_pool(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Pools: each output reads its window, one repeat per tap (a global pool's window is the
    whole plane, one pass over its input)."""
    ins, out = node_in_out(graph, node, ctx.prec)
    kernel = node.attrs.get("kernel_shape")
    x = shape_of(graph, node.inputs[0])
    taps = math.prod(kernel) if kernel else math.prod(x[2:])
    y_bytes = sum(b for b in [out])
    return vector_lowering(
        ins[:1], out, y_bytes * taps, ctx, name=node.op_type.lower(), op=node.name
    )
