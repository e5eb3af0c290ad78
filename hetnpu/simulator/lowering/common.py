"""What every lowering shares: its context, its output record, and the two program shapes.

Two program shapes cover the ops the simulator knows:

- the **Cube pipeline** (:func:`cube_program`): MTE2 brings A and B panels from GM into L1,
  MTE1 moves K chunks into L0A/L0B (img2col for convolutions), the Cube accumulates into L0C, and
  the result leaves through the Vector path and MTE3 (coupled chips) or FixPipe straight to GM
  (split chips, ascend-facts §1.5);
- the **Vector stream** (:func:`vector_program`): MTE2 GM→UB, Vector UB→UB, MTE3 UB→GM.

Each stage waits for the previous one with wait_flag and frees its slot with set_flag, with one
event id per ping-pong slot, so double buffering is the flag pattern, not a formula (§1.7, §1.8).

Left out: bias tables and quantisation parameters, ND↔NZ conversion costs inside MTE2 (it is
assumed free, as ``Nd2NzParams`` copies run at the copy rate), and the ``PipeBarrier`` forms of
synchronisation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hetnpu.errors import ScheduleError
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.isa import Flag, Instr, copy_cycles, gm_cycles, mmad_cycles, vector_cycles
from hetnpu.simulator.tiler import CubeTile, Precision, split_even

__all__ = [
    "MAX_OP_INSTRUCTIONS",
    "MIN_CORE_BYTES",
    "LowerCtx",
    "Lowered",
    "Unsupported",
    "check_instructions",
    "cube_program",
    "dev_nbytes",
    "shape_of",
    "vector_lowering",
    "vector_program",
]

MIN_CORE_BYTES = 4096
"""Smallest GM footprint worth a core of its own for a Vector op (tiler heuristic, assumption):
below it, the fixed latencies of another core's transfers cost more than they save."""


MAX_OP_INSTRUCTIONS = 4_000_000
"""Most instructions (summed over cores) one op may lower to. The biggest op of ResNet-50 at
batch 8 lowers to about 10,000, and a simulation processes about two SimPy events per
instruction, so an op over this bound is a dim gone wrong (2^31, say), or a run of hours;
it is refused before any program is built, so that it costs neither time nor memory."""


def check_instructions(op: str, count: int, what: str) -> None:
    """Raise ScheduleError if an op would lower to more than :data:`MAX_OP_INSTRUCTIONS`.

    Parameters
    ----------
    op
        The node name, for the message.
    count
        The instruction count, computed in closed form before any program is built.
    what
        The sizes that led to ``count``, for the message.
    """
    if count > MAX_OP_INSTRUCTIONS:
        raise ScheduleError(
            f"op {op!r}: {what} would lower to about {count:,} instructions, over the limit "
            f"of {MAX_OP_INSTRUCTIONS:,} per op (hetnpu.simulator.lowering.MAX_OP_INSTRUCTIONS)"
        )


class Unsupported(Exception):
    """Raised by a lowering for an op it cannot model; the reason ends up in the result."""


@dataclass(frozen=True)
class LowerCtx:
    """Everything a lowering may depend on besides the node (and so part of the cache key)."""

    spec: Any
    prec: Precision
    double_buffer: bool
    split: bool
    """Split AIC/AIV chip (910B): Cube and Vector ops run on different cores."""
    cube_cores: int
    vector_cores: int
    force_tile: tuple[int, int, int] | None = None

    @property
    def slots(self) -> int:
        return 2 if self.double_buffer else 1


