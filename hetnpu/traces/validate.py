"""A pure-Python checker of Chrome Trace Event files, with Perfetto's import rules.

:func:`validate_trace` returns every problem found, each naming the offending event by its
index in ``traceEvents``; :func:`check_trace` raises on the first few. Checked:

- schema: the object form with a ``traceEvents`` list; every event a dict with a known ``ph``,
  integer ``pid``/``tid``, a string ``name``;
- timestamps: ``ts`` numeric (not a string, not NaN), ``dur`` numeric and ≥ 0 on ``X`` events;
- nesting: on each (pid, tid), ``X`` spans in file order nest perfectly (a span either ends by
  the next one's start or contains it entirely); times are compared in integer picoseconds;
- flows: each ``s`` id starts once and is finished by exactly one ``f`` no earlier than it, and
  each ``s``/``t``/``f`` lies inside an ``X`` span of its thread (the slice it binds to);
  flow ids are sequential from 1;
- counters: ``C`` events carry a non-empty ``args`` of numbers;
- metadata: every pid used has a ``process_name`` and every (pid, tid) with spans or flows a
  ``thread_name`` ``M`` event.
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from typing import Any

from hetnpu.errors import InputError

__all__ = ["check_trace", "load_json", "validate_trace"]

_PHASES = frozenset("XBEisfCMtbenOND")
_FLOW = frozenset("stf")


def load_json(source: Any) -> Any:
    """The parsed JSON of ``source`` (a path, or already-parsed data returned as is)."""
    if isinstance(source, str | os.PathLike):
        try:
            with open(source, encoding="utf-8") as f:
                return json.load(f)
        except OSError as exc:
            raise InputError(f"{os.fspath(source)}: cannot read ({exc.strerror})") from None
        except json.JSONDecodeError as exc:
            # file:line:col, as editors and compilers print it; a truncated file fails here.
            where = f"{os.fspath(source)}:{exc.lineno}:{exc.colno}"
            raise InputError(f"{where}: not JSON ({exc.msg})") from None
    return source


def _num(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _ps(us: float) -> int:
    return round(us * 1_000_000)


def _label(i: int, e: Any) -> str:
    name = e.get("name", "?") if isinstance(e, dict) else "?"
    ph = e.get("ph", "?") if isinstance(e, dict) else "?"
    return f"event {i} ({ph} {name!r})"


def validate_trace(source: Any) -> list[str]:
    """Problems in a Chrome trace (a path or parsed JSON); empty when it is valid.

    Examples
    --------
    >>> validate_trace({"traceEvents": [{"ph": "X", "name": "a", "pid": 0, "tid": 0,
    ...                                  "ts": "1", "dur": 1}]})[0]
    "event 0 (X 'a'): ts '1' is not a number"
    """
    data = load_json(source)
    if not isinstance(data, dict) or not isinstance(data.get("traceEvents"), list):
        return ["not the object form: expected {'traceEvents': [...]}"]
    errors: list[str] = []
    spans: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    flow_points: list[tuple[int, dict[str, Any]]] = []
    proc_named: set[int] = set()
    thread_named: set[tuple[int, int]] = set()
    used_pids: dict[int, int] = {}
    used_threads: dict[tuple[int, int], int] = {}
    for i, e in enumerate(data["traceEvents"]):
        where = _label(i, e)
        if not isinstance(e, dict):
            errors.append(f"{where}: not an object")
            continue
        ph = e.get("ph")
        if ph not in _PHASES:
            errors.append(f"{where}: unknown ph {ph!r}")
            continue
        if not isinstance(e.get("name"), str):
            errors.append(f"{where}: name missing or not a string")
        pid, tid = e.get("pid"), e.get("tid")
        if not isinstance(pid, int) or not isinstance(tid, int):
            errors.append(f"{where}: pid/tid must be integers, got {pid!r}/{tid!r}")
            continue
        if ph == "M":
            if e.get("name") == "process_name":
                proc_named.add(pid)
            elif e.get("name") == "thread_name":
                thread_named.add((pid, tid))
            if not isinstance(e.get("args"), dict):
                errors.append(f"{where}: metadata without args")
            continue
        if not _num(e.get("ts")):
            errors.append(f"{where}: ts {e.get('ts')!r} is not a number")
            continue
        used_pids.setdefault(pid, i)
        if ph == "X":
            dur = e.get("dur")
            if not _num(dur) or dur < 0:
                errors.append(f"{where}: dur {dur!r} is not a number ≥ 0")
                continue
            used_threads.setdefault((pid, tid), i)
            spans[(pid, tid)].append((_ps(e["ts"]), _ps(e["ts"]) + _ps(dur), i))
        elif ph in _FLOW:
            used_threads.setdefault((pid, tid), i)
            flow_points.append((i, e))
        elif ph == "C":
            args = e.get("args")
            if not isinstance(args, dict) or not args or not all(_num(v) for v in args.values()):
                errors.append(f"{where}: counter args must be a non-empty map of numbers")
    errors += _check_nesting(spans, data["traceEvents"])
    errors += _check_flows(flow_points, spans)
    for pid, i in sorted(used_pids.items()):
        if pid not in proc_named:
            errors.append(f"{_label(i, data['traceEvents'][i])}: pid {pid} has no process_name")
    for (pid, tid), i in sorted(used_threads.items()):
        if (pid, tid) not in thread_named:
            errors.append(
                f"{_label(i, data['traceEvents'][i])}: pid {pid} tid {tid} has no thread_name"
            )
    return errors


def _check_nesting(
    spans: dict[tuple[int, int], list[tuple[int, int, int]]], events: list[Any]
) -> list[str]:
    errors = []
    for key, lane in spans.items():
        stack: list[tuple[int, int, int]] = []
        # Perfetto orders equal starts longest first; a stable sort keeps file order otherwise.
        for start, end, i in sorted(lane, key=lambda s: (s[0], -(s[1] - s[0]))):
            while stack and start >= stack[-1][1]:
                stack.pop()
            if stack and end > stack[-1][1]:
                top = stack[-1][2]
                errors.append(
                    f"{_label(i, events[i])}: overlaps {_label(top, events[top])} on pid "
                    f"{key[0]} tid {key[1]} without nesting"
                )
                continue
            stack.append((start, end, i))
    return errors


def _inside(lane: list[tuple[int, int, int]], ts: int) -> bool:
    return any(s <= ts <= e for s, e, _ in lane)


def _check_flows(
    points: list[tuple[int, dict[str, Any]]], spans: dict[tuple[int, int], list[Any]]
) -> list[str]:
    errors = []
    starts: dict[Any, tuple[int, dict[str, Any]]] = {}
    ends: dict[Any, tuple[int, dict[str, Any]]] = {}
    for i, e in points:
        fid = e.get("id")
        where = _label(i, e)
        if fid is None:
            errors.append(f"{where}: flow without id")
            continue
        if not _inside(spans.get((e["pid"], e["tid"]), []), _ps(e["ts"])):
            errors.append(f"{where}: flow point at ts {e['ts']} is inside no span of its thread")
        if e["ph"] == "s":
            if fid in starts:
                errors.append(f"{where}: flow id {fid} started twice")
            starts[fid] = (i, e)
        elif e["ph"] == "f":
            if fid in ends:
                errors.append(f"{where}: flow id {fid} finished twice")
            ends[fid] = (i, e)
    for fid, (i, e) in starts.items():
        if fid not in ends:
            errors.append(f"{_label(i, e)}: flow id {fid} is never finished")
        elif ends[fid][1]["ts"] < e["ts"]:
            errors.append(f"{_label(*ends[fid])}: flow id {fid} finishes before it starts")
    for fid, (i, e) in ends.items():
        if fid not in starts:
            errors.append(f"{_label(i, e)}: flow id {fid} was never started")
    if all(isinstance(f, int) for f in starts) and sorted(starts) != list(
        range(1, len(starts) + 1)
    ):
        ids = sorted(starts)
        errors.append(f"flow ids are not sequential from 1: {ids[:5]}...")
    return errors


def check_trace(source: Any, what: str = "trace") -> None:
    """Raise :class:`~hetnpu.errors.InputError` listing the first problems of a trace."""
    errors = validate_trace(source)
    if errors:
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise InputError(f"{what}: invalid Chrome trace: {'; '.join(errors[:3])}{more}")
