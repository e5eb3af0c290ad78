"""Op families: what kind of work each ONNX op is, and how a data-movement op touches its data.

This is the one table that both the graph's work counts (:mod:`hetnpu.graph.cost`, the
``kind`` of a :class:`~hetnpu.graph.cost.NodeCost`) and the simulator's lowering (which
program shape an op becomes, :mod:`hetnpu.simulator.lowering`) read, so the two cannot
disagree about an op. It knows nothing of devices: which ops a device runs, or how fast, lives
with the devices and the simulator.

Families (:data:`KINDS`): ``conv`` and ``matmul`` are the Cube's work (``matmul`` includes the
recurrent ops, whose work is their gate projections); ``pool`` includes the
global pools; ``zero`` ops only relabel memory or metadata (Dropout at inference is Identity);
``control`` ops run subgraphs; an op outside the table, or outside onnx's own domain, is
``unknown``.

Data-movement patterns (:data:`MOVEMENT`), by the bytes an op touches:

- ``copy``: reads (part of) its data input and writes it, or a selection of it, unchanged;
  Slice, Pad or Expand read at most what they write (NonZero writes the selection's indices);
- ``gather``: reads index tensors and the rows they pick;
- ``permute``: reads every element and writes it elsewhere (Transpose, Resize);
- ``fill``: writes an output made from a shape, indices or a few scalars, reading no data
  tensor (ConstantOfShape; EyeLike reads only its input's shape; Range, OneHot).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

__all__ = [
    "COPY",
    "FAMILY",
    "FILL",
    "GATHER",
    "KINDS",
    "MOVEMENT",
    "PARTIAL_READ_OPS",
    "PERMUTE",
    "ZERO_WORK_OPS",
    "family",
    "ops_of",
]

KINDS: tuple[str, ...] = (
    "conv", "matmul", "pool", "elementwise", "reduction", "softmax", "norm",
    "data_movement", "zero", "control", "unknown",
)  # fmt: skip
"""Every family; ``unknown`` is the family of ops outside the table."""

COPY, GATHER, PERMUTE, FILL = "copy", "gather", "permute", "fill"

_ONNX_DOMAINS = frozenset({"", "ai.onnx"})

_FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("zero", (
        "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout", "Shape", "Size",
        "Constant", "Optional", "OptionalGetElement", "OptionalHasElement",
    )),
    ("conv", ("Conv", "DeformConv", "ConvInteger", "QLinearConv", "ConvTranspose")),
    ("matmul", (
        "MatMul", "MatMulInteger", "QLinearMatMul", "Gemm", "Einsum", "LSTM", "GRU", "RNN",
        "Attention",
    )),
    ("pool", (
        "MaxPool", "AveragePool", "LpPool", "GlobalMaxPool", "GlobalAveragePool", "GlobalLpPool",
    )),
    ("elementwise", (
        "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round",
        "Sign", "Relu", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And",
        "Or", "Xor", "Not", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot",
        "IsNaN", "IsInf", "Where", "Cast", "CastLike", "Exp", "Log", "Sqrt", "Pow", "Erf",
        "Tanh", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh",
        "Atanh", "Sigmoid", "Clip", "LeakyRelu", "PRelu", "ThresholdedRelu", "HardSigmoid",
        "HardSwish", "Elu", "Selu", "Celu", "Softplus", "Softsign", "Mish", "Shrink", "Gelu",
        "QuantizeLinear", "DequantizeLinear", "Sum", "Max", "Min", "Mean", "RotaryEmbedding",
    )),
    ("reduction", (
        "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceMean", "ReduceL1",
        "ReduceL2", "ReduceSumSquare", "ReduceLogSum", "ReduceLogSumExp", "ArgMax", "ArgMin",
        "CumSum", "TopK",
    )),
    ("softmax", ("Softmax", "LogSoftmax", "Hardmax")),
    ("norm", (
        "BatchNormalization", "LayerNormalization", "InstanceNormalization",
        "GroupNormalization", "RMSNormalization", "LRN", "MeanVarianceNormalization",
        "LpNormalization",
    )),
    ("control", ("If", "Loop", "Scan")),
)  # fmt: skip

_MOVEMENT: tuple[tuple[str, tuple[str, ...]], ...] = (
    (COPY, (
        "Concat", "Split", "Slice", "Pad", "Expand", "Tile", "ReverseSequence", "Trilu",
        "Compress", "Scatter", "ScatterElements", "ScatterND", "CenterCropPad", "MaxUnpool",
        "NonZero",
    )),
    (GATHER, ("Gather", "GatherElements", "GatherND")),
    (PERMUTE, ("Transpose", "DepthToSpace", "SpaceToDepth", "Resize", "Upsample")),
    (FILL, ("ConstantOfShape", "EyeLike", "Range", "OneHot")),
)  # fmt: skip


def _table(groups: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, str]:
    table: dict[str, str] = {}
    for name, ops in groups:
        for op in ops:
            if op in table:  # an op in two families is the drift this table exists to prevent
                raise ValueError(f"op {op!r} is listed as both {table[op]!r} and {name!r}")
            table[op] = name
    return table


MOVEMENT: Mapping[str, str] = MappingProxyType(_table(_MOVEMENT))
"""Data-movement op → its pattern: ``copy``, ``gather``, ``permute`` or ``fill``."""

FAMILY: Mapping[str, str] = MappingProxyType(
    _table([*_FAMILIES, ("data_movement", tuple(MOVEMENT))])
)
"""op_type (onnx's own domain) → its family, one of :data:`KINDS` but ``unknown``."""

ZERO_WORK_OPS: frozenset[str] = frozenset(op for op, f in FAMILY.items() if f == "zero")
"""Ops that only relabel memory or metadata: they cost nothing."""

PARTIAL_READ_OPS: frozenset[str] = frozenset(
    op for op, p in MOVEMENT.items() if p in (COPY, GATHER)
)
"""Ops that may read only part of an input, so what they move is bounded by what they write."""


def family(op_type: str, domain: str = "") -> str:
    """The family of ``op_type`` in ``domain``; ``"unknown"`` outside onnx's domain or the table.

    Examples
    --------
    >>> family("Conv"), family("ConstantOfShape"), family("Conv", "com.microsoft")
    ('conv', 'data_movement', 'unknown')
    """
    if domain not in _ONNX_DOMAINS:
        return "unknown"
    return FAMILY.get(op_type, "unknown")


def ops_of(kind: str) -> frozenset[str]:
    """Every op of family ``kind``.

    Raises
    ------
    ValueError
        ``kind`` is not one of :data:`KINDS`.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown op family {kind!r}; families: {', '.join(KINDS)}")
    return frozenset(op for op, f in FAMILY.items() if f == kind)
