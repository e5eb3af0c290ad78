"""Data movement: reshapes (free), copies, fills and permutations through UB, and TransData.

Which op is which is :mod:`hetnpu.graph.opfamilies`' table. Reshape-like ops only relabel a
buffer and cost nothing. Copies (Concat, Slice, Split, Pad, Expand, Tile, Gather) stream the
bytes they actually touch GM→UB→GM with no Vector work; fills (ConstantOfShape, EyeLike) store
their output from UB and read nothing; permutations (Transpose, DepthToSpace, Resize,
TransData) add one Vector pass (vnchwconv / vtranspose, ascend-facts §1.2).

Left out: strided-DMA inefficiency of non-contiguous copies (MTE2 is assumed to move any access
pattern at its full rate), and layout-dependent TransData variants beyond one Vector pass.
"""

from __future__ import annotations

from hetnpu.devices.layouts import nc1hwc0_c0
from hetnpu.devices.rates import device_dtype
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.lowering.common import (
    LowerCtx,
    Lowered,
    node_in_out,
    shape_of,
)
from hetnpu.simulator.lowering.vector_template import vector_lowering

__all__ = ["lower_copy", "lower_fill", "lower_gather", "lower_permute", "lower_zero"]


def lower_zero(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """A reshape-like op: no instructions at all."""
    return Lowered("vector", (), tile="zero-work")


def lower_copy(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """A copy that reads what it writes (Slice/Pad/Concat/Split/Expand/Tile...)."""
    ins, out = node_in_out(graph, node, ctx.prec)
    # Index/shape operands are a few bytes each; the data read is at most what is written
    # (Slice) or the input (Expand/Tile read their small input once).
    data = [min(b, out) for b in ins[:1]] + [b for b in ins[1:] if b > 1024]
    if node.op_type == "Concat":
        data = ins
    return vector_lowering(data, out, 0, ctx, name="copy", op=node.name)


def lower_fill(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """A fill (ConstantOfShape, EyeLike): MTE3 stores its output from UB, reading no data
    (EyeLike reads only its input's shape).

    The vector_dup that sets the UB tile is left out: one tile serves every store (EyeLike's
    differ only where the diagonal crosses them).
    """
    _, out = node_in_out(graph, node, ctx.prec)
    return vector_lowering([], out, 0, ctx, name="fill", op=node.name)


def lower_gather(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Gather-like: reads the indices and the gathered rows only."""
    ins, out = node_in_out(graph, node, ctx.prec)
    return vector_lowering([out, *ins[1:2]], out, 0, ctx, name="gather", op=node.name)


def lower_permute(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """A permutation of the data: one Vector pass (transpose/nchwconv) between the copies."""
    ins, out = node_in_out(graph, node, ctx.prec)
    if node.op_type == "TransData" and "NC1HWC0" in (
        node.attrs.get("dst_format"),
        node.attrs.get("src_format"),
    ):
        # The 5HD side is padded to C0 channels: written going in, read coming out.
        x = node.inputs[0]
        c0 = nc1hwc0_c0(device_dtype(graph.tensors[x].dtype, ctx.prec.name))
        padded = _nc1hwc0_bytes(shape_of(graph, x), ins[0], c0)
        if node.attrs.get("dst_format") == "NC1HWC0":
            out = padded
        else:
            ins = [padded, *ins[1:]]
    return vector_lowering([ins[0]], out, max(ins[0], out), ctx, name="transpose", op=node.name)


def _nc1hwc0_bytes(shape: tuple[int, ...], nbytes: int, c0: int) -> int:
    """Bytes of an NCHW tensor of ``nbytes`` in NC1HWC0, its channels padded to ``c0``."""
    c = shape[1]
    return nbytes // c * (-(-c // c0) * c0) if c else nbytes
