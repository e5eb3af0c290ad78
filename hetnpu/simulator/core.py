"""An AI core executing one op's program: a SimPy process per unit, flags, and shared buses.

The Scalar unit issues a core's program in order, one instruction every
``scalar_issue_cycles``; each instruction lands in the in-order queue of its pipe (MTE2, MTE1,
CUBE, FIXPIPE, VECTOR, MTE3). Each pipe of each core is one SimPy process for the whole run: per
op it is handed its queue (one wake event), then takes the instructions in order: it waits for
the instruction's issue time and its flags, runs for the closed-form duration, then sets its
flags. Flags follow set_flag/wait_flag (ascend-facts §1.7): waiting on a set flag consumes it at
once (no event); waiting on a clear one blocks the pipe until the matching set. GM transfers
additionally reserve the shared HBM or L2 bus (:class:`Bus`).

A GM transfer holds its engine (MTE2, MTE3, FixPipe) for its issue latency and data phase
only; the GM round trip (``gm_latency_cycles``) runs behind it, as a DMA engine keeps several
requests in flight. A read's data, and so its flags, land ``gm_latency_cycles`` after the
engine lets go, while the engine already moves the next transfer; a write frees its source
buffer (sets its flags) when the engine lets go, and the op completes only once the write
has landed. Back-to-back transfers thus pay the round trip once, not once each. A read that
hits L2 moves at the engine's L2 rate (``mte2_l2_bytes_per_cycle``, the compilers' "L2 read"
rate of ascend-facts §1.5) instead of its GM rate.

Because issue times are fixed by the program, a queue is a precomputed tuple rather than a
``simpy.Store``: a Store would add two events per instruction and change no timing while the
Scalar unit never stalls on a full queue (queue depth is not modelled).

Left out: queue depths, the Scalar unit's own stalls (branches, I-cache misses: the FLOWCTRL
and CACHEMISS rows of §1.10), and PIPE_ALL barriers between ops beyond the stream's ordering.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import simpy

from hetnpu.simulator.isa import CORE_UNITS, Instr

__all__ = [
    "BIG",
    "ROLE_IDS",
    "Bus",
    "CompiledProgram",
    "Mailbox",
    "compile_program",
    "compiled_programs",
    "run_core",
    "set_flags",
    "unit_process",
]

BIG = 1 << 62
"""'Always HBM' marker for a write role's remaining-bytes counter."""

ROLE_IDS: dict[str, int] = {}
"""GM role name ("in0", "out0"...) → index into an op's shared remaining-bytes list."""


class Bus:
    """A shared bandwidth (HBM or L2) as a FIFO token model.

    A transfer reserves the bus from ``max(now, free_at)`` for ``ceil(bytes / bytes_per_cycle)``
    cycles. Reservations happen in simulated-time order, so this is exactly a capacity-1 FIFO
    ``simpy.Resource`` held for the transfer's bus time, without its request/release events.
    """

    __slots__ = ("busy", "bytes_per_cycle", "free_at", "name", "nbytes")

    def __init__(self, name: str, bytes_per_cycle: float) -> None:
        self.name = name
        self.bytes_per_cycle = bytes_per_cycle
        self.free_at = 0
        self.busy = 0
        self.nbytes = 0

    def reserve(self, now: int, nbytes: int) -> int:
        """Reserve the bus for ``nbytes`` starting no earlier than ``now``; return the end."""
        start = self.free_at if self.free_at > now else now
        dur = math.ceil(nbytes / self.bytes_per_cycle)
        self.free_at = start + dur
        self.busy += dur
        self.nbytes += nbytes
        return start + dur


@dataclass(frozen=True)
class CompiledProgram:
    """A program split into per-unit queues of plain tuples, ready to run.

    Queue entries: (issue cycle, engine cycles, engine cycles on an L2 hit, flag lag, drain,
    bytes, role index or -1, wait flag ids, set flag ids, index into ``instrs``). For GM
    transfers the engine cycles leave out the GM round trip; ``flag lag`` (reads) is when,
    after the engine lets go, the flags are set, and ``drain`` when the data has landed (see
    the module docstring).
    """

    instrs: tuple[Instr, ...]
    queues: dict[str, tuple[tuple[Any, ...], ...]]
    flags: tuple[tuple[str, str, int], ...]
    init: tuple[int, ...]
    scalar_cycles: int
    level_bytes: dict[str, int]
    gm_bytes: int
    """Bytes the program moves to or from GM."""


