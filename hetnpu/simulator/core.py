"""An AI core executing one op's program: a pipe per unit, flags, and shared buses.

The Scalar unit issues a core's program in order, one instruction every
``scalar_issue_cycles``; each instruction lands in the in-order queue of its pipe (MTE2, MTE1,
CUBE, FIXPIPE, VECTOR, MTE3). Each pipe of each core lives for the whole run (:class:`Pipe`):
per op it is handed its queue (one wake event), then takes the instructions in order: it waits
for the instruction's issue time and its flags, runs for the closed-form duration, then sets
its flags. Flags follow set_flag/wait_flag (ascend-facts §1.7): waiting on a set flag consumes
it at once (no event); waiting on a clear one blocks the pipe until the matching set. GM transfers
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
Scalar unit never stalls on a full queue (queue depth is not modelled). For the same reason an
instruction costs one SimPy event, its timeout: a pipe blocked on a clear flag goes on in the
callback of the pipe that sets it, and a read's flags carry the cycle its data lands instead of
waiting for it in an event of their own (:class:`Pipe`). Only the order of bus requests made
within one cycle differs from a generator process per pipe woken by events; with 42 % fewer
events a Qwen2-7B prefill layer pair (1024 tokens) simulates in 1.47 s instead of 2.07 s.

Left out: queue depths, the Scalar unit's own stalls (branches, I-cache misses: the FLOWCTRL
and CACHEMISS rows of §1.10), and PIPE_ALL barriers between ops beyond the stream's ordering.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

from hetnpu.simulator.isa import CORE_UNITS, Instr

__all__ = [
    "BIG",
    "ROLE_IDS",
    "Bus",
    "CompiledProgram",
    "Pipe",
    "compile_program",
    "compiled_programs",
    "run_core",
    "set_flags",
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
    lagged: frozenset[int] = frozenset()
    """Flag ids set by GM reads, whose data lands a round trip after the engine lets go."""


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
    lagged: set[int] = set()
    for i, ins in enumerate(instrs):
        waits = tuple(flag_ids.setdefault(f, len(flag_ids)) for f in ins.waits)
        sets = tuple(flag_ids.setdefault(f, len(flag_ids)) for f in ins.sets)
        role = -1 if ins.gm is None else ROLE_IDS.setdefault(ins.gm, len(ROLE_IDS))
        cycles, lag, drain = ins.cycles, 0, 0
        if ins.gm is not None and gm_latency:
            cycles -= gm_latency
            drain = gm_latency
            lag = gm_latency if ins.src == "GM" else 0
        if lag:
            lagged.update(sets)
        l2_cycles = cycles
        if read_rates is not None and ins.gm is not None and ins.src == "GM":
            gm_rate, l2_rate = read_rates
            f = ins.rate_fraction
            l2_cycles += math.ceil(ins.nbytes / (l2_rate * f)) - math.ceil(
                ins.nbytes / (gm_rate * f)
            )
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
        frozenset(lagged),
    )


def set_flags(
    sets: tuple[int, ...],
    at: int,
    flags: list[int],
    waiters: list[Any],
    stamps: dict[int, deque[int]],
) -> list[Any]:
    """set_flag for each id, its data ready at cycle ``at``: hand it to the pipe blocked on it,
    or count it (with ``at``, for a flag a GM read sets) for a later wait. Return the pipes
    handed one (the caller lets them go on at this cycle)."""
    woken = []
    for f in sets:
        w = waiters[f]
        if w is not None:
            waiters[f] = None
            if at > w.ready:
                w.ready = at
            woken.append(w)
        else:
            flags[f] += 1
            if f in stamps:
                stamps[f].append(at)
    return woken


class _Wake:
    """A timeout as SimPy's event loop needs it (``Environment.step`` reads ``callbacks``,
    ``_ok`` and ``_value``) and no more: a pipe schedules one per instruction, and building
    a full ``simpy.Timeout`` instead made a Qwen2-7B batch-16 estimate take 10 % more CPU."""

    __slots__ = ("_ok", "_value", "callbacks")

    def __init__(self, callback: Callable[[Any], None]) -> None:
        self.callbacks = [callback]
        self._ok = True
        self._value = None


class Pipe:
    """One pipe (unit) of one core for the whole run, driven by SimPy event callbacks.

    The chip hands it one op's queue at a time (:meth:`take`, through a wake event). It takes
    the instructions in order: it waits for the instruction's flags, then for its issue time
    and duration as one timeout, then sets its flags. A pipe blocked on a flag goes on when
    the pipe that sets it does, within the same callback; a flag a GM read sets carries the
    cycle its data lands (``ready``), which the waiting instruction starts no earlier than, so
    a read's round trip needs no event of its own. An instruction that moves GM data starts
    (and takes its bus) at its own cycle, as the buses are reserved in time order.
    """

    __slots__ = (
        "_eid", "_queue", "advance", "busy_ops", "done", "end", "entry", "env", "first", "flags",
        "hbm", "i", "job_busy", "l2", "landed", "n", "out", "queue", "ran", "ready", "rec",
        "remaining", "slot", "stamps", "start", "t0", "waiters", "wi",
    )  # fmt: skip

    def __init__(self, env: simpy.Environment, hbm: Bus, l2: Bus) -> None:
        self.env, self.hbm, self.l2 = env, hbm, l2
        # SimPy's own queue and event counter, as Environment.schedule uses them (simpy<5,
        # pinned; tests/simulator/test_core_events.py checks the order they give).
        self._queue, self._eid = env._queue, env._eid
        # Bound once: a bound method is a new object at every attribute access.
        self.advance, self.ran = self._advance, self._ran
        self.busy_ops = False
        """Whether an op's queue is handed over and not yet finished."""
        self.ready = 0
        """The cycle the flags consumed so far for the next instruction have their data."""

    def take(self, job: tuple[Any, ...]) -> None:
        """Start ``job`` (queue, t0, flags, waiters, stamps, remaining, out, slot, rec, done)
        after a wake event, as a process woken by its mailbox would."""
        if self.busy_ops:
            raise RuntimeError("a pipe was handed an op while busy with another")  # a chip bug
        self.busy_ops = True
        ev = self.env.event()
        ev.callbacks.append(self._start)
        ev.succeed(job)

    def _start(self, ev: simpy.Event) -> None:
        (self.queue, self.t0, self.flags, self.waiters, self.stamps, self.remaining, self.out,
         self.slot, self.rec, self.done) = ev.value  # fmt: skip
        self.n = len(self.queue)
        self.i = self.wi = self.job_busy = self.landed = self.ready = 0
        self.first = -1
        self._advance(None)

    def _advance(self, _ev: simpy.Event | None) -> None:
        """Start the next instruction once its flags are set, or finish the queue."""
        i = self.i
        if i == self.n:
            now = self.env._now
            if self.landed > now:
                heappush(self._queue, (self.landed, NORMAL, next(self._eid), _Wake(self._finish)))
            else:
                self._finish(None)
            return
        entry = self.queue[i]
        issue, cyc, l2_cyc, _lag, _drain, nbytes, role, waits, _sets, _idx = entry
        ready = self.ready
        if waits:
            flags, stamps = self.flags, self.stamps
            wi = self.wi
            while wi < len(waits):
                f = waits[wi]
                wi += 1
                if flags[f]:
                    flags[f] -= 1
                    if stamps and f in stamps:
                        landed = stamps[f].popleft()
                        if landed > ready:
                            ready = landed
                else:
                    # Blocked: the pipe that sets it goes on here (see :meth:`_ran`).
                    self.wi, self.ready = wi, ready
                    self.waiters[f] = self
                    return
            self.wi = 0
        now = self.env._now  # the property costs a call per instruction
        if role >= 0 and ready > now:
            # A GM transfer waiting for read data takes its bus when it starts.
            self.wi, self.ready = len(waits), ready
            heappush(self._queue, (ready, NORMAL, next(self._eid), _Wake(self.advance)))
            return
        self.ready = 0
        start = self.t0 + issue
        if start < now:
            start = now
        if start < ready:
            start = ready
        end = start + cyc
        if role >= 0:
            # Bus.reserve, inlined: this runs once per GM transfer.
            remaining = self.remaining
            rem = remaining[role]
            if rem > 0:
                remaining[role] = rem - nbytes
                bus = self.hbm
            else:
                bus = self.l2
                end = start + l2_cyc
            b_start = bus.free_at
            if b_start < start:
                b_start = start
            dur = math.ceil(nbytes / bus.bytes_per_cycle)
            bus.free_at = b_end = b_start + dur
            bus.busy += dur
            bus.nbytes += nbytes
            if b_end > end:
                end = b_end
        if self.first < 0:
            self.first = start
        self.start, self.end, self.entry = start, end, entry
        heappush(self._queue, (end, NORMAL, next(self._eid), _Wake(self.ran)))

    def _ran(self, _ev: simpy.Event) -> None:
        """The instruction has ended: set its flags and go on with the queue."""
        start, end, entry = self.start, self.end, self.entry
        self.job_busy += end - start
        if self.rec is not None:
            self.rec.append((entry[9], start, end))
        drain = entry[4]
        if end + drain > self.landed:
            self.landed = end + drain
        self.i += 1
        sets = entry[8]
        if not sets:
            self._advance(None)
            return
        # A read's data (and so its flags) lands ``lag`` cycles after the engine lets go, while
        # the engine goes on. A pipe blocked on one of these flags goes on at this cycle too,
        # after this pipe's next instruction has started: the order in which a process woken
        # by an event would run (only bus arbitration within one cycle can tell them apart).
        woken = set_flags(sets, end + entry[3], self.flags, self.waiters, self.stamps)
        self._advance(None)
        for w in woken:
            w.advance(None)

    def _finish(self, _ev: simpy.Event | None) -> None:
        self.out[self.slot] = (self.first, self.env.now, self.job_busy, len(self.queue))
        self.busy_ops = False
        self.done()


def run_core(
    env: simpy.Environment,
    prog: CompiledProgram,
    remaining: list[int],
    pipes: dict[str, Pipe],
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
    pipes
        The core's pipes (:class:`Pipe`), each handed its queue.
    record
        Keep (instr index, start, end) for every instruction (instruction-level traces).
    done
        Called once by every pipe when its queue is done.

    Returns
    -------
    units, spans, records
        Unit names started; a list filled with (first start, end, busy, count) per unit when it
        finishes; per-unit instruction records or ``None``.
    """
    flags = list(prog.init)
    waiters: list[Any] = [None] * len(flags)
    # A flag set before the op (a free buffer) has its data from the start.
    stamps: dict[int, deque[int]] = {f: deque([0] * prog.init[f]) for f in prog.lagged}
    units = list(prog.queues)
    spans: list[Any] = [None] * len(units)
    recs: list[list[tuple[int, int, int]]] | None = [[] for _ in units] if record else None
    t0 = env.now
    for i, u in enumerate(units):
        pipes[u].take(
            (
                prog.queues[u],
                t0,
                flags,
                waiters,
                stamps,
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
