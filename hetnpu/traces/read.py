"""Read a trace into one shape whatever wrote it: hetnpu's simulator, hetnpu's runtime profile,
onnxruntime's profile JSON, or any other Chrome trace.

- hetnpu traces (``otherData.generator`` starts with ``hetnpu``, or any trace with ``X`` events
  of cat ``op``): those events are ops, on the device their process names (a `` (chip)`` suffix
  dropped); other ``X`` events (units, instructions, stages, transfers) are unit spans on the
  lane (process) and unit (thread) they sit on. The runtime profile (one process per device,
  ``X`` events per stage, op and transfer) reads this way.
- onnxruntime (``enable_profiling``): ``Node`` events named ``<node>_kernel_time`` are ops, on
  the device of their ``provider``; each provider is one unit.
- msprof / torch_npu: ``op_summary``, ``op_statistic`` and ``kernel_details`` CSVs, and
  timelines with an "Ascend Hardware" process (:mod:`~hetnpu.traces.msprof_read`);
- anything else: every ``X`` event is an op on the device its process names.

A hetnpu trace's "Ascend Hardware" and "Overlap Analysis" processes repeat its ops in msprof's
shape for other tools; they are neither ops nor units here.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from hetnpu.errors import InputError
from hetnpu.traces.validate import load_json

__all__ = ["OpSpan", "Trace", "UnitSpan", "read_trace"]

_ORT_SUFFIX = "_kernel_time"


@dataclass(frozen=True)
class OpSpan:
    """One op's run, as its trace records it; cycle figures are 0 when the trace has none."""

    name: str
    op_type: str
    device: str
    start_us: float
    dur_us: float
    cores: int = 1
    cycles: int = 0
    cube_cycles: int = 0
    vector_cycles: int = 0
    mte_cycles: int = 0
    bound: str = ""
    flops: int = 0
    bytes: int = 0
    """Bytes the op moved to or from GM (HBM and L2), else the bytes its tensors hold."""
    hbm_bytes: int = 0
    task_type: str = ""
    """msprof's Task Type (``AI_CORE``, ``AI_VECTOR_CORE``, ``MIX_AIC``, ``AI_CPU``, ``HCCL``)."""
    count: int = 1
    """Runs this row stands for (an ``op_statistic`` row adds up many)."""
    wait_us: float = 0.0
    """Time since the previous task ended (msprof's Task Wait Time)."""
    launch_us: float = 0.0
    """Time the task scheduler spent starting this op, just before ``start_us`` (simulated)."""
    mechanism: str = ""
    """Where the op's time went (:mod:`~hetnpu.traces.attribution`), when the trace says."""
    parts: tuple[tuple[str, float], ...] = ()
    """µs per mechanism (launch included) of a simulated op, when the trace records them."""
    pipe: tuple[tuple[str, float | None], ...] = ()
    """PipeUtilization figures by msprof column name (``aic_mac_ratio``, ``aicore_time(us)``…)."""
    attrs: tuple[tuple[str, str], ...] = ()
    """Other msprof text columns by name (``Input Shapes``, ``Output Formats``…)."""

    @property
    def utilisation(self) -> float | None:
        """Busiest compute unit's cycles over (op cycles × cores), None without cycle data."""
        if self.cycles <= 0 or self.cores <= 0:
            return None
        return max(self.cube_cycles, self.vector_cycles) / (self.cycles * self.cores)

    @property
    def flops_per_s(self) -> float:
        return self.flops / (self.dur_us * 1e-6) if self.dur_us > 0 else 0.0


@dataclass(frozen=True)
class UnitSpan:
    """Time a unit (thread) of a lane (process) of a device was busy."""

    device: str
    lane: str
    unit: str
    op: str
    start_us: float
    dur_us: float
    busy_us: float