def compile_program(
    instrs: tuple[Instr, ...],
    init_flags: tuple[tuple[str, str, int], ...],
    scalar_issue: int,
    gm_latency: int = 0,
    read_rates: tuple[float, float] | None = None,
) -> CompiledProgram:
    """Split a program into per-unit queues with issue times and integer flag ids.

    ``gm_latency`` is the GM round trip included in every GM transfer's ``cycles``
    (:func:`~hetnpu.simulator.isa.gm_cycles`); it is taken out of the engine's time and run
    behind it. ``read_rates`` is (GM, L2) bytes/cycle of MTE2 reads: a read's cycles were
    worked out at the GM rate, and an L2 hit takes the L2 rate instead.
    """
    flag_ids: dict[tuple[str, str, int], int] = {f: i for i, f in enumerate(init_flags)}
    queues: dict[str, list[tuple[Any, ...]]] = {u: [] for u in CORE_UNITS}
    level_bytes: dict[str, int] = {}
    for i, ins in enumerate(instrs):
        waits = tuple(flag_ids.setdefault(f, len(flag_ids)) for f in ins.waits)
        sets = tuple(flag_ids.setdefault(f, len(flag_ids)) for f in ins.sets)
        role = -1 if ins.gm is None else ROLE_IDS.setdefault(ins.gm, len(ROLE_IDS))
        cycles, lag, drain = ins.cycles, 0, 0
        if ins.gm is not None and gm_latency:
            cycles -= gm_latency
            drain = gm_latency
            lag = gm_latency if ins.src == "GM" else 0
        l2_cycles = cycles
        if read_rates is not None and ins.gm is not None and ins.src == "GM":
            gm_rate, l2_rate = read_rates
            l2_cycles += math.ceil(ins.nbytes / l2_rate) - math.ceil(ins.nbytes / gm_rate)
        queues[ins.unit].append(
            (
                (i + 1) * scalar_issue,
                cycles,
                l2_cycles,
                lag,
                drain,
                ins.nbytes,
                role,
                waits,
                sets,
                i,
            )
        )
        if ins.dst and ins.dst != "GM":
            level_bytes[ins.dst] = level_bytes.get(ins.dst, 0) + ins.nbytes
    init_set = set(init_flags)
    flags = tuple(sorted(flag_ids, key=flag_ids.__getitem__))
    return CompiledProgram(
        instrs,
        {u: tuple(q) for u, q in queues.items() if q},
        flags,
        tuple(1 if f in init_set else 0 for f in flags),
        len(instrs) * scalar_issue,
        level_bytes,
        sum(i.nbytes for i in instrs if i.gm is not None),
    )


class Mailbox:
    """Where the chip hands a persistent unit process its next queue (one wake event per op)."""

    __slots__ = ("event",)

    def __init__(self) -> None:
        self.event: simpy.Event | None = None


def set_flags(sets: tuple[int, ...], flags: list[int], waiters: list[Any]) -> None:
    """set_flag for each id: wake the pipe waiting on it, or count it for a later wait."""
    for f in sets:
        w = waiters[f]
        if w is not None:
            waiters[f] = None
            w.succeed()
        else:
            flags[f] += 1


