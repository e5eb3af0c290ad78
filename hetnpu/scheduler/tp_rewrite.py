"""Rewriting a graph into its tensor-parallel form: each rank's shard of every op, and the
collectives between them, as plain ONNX nodes the backends run.

The rules are Megatron-LM's, applied op by op in graph order. Each tensor is either
*replicated* (every rank holds all of it) or *split* along one axis (rank r holds the r-th
of p equal slices):

- a MatMul/Gemm/Conv with constant weights whose input is replicated becomes
  **column-parallel**: rank r computes the r-th slice of the output features (MatMul's last
  axis, Conv's channels), so its output is split;
- one whose input is split along the reduction axis becomes **row-parallel**: rank r
  multiplies its slice by the matching rows of the weight, and an **all-reduce** (a ``Sum`` of
  the p partial results on every rank) makes the output replicated again; a bias is added
  once, after the sum;
- elementwise ops, BatchNormalization on split channels, pooling, Softmax/reductions over
  another axis and Transpose keep the split (constant operands are sliced to match);
- a Reshape (Unsqueeze, Squeeze, Flatten) that cuts a split last axis into (heads, head_dim)
  with the heads divisible by p, or merges them back, keeps the split on the heads; Split and
  Concat along another axis keep it, and so does a MatMul of two activations split on a batch
  axis: attention runs head-parallel, and with grouped-query attention the K/V heads split as
  the query heads do. When p exceeds the K/V heads, their reshape cannot split and they are
  all-gathered (Megatron replicates them there);
- anything else reading a split tensor first **all-gathers** it (a ``Concat`` on every rank).

Replicated ops run on every rank, as Megatron runs its norms and residual adds; a graph
output that is split is gathered on rank 0 by point-to-point sends. Rank 0 keeps the original
tensor names, so the graph outputs keep theirs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hetnpu.errors import ScheduleError
from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.opfamilies import family

__all__ = ["CollectiveOp", "Sharded", "shard_graph"]

_NOT_BROADCAST = frozenset({"RotaryEmbedding", "QuantizeLinear", "DequantizeLinear", "PRelu"})
"""Elementwise by family but not a plain broadcast of their operands (rotary halves, per-axis
scales): they keep no split."""


def _rule(op_type: str) -> str:
    """Which rewrite rule an op takes, from its op family (:mod:`hetnpu.graph.opfamilies`)."""
    kind = family(op_type)
    if (kind == "elementwise" and op_type not in _NOT_BROADCAST) or op_type == "Identity":
        return "elementwise"
    if kind == "pool" or op_type == "BatchNormalization":
        return "channelwise"
    if kind == "softmax" or op_type.startswith("Reduce") or op_type in _ROW_NORMS:
        return "along"
    if op_type == "Transpose":
        return "transpose"
    if op_type in ("Reshape", "Unsqueeze", "Squeeze", "Flatten"):
        return "reshape"
    if op_type in ("Split", "Concat"):
        return "concat"
    if op_type == "MatMul":
        return "batched"
    return "gather"


_ROW_NORMS = frozenset({"LayerNormalization", "RMSNormalization"})


@dataclass(frozen=True)
class CollectiveOp:
    """A collective the rewrite inserted: ``inputs[r]`` is rank r's contribution."""

    name: str
    kind: str
    inputs: tuple[str, ...]
    nbytes: int
    segment: int


@dataclass
class Sharded:
    """The rewritten model and where each of its nodes runs."""

    model: onnx.ModelProto
    rank_of: dict[str, int] = field(default_factory=dict)
    segment_of: dict[str, int] = field(default_factory=dict)
    collectives: list[CollectiveOp] = field(default_factory=list)
    unsplit: list[str] = field(default_factory=list)
    """Why ops that tensor parallelism could have split were not: a degree that does not
    divide their features or heads (they were replicated or all-gathered)."""
    split_weights: int = 0
    """Weight ops split across the ranks (0: the rewrite only replicated the model)."""


