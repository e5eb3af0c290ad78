"""Chrome Trace Event records and the one writer of trace files.

Every trace hetnpu writes (a simulated chip, a simulated system, a measured session run) is a
JSON object ``{"displayTimeUnit": "ns", "otherData": {...}, "traceEvents": [...]}`` in the
Trace Event Format that Perfetto and ``chrome://tracing`` open. Its records are built here:
metadata naming processes and threads, complete spans, and flow arrows (a start and an end
bound to the enclosing slice). :func:`write_trace_file` streams them to disk one per line with
sorted keys, so the same run gives the same bytes, and atomically, so a killed writer leaves
the previous file (or none).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

from hetnpu.atomic import atomic_open

__all__ = ["Place", "dumps", "flow", "metadata", "span", "write_trace_file"]

Place = tuple[int, int, float]
"""(pid, tid, ts in microseconds) of one end of a flow arrow."""


def dumps(obj: Any) -> str:
    """Compact JSON with sorted keys: the bytes of a record depend only on its content."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def metadata(pid: int, tid: int | None, kind: str, value: Any) -> dict[str, Any]:
    """A metadata record: ``kind`` is ``process_name``, ``thread_name`` or a ``*_sort_index``.

    ``tid`` None names a process-level record (no ``tid`` field), as Perfetto expects for
    ``process_name``.
    """
    key = "sort_index" if kind.endswith("sort_index") else "name"
    record: dict[str, Any] = {"ph": "M", "name": kind, "pid": pid, "args": {key: value}}
    if tid is not None:
        record["tid"] = tid
    return record


def span(
    name: str, cat: str, pid: int, tid: int, ts: float, dur: float, args: Mapping[str, Any]
) -> dict[str, Any]:
    """A complete (``"X"``) span."""
    return {
        "ph": "X",
        "name": name,
        "cat": cat,
        "pid": pid,
        "tid": tid,
        "ts": ts,
        "dur": dur,
        "args": dict(args),
    }


def flow(
    fid: int,
    name: str,
    src: Place,
    dst: Place,
    *,
    cat: str = "flow",
    args: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The start and end records of flow arrow ``fid`` from ``src`` to ``dst``.

    The end binds to the slice that encloses it (``"bp": "e"``), so it must fall inside a span
    of its lane rather than at its start, where the predecessor's span also ends.
    """
    common = {"name": name, "cat": cat, "id": fid}
    start = {**common, "ph": "s", "pid": src[0], "tid": src[1], "ts": src[2]}
    if args:
        start["args"] = dict(args)
    end = {**common, "ph": "f", "bp": "e", "pid": dst[0], "tid": dst[1], "ts": dst[2]}
    return start, end


def write_trace_file(
    path: str | os.PathLike[str], other_data: Mapping[str, Any], events: Iterable[dict[str, Any]]
) -> None:
    """Stream a trace to ``path``: events are written as they come, one per line, atomically."""
    head = {"displayTimeUnit": "ns", "otherData": dict(other_data)}
    with atomic_open(path, "w", encoding="utf-8") as f:
        f.write(dumps(head)[:-1] + ',"traceEvents":[\n')
        sep = ""
        for event in events:
            f.write(sep + dumps(event))
            sep = ",\n"
        f.write("\n]}\n")
