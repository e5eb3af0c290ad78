"""The Vector stream every elementwise, reduction and data-movement op lowers to: MTE2 GM→UB,
Vector UB→UB, MTE3 UB→GM, split over cores, double-buffered through flags (ascend-facts §1.7,
§1.8).
"""

from __future__ import annotations

import math

from hetnpu.simulator.isa import Flag, Instr, vector_cycles
from hetnpu.simulator.lowering.common import (
    MIN_CORE_BYTES,
    LowerCtx,
    Lowered,
    check_instructions,
    gm_copy_cycles,
)
from hetnpu.simulator.tiler import split_even

__all__ = ["vector_lowering", "vector_program"]


def vector_program(
    tiles: list[tuple[tuple[int, ...], int, int]],
    ctx: LowerCtx,
    *,
    cycles_per_repeat: int,
    name: str,
) -> tuple[Instr, ...]:
    """The program of one core streaming ``tiles`` through UB.

    Parameters
    ----------
    tiles
        Per tile: (bytes read per input, bytes written, bytes the Vector unit processes).
        Zero processed bytes makes a pure copy (MTE2 then MTE3, no Vector instruction).
    ctx
        Lowering context.
    cycles_per_repeat
        Cycles per 256-B repeat of the op family (ascend-facts §8: 1 for simple ops; more for
        transcendental ones, an assumption).
    name
        Mnemonic suffix for traces (``"add"``, ``"exp"``...).
    """
    spec = ctx.spec
    s_n = ctx.slots
    prog: list[Instr] = []
    for t, (ins, out_b, work) in enumerate(tiles):
        s = t % s_n
        loads = [(i, b) for i, b in enumerate(ins) if b > 0] or [(0, 32)]
        for j, (i, b) in enumerate(loads):
            waits: tuple[Flag, ...] = ()
            sets: tuple[Flag, ...] = ()
            if j == 0:
                waits = (("V", "MTE2", s),) if work else (("MTE3", "MTE2", s),)
            if j == len(loads) - 1:
                sets = (("MTE2", "V", s),) if work else (("MTE2", "MTE3", s),)
            prog.append(
                Instr(
                    "MTE2",
                    "mte2.load",
                    gm_copy_cycles(spec, b, spec.mte2_bytes_per_cycle),
                    b,
                    f"in{i}",
                    "GM",
                    "UB",
                    waits,
                    sets,
                )
            )
        if work:
            cyc = vector_cycles(
                work, spec.vector_bytes_per_cycle, spec.vector_latency_cycles, cycles_per_repeat
            )
            prog.append(
                Instr(
                    "VECTOR",
                    f"vec.{name}",
                    cyc,
                    work,
                    None,
                    "UB",
                    "UB",
                    (("MTE2", "V", s), ("MTE3", "V", s)),
                    (("V", "MTE2", s), ("V", "MTE3", s)),
                )
            )
            w3, s3 = (("V", "MTE3", s),), (("MTE3", "V", s),)
        else:
            w3, s3 = (("MTE2", "MTE3", s),), (("MTE3", "MTE2", s),)
        ob = max(out_b, 1)
        prog.append(
            Instr(
                "MTE3",
                "mte3.store",
                gm_copy_cycles(spec, ob, spec.mte3_bytes_per_cycle),
                ob,
                "out0",
                "UB",
                "GM",
                w3,
                s3,
            )
        )
    return tuple(prog)


def _split_n(total: int, parts: int) -> list[int]:
    """``total`` in ``parts`` 32-byte-aligned shares that sum exactly (zeros at the end)."""
    shares = split_even(total, parts, 32)
    return shares + [0] * (parts - len(shares))


def vector_lowering(
    in_bytes: list[int],
    out_bytes: int,
    work_bytes: int,
    ctx: LowerCtx,
    *,
    cycles_per_repeat: int = 1,
    name: str,
    ub_buffers: float | None = None,
    op: str = "",
) -> Lowered:
    """Spread a Vector stream over the vector-capable cores and tile it to fit UB.

    Parameters
    ----------
    in_bytes, out_bytes
        GM bytes read per input and written.
    work_bytes
        Bytes the Vector unit processes (0 for a pure copy).
    ctx
        Lowering context.
    cycles_per_repeat, name
        As :func:`vector_program`.
    ub_buffers
        UB footprint of a tile as a multiple of its GM bytes (default 1: inputs + output; more
        for ops that keep intermediates in UB).
    op
        The node name, named if the op would lower to too many instructions.
    """
    spec = ctx.spec
    footprint = sum(in_bytes) + out_bytes
    cores = ctx.vector_cores if ctx.split else ctx.cube_cores
    used = max(1, min(cores, footprint // MIN_CORE_BYTES))
    budget = spec.ub_bytes // ctx.slots
    scale = ub_buffers or 1.0
    programs: list[tuple[Instr, ...]] = []
    memo: dict[tuple[int, ...], tuple[Instr, ...]] = {}
    # Every quantity is split exactly (no rounding drift): per core, then per tile.
    per_core = [_split_n(b, used) for b in (*in_bytes, out_bytes, work_bytes)]
    # The first core has the biggest share: bound the whole op by it before building anything.
    biggest = max(1, math.ceil(sum(col[0] for col in per_core[:-1]) * scale / budget))
    check_instructions(
        op or name,
        used * biggest * (len(in_bytes) + 2),
        f"a Vector stream of {sum(in_bytes) + out_bytes:,} B in {biggest:,} UB tiles per core",
    )
    for c in range(used):
        q = tuple(col[c] for col in per_core)
        prog = memo.get(q)
        if prog is None:
            n_tiles = max(1, math.ceil(sum(q[:-1]) * scale / budget))
            cols = [_split_n(b, n_tiles) for b in q]
            tiles = [
                (tuple(col[t] for col in cols[:-2]), cols[-2][t], cols[-1][t])
                for t in range(n_tiles)
            ]
            prog = memo[q] = vector_program(
                tiles, ctx, cycles_per_repeat=cycles_per_repeat, name=name
            )
        programs.append(prog)
    flags = tuple(
        f
        for s in range(ctx.slots)
        for f in (("V", "MTE2", s), ("MTE3", "V", s), ("MTE3", "MTE2", s))
    )
    per_repeat = spec.vector_bytes_per_cycle
    return Lowered(
        "vector",
        tuple(programs),
        flags,
        vector_bytes=math.ceil(work_bytes / per_repeat) * per_repeat * cycles_per_repeat,
        tile=f"{len(programs)} cores x {len(programs[0]) if programs else 0} instrs",
    )
