"""Chrome Trace Event output of a :class:`~hetnpu.simulator.SimResult`.

The object form ``{"traceEvents": [...], "displayTimeUnit": "ns"}``: process 0 is the chip (a
``stream`` thread with one span per op, and the HBM/L2 totals in its args), then one process per
AI core, with one thread per unit named as msprof's simulator rows (SCALAR, MTE2, MTE1, CUBE,
FIXPIPE, VECTOR, MTE3; ascend-facts §1.10). Every pid and tid gets ``M`` name and sort-order
metadata. Spans are ``X`` events with ``ts``/``dur`` in microseconds (cycles / clock), sorted
deterministically, so the same result always gives the same bytes.

Left out: flow arrows between dependent instructions and counter tracks of bus occupancy.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hetnpu.atomic import atomic_write_text
from hetnpu.errors import ConfigError
from hetnpu.simulator.isa import UNITS

__all__ = ["chrome_trace", "write_chrome_trace"]

_LEVELS = ("op", "instr")


def _us(cycles: int, clock_hz: float) -> float:
    # Rounded to picoseconds so float formatting cannot differ between equal results.
    return round(cycles * 1e6 / clock_hz, 6)


def chrome_trace(result: Any, level: str | None = None) -> dict[str, Any]:
    """The trace of ``result`` as a JSON-ready dict.

    Parameters
    ----------
    result
        A SimResult simulated with ``trace_level`` set.
    level
        ``"op"`` (one span per op, core and unit) or ``"instr"`` (every instruction; needs a
        result simulated at ``trace_level="instr"``). Defaults to the result's level.

    Raises
    ------
    ConfigError
        The result kept no raw events, or fewer than ``level`` needs.
    """
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
    clock = result.clock_hz
    pid_of = {core: i + 1 for i, core in enumerate(result.cores)}
    tid_of = {u: i + 1 for i, u in enumerate(UNITS)}
    ops = result.ops
    meta: list[dict[str, Any]] = [
        {
            "ph": "M",
            "name": "process_name",
            "pid": 0,
            "tid": 0,
            "args": {"name": f"{result.chip} (chip)"},
        },
        {"ph": "M", "name": "process_sort_index", "pid": 0, "tid": 0, "args": {"sort_index": 0}},
        {"ph": "M", "name": "thread_name", "pid": 0, "tid": 1, "args": {"name": "stream"}},
    ]
    for core, pid in pid_of.items():
        meta.append(
            {
                "ph": "M",
                "name": "process_name",
                "pid": pid,
                "tid": 0,
                "args": {"name": f"AI core {core}"},
            }
        )
        meta.append(
            {
                "ph": "M",
                "name": "process_sort_index",
                "pid": pid,
                "tid": 0,
                "args": {"sort_index": pid},
            }
        )
    used = sorted({(pid_of[e[0]], e[1]) for e in result.raw_events})
    for pid, unit in used:
        meta.append(
            {
                "ph": "M",
                "name": "thread_name",
                "pid": pid,
                "tid": tid_of[unit],
                "args": {"name": unit},
            }
        )
        meta.append(
            {
                "ph": "M",
                "name": "thread_sort_index",
                "pid": pid,
                "tid": tid_of[unit],
                "args": {"sort_index": tid_of[unit]},
            }
        )
    spans: list[dict[str, Any]] = []
    for op in ops:
        spans.append(
            {
                "ph": "X",
                "name": op.name,
                "cat": "op",
                "pid": 0,
                "tid": 1,
                "ts": _us(op.start, clock),
                "dur": _us(op.cycles, clock),
                "args": {
                    "op_type": op.op_type,
                    "cycles": op.cycles,
                    "bound": op.bound,
                    "roofline_cycles": op.roofline_cycles,
                    "hbm_bytes": op.hbm_bytes,
                    "tile": op.tile,
                },
            }
        )
    by_index = {op.index: op for op in ops}
    for core, unit, start, end, name, op_index, value in _events(result, level):
        op = by_index.get(op_index)
        op_name = op.name if op else ""
        op_type = op.op_type if op else ""
        if level == "op":
            args = {"op": op_name, "op_type": op_type, "busy_cycles": value, "cycles": end - start}
            label = op_name
        else:
            args = {"op": op_name, "op_type": op_type, "bytes": value, "cycles": end - start}
            label = name
        spans.append(
            {
                "ph": "X",
                "name": label,
                "cat": "instr" if level == "instr" else "unit",
                "pid": pid_of[core],
                "tid": tid_of[unit],
                "ts": _us(start, clock),
                "dur": _us(end - start, clock),
                "args": args,
            }
        )
    spans.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], e["dur"], e["name"]))
    return {
        "traceEvents": meta + spans,
        "displayTimeUnit": "ns",
        "otherData": {
            "chip": result.chip,
            "precision": result.precision,
            "cycles": result.cycles,
            "clock_hz": clock,
            "level": level,
        },
    }


def _events(result: Any, level: str) -> list[tuple[Any, ...]]:
    """Raw events at ``level``; instruction records are folded per (core, unit, op) for "op"."""
    if level == "instr" or result.trace_level == "op":
        return list(result.raw_events)
    spans: dict[tuple[str, str, int], list[int]] = {}
    for core, unit, start, end, _name, op_index, _value in result.raw_events:
        busy = end - start
        s = spans.get((core, unit, op_index))
        if s is None:
            spans[(core, unit, op_index)] = [start, end, busy]
        else:
            s[0], s[1], s[2] = min(s[0], start), max(s[1], end), s[2] + busy
    return [(c, u, s, e, "", i, b) for (c, u, i), (s, e, b) in spans.items()]


def write_chrome_trace(result: Any, path: str | os.PathLike[str], level: str | None = None) -> None:
    """Write :func:`chrome_trace` of ``result`` to ``path`` atomically."""
    text = json.dumps(chrome_trace(result, level), sort_keys=True, separators=(",", ":"))
    atomic_write_text(path, text + "\n")