@dataclass(frozen=True)
class Trace:
    """A trace read by :func:`read_trace`."""

    kind: str
    """``"hetnpu"``, ``"onnxruntime"`` or ``"chrome"``."""
    ops: tuple[OpSpan, ...]
    units: tuple[UnitSpan, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    """The trace's ``otherData`` (chip roofs, bytes by memory level...)."""
    lanes: dict[tuple[str, str], int] = field(default_factory=dict)
    """(device, unit) → lanes (cores) having that unit, idle ones included, where known."""

    @property
    def wall_us(self) -> float:
        if not self.ops:
            return 0.0
        return max(o.start_us + o.dur_us for o in self.ops) - min(o.start_us for o in self.ops)


def _events(data: Any, where: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if isinstance(data, list):
        return [e for e in data if isinstance(e, dict)], {}
    if isinstance(data, dict) and isinstance(data.get("traceEvents"), list):
        other = data.get("otherData")
        return [e for e in data["traceEvents"] if isinstance(e, dict)], (
            other if isinstance(other, dict) else {}
        )
    raise InputError(f"{where}: not a Chrome trace (no traceEvents list)")


def _int(v: Any) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return 0


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return 0.0


def read_trace(source: Any) -> Trace:
    """Read a trace file (or parsed JSON) of any of the kinds above.

    Raises
    ------
    InputError
        The file cannot be read, is not JSON, or holds no trace events.
    """
    where = str(source) if not isinstance(source, dict | list) else "trace"
    if isinstance(source, str | os.PathLike) and os.fspath(source).lower().endswith(".csv"):
        from hetnpu.traces.msprof_read import read_msprof_csv

        return read_msprof_csv(source)
    events, other = _events(load_json(source), where)
    if not str(other.get("generator", "")).startswith("hetnpu"):
        from hetnpu.traces.msprof_read import is_ascend_timeline, read_ascend_timeline

        if is_ascend_timeline(events):
            return read_ascend_timeline(events, where)
    if any(e.get("cat") == "Node" and str(e.get("name", "")).endswith(_ORT_SUFFIX) for e in events):
        return _read_ort(events)
    if str(other.get("generator", "")).startswith("hetnpu") or any(
        e.get("ph") == "X" and e.get("cat") == "op" for e in events
    ):
        return _read_hetnpu(events, other)
    procs = _names(events, "process_name")
    ops = tuple(
        OpSpan(
            str(e.get("name", "")),
            str(e.get("cat", "")),
            procs.get(e.get("pid"), str(e.get("pid"))),
            _num(e.get("ts")),
            _num(e.get("dur")),
        )
        for e in events
        if e.get("ph") == "X"
    )
    return Trace("chrome", ops, (), other)


def _names(events: list[dict[str, Any]], kind: str) -> dict[Any, str]:
    out: dict[Any, str] = {}
    for e in events:
        if e.get("ph") == "M" and e.get("name") == kind:
            key = e.get("pid") if kind == "process_name" else (e.get("pid"), e.get("tid"))
            out[key] = str((e.get("args") or {}).get("name", key))
    return out


_MSPROF_LANES = frozenset({"Ascend Hardware", "Overlap Analysis"})
_ATTRS = (
    ("input_shapes", "Input Shapes"),
    ("input_dtypes", "Input Data Types"),
    ("input_formats", "Input Formats"),
    ("output_shapes", "Output Shapes"),
    ("output_dtypes", "Output Data Types"),
    ("output_formats", "Output Formats"),
)


def _read_hetnpu(events: list[dict[str, Any]], other: dict[str, Any]) -> Trace:
    procs = _names(events, "process_name")
    skip = {pid for pid, name in procs.items() if name in _MSPROF_LANES}
    threads = {k: v for k, v in _names(events, "thread_name").items() if k[0] not in skip}
    clock = _num(other.get("clock_hz")) or 0.0
    chip = str(other.get("chip", ""))
    op_pids = {e.get("pid") for e in events if e.get("ph") == "X" and e.get("cat") == "op"}
    ops, units = [], []
    for e in events:
        if e.get("ph") != "X" or e.get("pid") in skip:
            continue
        pid, args = e.get("pid"), e.get("args") or {}
        lane = procs.get(pid, str(pid))
        device = lane.removesuffix(" (chip)") if pid in op_pids else (chip or lane)
        ts, dur = _num(e.get("ts")), _num(e.get("dur"))
        if e.get("cat") == "op":
            ops.append(
                OpSpan(
                    str(e.get("name", "")),
                    str(args.get("op_type", "")),
                    device,
                    ts,
                    dur,
                    max(_int(args.get("cores", 1)), 1),
                    _int(args.get("cycles")),
                    _int(args.get("cube_cycles")),
                    _int(args.get("vector_cycles")),
                    _int(args.get("mte_cycles")),
                    str(args.get("bound", "")),
                    _int(args.get("flops")),
                    _int(args.get("gm_bytes")) or _int(args.get("bytes")),
                    _int(args.get("hbm_bytes")),
                    launch_us=_int(args.get("launch_cycles")) / clock * 1e6 if clock else 0.0,
                    task_type=str(args.get("task_type", "")),
                    mechanism=str(args.get("mechanism", "")),
                    parts=tuple(
                        (str(m), _num(c) / clock * 1e6)
                        for m, c in (args.get("mechanism_cycles") or {}).items()
                    )
                    if clock
                    else (),
                    attrs=tuple((col, str(args[key])) for key, col in _ATTRS if key in args),
                )
            )
            continue
        busy = dur
        if "busy_cycles" in args and clock:
            busy = _int(args["busy_cycles"]) / clock * 1e6
        unit = threads.get((pid, e.get("tid")), str(e.get("cat", "")))
        units.append(UnitSpan(device, lane, unit, str(args.get("op", "")), ts, dur, busy))
    # Named lanes count even when idle: a unit's utilisation is over every core that has it.
    lanes: dict[tuple[str, str], int] = {}
    for (pid, _tid), unit in threads.items():
        if pid not in op_pids:
            key = (chip or procs.get(pid, str(pid)), unit)
            lanes[key] = lanes.get(key, 0) + 1
    return Trace("hetnpu", tuple(ops), tuple(units), other, lanes if chip else {})


def _read_ort(events: list[dict[str, Any]]) -> Trace:
    ops, units = [], []
    for e in events:
        name = str(e.get("name", ""))
        if e.get("ph") != "X" or e.get("cat") != "Node" or not name.endswith(_ORT_SUFFIX):
            continue
        args = e.get("args") or {}
        provider = str(args.get("provider", "onnxruntime"))
        device = provider.removesuffix("ExecutionProvider").lower() or "onnxruntime"
        node = name.removesuffix(_ORT_SUFFIX)
        ts, dur = _num(e.get("ts")), _num(e.get("dur"))
        nbytes = _int(args.get("activation_size")) + _int(args.get("parameter_size"))
        nbytes += _int(args.get("output_size"))
        ops.append(OpSpan(node, str(args.get("op_name", "")), device, ts, dur, bytes=nbytes))
        units.append(UnitSpan(device, device, provider, node, ts, dur, dur))
    return Trace("onnxruntime", tuple(ops), tuple(units), {})
