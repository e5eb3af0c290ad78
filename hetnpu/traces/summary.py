"""Tables from traces: an msprof ``op_summary``-style op table, per-unit utilisation, and the
differences between two runs (:func:`diff_traces`), sorted by impact.

Every function takes a :class:`~hetnpu.traces.read.Trace` or anything :func:`read_trace`
reads, so simulated (hetnpu) and measured (hetnpu runtime, onnxruntime) runs compare.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from hetnpu.atomic import atomic_write_text
from hetnpu.traces.read import Trace, read_trace

__all__ = [
    "OP_COLUMNS",
    "TraceDiff",
    "diff_traces",
    "op_summary",
    "unit_utilisation",
    "write_op_summary_csv",
]

OP_COLUMNS = (
    "op",
    "type",
    "device",
    "cores",
    "start_us",
    "duration_us",
    "cube_cycles",
    "vector_cycles",
    "mte_cycles",
    "utilisation",
    "bound",
    "flops",
    "bytes",
)
"""Columns of :func:`op_summary` rows (msprof's Op Name, OP Type, Device_id, Block Dim, Task
Start Time, Task Duration(us), then pipe cycles; ascend-facts §5)."""


def _trace(source: Any) -> Trace:
    return source if isinstance(source, Trace) else read_trace(source)


def op_summary(source: Any) -> list[dict[str, Any]]:
    """One row per op run, in start order, with the keys of :data:`OP_COLUMNS`.

    ``utilisation`` is the busiest compute unit's cycles over op cycles × cores (``None`` when
    the trace has no cycle figures, as in a measured run).
    """
    tr = _trace(source)
    t0 = min((o.start_us for o in tr.ops), default=0.0)
    return [
        {
            "op": o.name,
            "type": o.op_type,
            "device": o.device,
            "cores": o.cores,
            "start_us": round(o.start_us - t0, 6),
            "duration_us": o.dur_us,
            "cube_cycles": o.cube_cycles,
            "vector_cycles": o.vector_cycles,
            "mte_cycles": o.mte_cycles,
            "utilisation": o.utilisation,
            "bound": o.bound,
            "flops": o.flops,
            "bytes": o.bytes,
        }
        for o in sorted(tr.ops, key=lambda o: (o.start_us, o.device, o.name))
    ]


def unit_utilisation(source: Any) -> list[dict[str, Any]]:
    """Per (device, unit): busy µs, lanes having the unit, and busy over wall time × lanes.

    Lanes are the cores having the unit (idle ones included, when the trace names them).
    Wall time is the device's span from the first start to the last end of its ops and unit
    spans (a measured run's stage and transfer lanes outlast the ops inside them; the whole
    trace's span when the device has neither).
    """
    tr = _trace(source)
    busy: dict[tuple[str, str], float] = defaultdict(float)
    lanes: dict[tuple[str, str], set[str]] = defaultdict(set)
    for u in tr.units:
        busy[(u.device, u.unit)] += u.busy_us
        lanes[(u.device, u.unit)].add(u.lane)
    span: dict[str, tuple[float, float]] = {}
    for device, start, dur in [
        *((o.device, o.start_us, o.dur_us) for o in tr.ops),
        *((u.device, u.start_us, u.dur_us) for u in tr.units),
    ]:
        lo, hi = span.get(device, (start, start + dur))
        span[device] = (min(lo, start), max(hi, start + dur))
    rows = []
    for (device, unit), b in sorted(busy.items()):
        lo, hi = span.get(device, (0.0, tr.wall_us))
        wall = hi - lo
        n = max(len(lanes[(device, unit)]), tr.lanes.get((device, unit), 0))
        rows.append(
            {
                "device": device,
                "unit": unit,
                "lanes": n,
                "busy_us": round(b, 6),
                "utilisation": b / (wall * n) if wall > 0 else 0.0,
            }
        )
    return rows


def write_op_summary_csv(source: Any, path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Write :func:`op_summary` as CSV to ``path`` (atomically) and return the rows."""
    rows = op_summary(source)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(OP_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r[k] is None else r[k] for k in OP_COLUMNS})
    atomic_write_text(path, buf.getvalue())
    return rows


