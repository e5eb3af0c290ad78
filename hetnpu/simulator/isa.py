"""The instruction set the simulator executes, and the closed-form durations of each instruction.

An :class:`Instr` is one instruction (or one batch of identical back-to-back instructions) that
the Scalar unit of an AI core issues into the in-order queue of one pipe. Durations are integer
cycles from the pure functions below, which tests call without SimPy; the simulation adds only
what the closed forms cannot know: waiting for flags, for the unit's earlier instructions and for
the shared memory buses.

Closed forms (ascend-facts §8, §1.1, §1.2, §1.5; fixed latencies are chip-preset assumptions):

- ``mmad``: ``cube_latency_cycles + ceil(m/M0)·ceil(k/K0)·ceil(n/N0)``: one fractal step per
  cycle after a pipeline fill/drain of ``cube_latency_cycles``.
- copies inside the core (MTE1, L0C→UB): ``latency + ceil(bytes / bytes_per_cycle)``.
- GM transfers (MTE2, MTE3, FixPipe→GM): ``mte_latency + gm_latency + ceil(bytes / core rate)``
  on the core's engine, and at the same time ``ceil(bytes / bus rate)`` on the shared HBM or L2
  bus; the transfer ends when both are done.
- vector: ``vector_latency_cycles + ceil(bytes / vector_bytes_per_cycle) · cycles_per_repeat``.

Left out: per-instruction encoding, repeat-count limits (255) and masks, bank conflicts, the
instruction cache, and queue depths (the Scalar unit is assumed never to stall on a full queue).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "CORE_UNITS",
    "UNITS",
    "Flag",
    "Instr",
    "bus_cycles",
    "copy_cycles",
    "gm_cycles",
    "mmad_cycles",
    "vector_cycles",
]

UNITS: tuple[str, ...] = ("SCALAR", "MTE2", "MTE1", "CUBE", "FIXPIPE", "VECTOR", "MTE3")
"""Pipe names as msprof's simulator rows them (ascend-facts §1.10), in trace order."""

CORE_UNITS: tuple[str, ...] = UNITS[1:]
"""Units that consume an instruction queue (the Scalar unit issues, it does not consume)."""

Flag = tuple[str, str, int]
"""A set_flag/wait_flag event: (source pipe, destination pipe, event id)."""


@dataclass(frozen=True, slots=True)
class Instr:
    """One instruction (or batch) issued into the queue of ``unit``.

    Attributes
    ----------
    unit
        The pipe that executes it, one of :data:`CORE_UNITS`.
    op
        Mnemonic for traces (``"mte2.load"``, ``"mte1.load_l0ab"``, ``"mmad"``, ``"vec.add"``...).
    cycles
        Fixed duration in cycles; for a GM transfer, the core-side duration (the shared bus may
        make it longer).
    nbytes
        Bytes moved (or, for compute, bytes processed).
    gm
        For GM transfers, the role of the tensor touched (``"in0"``, ``"out0"``...); ``None``
        for on-chip instructions.
    src, dst
        Memory levels read and written (``"GM"``, ``"L1"``, ``"L0A+L0B"``, ``"L0C"``, ``"UB"``),
        for per-level byte counts.
    waits, sets
        Flags waited on before starting, and set after completing (ascend-facts §1.7).
    macs
        Multiply-accumulates done (Cube instructions only).
    rate_fraction
        For GM reads, the fraction of the engine's GM and L2 rates the copy reaches (an
        ND→NZ conversion on the way, rows off 512-B boundaries, ascend-facts §1.5);
        ``cycles`` already holds it.
    """

    unit: str
    op: str
    cycles: int
    nbytes: int = 0
    gm: str | None = None
    src: str = ""
    dst: str = ""
    waits: tuple[Flag, ...] = ()
    sets: tuple[Flag, ...] = ()
    macs: int = 0
    rate_fraction: float = 1.0


def mmad_cycles(m: int, k: int, n: int, mkn: tuple[int, int, int], latency: int) -> int:
    """Cycles of one mmad over an (m, k, n) tile on a Cube of fractal ``mkn``.

    Example
    -------
    >>> mmad_cycles(64, 64, 64, (16, 16, 16), 0)
    64
    """
    m0, k0, n0 = mkn
    return latency + math.ceil(m / m0) * math.ceil(k / k0) * math.ceil(n / n0)


def copy_cycles(nbytes: int, bytes_per_cycle: float, latency: int) -> int:
    """Cycles of an on-chip copy of ``nbytes`` at ``bytes_per_cycle`` after ``latency``."""
    return latency + math.ceil(nbytes / bytes_per_cycle)


def gm_cycles(nbytes: int, bytes_per_cycle: float, mte_latency: int, gm_latency: int) -> int:
    """Core-side cycles of a GM transfer (the engine's own rate cap, ignoring contention)."""
    return mte_latency + gm_latency + math.ceil(nbytes / bytes_per_cycle)


def bus_cycles(nbytes: int, bytes_per_cycle: float) -> int:
    """Cycles a transfer occupies a shared bus (HBM or L2) of ``bytes_per_cycle``."""
    return math.ceil(nbytes / bytes_per_cycle)


def vector_cycles(
    nbytes: int, bytes_per_cycle: float, latency: int, cycles_per_repeat: int = 1
) -> int:
    """Cycles of a vector instruction over ``nbytes`` (one 256-B repeat per cycle by default).

    Example
    -------
    >>> vector_cycles(1024, 256, 2, cycles_per_repeat=1)
    6
    """
    return latency + math.ceil(nbytes / bytes_per_cycle) * cycles_per_repeat