def unit_process(env: simpy.Environment, box: Mailbox, hbm: Bus, l2: Bus) -> Iterator[simpy.Event]:
    """One unit of one core for the whole run: wait for a queue, run it, report, repeat.

    The queue loop is inlined here rather than delegated with ``yield from``, which would add
    a generator frame to every resumption.
    """
    timeout = env.timeout
    event = env.event
    ceil = math.ceil
    while True:
        box.event = event()
        job = yield box.event
        queue, t0, flags, waiters, remaining, out, slot, rec, done = job

        def land(ev: simpy.Event, flags: list[int] = flags, waiters: list[Any] = waiters) -> None:
            set_flags(ev.value, flags, waiters)

        # The hot loop of the simulator: one timeout per instruction. Waiting for the issue time
        # is folded into that timeout (the unit is idle either way).
        busy = 0
        first = -1
        landed = 0  # when the last GM transfer's round trip ends
        for issue, cyc, l2_cyc, lag, drain, nbytes, role, waits, sets, idx in queue:
            for f in waits:
                if flags[f]:
                    flags[f] -= 1
                else:
                    ev = waiters[f] = event()
                    yield ev
            now = env._now  # the property costs a call per instruction
            start = t0 + issue
            if start < now:
                start = now
            end = start + cyc
            if role >= 0:
                # Bus.reserve, inlined: this runs once per GM transfer.
                rem = remaining[role]
                if rem > 0:
                    remaining[role] = rem - nbytes
                    bus = hbm
                else:
                    bus = l2
                    end = start + l2_cyc
                b_start = bus.free_at
                if b_start < start:
                    b_start = start
                dur = ceil(nbytes / bus.bytes_per_cycle)
                bus.free_at = b_end = b_start + dur
                bus.busy += dur
                bus.nbytes += nbytes
                if b_end > end:
                    end = b_end
            if first < 0:
                first = start
            yield timeout(end - now)
            busy += end - start
            if rec is not None:
                rec.append((idx, start, end))
            if end + drain > landed:
                landed = end + drain
            if lag:
                # The read's data lands after the round trip; the engine goes on meanwhile.
                timeout(lag, sets).callbacks.append(land)
                continue
            if sets:
                set_flags(sets, flags, waiters)
        if landed > env._now:
            yield timeout(landed - env._now)
        out[slot] = (first, env.now, busy, len(queue))
        done()


def run_core(
    env: simpy.Environment,
    prog: CompiledProgram,
    remaining: list[int],
    boxes: dict[str, Mailbox],
    record: bool,
    done: Callable[[], None],
) -> tuple[list[str], list[Any], list[list[tuple[int, int, int]]] | None]:
    """Hand ``prog``'s queues to the core's unit processes, starting now.

    Parameters
    ----------
    env
        The simulation.
    prog
        The compiled program.
    remaining
        By :data:`ROLE_IDS` index, bytes still to come from HBM (reads: the tensor's unique
        bytes, later re-reads hit L2) or :data:`BIG` / 0 for writes to HBM / L2. All cores of
        the op share the list.
    boxes
        The core's unit mailboxes (their processes run :func:`unit_process`).
    record
        Keep (instr index, start, end) for every instruction (instruction-level traces).
    done
        Called once by every unit process when its queue is empty.

    Returns
    -------
    units, spans, records
        Unit names started; a list filled with (first start, end, busy, count) per unit when it
        finishes; per-unit instruction records or ``None``.
    """
    flags = list(prog.init)
    waiters: list[Any] = [None] * len(flags)
    units = list(prog.queues)
    spans: list[Any] = [None] * len(units)
    recs: list[list[tuple[int, int, int]]] | None = [[] for _ in units] if record else None
    t0 = env.now
    for i, u in enumerate(units):
        box = boxes[u]
        if box.event is None or box.event.triggered:
            raise RuntimeError(f"unit {u} is still busy with an earlier op")  # a chip.py bug
        box.event.succeed(
            (
                prog.queues[u],
                t0,
                flags,
                waiters,
                remaining,
                spans,
                i,
                None if recs is None else recs[i],
                done,
            )
        )
    return units, spans, recs


def compiled_programs(low: Any, spec: Any) -> tuple[CompiledProgram | None, ...]:
    """Every core's program of ``low`` compiled for ``spec``'s rates, once per Lowered.

    A Lowered is cached per op signature and chip by the lowering, so its compiled programs
    are kept with it; cores that run the same program share one compiled copy.
    """
    found = low.extra.get("compiled")
    if found is not None:
        return found
    gm_rate = spec.mte2_bytes_per_cycle
    rates = (gm_rate, spec.mte2_l2_bytes_per_cycle or gm_rate)
    shared: dict[int, CompiledProgram] = {}  # by program identity, all alive in low.programs
    out: list[CompiledProgram | None] = []
    for prog in low.programs:
        if not prog:
            out.append(None)
            continue
        cp = shared.get(id(prog))
        if cp is None:
            cp = compile_program(
                prog, low.init_flags, spec.scalar_issue_cycles, spec.gm_latency_cycles, rates
            )
            shared[id(prog)] = cp
        out.append(cp)
    low.extra["compiled"] = compiled = tuple(out)
    return compiled
