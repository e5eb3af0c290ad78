"""Data movement: reshapes (free), copies, fills and permutations through UB, and TransData.

Which op is which is :mod:`hetnpu.graph.opfamilies`' table. Reshape-like ops only relabel a
buffer and cost nothing. Copies (Concat, Slice, Split, Pad, Expand, Tile, Gather) stream the
bytes they actually touch GM→UB→GM with no Vector work; fills (ConstantOfShape, EyeLike) store
their output from UB and read nothing; permutations (Transpose, DepthToSpace, Resize,
TransData) add one Vector pass (vnchwconv / vtranspose, ascend-facts §1.2).

A TransData between NCHW and NC1HWC0 runs at the chip's ``transdata_bytes_per_cycle``
per core when it is set: CANN's kernel converts far below the copy and Vector rates. Public
per-op profiles of a first-generation Ascend 910 (repository Huawei-Performance-Model/
Ascend-910B, 2022, which does not name the chip; block_dim 30 in every AI Core op suggests a
30-core variant: ``application_test/final_test/*/aicore_intermediate_0_detail.csv`` with the
shapes in ``<model>.csv``; ``hetnpu/fidelity/data/ascend910_transdata.csv``,
``benchmarks/transdata.py``) time 22 such TransData of 12 to 2048 channels, fp16 and fp32,
both directions, 6 to 210 MB moved, at 3.1 to 5.5 bytes of NC1HWC0 data per cycle per block
(median 4.63), linear in the batch. A tensor of at most 4 channels (CANN's "small channel", the
network input of an image model) is left at the Vector pass: the same profiles convert
3-channel inputs at 1.5 to 2.1 TB/s of padded NC1HWC0 data, faster than HBM could write it.

Left out: strided-DMA inefficiency of non-contiguous copies (MTE2 is assumed to move any access
pattern at its full rate); the rates of TransData between other formats (ND and FRACTAL_NZ,
FRACTAL_Z), which stay one Vector pass; and an int8 conversion's own rate (the profiles are
fp16 and fp32; int8's C0 of 32 halves its bytes, so it is timed twice as fast).
"""

from __future__ import annotations

from hetnpu.devices.layouts import SMALL_CHANNEL, nc1hwc0_c0
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

_NCHW_5HD = frozenset({"NC1HWC0", "ND", "NCHW"})
"""The formats of a TransData the profiled rate covers (the simulator's own are ND <-> 5HD)."""


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
    per_repeat = 1
    formats = {node.attrs.get("dst_format"), node.attrs.get("src_format")}
    if node.op_type == "TransData" and "NC1HWC0" in formats:
        # The 5HD side is padded to C0 channels: written going in, read coming out.
        x = node.inputs[0]
        shape = shape_of(graph, x)
        c0 = nc1hwc0_c0(device_dtype(graph.tensors[x].dtype, ctx.prec.name))
        padded = _nc1hwc0_bytes(shape, ins[0], c0)
        if node.attrs.get("dst_format") == "NC1HWC0":
            out = padded
        else:
            ins = [padded, *ins[1:]]
        rate = ctx.spec.transdata_bytes_per_cycle
        if rate and formats <= _NCHW_5HD and len(shape) > 1 and shape[1] > SMALL_CHANNEL:
            # The Vector pass over the padded side, one repeat per `rate` bytes of it.
            per_repeat = max(1, round(ctx.spec.vector_bytes_per_cycle / rate))
    return vector_lowering(
        [ins[0]],
        out,
        max(ins[0], out),
        ctx,
        cycles_per_repeat=per_repeat,
        name="transpose",
        op=node.name,
    )


def _nc1hwc0_bytes(shape: tuple[int, ...], nbytes: int, c0: int) -> int:
    """Bytes of an NCHW tensor of ``nbytes`` in NC1HWC0, its channels padded to ``c0``."""
    c = shape[1]
    return nbytes // c * (-(-c // c0) * c0) if c else nbytes
