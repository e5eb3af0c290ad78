"""The Cube pipeline every matmul-like op lowers to.

MTE2 brings A and B panels from GM into L1, MTE1 moves K chunks into L0A/L0B (img2col for
convolutions), the Cube accumulates into L0C, and the result leaves through the Vector path and
MTE3 (coupled chips) or FixPipe straight to GM (split chips, ascend-facts §1.5). Each stage
waits for the previous one with wait_flag and frees its slot with set_flag, with one event id
per ping-pong slot, so double buffering is the flag pattern, not a formula (§1.7, §1.8).

A panel copy of a row-major ND operand converts it to NZ fractals on the way (``Nd2NzParams``),
at the chip's ``mte2_nd2nz_read_fraction`` of the copy rates, and reads a row segment per row:
when the row pitch is not a multiple of 512 B those segments start off 512-B boundaries, and
the copy runs at a further ``gm_unaligned_read_fraction`` (ascend-facts §1.5; the caller works
out each operand's fraction).

Left out: bias tables and quantisation parameters, the shared bus's own share of those
slower copies (only the engine slows), and the ``PipeBarrier`` forms of synchronisation.
"""

from __future__ import annotations

import math

from hetnpu.errors import ScheduleError
from hetnpu.simulator.isa import Flag, Instr, copy_cycles, mmad_cycles
from hetnpu.simulator.lowering.common import (
    LowerCtx,
    gm_copy_cycles,
)
from hetnpu.simulator.tiler import CubeTile, split_even

__all__ = ["cube_init_flags", "cube_program"]


