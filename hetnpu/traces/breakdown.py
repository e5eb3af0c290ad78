"""Where a run's time went, from its trace: by mechanism, by op type, along the critical path,
and the ops that matter most. The report opens with these; ``hetnpu summary`` prints them.

An op's time is its launch (``dispatch``, simulated runs only) plus its span, split as the
trace's per-mechanism figures say (simulated ops), else charged to the op's mechanism
(:mod:`~hetnpu.traces.attribution`); ops whose trace names none count as ``other``.

The critical path walks back from the op that ends last: each step goes to the op that ended
last at or before the current op's launch began (on any device), so it is the chain of ops
that set the run's length; the time between them on that chain is idle (waits, transfers,
host work the trace does not show).

Left out: dependencies from the graph (a trace read back has no edges; on one stream the
latest-ending predecessor is the true one).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from hetnpu.traces.attribution import DISPATCH, MECHANISMS, dominant
from hetnpu.traces.read import OpSpan, Trace, read_trace

__all__ = ["OTHER", "critical_path", "time_by_mechanism", "time_by_type", "top_ops"]

OTHER = "other"


def _trace(source: Any) -> Trace:
    return source if isinstance(source, Trace) else read_trace(source)


def _parts(o: OpSpan) -> dict[str, float]:
    if o.parts:
        return dict(o.parts)
    parts = {DISPATCH: o.launch_us} if o.launch_us else {}
    key = o.mechanism or OTHER
    parts[key] = parts.get(key, 0.0) + o.dur_us
    return parts


def time_by_mechanism(source: Any) -> dict[str, float]:
    """µs per mechanism over all ops (:data:`MECHANISMS` order, then ``other``); zeros kept."""
    out = dict.fromkeys((*MECHANISMS, OTHER), 0.0)
    for o in _trace(source).ops:
        for m, us in _parts(o).items():
            out[m] += us
    return out


def time_by_type(source: Any) -> list[dict[str, Any]]:
    """Per op type: ops, µs (launch included), share of all ops' µs, dominant mechanism;
    longest first."""
    rows: dict[str, dict[str, Any]] = {}
    mech: dict[str, dict[str, float]] = defaultdict(dict)
    ops = _trace(source).ops
    for o in ops:
        r = rows.setdefault(o.op_type, {"type": o.op_type, "ops": 0, "us": 0.0})
        r["ops"] += o.count
        for m, us in _parts(o).items():
            r["us"] += us
            mech[o.op_type][m] = mech[o.op_type].get(m, 0.0) + us
    total = sum(r["us"] for r in rows.values()) or 1.0
    for t, r in rows.items():
        r["share"] = r["us"] / total
        r["mechanism"] = dominant(mech[t]) or OTHER
    return sorted(rows.values(), key=lambda r: (-r["us"], r["type"]))


def top_ops(source: Any, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` ops with the most time (launch included), with share and mechanism."""
    ops = _trace(source).ops
    total = sum(sum(_parts(o).values()) for o in ops) or 1.0
    ranked = sorted(ops, key=lambda o: (-(o.dur_us + o.launch_us), o.start_us, o.name))[:n]
    return [
        {
            "op": o.name,
            "type": o.op_type,
            "device": o.device,
            "us": o.dur_us + o.launch_us,
            "launch_us": o.launch_us,
            "share": (o.dur_us + o.launch_us) / total,
            "mechanism": o.mechanism or OTHER,
        }
        for o in ranked
    ]


def critical_path(source: Any) -> dict[str, Any]:
    """The chain of ops that sets the run's length (module doc): its ops in run order, busy
    and idle µs, and its µs per op type."""
    ops = sorted(_trace(source).ops, key=lambda o: (o.start_us + o.dur_us, o.start_us, o.name))
    if not ops:
        return {"ops": [], "busy_us": 0.0, "idle_us": 0.0, "by_type": []}
    chain = [ops[-1]]
    ends = [o.start_us + o.dur_us for o in ops]
    i = len(ops) - 1
    while True:
        begin = chain[-1].start_us - chain[-1].launch_us
        # The latest end at or before ``begin`` among earlier ops (ends are sorted).
        j = _last_at_or_before(ends, begin, i)
        if j < 0:
            break
        chain.append(ops[j])
        i = j
    chain.reverse()
    busy = sum(o.dur_us + o.launch_us for o in chain)
    span = chain[-1].start_us + chain[-1].dur_us - (chain[0].start_us - chain[0].launch_us)
    by_type: dict[str, float] = defaultdict(float)
    for o in chain:
        by_type[o.op_type] += o.dur_us + o.launch_us
    return {
        "ops": [o.name for o in chain],
        "busy_us": busy,
        "idle_us": max(span - busy, 0.0),
        "by_type": sorted(by_type.items(), key=lambda kv: (-kv[1], kv[0])),
    }


def _last_at_or_before(ends: list[float], t: float, below: int) -> int:
    lo, hi = 0, below  # search ends[0:below]
    while lo < hi:
        mid = (lo + hi) // 2
        if ends[mid] <= t + 1e-9:
            lo = mid + 1
        else:
            hi = mid
    return lo - 1
