"""Chrome Trace Event output of a :class:`~hetnpu.simulator.SimResult` (Perfetto-ready).

The object form ``{"displayTimeUnit": "ns", "otherData": {...}, "traceEvents": [...]}``:

- process 0 is the chip: a ``stream`` thread with one ``X`` span per op (cat ``op``; args: op
  type, input/output shapes and device layouts, bytes, cycles, cores, bound, FLOPs) and ``C``
  counters of the HBM and L2 bandwidth each op achieved;
- then one process per AI core, with one thread per unit named as msprof's simulator rows
  (SCALAR, MTE2, MTE1, CUBE, FIXPIPE, VECTOR, MTE3; ascend-facts §1.10): at level ``op`` one span
  per (op, core, unit), at level ``instr`` one per instruction (batch). The MTE lanes are the
  transfer lanes: every GM load and store sits on them;
- ``s``/``f`` flow arrows, when the graph is given, from each producer op to the transfer that
  loads its output into the consumer (the consumer's MTE2 span on its first core, else the
  consumer's own span);
- msprof's device lanes, so the trace reads as msprof's does in MindStudio Insight: an
  "Ascend Hardware" process with a "Stream 0" thread holding each op as a task (args Task Type,
  Stream Id, Task Id, OP Type), and an "Overlap Analysis" process with Computing,
  Communication, Communication(Not Overlapped) and Free lanes;
- ``M`` metadata naming every pid and tid, with sort indices.

Each op span carries its mechanism (:mod:`~hetnpu.traces.attribution`: cube, vector, memory,
dispatch, sync, layout) in ``args.mechanism`` with its cycles per mechanism, and is coloured by
it (``cname``).

Timestamps are microseconds from the run's start, rounded to picoseconds, with ``dur`` taken as
the difference of rounded ends so adjacent spans share their boundary exactly; flow ids count
from 1. Events are sorted by (pid, tid, ts, dur, name) and every lane is a sequence of disjoint
spans, so nesting is trivially perfect. The same result always gives the same bytes.
:func:`write_chrome_trace` streams events to a temporary file renamed over the target at the end.

Left out: buffer-occupancy counters (the simulator keeps no allocation timeline of L1/UB/L0),
and flows between instructions inside an op (set_flag/wait_flag pairs are not recorded).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

from hetnpu.devices.rates import npu_rates
from hetnpu.errors import ConfigError
from hetnpu.simulator.isa import UNITS
from hetnpu.traces.attribution import COLOURS, op_mechanism, op_time_parts
from hetnpu.traces.events import write_trace_file
from hetnpu.traces.msprof_schema import core_kind, task_type

__all__ = ["chip_roof", "chrome_trace", "iter_events", "write_chrome_trace"]

_LEVELS = ("op", "instr")
_STREAM_TID = 1
_STREAM_ID = 0
_HARDWARE, _OVERLAP = "Ascend Hardware", "Overlap Analysis"
# msprof's overlap lanes, in its order (tid = index); a single chip never communicates.
_OVERLAP_LANES = ("Computing", "Communication", "Communication(Not Overlapped)", "Free")
_MTE_IN = "MTE2"


class _Clock:
    """Cycles → microseconds, rounded to picoseconds so equal results format equally."""

    def __init__(self, clock_hz: float) -> None:
        self.scale = 1e6 / clock_hz

    def ts(self, cycles: int) -> float:
        return round(cycles * self.scale, 6)

    def dur(self, start: int, end: int) -> float:
        # The difference of rounded ends: the next span's ts equals this span's ts + dur.
        return round(self.ts(end) - self.ts(start), 6)


def chip_roof(spec: Any, precision: str) -> dict[str, float]:
    """The roofs a trace's roofline is drawn against: the chip's peaks at ``precision``
    (:func:`hetnpu.devices.rates.npu_rates`).

    Peak Cube FLOP/s = 2 × M0·K0·N0 (the fractal at ``precision``, one step per cycle per core,
    ascend-facts §8) × AI cores × clock; peak Vector op/s = bytes per cycle / element bytes ×
    vector cores × clock; HBM and L2 bandwidths are the spec's.
    """
    rates = npu_rates(spec, precision)
    return {
        "peak_flops": rates.cube_flops_per_s,
        "peak_vector_flops": rates.vector_ops_per_s,
        "hbm_bytes_per_s": rates.hbm_bytes_per_s,
        "l2_bytes_per_s": rates.l2_bytes_per_s,
    }


def _check_level(result: Any, level: str | None) -> str:
    have = result.trace_level
    level = level or have
    if level not in _LEVELS:
        raise ConfigError(f"trace level {level!r}: expected one of {', '.join(_LEVELS)}")
    if have is None:
        raise ConfigError(
            "the result kept no trace events: simulate with trace_level='op' or 'instr'"
        )
    if level == "instr" and have != "instr":
        raise ConfigError(
            "an instruction-level trace needs a result simulated at trace_level='instr'"
        )
    return level


def _other_data(result: Any, level: str, spec: Any) -> dict[str, Any]:
    other: dict[str, Any] = {
        "generator": "hetnpu.simulator",
        "chip": result.chip,
        "precision": result.precision,
        "cycles": result.cycles,
        "clock_hz": result.clock_hz,
        "level": level,
        "cores": len(result.cores),
        "unit_busy": dict(sorted(result.unit_busy.items())),
        "bytes_by_level": dict(sorted(result.bytes_by_level.items())),
        "hbm_bytes": result.hbm_bytes,
    }
    # The spec the run simulated (overrides included) travels with the result.
    spec = spec if spec is not None else getattr(result, "spec", None)
    if spec is not None:
        other["roof_source"] = "spec"
        other.update(chip_roof(spec, result.precision))
    return other


def _tensor_args(graph: Any, names: tuple[str, ...]) -> tuple[str, str, str]:
    """msprof-style ``"d0,d1;d0,d1"`` shapes, dtypes and device formats of ``names``."""
    from hetnpu.devices.roofline import device_layouts

    shapes, dtypes, formats = [], [], []
    for n in names:
        t = graph.tensors.get(n) if n else None
        if t is None:
            continue
        shapes.append(",".join(str(d) for d in t.shape) if t.shape is not None else "?")
        dtypes.append(t.dtype)
        lay = device_layouts(t)
        formats.append(lay[1] if lay else "ND")
    return ";".join(shapes), ";".join(dtypes), ";".join(formats)


def _op_args(op: Any, graph: Any, fused: dict[str, list[str]]) -> dict[str, Any]:
    args: dict[str, Any] = {
        "op_type": op.op_type,
        "cycles": op.cycles,
        "cores": len(op.cores),
        "bound": op.bound,
        "roofline_cycles": op.roofline_cycles,
        "launch_cycles": op.launch_cycles,
        "cube_cycles": op.cube_cycles,
        "vector_cycles": op.vector_cycles,
        "mte_cycles": op.mte_cycles,
        "macs": op.macs,
        "flops": 2 * op.macs,
        "hbm_bytes": op.hbm_bytes,
        "gm_bytes": op.gm_bytes,
        "tile": op.tile,
        "mechanism": op_mechanism(op),
        "mechanism_cycles": op_time_parts(op),
        "task_type": task_type({core_kind(c) for c, _s, _e in op.cores}),
    }
    if fused.get(op.name):
        args["fused"] = fused[op.name]
    node = graph.nodes.get(op.name) if graph is not None else None
    if node is not None:
        from hetnpu.graph.cost import node_cost

        cost = node_cost(graph, node)
        args["flops"] = max(cost.flops, 2 * op.macs)
        args["bytes"] = cost.bytes_read + cost.bytes_written
        for side, names in (("input", node.inputs), ("output", node.outputs)):
            shapes, dtypes, formats = _tensor_args(graph, names)
            args[f"{side}_shapes"], args[f"{side}_dtypes"] = shapes, dtypes
            args[f"{side}_formats"] = formats
    return args


def _unit_events(result: Any, level: str) -> list[tuple[Any, ...]]:
    """Raw events at ``level``; instruction records are folded per (core, unit, op) for "op"."""
    if level == "instr" or result.trace_level == "op":
        return list(result.raw_events)
    spans: dict[tuple[str, str, int], list[int]] = {}
    for core, unit, start, end, _name, op_index, value in result.raw_events:
        if unit == "SCALAR":  # one span per op already; its value is the instruction count
            spans[(core, unit, op_index)] = [start, end, value]
            continue
        s = spans.get((core, unit, op_index))
        if s is None:
            spans[(core, unit, op_index)] = [start, end, end - start]
        else:
            s[0], s[1], s[2] = min(s[0], start), max(s[1], end), s[2] + end - start
    return [(c, u, s, e, "", i, b) for (c, u, i), (s, e, b) in spans.items()]


def _meta(pid: int, tid: int, kind: str, value: Any) -> dict[str, Any]:
    key = "sort_index" if kind.endswith("sort_index") else "name"
    return {"ph": "M", "name": kind, "pid": pid, "tid": tid, "args": {key: value}}


def iter_events(
    result: Any, level: str | None = None, *, graph: Any = None, spec: Any = None
) -> Iterator[dict[str, Any]]:
    """Yield the trace events of ``result`` one by one, in file order.

    Parameters
    ----------
    result
        A SimResult simulated with ``trace_level`` set.
    level
        ``"op"`` or ``"instr"``; defaults to the result's level.
    graph
        The simulated :class:`~hetnpu.graph.Graph`: adds shapes, layouts, FLOPs and flow arrows.
    spec
        The chip spec simulated (with any overrides), for the roofs; see :func:`chip_roof`.

    Raises
    ------
    ConfigError
        The result kept no raw events, or fewer than ``level`` needs.
    """
    level = _check_level(result, level)
    clock = _Clock(result.clock_hz)
    pid_of = {core: i + 1 for i, core in enumerate(result.cores)}
    tid_of = {u: i + 1 for i, u in enumerate(UNITS)}
    ops = [o for o in result.ops if o.fused_into is None]
    fused: dict[str, list[str]] = {}
    for o in result.ops:
        if o.fused_into is not None:
            fused.setdefault(o.fused_into, []).append(o.name)
    raw = sorted(
        (pid_of[c], tid_of[u], s, e, name, i, v)
        for c, u, s, e, name, i, v in _unit_events(result, level)
    )
    yield _meta(0, 0, "process_name", f"{result.chip} (chip)")
    yield _meta(0, 0, "process_sort_index", 0)
    yield _meta(0, _STREAM_TID, "thread_name", "stream")
    yield _meta(0, _STREAM_TID, "thread_sort_index", 0)
    for core, pid in pid_of.items():
        yield _meta(pid, 0, "process_name", f"AI core {core}")
        yield _meta(pid, 0, "process_sort_index", pid)
    for pid, tid in _lanes(result.cores, raw):
        yield _meta(pid, tid, "thread_name", UNITS[tid - 1])
        yield _meta(pid, tid, "thread_sort_index", tid)
    hw, overlap = len(result.cores) + 1, len(result.cores) + 2
    yield _meta(hw, 0, "process_name", _HARDWARE)
    yield _meta(hw, 0, "process_sort_index", hw)
    yield _meta(hw, _STREAM_TID, "thread_name", f"Stream {_STREAM_ID}")
    yield _meta(hw, _STREAM_TID, "thread_sort_index", _STREAM_ID)
    yield _meta(overlap, 0, "process_name", _OVERLAP)
    yield _meta(overlap, 0, "process_sort_index", overlap)
    for tid, lane in enumerate(_OVERLAP_LANES):
        yield _meta(overlap, tid, "thread_name", lane)
        yield _meta(overlap, tid, "thread_sort_index", tid)
    # The chip's stream: ops, counters and flow starts, sorted like every lane.
    stream = sorted(ops, key=lambda o: (o.start, o.cycles, o.name))
    for op in stream:
        yield {
            "ph": "X",
            "name": op.name,
            "cat": "op",
            "pid": 0,
            "tid": _STREAM_TID,
            "ts": clock.ts(op.start),
            "dur": clock.dur(op.start, op.end),
            "args": _op_args(op, graph, fused),
            **({"cname": COLOURS[m]} if (m := op_mechanism(op)) else {}),
        }
    yield from _counters(stream, result.clock_hz, clock)
    roots = {o.name: o.fused_into for o in result.ops if o.fused_into is not None}
    flows = _flows(stream, graph, raw, pid_of, tid_of, roots)
    for fid, (tensor, nbytes, src, _dst) in enumerate(flows, 1):
        yield {
            "ph": "s",
            "name": tensor,
            "cat": "flow",
            "id": fid,
            "pid": 0,
            "tid": _STREAM_TID,
            "ts": clock.ts((src.start + src.end) // 2),
            "args": {"bytes": nbytes},
        }
    by_index = {op.index: op for op in result.ops}
    scalar = tid_of["SCALAR"]
    for pid, tid, start, end, name, op_index, value in raw:
        op = by_index.get(op_index)
        op_name, op_type = (op.name, op.op_type) if op else ("", "")
        args = {"op": op_name, "op_type": op_type, "cycles": end - start}
        if tid == scalar:
            # The Scalar unit issues for the whole span; its raw value is the instruction count.
            args.update(busy_cycles=end - start, instrs=value)
            label, cat = ("issue" if level == "instr" else op_name), "unit"
        elif level == "op":
            args["busy_cycles"] = value
            label, cat = op_name, "unit"
        else:
            args["bytes"] = value
            label, cat = name, "instr"
        yield {
            "ph": "X",
            "name": label,
            "cat": cat,
            "pid": pid,
            "tid": tid,
            "ts": clock.ts(start),
            "dur": clock.dur(start, end),
            "args": args,
        }
    yield from _msprof_lanes(stream, result.cycles, clock, hw, overlap)
    for fid, (tensor, _nbytes, _src, (pid, tid, cycle)) in enumerate(flows, 1):
        yield {
            "ph": "f",
            "bp": "e",
            "name": tensor,
            "cat": "flow",
            "id": fid,
            "pid": pid,
            "tid": tid,
            "ts": clock.ts(cycle),
        }


def _msprof_lanes(
    stream: list[Any], cycles: int, clock: _Clock, hw: int, overlap: int
) -> Iterator[dict[str, Any]]:
    """msprof's device lanes: each op as a task of stream 0 on "Ascend Hardware", and the
    "Overlap Analysis" lanes: Computing while any op runs, Free in between (launch gaps)."""
    timed = [o for o in stream if o.end > o.start]
    for task_id, op in enumerate(timed):
        yield {
            "ph": "X",
            "name": op.name,
            "cat": "task",
            "pid": hw,
            "tid": _STREAM_TID,
            "ts": clock.ts(op.start),
            "dur": clock.dur(op.start, op.end),
            "args": {
                "Model Id": 0,
                "Stream Id": _STREAM_ID,
                "Task Id": task_id,
                "Task Type": task_type({core_kind(c) for c, _s, _e in op.cores}),
                "OP Type": op.op_type,
            },
        }
    busy: list[list[int]] = []
    for op in timed:
        if busy and op.start <= busy[-1][1]:
            busy[-1][1] = max(busy[-1][1], op.end)
        else:
            busy.append([op.start, op.end])
    free, last = [], 0
    for start, end in busy:
        if start > last:
            free.append((last, start))
        last = end
    if cycles > last:
        free.append((last, cycles))
    for tid, spans in ((0, busy), (len(_OVERLAP_LANES) - 1, free)):
        for start, end in spans:
            yield {
                "ph": "X",
                "name": _OVERLAP_LANES[tid],
                "cat": "overlap",
                "pid": overlap,
                "tid": tid,
                "ts": clock.ts(start),
                "dur": clock.dur(start, end),
                "args": {},
            }


def _lanes(cores: tuple[str, ...], raw: list[tuple[Any, ...]]) -> list[tuple[int, int]]:
    """(pid, tid) of every unit of every core, idle ones included, so lanes count right.

    A core has the units any core of its kind (``core``, ``aic``, ``aiv``: the name without
    its number) ran in this result.
    """
    kind = [c.rstrip("0123456789") for c in cores]
    seen: dict[str, set[int]] = {}
    for pid, tid, *_ in raw:
        seen.setdefault(kind[pid - 1], set()).add(tid)
    return [(pid, tid) for pid, k in enumerate(kind, 1) for tid in sorted(seen.get(k, ()))]


def _counters(stream: list[Any], clock_hz: float, clock: _Clock) -> Iterator[dict[str, Any]]:
    """HBM and L2 bandwidth (GB/s) each op achieved, stepped at op starts, 0 at the end."""
    last = 0
    for op in stream:
        if op.cycles <= 0:
            continue
        secs = op.cycles / clock_hz
        hbm = op.hbm_bytes / secs / 1e9
        l2 = max(op.gm_bytes - op.hbm_bytes, 0) / secs / 1e9
        yield {
            "ph": "C",
            "name": "bandwidth",
            "pid": 0,
            "tid": 0,
            "ts": clock.ts(op.start),
            "args": {"HBM GB/s": round(hbm, 3), "L2 GB/s": round(l2, 3)},
        }
        last = max(last, op.end)
    if stream:
        yield {
            "ph": "C",
            "name": "bandwidth",
            "pid": 0,
            "tid": 0,
            "ts": clock.ts(last),
            "args": {"HBM GB/s": 0.0, "L2 GB/s": 0.0},
        }


def _flows(
    stream: list[Any],
    graph: Any,
    raw: list[tuple[Any, ...]],
    pid_of: dict[str, int],
    tid_of: dict[str, int],
    roots: dict[str, str],
) -> list[tuple[str, int, Any, tuple[int, int, int]]]:
    """(tensor, bytes, producer op, (pid, tid, cycle) of the consumer's load) per graph edge.

    A fused epilogue's output comes from the op it folded into (``roots``). Zero-length ops are
    skipped: a flow end inside a zero-length span is ambiguous.
    """
    if graph is None:
        return []
    by_name = {o.name: o for o in stream if o.cycles > 0}
    # Flow ends sit mid-span: a span's start is also its predecessor's end.
    load_at: dict[tuple[int, int], int] = {}
    mte = tid_of[_MTE_IN]
    for pid, tid, start, end, _name, op_index, _v in raw:
        if tid == mte:
            load_at.setdefault((op_index, pid), (start + end) // 2)
    # An op also reads what the nodes fused into it read (a convolution the residual of the
    # Add in its epilogue); edges inside the fused kernel come from the op itself and are
    # skipped below.
    members: dict[str, list[str]] = {}
    for name, root in roots.items():
        members.setdefault(root, []).append(name)
    out = []
    for cons in stream:
        node = graph.nodes.get(cons.name)
        if node is None or cons.name not in by_name:
            continue
        fused_nodes = [graph.nodes.get(n) for n in members.get(cons.name, ())]
        reads = [t for n in (node, *fused_nodes) if n is not None for t in n.inputs if t]
        for tensor in dict.fromkeys(reads):
            prod = graph.producer(tensor)
            src = by_name.get(roots.get(prod.name, prod.name)) if prod is not None else None
            if src is None or src is cons or src.end > cons.start:
                continue
            t = graph.tensors.get(tensor)
            nbytes = int(t.nbytes or 0) if t is not None else 0
            dst = (0, _STREAM_TID, (cons.start + cons.end) // 2)
            if cons.cores:
                pid = pid_of[cons.cores[0][0]]
                if (cons.index, pid) in load_at:
                    dst = (pid, mte, load_at[(cons.index, pid)])
            out.append((tensor, nbytes, src, dst))
    return out


def chrome_trace(
    result: Any, level: str | None = None, *, graph: Any = None, spec: Any = None
) -> dict[str, Any]:
    """The trace of ``result`` as a JSON-ready dict (see :func:`iter_events` for parameters)."""
    level = _check_level(result, level)
    return {
        "displayTimeUnit": "ns",
        "otherData": _other_data(result, level, spec),
        "traceEvents": list(iter_events(result, level, graph=graph, spec=spec)),
    }


def write_chrome_trace(
    result: Any,
    path: str | os.PathLike[str],
    level: str | None = None,
    *,
    graph: Any = None,
    spec: Any = None,
) -> None:
    """Stream the trace of ``result`` to ``path``, atomically (see :func:`iter_events`).

    Events are written as they are produced, one per line; the file appears under ``path``
    only once complete, so a killed writer leaves the previous file (or none).
    """
    level = _check_level(result, level)
    events = iter_events(result, level, graph=graph, spec=spec)
    write_trace_file(path, _other_data(result, level, spec), events)