@dataclass(frozen=True)
class Lowered:
    """The per-core instruction programs of one op.

    ``programs[i]`` runs on core ``i`` of ``group`` (``"cube"`` or ``"vector"``; the same cores
    on coupled chips); identical programs are the same tuple object so they compile once.
    """

    group: str
    programs: tuple[tuple[Instr, ...], ...]
    init_flags: tuple[Flag, ...] = ()
    macs: int = 0
    """MACs the Cube performs, fractal padding included."""
    vector_bytes: int = 0
    """Bytes the Vector unit processes (repeats × 256 B), for the Vector roofline term."""
    tile: str = ""
    """The tiling chosen, for reports."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def instructions(self) -> int:
        """Instructions over every core (each ends in at least one SimPy event)."""
        return sum(len(p) for p in self.programs)


def shape_of(graph: Graph, name: str) -> tuple[int, ...]:
    """The static shape of tensor ``name``; :class:`Unsupported` when unknown."""
    t = graph.tensors.get(name)
    if t is None or not t.is_static:
        raise Unsupported(f"shape of tensor {name!r} is not static")
    return tuple(t.shape)  # type: ignore[arg-type]


def dev_nbytes(graph: Graph, name: str, prec: Precision) -> int:
    """Bytes of tensor ``name`` on the device: floats take the precision's size (ATC's default
    precision mode runs float32 models in fp16), other dtypes keep theirs."""
    t = graph.tensors.get(name)
    if t is None or not t.is_static:
        raise Unsupported(f"shape of tensor {name!r} is not static")
    size = math.prod(t.shape)  # type: ignore[arg-type]
    if t.dtype.startswith("float") or t.dtype == "bfloat16":
        return size * prec.float_bytes
    return size * max(t.itemsize, 1)


def _gm(spec: Any, nbytes: int, rate: float) -> int:
    return gm_cycles(nbytes, rate, spec.mte_latency_cycles, spec.gm_latency_cycles)


def cube_program(
    blocks: list[tuple[int, int]],
    k_total: int,
    tile: CubeTile,
    ctx: LowerCtx,
    *,
    a_gm_per_elem: float,
    b_role: str = "in1",
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
    """
    spec, prec = ctx.spec, ctx.prec
    ib, ab, ob = prec.float_bytes, prec.acc_bytes, prec.float_bytes
    mkn = getattr(spec, prec.mkn_field)
    m0, k0, n0 = mkn
    s_in, s_out = tile.slots, tile.l0c_slots
    if max(s_in, s_out) > spec.flag_ids:
        raise ScheduleError(f"{max(s_in, s_out)} ping-pong slots exceed flag_ids={spec.flag_ids}")
    out = "FIX" if ctx.split else "V"
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
                    _gm(spec, a_bytes, spec.mte2_bytes_per_cycle),
                    a_bytes,
                    "in0",
                    "GM",
                    "L1",
                    waits=(("MTE1", "MTE2", sp),),
                )
            )
            prog.append(
                Instr(
                    "MTE2",
                    "mte2.load_b",
                    _gm(spec, b_bytes, spec.mte2_bytes_per_cycle),
                    b_bytes,
                    b_role,
                    "GM",
                    "L1",
                    sets=(("MTE2", "MTE1", sp),),
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
                    _gm(spec, o_bytes, spec.fixpipe_bytes_per_cycle),
                    o_bytes,
                    "out0",
                    "L0C",
                    "GM",
                    (("M", "FIX", so),),
                    (("FIX", "M", so),),
                )
            )
        else:
            prog.append(
                Instr(
                    "VECTOR",
                    "vec.l0c_to_ub",
                    copy_cycles(c_bytes, spec.fixpipe_bytes_per_cycle, spec.vector_latency_cycles),
                    c_bytes,
                    None,
                    "L0C",
                    "UB",
                    (("M", "V", so), ("MTE3", "V", so)),
                    (("V", "M", so), ("V", "MTE3", so)),
                )
            )
            prog.append(
                Instr(
                    "MTE3",
                    "mte3.store",
                    _gm(spec, o_bytes, spec.mte3_bytes_per_cycle),
                    o_bytes,
                    "out0",
                    "UB",
                    "GM",
                    (("V", "MTE3", so),),
                    (("MTE3", "V", so),),
                )
            )
    return tuple(prog)


def cube_init_flags(tile: CubeTile, split: bool) -> tuple[Flag, ...]:
    """Flags set before a Cube program starts: every ping-pong slot begins free."""
    out = "FIX" if split else "V"
    flags: list[Flag] = []
    for s in range(tile.slots):
        flags += [("MTE1", "MTE2", s), ("M", "MTE1", s)]
    for s in range(tile.l0c_slots):
        flags.append((out, "M", s))
        if not split:
            flags.append(("MTE3", "V", s))
    return tuple(flags)


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
                    _gm(spec, b, spec.mte2_bytes_per_cycle),
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
                _gm(spec, ob, spec.mte3_bytes_per_cycle),
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


def node_in_out(graph: Graph, node: Node, prec: Precision) -> tuple[list[int], int]:
    """Device bytes of the node's present inputs and of its outputs (summed)."""
    ins = [dev_nbytes(graph, t, prec) for t in node.inputs if t]
    out = sum(dev_nbytes(graph, t, prec) for t in node.outputs if t)
    return ins, out
