"""Rewriting a decoder's ``even`` MoE layers into their expert-parallel form: the (token,
choice) rows of each MoE layer cross the ranks by two all-to-alls, and rank q runs only its
own experts.

The ``even`` form (:mod:`hetnpu.models.decoder.moe`) writes an MoE layer's experts as one
batched matmul over the expert axis::

    rows = Gather(flat [T, H], dispatch)  → Reshape [e, slots, H]
         → gate/up MatMul by [e, H, F], SiLU·up, down MatMul by [e, F, H]
         → Reshape [e·slots, H] → back = Gather(·, combine)  [T·k, H]

With ``p`` ranks, rank r owns the r-th contiguous slice of the ``T`` tokens (as vllm-ascend's
all-to-all MoE splits them over the TP group) and rank q holds experts ``q·e/p .. (q+1)·e/p
- 1``. The rewrite emits, per MoE layer:

- **dispatch**: rank r gathers, for every rank q, the rows of its own tokens that q's
  experts take (``s[r→q]``); rank q concatenates what it receives and puts the rows in slot
  order (an all-to-all);
- rank q's experts: the same ops on ``[e/p, slots, H]`` with the weights' slice;
- **combine**: rank q gathers, for every rank r, the outputs of r's (token, choice) rows;
  rank r concatenates and orders them (the second all-to-all);
- an **all-gather** of every rank's ``[T_r·k, H]`` rows into ``back`` on every rank, since
  the rest of the model is replicated here: every op outside the experts runs on every rank
  (rank 0 keeps the tensor names and the graph outputs), so each rank has the tokens it
  dispatches. Attention under tensor parallelism, as the search times it
  (:mod:`hetnpu.whatif.parallel_search`), is left out of this plan.

Each output row is computed by the same ops on the same operands as on one device (only the
batch of experts is cut), so fp32 results equal the single-device ones bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import helper

from hetnpu.errors import ScheduleError
from hetnpu.graph import weights_absent
from hetnpu.graph.ir import Graph, Node
from hetnpu.scheduler.tp_rewrite import CollectiveOp, Sharded, _Rewriter

__all__ = ["MoeBlock", "find_moe_blocks", "shard_experts"]

_INTERIOR = frozenset({"MatMul", "Sigmoid", "Mul"})
"""Ops between the two reshapes of an ``even`` MoE layer (the experts' SwiGLU)."""


@dataclass(frozen=True)
class MoeBlock:
    """One ``even`` MoE layer's expert part, from the dispatch Gather to the combine Gather."""

    dispatch: Node
    rows: Node
    """The Reshape to [e, slots, H]."""
    interior: tuple[Node, ...]
    out: Node
    """The Reshape to [e·slots, H]."""
    combine: Node
    experts: int
    slots: int
    tokens: int
    hidden: int


def _const_ints(g: Graph, t: str) -> np.ndarray | None:
    value = g.constant_value(t)
    if value is None or value.dtype.kind not in "iu":
        return None
    return value.astype(np.int64)


def _block_from(g: Graph, gather: Node) -> MoeBlock | None:
    """The MoE block starting at ``gather``, or None when it is not one."""
    if gather.op_type != "Gather" or gather.attrs.get("axis", 0) != 0 or len(gather.inputs) != 2:
        return None
    dispatch = _const_ints(g, gather.inputs[1])
    flat = g.tensors[gather.inputs[0]].shape
    if dispatch is None or dispatch.ndim != 1 or flat is None or len(flat) != 2:
        return None
    users = g.consumers(gather.outputs[0])
    if len(users) != 1 or users[0].op_type != "Reshape":
        return None
    rows = users[0]
    shape = g.tensors[rows.outputs[0]].shape
    if shape is None or len(shape) != 3 or shape[0] * shape[1] != len(dispatch):
        return None
    e, slots, hidden = (int(d) for d in shape)
    # The interior: everything reachable from the rows up to the Reshape back to 2-D.
    interior: dict[str, Node] = {}
    frontier = [rows.outputs[0]]
    out = None
    while frontier:
        for user in g.consumers(frontier.pop()):
            if user.name in interior:
                continue
            if user.op_type == "Reshape" and g.tensors[user.outputs[0]].shape == (
                e * slots,
                hidden,
            ):
                out = user
                continue
            if user.op_type not in _INTERIOR:
                raise ScheduleError(
                    f"node {user.name!r} ({user.op_type}) inside the MoE experts after "
                    f"{gather.name!r}: expert parallelism takes the even form's MatMul, "
                    "Sigmoid and Mul only"
                )
            interior[user.name] = user
            frontier.extend(user.outputs)
    if out is None:
        return None
    users = g.consumers(out.outputs[0])
    if len(users) != 1 or users[0].op_type != "Gather" or users[0].attrs.get("axis", 0) != 0:
        return None
    combine = users[0]
    picks = _const_ints(g, combine.inputs[1])
    if picks is None or picks.ndim != 1 or len(picks) % flat[0]:
        return None
    order = {n.name: i for i, n in enumerate(g)}
    return MoeBlock(
        gather,
        rows,
        tuple(sorted(interior.values(), key=lambda n: order[n.name])),
        out,
        combine,
        e,
        slots,
        int(flat[0]),
        hidden,
    )


def find_moe_blocks(graph: Graph) -> list[MoeBlock]:
    """The ``even`` MoE layers of ``graph``, in graph order."""
    found = []
    for node in graph:
        if node.op_type == "Gather":
            block = _block_from(graph, node)
            if block is not None:
                found.append(block)
    return found


def _concat_order(sources: list[int]) -> tuple[list[int], list[int]]:
    """The ranks whose parts are concatenated (ascending) and the permutation that puts the
    concatenation in the order of ``sources`` (the rank each wanted row comes from; each
    rank's part lists its rows in that same order)."""
    ranks = sorted(set(sources))
    start, acc = {}, 0
    for r in ranks:
        start[r], acc = acc, acc + sources.count(r)
    perm = []
    for r in sources:
        perm.append(start[r])
        start[r] += 1
    return ranks, perm


class _EpRewriter(_Rewriter):
    def __init__(self, graph: Graph, p: int) -> None:
        super().__init__(graph, p, row_parallel=False)
        self.absent = weights_absent(graph.model)
        """Weights carry dims only: slices are dims-only initializers too."""

    def rep(self, t: str, r: int) -> str:
        if r == 0 or self._shared(t):
            return t
        return f"{t}@ep{r}"

    def part(self, t: str, r: int) -> str:
        return f"{t}@ep{r}of{self.p}"

    def emit(self, node: onnx.NodeProto, r: int) -> None:
        self._ids += 1
        node.name = f"{node.name or node.op_type}@ep{r}#{self._ids}"
        self.nodes.append(node)
        self.out.rank_of[node.name] = r
        self.out.segment_of[node.name] = self.segment

    def node(self, op: str, ins: list[str], out: str, r: int, **attrs: int) -> None:
        self.emit(helper.make_node(op, ins, [out], **attrs), r)

    def ints(self, base: str, values: list[int]) -> str:
        return self.const(base, np.asarray(values, dtype=np.int64))

    def weight_slice(self, w: str, lo: int, hi: int) -> str:
        """Experts ``lo..hi-1`` of the stacked weight ``w`` as a new initializer."""
        name = f"{w}@experts{lo}-{hi - 1}"
        if self.absent:
            proto = onnx.TensorProto(name=name, data_type=self.g.tensors[w].elem_type)
            proto.dims.extend([hi - lo, *(self.g.tensors[w].shape or ())[1:]])
            self.inits.append(proto)
            return name
        value = self.g.constant_value(w)
        if value is None:
            raise ScheduleError(f"expert weight {w!r} is not a constant: it cannot be sliced")
        self.inits.append(onnx.numpy_helper.from_array(value[lo:hi], name))
        return name

    def collective(self, kind: str, name: str, parts: list[str], nbytes: int) -> None:
        # What reads the parts runs after the collective: the next segment of every rank.
        self.segment += 1
        self.out.collectives.append(CollectiveOp(name, kind, tuple(parts), nbytes, self.segment))

    def moe(self, b: MoeBlock) -> None:
        g, p = self.g, self.p
        e, slots, hidden = b.experts, b.slots, b.hidden
        if e % p:
            raise ScheduleError(
                f"node {b.dispatch.name!r}: ep={p} does not divide the {e} experts that get "
                "rows in this MoE layer"
            )
        if b.tokens < p:
            raise ScheduleError(
                f"node {b.dispatch.name!r}: {b.tokens} tokens cannot be dealt to ep={p} ranks"
            )
        dispatch = _const_ints(g, b.dispatch.inputs[1])
        combine = _const_ints(g, b.combine.inputs[1])
        if dispatch is None or combine is None:
            raise ScheduleError(f"node {b.dispatch.name!r}: the MoE's row indices are not constant")
        k = len(combine) // b.tokens
        # Rank r owns the r-th contiguous slice of the tokens (np.array_split's sizes).
        bounds = np.cumsum([0] + [len(a) for a in np.array_split(np.arange(b.tokens), p)])
        owner = np.searchsorted(bounds, np.arange(b.tokens), side="right") - 1
        flat, back = b.dispatch.inputs[0], b.combine.outputs[0]
        base, item = b.dispatch.name, g.tensors[flat].itemsize
        per = e // p * slots  # slot rows of each expert rank
        slot_tokens = [[int(t) for t in dispatch[q * per : (q + 1) * per]] for q in range(p)]
        assigned = [range(int(bounds[r]) * k, int(bounds[r + 1]) * k) for r in range(p)]

        # Dispatch: rank r sends rank q its tokens' rows for q's slots, in slot order.
        sends: dict[tuple[int, int], str] = {}
        for r in range(p):
            for q in range(p):
                tokens = [t for t in slot_tokens[q] if owner[t] == r]
                if tokens:
                    sends[r, q] = f"{base}/dispatch/{r}to{q}"
                    idx = self.ints(f"{base}/dispatch", tokens)
                    self.node("Gather", [self.rep(flat, r), idx], sends[r, q], r, axis=0)
        sent = [sum(int(owner[t]) == r for q in range(p) for t in slot_tokens[q]) for r in range(p)]
        self.collective(
            "all-to-all", f"all-to-all dispatch {base}", list(sends.values()),
            max(sent) * hidden * item,
        )  # fmt: skip

        # Rank q: its slots in order, its experts, then each rank r's assignments' rows.
        replies: dict[tuple[int, int], str] = {}
        for q in range(p):
            ranks, perm = _concat_order([int(owner[t]) for t in slot_tokens[q]])
            recv = f"{base}/received@{q}"
            self.node("Concat", [sends[r, q] for r in ranks], recv, q, axis=0)
            rows = f"{base}/rows@{q}"
            self.node("Gather", [recv, self.ints(f"{base}/order", perm)], rows, q, axis=0)
            shape = self.ints(f"{base}/shape", [e // p, slots, hidden])
            self.node("Reshape", [rows, shape], self.part(b.rows.outputs[0], q), q)
            self._experts(b, q)
            out = self.part(b.out.outputs[0], q)
            shape = self.ints(f"{base}/shape", [per, hidden])
            self.node("Reshape", [self.part(b.out.inputs[0], q), shape], out, q)
            for r in range(p):
                picks = [int(combine[a]) - q * per for a in assigned[r] if combine[a] // per == q]
                if picks:
                    replies[q, r] = f"{base}/combine/{q}to{r}"
                    idx = self.ints(f"{base}/combine", picks)
                    self.node("Gather", [out, idx], replies[q, r], q, axis=0)
        returned = [int(np.sum(combine // per == q)) for q in range(p)]
        self.collective(
            "all-to-all", f"all-to-all combine {base}", list(replies.values()),
            max(returned) * hidden * item,
        )  # fmt: skip

        # Rank r puts its assignments' rows in order; then every rank gathers all of them.
        mine = [self.part(back, r) for r in range(p)]
        for r in range(p):
            ranks, perm = _concat_order([int(combine[a] // per) for a in assigned[r]])
            recv = f"{base}/returned@{r}"
            self.node("Concat", [replies[q, r] for q in ranks], recv, r, axis=0)
            self.node("Gather", [recv, self.ints(f"{base}/order", perm)], mine[r], r, axis=0)
        self.collective("all-gather", f"all-gather {back}", mine, len(combine) * hidden * item)
        for r in range(p):
            self.node("Concat", mine, self.rep(back, r), r, axis=0)

    def _experts(self, b: MoeBlock, q: int) -> None:
        """Rank q's copy of the experts' SwiGLU on its [e/p, slots, H] rows."""
        lo, hi = q * b.experts // self.p, (q + 1) * b.experts // self.p
        inside = {t for n in b.interior for t in n.outputs} | {b.rows.outputs[0]}
        for n in b.interior:
            copy = onnx.NodeProto()
            copy.CopyFrom(n.proto)
            ins = []
            for t in n.inputs:
                shape = self.g.tensors[t].shape or ()
                if t in inside:
                    ins.append(self.part(t, q))
                elif self.g.tensors[t].is_constant and len(shape) == 3 and shape[0] == b.experts:
                    ins.append(self.weight_slice(t, lo, hi))
                else:
                    raise ScheduleError(
                        f"node {n.name!r} ({n.op_type}) in the MoE experts reads {t!r}, which "
                        f"is neither an expert weight [{b.experts}, ...] nor an expert activation"
                    )
            copy.input[:] = ins
            copy.output[:] = [self.part(t, q) for t in n.outputs]
            self.emit(copy, q)

    def finish(self) -> Sharded:
        out = super().finish()
        out.model.graph.name = out.model.graph.name.replace("_tp", "_ep")
        out.model.metadata_props.extend(self.g.model.metadata_props)
        return out


def shard_experts(graph: Graph, p: int) -> Sharded:
    """``graph`` rewritten for ``p``-way expert parallelism (see the module docstring).

    Raises
    ------
    ScheduleError
        ``p`` below 2, no ``even`` MoE layer in the graph, a layer whose experts ``p`` does
        not divide or whose tokens are fewer than ``p``, or an op inside the experts the
        rewrite does not know.
    """
    if p < 2:
        raise ScheduleError(f"expert parallelism needs at least 2 ranks, got {p}")
    blocks = find_moe_blocks(graph)
    if not blocks:
        raise ScheduleError(
            f"graph {graph.model.graph.name!r} has no MoE layer in the even form (a Gather "
            "of token rows, a batched MatMul over the experts, a Gather back): build it with "
            "build_decoder(..., moe='even')"
        )
    rw = _EpRewriter(graph, p)
    starts = {b.dispatch.name: b for b in blocks}
    inside = {n.name for b in blocks for n in (b.dispatch, b.rows, *b.interior, b.out, b.combine)}
    for node in graph:
        if node.name in starts:
            rw.moe(starts[node.name])
        elif node.is_constant:
            rw.nodes.append(node.proto)
        elif node.name not in inside:
            rw.replicate(node)
    return rw.finish()