def cube_program(
    blocks: list[tuple[int, int]],
    k_total: int,
    tile: CubeTile,
    ctx: LowerCtx,
    *,
    a_gm_per_elem: float,
    b_role: str = "in1",
    a_rate_fraction: float = 1.0,
    b_rate_fraction: float = 1.0,
    residual_role: str | None = None,
) -> tuple[Instr, ...]:
    """The instruction program of one core computing output ``blocks`` of a Cube op.

    Parameters
    ----------
    blocks
        (m, n) sizes of the core's output blocks, each at most the tile's (m, n).
    k_total
        The reduction length.
    tile
        From :func:`~hetnpu.simulator.tiler.tile_cube`.
    ctx
        Lowering context.
    a_gm_per_elem
        GM bytes per element of an A panel (img2col reads the unexpanded feature map).
    b_role
        GM role of the B operand.
    a_rate_fraction, b_rate_fraction
        Fraction of MTE2's read rates the A and B panel copies reach (ND→NZ conversion, rows
        that start off 512-B boundaries: see
        :func:`~hetnpu.simulator.lowering.matmul.nd_read_fraction`).
    residual_role
        GM role of a residual added in the epilogue (coupled chips: a convolution with its
        residual Add, ``TbeConvDoubleInFusionPass``), or None. Per output block MTE2 reads the
        residual's block into UB once the slot's last store is done, and the Vector unit adds
        it as it takes the block from L0C, so the read overlaps the Cube's next blocks.
    """
    spec, prec = ctx.spec, ctx.prec
    ib, ab, ob = prec.float_bytes, prec.acc_bytes, prec.float_bytes
    mkn = getattr(spec, prec.mkn_field)
    m0, k0, n0 = mkn
    s_in, s_out = tile.slots, tile.l0c_slots
    if max(s_in, s_out) > spec.flag_ids:
        raise ScheduleError(f"{max(s_in, s_out)} ping-pong slots exceed flag_ids={spec.flag_ids}")
    out = "FIX" if ctx.split else "V"
    gm_rate = spec.mte2_bytes_per_cycle
    prog: list[Instr] = []
    p = c = 0
    for o, (mb, nb) in enumerate(blocks):
        so = o % s_out
        mr, nr = -(-mb // m0) * m0, -(-nb // n0) * n0
        panels = split_even(k_total, math.ceil(k_total / tile.kp), tile.k)
        first = True
        for pi, kp in enumerate(panels):
            sp = p % s_in
            a_bytes = max(1, math.ceil(mb * kp * a_gm_per_elem))
            b_bytes = kp * nb * ib
            prog.append(
                Instr(
                    "MTE2",
                    "mte2.load_a",
                    gm_copy_cycles(spec, a_bytes, gm_rate * a_rate_fraction),
                    a_bytes,
                    "in0",
                    "GM",
                    "L1",
                    waits=(("MTE1", "MTE2", sp),),
                    rate_fraction=a_rate_fraction,
                )
            )
            prog.append(
                Instr(
                    "MTE2",
                    "mte2.load_b",
                    gm_copy_cycles(spec, b_bytes, gm_rate * b_rate_fraction),
                    b_bytes,
                    b_role,
                    "GM",
                    "L1",
                    sets=(("MTE2", "MTE1", sp),),
                    rate_fraction=b_rate_fraction,
                )
            )
            chunks = split_even(kp, math.ceil(kp / tile.k), k0)
            for j, kc in enumerate(chunks):
                sc = c % s_in
                kr = -(-kc // k0) * k0
                a_l0, b_l0 = mr * kr * ib, kr * nr * ib
                cyc = copy_cycles(a_l0, spec.mte1_l0a_bytes_per_cycle, spec.mte_latency_cycles)
                cyc += math.ceil(b_l0 / spec.mte1_l0b_bytes_per_cycle)
                waits: tuple[Flag, ...] = (("M", "MTE1", sc),)
                if j == 0:
                    waits = (("MTE2", "MTE1", sp), *waits)
                sets: tuple[Flag, ...] = (("MTE1", "M", sc),)
                if j == len(chunks) - 1:
                    sets = (*sets, ("MTE1", "MTE2", sp))
                prog.append(
                    Instr(
                        "MTE1",
                        "mte1.load_l0ab",
                        cyc,
                        a_l0 + b_l0,
                        None,
                        "L1",
                        "L0A+L0B",
                        waits,
                        sets,
                    )
                )
                last = pi == len(panels) - 1 and j == len(chunks) - 1
                mwaits: tuple[Flag, ...] = (("MTE1", "M", sc),)
                if first:
                    mwaits = (*mwaits, (out, "M", so))
                msets: tuple[Flag, ...] = (("M", "MTE1", sc),)
                if last:
                    msets = (*msets, ("M", out, so))
                prog.append(
                    Instr(
                        "CUBE",
                        "mmad",
                        mmad_cycles(mb, kc, nb, mkn, spec.cube_latency_cycles),
                        a_l0 + b_l0,
                        None,
                        "L0A+L0B",
                        "L0C",
                        mwaits,
                        msets,
                        macs=mr * kr * nr,
                    )
                )
                first = False
                c += 1
            p += 1
        c_bytes, o_bytes = mr * nr * ab, mb * nb * ob
        if ctx.split:
            prog.append(
                Instr(
                    "FIXPIPE",
                    "fixpipe.l0c_to_gm",
                    gm_copy_cycles(spec, o_bytes, spec.fixpipe_bytes_per_cycle),
                    o_bytes,
                    "out0",
                    "L0C",
                    "GM",
                    (("M", "FIX", so),),
                    (("FIX", "M", so),),
                )
            )
        else:
            vwaits: tuple[Flag, ...] = (("M", "V", so), ("MTE3", "V", so))
            stored: tuple[Flag, ...] = (("MTE3", "V", so),)
            cyc = copy_cycles(c_bytes, spec.fixpipe_bytes_per_cycle, spec.vector_latency_cycles)
            if residual_role is not None:
                prog.append(
                    Instr(
                        "MTE2",
                        "mte2.load_residual",
                        gm_copy_cycles(spec, o_bytes, gm_rate),
                        o_bytes,
                        residual_role,
                        "GM",
                        "UB",
                        (("MTE3", "MTE2", so),),
                        (("MTE2", "V", so),),
                    )
                )
                vwaits = (*vwaits, ("MTE2", "V", so))
                stored = (*stored, ("MTE3", "MTE2", so))
                cyc += math.ceil(2 * o_bytes / spec.vector_bytes_per_cycle)  # reads both addends
            prog.append(
                Instr(
                    "VECTOR",
                    "vec.l0c_to_ub",
                    cyc,
                    c_bytes,
                    None,
                    "L0C",
                    "UB",
                    vwaits,
                    (("V", "M", so), ("V", "MTE3", so)),
                )
            )
            prog.append(
                Instr(
                    "MTE3",
                    "mte3.store",
                    gm_copy_cycles(spec, o_bytes, spec.mte3_bytes_per_cycle),
                    o_bytes,
                    "out0",
                    "UB",
                    "GM",
                    (("V", "MTE3", so),),
                    stored,
                )
            )
    return tuple(prog)


def cube_init_flags(tile: CubeTile, split: bool, residual: bool = False) -> tuple[Flag, ...]:
    """Flags set before a Cube program starts: every ping-pong slot begins free."""
    out = "FIX" if split else "V"
    flags: list[Flag] = []
    for s in range(tile.slots):
        flags += [("MTE1", "MTE2", s), ("M", "MTE1", s)]
    for s in range(tile.l0c_slots):
        flags.append((out, "M", s))
        if not split:
            flags.append(("MTE3", "V", s))
            if residual:
                flags.append(("MTE3", "MTE2", s))
    return tuple(flags)
