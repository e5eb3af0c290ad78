"""What a simulation returns: :class:`SimResult`, immutable, every figure from simulated events.

Left out: energy and power (no published per-op energy figures to derive them from).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CoreSpan", "OpRecord", "SimResult", "UnsupportedOp"]

CoreSpan = tuple[str, int, int]
"""(core name, start cycle, end cycle) of one core's part of an op."""

RawEvent = tuple[str, str, int, int, str, int, int]
"""(core, unit, start, end, name, op index, bytes) — recorded only when traces are asked for."""


@dataclass(frozen=True)
class UnsupportedOp:
    """An op the NPU cannot run, with the reason (the partitioner sends these elsewhere)."""

    name: str
    op_type: str
    reason: str


@dataclass(frozen=True)
class OpRecord:
    """The timing of one op.

    ``bound`` is ``"compute"`` when the busiest Cube or Vector unit of a core was busier than
    any of its GM engines, ``"memory"`` in the opposite case, ``"latency"`` when neither was
    busy for half the op (fixed latencies and dependencies dominate), ``"fused"`` for an
    epilogue folded into its producer and ``"zero"`` for an op with no work.
    """

    index: int
    name: str
    op_type: str
    start: int
    end: int
    cores: tuple[CoreSpan, ...]
    cube_cycles: int
    vector_cycles: int
    mte_cycles: int
    bound: str
    roofline_cycles: int
    compute_bound_cycles: int
    memory_bound_cycles: int
    macs: int
    gm_bytes: int
    hbm_bytes: int
    tile: str = ""
    fused_into: str | None = None
    launch_cycles: int = 0
    """Cycles the task scheduler spent starting this op's kernel, just before ``start``."""

    @classmethod
    def fused(cls, index: int, name: str, op_type: str, at: int, into: str) -> OpRecord:
        """An epilogue folded into ``into``: no time, no work of its own."""
        return cls(index, name, op_type, at, at, (), 0, 0, 0, "fused", 0, 0, 0, 0, 0, 0, "", into)

    @property
    def cycles(self) -> int:
        return self.end - self.start

    @property
    def roofline_ratio(self) -> float:
        """Simulated over roofline cycles (≥ 1 for a sound model); inf when the bound is 0."""
        if self.roofline_cycles <= 0:
            return float("inf") if self.cycles else 1.0
        return self.cycles / self.roofline_cycles


@dataclass(frozen=True)
class SimResult:
    """The outcome of :func:`hetnpu.simulator.simulate`.

    Two runs of the same model and configuration compare equal (``wall_s`` is excluded).
    """

    chip: str
    precision: str
    clock_hz: float
    cycles: int
    ops: tuple[OpRecord, ...]
    unit_busy: Mapping[str, float]
    """Unit → busy cycles over (run cycles × cores having that unit)."""
    unit_busy_cycles: Mapping[str, int]
    bytes_by_level: Mapping[str, int]
    """Bytes written into each memory level (HBM and L2 count reads and writes)."""
    hbm_bytes: int
    events: int
    """SimPy events processed."""
    unsupported: tuple[UnsupportedOp, ...]
    cores: tuple[str, ...]
    trace_level: str | None = None
    raw_events: tuple[RawEvent, ...] = ()
    double_buffer: bool = True
    wall_s: float = field(default=0.0, compare=False)
    spec: Any = field(default=None, compare=False, repr=False)
    """The ``NpuSpec`` simulated, overrides included: what traces draw their roofs from."""
    launch_cycles: int = 0
    """Cycles spent starting kernels (``task_launch_s`` each), part of ``cycles``."""

    @property
    def latency_s(self) -> float:
        """The device's time for the run: its cycles at the clock."""
        return self.cycles / self.clock_hz

    @property
    def execute_s(self) -> float:
        """What the spec's ``model_execute_s`` adds to a run timed from the host."""
        return float(getattr(self.spec, "model_execute_s", 0.0) or 0.0)

    @property
    def execute_latency_s(self) -> float:
        """The run as the host times one synchronous aclmdlExecute of it (what ais_bench
        reports as NPU compute time): the device's time plus ``model_execute_s``."""
        return self.latency_s + self.execute_s

    def check_violations(self) -> list[OpRecord]:
        """Ops whose simulated cycles fall below their roofline bound (a simulator bug)."""
        return [op for op in self.ops if op.cycles < op.roofline_cycles]

    def costliest(self, n: int = 10) -> list[OpRecord]:
        """The ``n`` ops with the most cycles (ties by model order)."""
        return sorted(self.ops, key=lambda o: (-o.cycles, o.index))[:n]

    def to_summary(self) -> dict[str, Any]:
        """JSON-ready summary (the ``--json`` output)."""
        lat = self.latency_s
        return {
            "chip": self.chip,
            "precision": self.precision,
            "double_buffer": self.double_buffer,
            "cycles": self.cycles,
            "latency_s": lat,
            "execute_latency_s": self.execute_latency_s,
            "unit_busy": dict(sorted(self.unit_busy.items())),
            "hbm_bytes": self.hbm_bytes,
            "hbm_bytes_per_s": self.hbm_bytes / lat if lat else 0.0,
            "bytes_by_level": dict(sorted(self.bytes_by_level.items())),
            "events": self.events,
            "launch_cycles": self.launch_cycles,
            "wall_s": self.wall_s,
            "ops": [
                {
                    "name": o.name,
                    "type": o.op_type,
                    "start": o.start,
                    "end": o.end,
                    "cycles": o.cycles,
                    "bound": o.bound,
                    "roofline_cycles": o.roofline_cycles,
                    "cube_cycles": o.cube_cycles,
                    "vector_cycles": o.vector_cycles,
                    "mte_cycles": o.mte_cycles,
                    "hbm_bytes": o.hbm_bytes,
                    "tile": o.tile,
                    **({"fused_into": o.fused_into} if o.fused_into else {}),
                }
                for o in self.ops
            ],
            "unsupported": [
                {"name": u.name, "type": u.op_type, "reason": u.reason} for u in self.unsupported
            ],
        }

    def op_table(self, n: int | None = None) -> list[dict[str, Any]]:
        """Rows for a table of ops, costliest first (all ops when ``n`` is None)."""
        rows = self.costliest(n if n is not None else len(self.ops))
        total = max(self.cycles, 1)
        return [
            {
                "name": o.name,
                "type": o.op_type,
                "cycles": o.cycles,
                "share": o.cycles / total,
                "bound": o.bound,
                "roofline_ratio": o.roofline_ratio,
                "tile": o.tile,
            }
            for o in rows
        ]
