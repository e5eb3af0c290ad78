"""Per-node work: multiply-accumulates, FLOPs, bytes read and written, arithmetic intensity.

The figures are properties of the graph alone, before any device sees it: the simulator's
roofline bound, the partitioner's cost model and ``hetnpu info`` all read them.

Counting conventions
--------------------
- **MACs** are the Cube's work: one multiply-accumulate per weight tap per output element for
  Conv/ConvTranspose, ``M·N·K`` for MatMul/Gemm. A MAC is 2 FLOPs.
- **FLOPs** add everything else at one FLOP per arithmetic, comparison, select, logical or
  conversion step per element, counted from the op's ONNX definition (``ELEMENTWISE_FLOPS``
  lists the factor of each element-wise op with its formula). A special function (exp, log,
  sqrt, erf, tanh, trig) is one FLOP: the Da Vinci Vector unit issues vexp/vln as single
  intrinsics (ascend-facts §1.2) and their cycle cost is unpublished (§8); what such an
  instruction costs is the device cost model's business, not the graph's.
- **Bytes** are every distinct tensor a node reads (activations and weights, each input once,
  subgraph reads of If/Loop/Scan included) and every tensor it writes, at the model's dtypes
  unless the caller gives the sizes a device holds them in (``node_cost(..., itemsize=...)``).
  Partial readers (Slice, Gather) are charged their whole inputs.
- **Kinds** are the op families of :mod:`hetnpu.graph.opfamilies`, the table the simulator's
  lowering reads too.
- **Control flow**: an If, Loop or Scan does the work of the subgraph it runs, times its
  trips, by the rule of :mod:`hetnpu.graph.control` (known condition or trip count, else the
  caller's ``control`` choice, else the larger branch / one trip); its bytes are its own.
- **Recurrent ops** (LSTM, GRU, RNN): per step gate projections and gate arithmetic
  (:mod:`hetnpu.graph.cost_rnn`).
- **Zero work**: ops in ``ZERO_WORK_OPS`` only relabel memory, and nodes folded at compile time
  (``Node.is_constant``) never run; both cost nothing, bytes included.
- **Unknown shapes** never raise: an unknown dim counts as 1 (so a symbolic batch gives the
  cost per sample, a lower bound) and a tensor of unknown rank counts as nothing. An op outside
  the op-family table, or outside onnx's own domain, is kind ``"unknown"`` and carries bytes only.
- Not counted: interpolation arithmetic of Resize (it is data movement here), sampling of
  DeformConv, training-mode BatchNormalization statistics, sorting beyond one comparison per
  element (TopK).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache, partial
from types import MappingProxyType

import numpy as np

from hetnpu.graph.control import ControlOptions
from hetnpu.graph.cost_rnn import rnn_work
from hetnpu.graph.cost_transformer import attention_work, rotary_work
from hetnpu.graph.ir import Graph, Node, Tensor
from hetnpu.graph.opfamilies import KINDS, ZERO_WORK_OPS, family

__all__ = [
    "ELEMENTWISE_FLOPS",
    "KINDS",
    "ZERO_WORK_OPS",
    "NodeCost",
    "graph_cost",
    "node_cost",
    "total_cost",
]


@dataclass(frozen=True)
class NodeCost:
    """The work of one node (or, summed, of many)."""

    macs: int
    """Multiply-accumulates: the Cube's work (Conv, ConvTranspose, MatMul, Gemm, Einsum)."""
    flops: int
    """All arithmetic: 2 per MAC plus element-wise, reduction and normalisation work."""
    bytes_read: int
    """Bytes of every distinct input tensor, weights included."""
    bytes_written: int
    """Bytes of every output tensor."""
    weight_bytes: int
    """Bytes of the constant inputs (part of ``bytes_read``)."""
    kind: str
    """One of :data:`KINDS` (the op's family), or ``"total"`` for a sum."""

    def __post_init__(self) -> None:
        if self.kind not in KINDS and self.kind != "total":
            raise ValueError(f"NodeCost kind must be one of {KINDS} or 'total', got {self.kind!r}")

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per byte moved; 0 when no bytes move."""
        moved = self.bytes_read + self.bytes_written
        return self.flops / moved if moved else 0.0

    def __add__(self, other: NodeCost) -> NodeCost:
        if not isinstance(other, NodeCost):
            return NotImplemented
        return NodeCost(
            self.macs + other.macs,
            self.flops + other.flops,
            self.bytes_read + other.bytes_read,
            self.bytes_written + other.bytes_written,
            self.weight_bytes + other.weight_bytes,
            "total",
        )

    def __radd__(self, other: object) -> NodeCost:
        # Lets the builtin sum() start from 0.
        if other == 0:
            return self + _ZERO_TOTAL
        return NotImplemented


_ZERO_TOTAL = NodeCost(0, 0, 0, 0, 0, "total")


@dataclass(frozen=True)
class _Work:
    macs: int = 0
    flops: int = 0
    kind: str | None = None
    """Set only where an op's work is not its family's (a one-operand Einsum is a reduction)."""


_Formula = Callable[[Graph, Node], _Work]
_Itemsize = Callable[[Tensor], int]


# --- shapes ------------------------------------------------------------------------------


def _dims(graph: Graph, name: str) -> tuple[int, ...] | None:
    """Shape with unknown dims as 1; ``None`` if the tensor or its rank is unknown."""
    t = graph.tensors.get(name) if name else None
    if t is None or t.shape is None:
        return None
    return tuple(1 if d is None else d for d in t.shape)


def _numel(graph: Graph, name: str, skip: int = 0) -> int:
    """Elements of ``name`` past its first ``skip`` dims; 0 if its rank is unknown."""
    dims = _dims(graph, name)
    return 0 if dims is None else math.prod(dims[skip:])


def _out(graph: Graph, node: Node) -> int:
    return _numel(graph, node.outputs[0]) if node.outputs else 0


def _has(node: Node, index: int | None) -> bool:
    return index is not None and len(node.inputs) > index and bool(node.inputs[index])


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@lru_cache(maxsize=64)
def _itemsize(dtype: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 0


def _model_itemsize(t: Tensor) -> int:
    return _itemsize(t.dtype)


def _nbytes(t: Tensor, itemsize: _Itemsize = _model_itemsize) -> int:
    if t.shape is None:
        return 0
    return math.prod(1 if d is None else d for d in t.shape) * itemsize(t)


# --- formulas ----------------------------------------------------------------------------


def _conv(graph: Graph, node: Node, *, w: int = 1, b: int | None = 2) -> _Work:
    # Each output element takes (Cin/group)·prod(kernel) MACs = W's dims past the first; the
    # inferred output shape already accounts for strides, pads, dilations and auto_pad.
    y = _out(graph, node)
    macs = y * _numel(graph, node.inputs[w], skip=1)
    return _Work(macs, 2 * macs + (y if _has(node, b) else 0))


def _conv_transpose(graph: Graph, node: Node) -> _Work:
    # Every input element is scattered through (Cout/group)·prod(kernel) weights.
    macs = _numel(graph, node.inputs[0]) * _numel(graph, node.inputs[1], skip=1)
    return _Work(macs, 2 * macs + (_out(graph, node) if _has(node, 2) else 0))


def _matmul(graph: Graph, node: Node, *, a: int = 0, b: int = 1) -> _Work:
    # numpy semantics: a 1-D A is a row (M=1), a 1-D B a column (N=1); batch dims broadcast.
    da, db = _dims(graph, node.inputs[a]), _dims(graph, node.inputs[b])
    if not da or not db:
        return _Work()
    m, k = (1, da[0]) if len(da) == 1 else da[-2:]
    n = 1 if len(db) == 1 else db[-1]
    batch = math.prod(np.broadcast_shapes(da[:-2], db[:-2]))
    macs = batch * m * n * k
    return _Work(macs, 2 * macs)


def _gemm(graph: Graph, node: Node) -> _Work:
    da, db = _dims(graph, node.inputs[0]), _dims(graph, node.inputs[1])
    if da is None or db is None or len(da) != 2 or len(db) != 2:
        return _Work()
    m, k = reversed(da) if node.attrs.get("transA", 0) else da
    n = db[0] if node.attrs.get("transB", 0) else db[1]
    macs = m * n * k
    extra = (node.attrs.get("alpha", 1.0) != 1.0) + _has(node, 2) * (
        1 + (node.attrs.get("beta", 1.0) != 1.0)
    )
    return _Work(macs, 2 * macs + extra * m * n)


def _einsum(graph: Graph, node: Node) -> _Work:
    # Naive contraction: every output element sums over the letters absent from the output,
    # each term a product of all operands (no contraction-order optimisation).
    lhs, arrow, rhs = _text(node.attrs.get("equation", "")).replace(" ", "").partition("->")
    terms = lhs.split(",")
    letters = [c for c in lhs if c.isalpha()]
    out = set(rhs if arrow else (c for c in letters if letters.count(c) == 1))
    sizes: dict[str, int] = {}
    for term, name in zip(terms, node.inputs, strict=False):
        dims = _dims(graph, name)
        if dims is None:
            continue
        head, _, tail = term.partition("...")
        sizes.update(zip(head, dims, strict=False))
        if tail:
            sizes.update(zip(tail, dims[len(dims) - len(tail) :], strict=False))
    terms_count = _out(graph, node) * math.prod(sizes.get(c, 1) for c in set(letters) - out)
    operands = len(terms)
    macs = terms_count * (operands - 1)
    return _Work(macs, terms_count * operands, None if operands > 1 else "reduction")


def _pool(graph: Graph, node: Node, *, per_tap: int, per_out: int, whole: bool = False) -> _Work:
    # A window tap per kernel element per output, or every input element for global pools.
    y = _out(graph, node)
    window = math.prod(node.attrs.get("kernel_shape", ()))
    taps = _numel(graph, node.inputs[0]) if whole else y * window
    return _Work(flops=taps * per_tap + y * per_out)


def _recurrent(graph: Graph, node: Node) -> _Work:
    # LSTM/GRU/RNN: per step and direction, gate projections plus gate arithmetic
    # (conventions in hetnpu.graph.cost_rnn).
    return _Work(*rnn_work(graph, node))


def _per_element(graph: Graph, node: Node, *, per_element: int) -> _Work:
    return _Work(flops=_out(graph, node) * per_element)


def _variadic(graph: Graph, node: Node, *, extra: int = 0) -> _Work:
    # k operands combine with k-1 ops per output element (Mean adds one divide).
    k = sum(1 for t in node.inputs if t)
    return _Work(flops=_out(graph, node) * max(k - 1 + extra, 0))


def _gelu(graph: Graph, node: Node) -> _Work:
    # exact: 0.5·x·(1 + erf(x/√2)) = 5; tanh: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) = 9.
    tanh = _text(node.attrs.get("approximate", "none")) == "tanh"
    return _per_element(graph, node, per_element=9 if tanh else 5)


def _reduction(graph: Graph, node: Node, *, per_in: int, per_out: int) -> _Work:
    flops = _numel(graph, node.inputs[0]) * per_in + _out(graph, node) * per_out
    return _Work(flops=max(flops, 0))


def _norm(graph: Graph, node: Node, per_element: int, per_group: int, groups: int) -> _Work:
    return _Work(flops=_numel(graph, node.inputs[0]) * per_element + groups * per_group)


def _batch_norm(graph: Graph, node: Node) -> _Work:
    # Inference folds to y = x·s + t: 2 per element; per channel s = scale/sqrt(var+eps) and
    # t = B - mean·s take 5.
    dims = _dims(graph, node.inputs[0]) or ()
    return _norm(graph, node, 2, 5, dims[1] if len(dims) > 1 else 1)


def _rows(graph: Graph, node: Node) -> int:
    """Rows normalised by LayerNormalization/RMSNormalization: the dims before ``axis``."""
    dims = _dims(graph, node.inputs[0]) or ()
    return math.prod(dims[: node.attrs.get("axis", -1) % max(len(dims), 1)])


def _layer_norm(graph: Graph, node: Node) -> _Work:
    # Per element: sum, subtract mean, square, sum, multiply by 1/std, scale, (bias) = 7 (6);
    # per normalised row: two divides, +eps, sqrt, reciprocal = 5.
    return _norm(graph, node, 6 + _has(node, 2), 5, _rows(graph, node))


def _instance_norm(graph: Graph, node: Node) -> _Work:
    dims = _dims(graph, node.inputs[0]) or ()
    return _norm(graph, node, 7, 5, math.prod(dims[:2]))


def _group_norm(graph: Graph, node: Node) -> _Work:
    dims = _dims(graph, node.inputs[0]) or (1,)
    return _norm(graph, node, 7, 5, dims[0] * node.attrs.get("num_groups", 1))


def _rms_norm(graph: Graph, node: Node) -> _Work:
    # Per element: square, sum, multiply by 1/rms, scale = 4; per row: divide, +eps, rsqrt = 3.
    return _norm(graph, node, 4, 3, _rows(graph, node))


def _lrn(graph: Graph, node: Node) -> _Work:
    # x / (bias + alpha/size · Σ_window x²)^beta: square, size-tap sum, scale, add, pow, divide.
    return _norm(graph, node, node.attrs.get("size", 1) + 5, 0, 0)


def _mvn(graph: Graph, node: Node) -> _Work:
    # (x - mean)/std: sum, subtract, square, sum, divide = 5 per element.
    return _norm(graph, node, 5, 0, 0)


def _lp_norm(graph: Graph, node: Node) -> _Work:
    # x / ||x||_p along axis: |x| or x², sum, divide = 3 per element; a square root per
    # normalised vector when p = 2.
    dims = _dims(graph, node.inputs[0]) or ()
    length = dims[node.attrs.get("axis", -1) % len(dims)] if dims else 1
    vectors = math.prod(dims) // max(length, 1)
    return _norm(graph, node, 3, int(node.attrs.get("p", 2) == 2), vectors)


# One arithmetic, comparison, logical, select or conversion step per element.
_ONE_STEP = (
    "Add", "Sub", "Mul", "Div", "Mod", "Neg", "Abs", "Reciprocal", "Floor", "Ceil", "Round",
    "Sign", "Relu", "Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or",
    "Xor", "Not", "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "BitwiseNot", "IsNaN",
    "IsInf", "Where", "Cast", "CastLike",
)  # fmt: skip

# One special-function evaluation per element (see the module docstring).
_SPECIAL_FUNCTIONS = (
    "Exp", "Log", "Sqrt", "Pow", "Erf", "Tanh", "Sin", "Cos", "Tan", "Asin", "Acos", "Atan",
    "Sinh", "Cosh", "Asinh", "Acosh", "Atanh",
)  # fmt: skip

ELEMENTWISE_FLOPS: Mapping[str, int] = MappingProxyType(
    {
        **dict.fromkeys(_ONE_STEP, 1),
        **dict.fromkeys(_SPECIAL_FUNCTIONS, 1),
        # Compositions, counted from their ONNX definitions.
        "Sigmoid": 3,  # 1 / (1 + exp(-x)): exp, add, divide
        "Clip": 2,  # min(max(x, lo), hi)
        "LeakyRelu": 2,  # x < 0 ? alpha·x : x — multiply, select
        "PRelu": 2,  # as LeakyRelu with a tensor slope
        "ThresholdedRelu": 2,  # x > alpha ? x : 0 — compare, select
        "HardSigmoid": 4,  # max(0, min(1, alpha·x + beta))
        "HardSwish": 5,  # x · HardSigmoid(x)
        "Elu": 4,  # x < 0 ? alpha·(exp(x) - 1) : x — compare, exp, subtract, multiply
        "Selu": 5,  # gamma · Elu-like
        "Celu": 7,  # max(0, x) + min(0, alpha·(exp(x/alpha) - 1))
        "Softplus": 3,  # log(exp(x) + 1)
        "Softsign": 3,  # x / (1 + |x|)
        "Mish": 5,  # x · tanh(softplus(x))
        "Shrink": 3,  # compare, add/subtract bias, select
        "QuantizeLinear": 4,  # saturate(round(x / scale) + zero_point)
        "DequantizeLinear": 2,  # (x - zero_point) · scale
    }
)
"""FLOPs per output element of each element-wise op, with the formula each counts."""

# (per input element, per output element): n inputs into one output take n-1 combining steps,
# hence the -1 per output.
_REDUCTIONS: dict[str, tuple[int, int]] = {
    "ReduceSum": (1, -1),
    "ReduceMax": (1, -1),
    "ReduceMin": (1, -1),
    "ReduceProd": (1, -1),
    "ArgMax": (1, -1),
    "ArgMin": (1, -1),
    "ReduceMean": (1, 0),  # + a divide per output
    "ReduceL1": (2, -1),  # |x|
    "ReduceSumSquare": (2, -1),  # x²
    "ReduceL2": (2, 0),  # x², sqrt per output
    "ReduceLogSum": (1, 0),  # log per output
    "ReduceLogSumExp": (2, 0),  # exp per input, log per output
    "CumSum": (1, 0),  # a running sum: one add per element
    "TopK": (1, 0),  # one comparison per element (a selection pass, not a full sort)
}


def _registry(entries: Iterable[tuple[Iterable[str], _Formula]]) -> Mapping[str, _Formula]:
    table: dict[str, _Formula] = {}
    for ops, formula in entries:
        table.update(dict.fromkeys(ops, formula))
    return MappingProxyType(table)


# Data movement and zero-work ops do no arithmetic: they have no formula. Control flow's work
# is its subgraphs' (hetnpu.graph.cost_control), counted by node_cost itself.
_FORMULAS: Mapping[str, _Formula] = _registry(
    [
        (("Conv", "DeformConv"), partial(_conv, b=2)),
        (("ConvInteger",), partial(_conv, b=None)),
        (("QLinearConv",), partial(_conv, w=3, b=8)),
        (("ConvTranspose",), _conv_transpose),
        (("MatMul", "MatMulInteger"), _matmul),
        (("QLinearMatMul",), partial(_matmul, b=3)),
        (("Gemm",), _gemm),
        (("Einsum",), _einsum),
        (("LSTM", "GRU", "RNN"), _recurrent),
        # Attention and RotaryEmbedding (opset 23): conventions in hetnpu.graph.cost_transformer.
        (("Attention",), lambda g, n: _Work(*attention_work(g, n))),
        (("RotaryEmbedding",), lambda g, n: _Work(*rotary_work(g, n))),
        (("MaxPool",), partial(_pool, per_tap=1, per_out=0)),  # a compare per tap
        (("AveragePool",), partial(_pool, per_tap=1, per_out=1)),  # add per tap, divide
        (("LpPool",), partial(_pool, per_tap=2, per_out=1)),  # |x|^p and add, root
        (("GlobalMaxPool",), partial(_pool, per_tap=1, per_out=0, whole=True)),
        (("GlobalAveragePool",), partial(_pool, per_tap=1, per_out=1, whole=True)),
        (("GlobalLpPool",), partial(_pool, per_tap=2, per_out=1, whole=True)),
        *(((op,), partial(_per_element, per_element=f)) for op, f in ELEMENTWISE_FLOPS.items()),
        (("Gelu",), _gelu),
        (("Sum", "Max", "Min"), _variadic),
        (("Mean",), partial(_variadic, extra=1)),
        *(((op,), partial(_reduction, per_in=i, per_out=o)) for op, (i, o) in _REDUCTIONS.items()),
        # max, subtract, exp, sum, divide (LogSoftmax: log, subtract) per element
        (("Softmax", "LogSoftmax"), partial(_per_element, per_element=5)),
        (("Hardmax",), partial(_per_element, per_element=1)),  # arg-max compare
        (("BatchNormalization",), _batch_norm),
        (("LayerNormalization",), _layer_norm),
        (("InstanceNormalization",), _instance_norm),
        (("GroupNormalization",), _group_norm),
        (("RMSNormalization",), _rms_norm),
        (("LRN",), _lrn),
        (("MeanVarianceNormalization",), _mvn),
        (("LpNormalization",), _lp_norm),
    ]
)


# --- public API --------------------------------------------------------------------------


def node_cost(
    graph: Graph,
    node: Node,
    *,
    itemsize: _Itemsize | None = None,
    control: ControlOptions | None = None,
) -> NodeCost:
    """The work of one node.

    Parameters
    ----------
    graph
        The graph ``node`` belongs to (it holds the tensor shapes and dtypes).
    node
        Any node of ``graph``.
    itemsize
        Bytes per element of a tensor, for the byte counts; by default its dtype's. A device
        that holds tensors in other sizes (an NPU computing float32 models in fp16) passes its
        own, so its bytes follow the same counting conventions.
    control
        Branch and trip choices and fed values for If/Loop/Scan nodes, whose work is that of
        the subgraphs they run (:mod:`hetnpu.graph.cost_control`).

    Returns
    -------
    NodeCost
        Zero for zero-work ops and folded nodes; kind ``"unknown"`` with bytes only for ops
        without a formula. Never raises on unknown shapes.

    Examples
    --------
    >>> c = node_cost(g, g.node("conv1"))          # doctest: +SKIP
    >>> c.macs, c.kind                             # doctest: +SKIP
    (118013952, 'conv')
    """
    kind = family(node.op_type, node.domain)
    if node.is_constant or kind == "zero":
        return NodeCost(0, 0, 0, 0, 0, "zero")
    formula = _FORMULAS.get(node.op_type) if kind != "unknown" else None
    work = formula(graph, node) if formula is not None else _Work()
    if kind == "control":
        from hetnpu.graph.cost_control import control_cost

        ran = control_cost(graph, node, control)
        work = _Work(ran.shown_macs, ran.shown_flops)
    size_of = itemsize or _model_itemsize
    read = weights = 0
    for name in dict.fromkeys(node.all_inputs):
        t = graph.tensors.get(name)
        if t is not None:
            size = _nbytes(t, size_of)
            read += size
            weights += size if t.is_constant else 0
    written = sum(_nbytes(graph.tensors[t], size_of) for t in node.outputs if t in graph.tensors)
    return NodeCost(work.macs, work.flops, read, written, weights, work.kind or kind)


def graph_cost(graph: Graph, *, control: ControlOptions | None = None) -> dict[str, NodeCost]:
    """Cost of every node, keyed by node name, in topological order."""
    return {node.name: node_cost(graph, node, control=control) for node in graph}


def total_cost(graph: Graph, *, control: ControlOptions | None = None) -> NodeCost:
    """The sum of every node's cost (kind ``"total"``)."""
    return sum(graph_cost(graph, control=control).values(), _ZERO_TOTAL)
