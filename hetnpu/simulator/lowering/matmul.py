"""Cube ops: MatMul, Gemm and convolutions (img2col into fractal mmad tiles).

A convolution is the product of the img2col matrix (M = batch·output pixels, K = input channels
per group·kernel taps) and the weights (N = output channels per group). MTE2 reads the feature
map itself into L1 (so the A panel's GM bytes are the feature map's share, not the expanded
matrix) and MTE1's img2col load expands it into L0A (ascend-facts §1.5). Grouped convolutions
pack as many groups into one product as fill a fractal (GE's grouped FRACTAL_Z ``e_mult``),
with the weights block-diagonal: depthwise ones pack 16 channels per fractal, so 15/16 of the
Cube's work on them is padding, ResNeXt's 4-channel groups pack 4 to a fractal.

MatMul and Gemm operands are row-major ND: their panel copies convert ND to NZ on the way, and
one that reads part of each row of an operand whose row pitch is not a multiple of 512 B also
runs at the chip's reduced unaligned rate (:func:`nd_read_fraction`, ascend-facts §1.5).

Left out: CANN's MIX_AIC form of such MatMuls (vector cores pad ND to NZ first when the inner
axis exceeds 1000 and the Cube work 50 us, ascend-facts §3.5: the unaligned rate stands in for
it), the NZ copy GE may make of a constant weight ahead of time (weights are read as ND like
any operand), bias addition (it rides on L0C initialisation), the halo rows that neighbouring output
tiles read twice, dilation's effect on L1 reuse, and ConvTranspose.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from hetnpu.errors import ModelError
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.lowering.common import (
    LowerCtx,
    Lowered,
    Unsupported,
    check_instructions,
    dev_nbytes,
    shape_of,
)
from hetnpu.simulator.lowering.cube_template import cube_init_flags, cube_program
from hetnpu.simulator.lowering.vector_template import vector_lowering
from hetnpu.simulator.tiler import CubeTile, split_even, tile_cube

__all__ = ["lower_conv", "lower_gemm", "lower_matmul"]


GM_ALIGN_BYTES = 512
"""The GM alignment at which MTE2 reads reach full bandwidth on Atlas A2 (ascend-facts §1.5:
GM→L1 'is fastest with 512-B cache-line alignment')."""


def nd_read_fraction(spec: Any, row_bytes: int, partial_rows: bool) -> float:
    """Fraction of MTE2's rates a panel copy of a row-major ND operand reaches.

    MTE2 converts ND rows to the Cube's NZ fractals on the way into L1 (``Nd2NzParams``
    DataCopy, ascend-facts §1.5), at the chip's ``mte2_nd2nz_read_fraction`` of a fractal
    copy's rate. The copy reads one segment per row at the operand's row pitch
    ``row_bytes``; when the tile covers only part of each row (``partial_rows``) and the pitch
    is not a multiple of 512 B, the segments start off 512-B boundaries, where Atlas A2
    reaches about 70% of the aligned bandwidth (ascend-facts §1.5 [HIA-ALIGN]; catlass's
    padding_matmul: row-major rows aligned to 512 B move faster), the chip's
    ``gm_unaligned_read_fraction``. A tile of whole rows is one contiguous run.
    """
    frac = spec.mte2_nd2nz_read_fraction
    if partial_rows and row_bytes % GM_ALIGN_BYTES:
        frac *= spec.gm_unaligned_read_fraction
    return frac


def _lower_products(
    node: Node,
    ctx: LowerCtx,
    batch: int,
    m: int,
    k: int,
    n: int,
    a_gm_per_elem: float,
    rows: tuple[str, str] | None = None,
    residual_role: str | None = None,
) -> Lowered:
    """The Cube lowering of ``batch`` products (m, k) x (k, n). ``rows`` names the stored
    inner (contiguous) axis of A ("k" or "m") and of B ("n" or "k") for a row-major ND
    operand pair (MatMul, Gemm); None for operands that are not (img2col, 5HD).
    ``residual_role`` is the GM role of a residual the epilogue adds (coupled chips only)."""
    spec = ctx.spec
    if batch == 0 or m == 0 or n == 0:  # an empty output: nothing to compute or write
        return Lowered("cube", (), tile=f"empty {batch}x({m},{k},{n})")
    if k == 0:  # a product over an empty K is all zeros: only the output is written
        out = batch * m * n * ctx.prec.float_bytes
        return vector_lowering([], out, 0, ctx, name="zeros", op=node.name)
    tile = tile_cube(
        node.name,
        batch,
        m,
        k,
        n,
        spec=spec,
        prec=ctx.prec,
        cores=ctx.cube_cores,
        double_buffer=ctx.double_buffer,
        # A residual's block waits in UB beside the output's: half of UB each.
        ub_bytes=None if ctx.split else spec.ub_bytes // (2 if residual_role else 1),
        force=ctx.force_tile,
        a_bytes_per_elem=a_gm_per_elem,
    )
    panels = math.ceil(k / tile.kp)
    per_block = panels * (2 + 2 * math.ceil(tile.kp / tile.k)) + 2

    def check(tiles: int) -> None:
        what = f"{batch}x({m},{k},{n}) in {tiles:,} blocks of {panels:,} K panels"
        check_instructions(node.name, tiles * per_block, what)

    # The whole output in L0 tiles is a lower bound of the cores' tiles: a product too big is
    # refused before it is split, then the split's own count is checked.
    check(batch * math.ceil(m / tile.m) * math.ceil(n / tile.n))
    split = core_blocks(batch, m, k, n, tile, ctx, a_gm_per_elem)
    check(sum(len(blocks) for blocks in split))
    a_frac = b_frac = 1.0
    if rows is not None:
        ib = ctx.prec.float_bytes
        k_split = panels > 1
        m_split = any(mb < m for blocks in split for mb, _ in blocks)
        n_split = any(nb < n for blocks in split for _, nb in blocks)
        a_inner, b_inner = rows
        a_frac = nd_read_fraction(
            spec, (k if a_inner == "k" else m) * ib, k_split if a_inner == "k" else m_split
        )
        b_frac = nd_read_fraction(
            spec, (n if b_inner == "n" else k) * ib, n_split if b_inner == "n" else k_split
        )
    memo: dict[tuple[tuple[int, int], ...], tuple] = {}
    programs = []
    for blocks in split:
        prog = memo.get(blocks)
        if prog is None:
            prog = memo[blocks] = cube_program(
                list(blocks),
                k,
                tile,
                ctx,
                a_gm_per_elem=a_gm_per_elem,
                a_rate_fraction=a_frac,
                b_rate_fraction=b_frac,
                residual_role=residual_role,
            )
        programs.append(prog)
    macs = sum(i.macs for p in programs for i in p)
    return Lowered(
        "cube",
        tuple(programs),
        cube_init_flags(tile, ctx.split, residual_role is not None),
        macs=macs,
        tile=(
            f"{batch}x({m},{k},{n}) tile m={tile.m} k={tile.k} n={tile.n} kp={tile.kp} "
            f"slots={tile.slots}/{tile.l0c_slots} on {len(programs)} cores"
        ),
    )


def core_blocks(
    batch: int, m: int, k: int, n: int, tile: CubeTile, ctx: LowerCtx, a_gm_per_elem: float
) -> list[tuple[tuple[int, int], ...]]:
    """Each core's output blocks: the products split over the cores first, then each core's
    share cut into L0 tiles.

    Ascend's multi-core Matmul tiling (CANN "Multi-core split", ``MultiCoreMatmulTiling``:
    ``GetCoreNum`` returns ``dim = mDim x nDim``, ``GetSingleShape`` the per-core
    ``singleCoreM``/``singleCoreN``; the batch dims of ``BatchMatmulTiling`` likewise) gives
    every core one ``singleCoreM x singleCoreN`` block of C (A split into ``mDim`` parts along
    M, B into ``nDim`` along N), which the core then iterates in ``baseM x baseN`` L0 tiles.
    The split is chosen here as the (batch, M, N) core counts that give the busiest core the
    fewest L0 tiles (the waves the tiler's estimate assumed), then whose busiest core finishes
    first (its Cube fractals or its MTE2 bytes, whichever is slower, A re-read for every
    N tile and B for every M tile), fewer cores on a tie; shares are even in whole fractals.
    """
    spec, prec = ctx.spec, ctx.prec
    m0, k0, n0 = getattr(spec, prec.mkn_field)
    ib = prec.float_bytes
    cores = ctx.cube_cores
    ka = -(-k // k0) * k0
    rate = spec.mte2_bytes_per_cycle

    def candidates() -> Iterator[tuple[int, float, int, int, int, int]]:
        """(busiest core's L0 tiles, its cost, cores used, mDim, nDim, batch dim) of each
        split; the smallest wins."""
        for md in range(1, min(cores, -(-m // m0)) + 1):
            for nd in range(1, min(cores // md, -(-n // n0)) + 1):
                bd = min(batch, cores // (md * nd))
                ms = split_even(m, md, m0)[0]
                ns = split_even(n, nd, n0)[0]
                tm, tn = -(-ms // tile.m), -(-ns // tile.n)
                msr, nsr = -(-ms // m0) * m0, -(-ns // n0) * n0
                cube = (msr // m0) * (ka // k0) * (nsr // n0)
                mte2 = (tn * ms * ka * a_gm_per_elem + tm * ka * ns * ib) / rate
                per_core = -(-batch // bd)
                yield per_core * tm * tn, per_core * max(cube, mte2), bd * md * nd, md, nd, bd

    # One core, one block is always a candidate (m, n >= 1), so min() has something to take.
    _, _, _, md, nd, bd = min(candidates())
    m_shares, n_shares = split_even(m, md, m0), split_even(n, nd, n0)
    out: list[tuple[tuple[int, int], ...]] = []
    for nb in split_even(batch, bd):
        for ms in m_shares:
            for ns in n_shares:
                subs = [
                    (mt, nt)
                    for mt in split_even(ms, -(-ms // tile.m), m0)
                    for nt in split_even(ns, -(-ns // tile.n), n0)
                ]
                out.append(tuple(subs * nb))
    return out


def lower_matmul(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """MatMul with numpy broadcasting; a 2-D B folds A's batch dims into M."""
    a, b = shape_of(graph, node.inputs[0]), shape_of(graph, node.inputs[1])
    if len(a) == 0 or len(b) == 0:
        raise Unsupported("MatMul of a scalar")
    k = a[-1]
    m = a[-2] if len(a) >= 2 else 1
    n = b[-1] if len(b) >= 2 else 1
    if len(b) <= 2:
        m, batch = math.prod(a[:-1]) if len(a) > 1 else 1, 1
    else:
        out = shape_of(graph, node.outputs[0])
        batch = math.prod(out[:-2])
    return _lower_products(node, ctx, batch, m, k, n, ctx.prec.float_bytes, rows=("k", "n"))


def lower_gemm(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Gemm: ``alpha·op(A)·op(B) + beta·C``; transposes only change the load pattern."""
    a = shape_of(graph, node.inputs[0])
    b = shape_of(graph, node.inputs[1])
    m, k = (a[1], a[0]) if node.attrs.get("transA", 0) else (a[0], a[1])
    n = b[0] if node.attrs.get("transB", 0) else b[1]
    rows = (
        "m" if node.attrs.get("transA", 0) else "k",
        "k" if node.attrs.get("transB", 0) else "n",
    )
    return _lower_products(node, ctx, 1, m, k, n, ctx.prec.float_bytes, rows=rows)


def lower_conv(node: Node, graph: Graph, ctx: LowerCtx) -> Lowered:
    """Conv of any spatial rank, grouped and depthwise included, via img2col."""
    x = shape_of(graph, node.inputs[0])
    w = shape_of(graph, node.inputs[1])
    y = shape_of(graph, node.outputs[0])
    groups = int(node.attrs.get("group", 1))
    if groups <= 0:
        raise ModelError(f"node {node.name!r} (Conv): group={groups}, expected at least 1")
    cin, cout = x[1], w[0]
    taps = math.prod(w[2:])
    m = y[0] * math.prod(y[2:])
    x_bytes = dev_nbytes(graph, node.inputs[0], ctx.prec)
    _m0, k0, n0 = getattr(ctx.spec, ctx.prec.mkn_field)
    if groups > 1:
        # CANN's grouped FRACTAL_Z: e_mult groups share one block-diagonal product, enough to
        # fill a K0 x N0 fractal (depthwise: 16 channels per fractal), so the Cube runs
        # ceil(groups / e_mult) products of K = cin_opt * taps, N = cout_opt.
        batch, cin_opt, n = _group_extend(cin // groups, cout // groups, groups, k0, n0)
        k = cin_opt * taps
        # The feature map is read once, as the NC1HWC0 tensor it is (channels padded to C0).
        x_bytes = x_bytes * (-(-cin // k0) * k0) // cin if cin else x_bytes
    else:
        batch, k, n = 1, cin * taps, cout
    a_rate = (x_bytes / batch) / (m * k) if m * k else 0.0
    # A fourth input is the residual of an Add fused into the epilogue (the simulator's
    # TbeConvDoubleInFusionPass, coupled chips): its role counts the inputs present before it.
    residual = None
    if len(node.inputs) > 3 and node.inputs[3] and not ctx.split:
        residual = f"in{sum(1 for t in node.inputs[:3] if t)}"
    return _lower_products(node, ctx, batch, m, k, n, a_rate, residual_role=residual)


def _group_extend(cin_g: int, cout_g: int, groups: int, k0: int, n0: int) -> tuple[int, int, int]:
    """(products, cin_opt, cout_opt) of a grouped convolution's weights in FRACTAL_Z: GE's
    ``e_mult = min(lcm(lcm(cin, K0) / cin, lcm(cout, N0) / cout), groups)`` groups per product,
    their channels padded to whole fractals (mindspore-ai/mindspore
    ``mindspore/ccsrc/runtime/device/ms_device_shape_transfer.cc``, the FRACTAL_Z group
    transfer; GE's formats transfer and the AI CPU TransData kernel compute the same)."""
    if cin_g <= 0 or cout_g <= 0:
        return groups, max(cin_g, 0), max(cout_g, 0)
    e = min(math.lcm(math.lcm(cin_g, k0) // cin_g, math.lcm(cout_g, n0) // cout_g), groups)
    cin_opt = -(-e * cin_g // k0) * k0
    cout_opt = -(-e * cout_g // n0) * n0
    return -(-groups // e), cin_opt, cout_opt
