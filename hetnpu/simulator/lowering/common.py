"""What every lowering shares: its context, its output record, the instruction budget, and
the byte sizes of tensors on the device.

The two program shapes built on these are :mod:`~hetnpu.simulator.lowering.cube_template` (the
Cube pipeline) and :mod:`~hetnpu.simulator.lowering.vector_template` (the Vector stream).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from hetnpu.devices.rates import device_itemsize
from hetnpu.errors import ScheduleError
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.isa import Flag, Instr, gm_cycles
from hetnpu.simulator.tiler import Precision

__all__ = [
    "MAX_OP_INSTRUCTIONS",
    "MIN_CORE_BYTES",
    "LowerCtx",
    "Lowered",
    "Unsupported",
    "check_instructions",
    "dev_nbytes",
    "gm_copy_cycles",
    "node_in_out",
    "shape_of",
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
    """Bytes of tensor ``name`` on the device (:func:`hetnpu.devices.rates.device_itemsize`:
    floats take the precision's size, other dtypes keep theirs, at least a byte each)."""
    t = graph.tensors.get(name)
    if t is None or not t.is_static:
        raise Unsupported(f"shape of tensor {name!r} is not static")
    size = math.prod(t.shape)  # type: ignore[arg-type]
    return size * max(device_itemsize(t.dtype, prec.name), 1)


def gm_copy_cycles(spec: Any, nbytes: int, rate: float) -> int:
    return gm_cycles(nbytes, rate, spec.mte_latency_cycles, spec.gm_latency_cycles)


def node_in_out(graph: Graph, node: Node, prec: Precision) -> tuple[list[int], int]:
    """Device bytes of the node's present inputs and of its outputs (summed)."""
    ins = [dev_nbytes(graph, t, prec) for t in node.inputs if t]
    out = sum(dev_nbytes(graph, t, prec) for t in node.outputs if t)
    return ins, out