class _Rewriter:
    def __init__(self, graph: Graph, p: int, row_parallel: bool) -> None:
        self.g, self.p, self.row_parallel = graph, p, row_parallel
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.out = Sharded(onnx.ModelProto())
        self.split: dict[str, int] = {}  # tensor -> axis it is split on (absent: replicated)
        self.segment = 0
        self._ids = 0

    # --- names -----------------------------------------------------------------------------
    def rep(self, t: str, r: int) -> str:
        if r == 0 or self._shared(t):
            return t
        return f"{t}@tp{r}"

    def part(self, t: str, r: int) -> str:
        return f"{t}@tp{r}of{self.p}"

    def _shared(self, t: str) -> bool:
        tensor = self.g.tensors.get(t)
        return t in self.g.inputs or (tensor is not None and tensor.is_constant)

    def name(self, t: str, r: int) -> str:
        return self.part(t, r) if t in self.split else self.rep(t, r)

    def rank(self, t: str) -> int:
        shape = self.g.tensors[t].shape
        if shape is None:
            raise ScheduleError(f"tensor {t!r} has no known rank: tensor parallelism needs shapes")
        return len(shape)

    def emit(self, node: onnx.NodeProto, r: int) -> None:
        self._ids += 1
        node.name = f"{node.name or node.op_type}@tp{r}#{self._ids}"
        self.nodes.append(node)
        self.out.rank_of[node.name] = r
        self.out.segment_of[node.name] = self.segment

    def const(self, base: str, value: np.ndarray) -> str:
        name = f"{base}@{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    # --- collectives ---------------------------------------------------------------------
    def gather(self, t: str) -> None:
        """All-gather split ``t`` into replicated names on every rank."""
        axis = self.split.pop(t)
        parts = tuple(self.part(t, r) for r in range(self.p))
        self.segment += 1
        for r in range(self.p):
            self.emit(helper.make_node("Concat", list(parts), [self.rep(t, r)], axis=axis), r)
        self.out.collectives.append(
            CollectiveOp(f"all-gather {t}", "all-gather", parts, self._bytes(t), self.segment)
        )

    def all_reduce(self, partial: str, out: str, like: str) -> None:
        """Sum rank partials of ``partial`` into replicated ``out`` (shaped as ``like``)."""
        parts = tuple(self.part(partial, r) for r in range(self.p))
        self.segment += 1
        for r in range(self.p):
            self.emit(helper.make_node("Sum", list(parts), [self.rep(out, r)]), r)
        self.out.collectives.append(
            CollectiveOp(f"all-reduce {out}", "all-reduce", parts, self._bytes(like), self.segment)
        )

    def _bytes(self, t: str) -> int:
        return int(self.g.tensors[t].nbytes or 0)

    # --- ops -------------------------------------------------------------------------------
    def replicate(self, node: Node) -> None:
        for t in node.inputs:
            if t in self.split:
                self.gather(t)
        for r in range(self.p):
            copy = onnx.NodeProto()
            copy.CopyFrom(node.proto)
            copy.input[:] = [self.rep(t, r) if t else "" for t in node.inputs]
            copy.output[:] = [self.rep(t, r) if t else "" for t in node.outputs]
            self.emit(copy, r)

    def local(self, node: Node, axis_out: int, consts: dict[int, np.ndarray | None]) -> None:
        """Run ``node`` on every rank's slices; ``consts[i]`` slices constant input i."""
        for r in range(self.p):
            copy = onnx.NodeProto()
            copy.CopyFrom(node.proto)
            ins = []
            for i, t in enumerate(node.inputs):
                value = consts.get(i)
                if value is not None:
                    ins.append(self.const(t, value[r]))
                else:
                    ins.append(self.name(t, r) if t else "")
            copy.input[:] = ins
            copy.output[:] = [self.part(t, r) if t else "" for t in node.outputs]
            self.emit(copy, r)
        for t in node.outputs:
            if t:
                self.split[t] = axis_out

    def slices(self, value: np.ndarray, axis: int) -> list[np.ndarray]:
        return np.split(value, self.p, axis=axis)

    def visit(self, node: Node) -> None:
        if node.is_constant:
            self.nodes.append(node.proto)  # folded; exported with the stages that read it
            return
        split_in = [t for t in node.inputs if t in self.split]
        op = node.op_type
        if op in ("MatMul", "Gemm", "Conv") and self._weight_op(node):
            return
        if not split_in:
            self.replicate(node)
            return
        rule = _rule(op)
        handled = (
            (rule == "elementwise" and self._elementwise(node))
            or (rule == "channelwise" and self._channelwise(node))
            or (rule == "along" and self._along(node))
            or (rule == "transpose" and self._transpose(node))
            or (rule == "reshape" and self._reshape(node))
            or (rule == "concat" and self._concat(node))
            or (rule == "batched" and self._batched(node))
        )
        if not handled:
            self.replicate(node)

    def _weight_op(self, node: Node) -> bool:
        g, op = self.g, node.op_type
        x, w = node.inputs[0], node.inputs[1]
        weight = g.constant_value(w)
        if weight is None or self.g.tensors[x].shape is None:
            return False
        attrs = node.attrs
        if op == "Gemm" and (attrs.get("transA", 0) or weight.ndim != 2):
            return False
        if op == "MatMul" and weight.ndim != 2:
            return False
        if op == "Conv" and attrs.get("group", 1) != 1:
            return False
        trans_b = op == "Gemm" and attrs.get("transB", 0)
        # (axis of the output features in the weight, of the reduction in the weight, of the
        # reduction in x, of the features in the output)
        if op == "Conv":
            w_out, w_red, x_red, y_out = 0, 1, 1, 1
        else:
            w_out, w_red = (0, 1) if trans_b else (1, 0)
            x_red = y_out = self.rank(x) - 1
        bias = node.inputs[2] if len(node.inputs) > 2 and node.inputs[2] else None
        bias_value = None if bias is None else g.constant_value(bias)
        if bias is not None and bias_value is None:
            return False
        p = self.p
        y = node.outputs[0]
        if self.row_parallel and self.split.get(x) == x_red and weight.shape[w_red] % p == 0:
            # Row-parallel: partial products, then an all-reduce; the bias after the sum.
            ws = self.slices(weight, w_red)
            self.out.split_weights += 1
            partial = f"{y}/partial"
            for r in range(p):
                copy = onnx.NodeProto()
                copy.CopyFrom(node.proto)
                copy.input[:] = [self.part(x, r), self.const(w, ws[r])]
                copy.output[:] = [self.part(partial, r)]
                self.emit(copy, r)
            if bias is None:
                self.all_reduce(partial, y, y)
                return True
            summed = f"{y}/sum"
            self.all_reduce(partial, summed, y)
            b = bias_value
            if op == "Conv":
                b = b.reshape(-1, *([1] * (self.rank(y) - 2)))
            elif op == "Gemm":
                b = b * np.asarray(attrs.get("beta", 1.0), dtype=b.dtype)
            bname = self.const(bias, b)
            for r in range(p):
                self.emit(
                    helper.make_node("Add", [self.rep(summed, r), bname], [self.rep(y, r)]), r
                )
            return True
        if x in self.split:
            self.gather(x)
        if weight.shape[w_out] % p:
            self.out.unsplit.append(
                f"node {node.name!r} ({op}): {weight.shape[w_out]} output features are not a "
                f"multiple of tp={p}, so it is replicated"
            )
            return False
        self.out.split_weights += 1
        ws = self.slices(weight, w_out)
        bs = None
        if bias_value is not None:
            bs = self.slices(np.broadcast_to(bias_value, (weight.shape[w_out],)).copy(), 0)
        for r in range(p):
            copy = onnx.NodeProto()
            copy.CopyFrom(node.proto)
            ins = [self.rep(x, r), self.const(w, ws[r])]
            if bs is not None:
                ins.append(self.const(bias, bs[r]))
            copy.input[:] = ins
            copy.output[:] = [self.part(y, r)]
            self.emit(copy, r)
        self.split[y] = y_out
        return True

    def _elementwise(self, node: Node) -> bool:
        out_rank = self.rank(node.outputs[0])
        axes = {self.split[t] - self.rank(t) + out_rank for t in node.inputs if t in self.split}
        if len(axes) != 1:
            return False
        axis = axes.pop()
        full = self.g.tensors[node.outputs[0]].shape
        consts: dict[int, np.ndarray | None] = {}
        for i, t in enumerate(node.inputs):
            if not t or t in self.split:
                continue
            shape = self.g.tensors[t].shape
            if shape is None:
                return False
            k = axis - out_rank + len(shape)  # the split axis in this operand, if it has it
            if k < 0 or shape[k] == 1:
                continue  # broadcast along the split axis: every rank reads it whole
            value = self.g.constant_value(t)
            if value is None or full is None or shape[k] != full[axis]:
                return False
            consts[i] = self.slices(value, k)
        self.local(node, axis, consts)
        return True

    def _channelwise(self, node: Node) -> bool:
        x = node.inputs[0]
        if self.split.get(x) != 1 or any(t in self.split for t in node.inputs[1:]):
            return False
        consts: dict[int, np.ndarray | None] = {}
        for i, t in enumerate(node.inputs[1:], start=1):  # BatchNormalization's per-channel
            value = self.g.constant_value(t) if t else None
            if t and value is None:
                return False
            if value is not None:
                consts[i] = self.slices(value, 0)
        self.local(node, 1, consts)
        return True

    def _along(self, node: Node) -> bool:
        x = node.inputs[0]
        rank = self.rank(x)
        axis = self.split[x]
        attrs = node.attrs
        if node.op_type in _ROW_NORMS:
            start = attrs.get("axis", -1) % rank
            if axis >= start or any(t in self.split for t in node.inputs[1:]):
                return False
            self.local(node, axis, {})
            return True
        if node.op_type.startswith("Reduce"):
            axes = attrs.get("axes")
            if axes is None and len(node.inputs) > 1 and node.inputs[1]:
                value = self.g.constant_value(node.inputs[1])
                axes = None if value is None else [int(a) for a in value]
            if axes is None or not attrs.get("keepdims", 1):
                return False
            if axis in {a % rank for a in axes}:
                return False
            self.local(node, axis, {})
            return True
        if attrs.get("axis", -1) % rank == axis:
            return False
        self.local(node, axis, {})
        return True

    def _transpose(self, node: Node) -> bool:
        x = node.inputs[0]
        perm = node.attrs.get("perm")
        rank = self.rank(x)
        perm = list(perm) if perm is not None else list(reversed(range(rank)))
        self.local(node, perm.index(self.split[x]), {})
        return True

    def _reshape(self, node: Node) -> bool:
        """Keep a split through a reshape that keeps the split's blocks whole: the dims before
        the split axis multiply to the same in and out, and the first dim after that divides
        by p (``[B, S, H*D] -> [B, S, H, D]`` with p | H, and back)."""
        x, y = node.inputs[0], node.outputs[0]
        if any(t in self.split for t in node.inputs[1:] if t):
            return False
        shape_in, shape_out = self.g.tensors[x].shape, self.g.tensors[y].shape
        if shape_in is None or shape_out is None or None in shape_in or None in shape_out:
            return False
        axis = self.split[x]
        before = int(np.prod(shape_in[:axis]))
        b = next((k for k in range(len(shape_out)) if int(np.prod(shape_out[:k])) == before), None)
        # The split dim itself must be the first one after the prefix (a dim of 1 before it
        # would make the prefix match too early).
        while b is not None and b < len(shape_out) - 1 and shape_out[b] == 1:
            b += 1
        if b is None or b >= len(shape_out) or shape_out[b] % self.p:
            if b is not None and b < len(shape_out) and axis == len(shape_in) - 1:
                self.out.unsplit.append(
                    f"node {node.name!r} (Reshape): tp={self.p} does not divide its "
                    f"{shape_out[b]} heads, so its input is all-gathered"
                )
            return False
        local = list(shape_out)
        local[b] //= self.p
        for r in range(self.p):
            shape = self.const(f"{y}/shape", np.asarray(local, dtype=np.int64))
            self.emit(helper.make_node("Reshape", [self.part(x, r), shape], [self.part(y, r)]), r)
        self.split[y] = b
        return True

    def _concat(self, node: Node) -> bool:
        """Split and Concat along another axis than the split one keep it."""
        axis_attr = node.attrs.get("axis", 0)
        if node.op_type == "Split":
            x = node.inputs[0]
            if any(t in self.split for t in node.inputs[1:] if t):
                return False
            if axis_attr % self.rank(x) == self.split[x]:
                return False
            self.local(node, self.split[x], {})
            return True
        axes = {self.split.get(t) for t in node.inputs}
        if len(axes) != 1 or None in axes:
            return False  # a replicated part would need slicing: gather instead
        axis = axes.pop()
        if axis_attr % self.rank(node.outputs[0]) == axis:
            return False
        self.local(node, axis, {})
        return True

    def _batched(self, node: Node) -> bool:
        """A MatMul of two activations split on one batch axis (attention per head)."""
        out_rank = self.rank(node.outputs[0])
        axes = {self.split[t] - self.rank(t) + out_rank for t in node.inputs if t in self.split}
        if len(axes) != 1:
            return False
        axis = axes.pop()
        if axis >= out_rank - 2:
            return False
        for t in node.inputs:
            if t in self.split:
                continue
            shape = self.g.tensors[t].shape
            k = axis - out_rank + len(shape or ())
            if shape is None or (k >= 0 and shape[k] != 1):
                return False
        self.local(node, axis, {})
        return True

    def finish(self) -> Sharded:
        g = self.g
        self.segment += 1  # the gathers below read every rank's last segment
        for t in g.outputs:
            if t in self.split:
                # Gathered on rank 0 only: point-to-point sends, no collective.
                axis = self.split.pop(t)
                parts = [self.part(t, r) for r in range(self.p)]
                self.emit(helper.make_node("Concat", parts, [t], axis=axis), 0)
        src = g.model.graph
        graph = helper.make_graph(
            _live(self.nodes, list(g.outputs)),
            f"{src.name}_tp{self.p}",
            list(src.input),
            list(src.output),
            initializer=[*src.initializer, *self.inits],
        )
        model = helper.make_model(
            graph, opset_imports=list(g.model.opset_import), functions=list(g.model.functions)
        )
        model.ir_version = g.model.ir_version
        kept = {n.name for n in graph.node}
        self.out.model = model
        self.out.rank_of = {n: r for n, r in self.out.rank_of.items() if n in kept}
        self.out.segment_of = {n: s for n, s in self.out.segment_of.items() if n in kept}
        return self.out


def _live(nodes: list[onnx.NodeProto], outputs: list[str]) -> list[onnx.NodeProto]:
    """The nodes the outputs depend on (replicas no rank reads are dropped), in order."""
    needed = set(outputs)
    keep = []
    for node in reversed(nodes):
        if any(o in needed for o in node.output):
            keep.append(node)
            needed.update(t for t in node.input if t)
    return list(reversed(keep))


def shard_graph(graph: Graph, p: int, *, row_parallel: bool = True) -> Sharded:
    """``graph`` rewritten for ``p``-way tensor parallelism (see the module docstring).

    With ``row_parallel=False`` a split input is all-gathered before every weight op instead
    of reduced after it: more traffic, but each output element is summed in the order the
    unsplit op sums it, so fp32 results equal the single-device ones bit for bit.

    Raises
    ------
    ScheduleError
        ``p`` below 2, or a tensor the rewrite needs the rank of has no shape.
    """
    if p < 2:
        raise ScheduleError(f"tensor parallelism needs at least 2 ranks, got {p}")
    rw = _Rewriter(graph, p, row_parallel)
    for node in graph:
        rw.visit(node)
    return rw.finish()