@dataclass(frozen=True)
class TraceDiff:
    """What changed from a base run to another, largest absolute change first."""

    base_us: float
    new_us: float
    ops: list[dict[str, Any]]
    """Per op name: type, base_us, new_us, delta_us, ratio (new / base), runs on each side."""
    units: list[dict[str, Any]]
    """Per unit name: base/new busy µs and utilisation, delta_us."""

    def changed(self, rel_tol: float = 1e-9) -> list[str]:
        """Names of ops whose time differs by more than ``rel_tol`` of the larger time."""
        return [
            r["op"]
            for r in self.ops
            if abs(r["delta_us"]) > rel_tol * max(r["base_us"], r["new_us"], 1e-12)
        ]


def _per_op(tr: Trace) -> dict[str, dict[str, Any]]:
    # Repeated runs of a node (several inferences in a profile) add up.
    out: dict[str, dict[str, Any]] = {}
    for o in tr.ops:
        row = out.setdefault(o.name, {"type": o.op_type, "us": 0.0, "runs": 0})
        row["us"] += o.dur_us
        row["runs"] += 1
    return out


def _per_unit(tr: Trace) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in unit_utilisation(tr):
        row = out.setdefault(r["unit"], {"busy_us": 0.0, "utilisation": 0.0})
        row["busy_us"] += r["busy_us"]
        row["utilisation"] = max(row["utilisation"], r["utilisation"])
    return out


def diff_traces(base: Any, new: Any) -> TraceDiff:
    """Per-op and per-unit differences of ``new`` against ``base``, sorted by impact.

    Ops match by name (an op present on one side only has 0 on the other); units by unit
    name across devices.

    Examples
    --------
    Traces are paths or parsed JSON (here two bare Chrome traces of two ops):

    >>> def trace(conv_us):
    ...     return [
    ...         {"ph": "X", "name": "conv", "cat": "Conv", "pid": 0, "ts": 0, "dur": conv_us},
    ...         {"ph": "X", "name": "relu", "cat": "Relu", "pid": 0, "ts": conv_us, "dur": 2},
    ...     ]
    >>> d = diff_traces(trace(10), trace(6))
    >>> d.changed()
    ['conv']
    >>> d.ops[0]["delta_us"], d.ops[0]["ratio"]
    (-4.0, 0.6)
    """
    a, b = _trace(base), _trace(new)
    pa, pb = _per_op(a), _per_op(b)
    ops = []
    for name in dict.fromkeys([*pa, *pb]):
        ra = pa.get(name, {"type": "", "us": 0.0, "runs": 0})
        rb = pb.get(name, {"type": "", "us": 0.0, "runs": 0})
        ops.append(
            {
                "op": name,
                "type": ra["type"] or rb["type"],
                "base_us": round(ra["us"], 6),
                "new_us": round(rb["us"], 6),
                "delta_us": round(rb["us"] - ra["us"], 6),
                "ratio": rb["us"] / ra["us"] if ra["us"] > 0 else None,
                "base_runs": ra["runs"],
                "new_runs": rb["runs"],
            }
        )
    ops.sort(key=lambda r: (-abs(r["delta_us"]), r["op"]))
    ua, ub = _per_unit(a), _per_unit(b)
    zero = {"busy_us": 0.0, "utilisation": 0.0}
    units = [
        {
            "unit": u,
            "base_busy_us": ua.get(u, zero)["busy_us"],
            "new_busy_us": ub.get(u, zero)["busy_us"],
            "delta_us": round(ub.get(u, zero)["busy_us"] - ua.get(u, zero)["busy_us"], 6),
            "base_utilisation": ua.get(u, zero)["utilisation"],
            "new_utilisation": ub.get(u, zero)["utilisation"],
        }
        for u in sorted({*ua, *ub})
    ]
    units.sort(key=lambda r: (-abs(r["delta_us"]), r["unit"]))
    return TraceDiff(a.wall_us, b.wall_us, ops, units)
