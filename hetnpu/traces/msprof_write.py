"""Write a run in msprof's schema: ``op_summary`` and ``op_statistic`` CSVs with msprof's exact
column names and units (:mod:`~hetnpu.traces.msprof_schema`), so a simulated run opens in
msprof-analyze or MindStudio Insight where a real one does.

A simulated run's PipeUtilization figures are derived from its unit spans, per op and per core
kind, as msprof defines them [MSPROF-REF]:

- ``total_cycles`` (``aic_``/``aiv_``): the sum over the op's cores of each core's span (first
  unit start to last unit end), in AI-core clock cycles; ``aicore_time(us)`` /
  ``aiv_time(us)``: that sum over the number of cores, in µs;
- ``<pipe>_ratio``: the pipe's busy cycles summed over those cores over ``total_cycles``;
  ``<pipe>_time(us)``: ratio × core time;
- ``memory_bound = mte2_ratio / max(mac_ratio, vec_ratio)`` (coupled chips only, as msprof);
- ``cube_utilization(%) = aic_total_cycles / (freq × AIC count × Task Duration)`` × 100;
- ``Task Wait Time(us)``: the gap since the previous task ended (the simulated kernel launch).

A trace already in msprof's terms (read from msprof or torch_npu) is written back with the
columns and figures it was read with, so reading a written file and writing it again gives
the same bytes.

Left out: ``*_icache_miss_rate`` (no instruction cache is modelled: ``N/A``, as msprof writes
for a figure it lacks); data types are the graph's (not those ATC's precision mode picks);
every op is on stream 0 of model 0.
"""

from __future__ import annotations

import csv
import io
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from hetnpu.atomic import atomic_write_text
from hetnpu.traces.msprof_schema import (
    A2_PIPE,
    COMMON,
    COUPLED_PIPE,
    OP_STATISTIC,
    RATIO_UNITS,
    core_kind,
    task_type,
)
from hetnpu.traces.read import OpSpan, Trace, read_trace

__all__ = ["op_statistic_table", "op_summary_table", "write_msprof"]

_DTYPES = {
    "float16": "FLOAT16",
    "float32": "FLOAT",
    "float": "FLOAT",
    "bfloat16": "DT_BF16",
    "int8": "INT8",
    "uint8": "UINT8",
    "int32": "INT32",
    "int64": "INT64",
    "bool": "BOOL",
}
"""ONNX dtype names → the names msprof prints (as in the fixtures: FLOAT16, FLOAT, DT_BF16…)."""


def _cell(v: Any) -> str:
    if v is None:
        return "N/A"
    if isinstance(v, float):
        return repr(round(v, 6))
    return str(v)


def _trace(source: Any) -> Trace:
    return source if isinstance(source, Trace) else read_trace(source)


def _csv(columns: tuple[str, ...], rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return buf.getvalue()


def _simulated_pipe(tr: Trace) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    """PipeUtilization columns and per-op figures from a simulated trace's unit spans."""
    clock = float(tr.meta.get("clock_hz") or 0.0)
    spans: dict[str, dict[str, list[float]]] = defaultdict(dict)
    busy: dict[str, dict[tuple[str, str], float]] = defaultdict(lambda: defaultdict(float))
    for u in tr.units:
        s = spans[u.op].setdefault(u.lane, [u.start_us, u.start_us + u.dur_us])
        s[0], s[1] = min(s[0], u.start_us), max(s[1], u.start_us + u.dur_us)
        busy[u.op][(core_kind(u.lane), u.unit)] += u.busy_us
    kinds = {core_kind(lane) for per_op in spans.values() for lane in per_op}
    separated = bool(kinds & {"aic", "aiv"})
    aic_count = max((n for (_d, unit), n in tr.lanes.items() if unit == "CUBE"), default=0)
    figures: dict[str, dict[str, Any]] = {}
    for o in tr.ops:
        per_kind: dict[str, list[float]] = defaultdict(list)
        for lane, (s, e) in spans.get(o.name, {}).items():
            per_kind[core_kind(lane)].append(e - s)
        row: dict[str, Any] = {"lanes": {k: len(v) for k, v in per_kind.items()}}
        groups = (("aic", "aic"), ("aiv", "aiv")) if separated else (("", "core"),)
        for prefix, kind in groups:
            row.update(_group(prefix, per_kind.get(kind, []), busy[o.name], kind, clock))
        if separated:
            total_us = sum(per_kind.get("aic", []))
            util = total_us / (aic_count * o.dur_us) * 100 if aic_count and o.dur_us else 0.0
            row["cube_utilization(%)"] = util
        else:
            top = max(row["mac_ratio"], row["vec_ratio"])
            row["memory_bound"] = row["mte2_ratio"] / top if top else None
        figures[o.name] = row
    return (A2_PIPE if separated else COUPLED_PIPE), figures


def _group(
    prefix: str, lanes: list[float], busy: dict[tuple[str, str], float], kind: str, clock: float
) -> dict[str, Any]:
    p = f"{prefix}_" if prefix else ""
    total_us = sum(lanes)
    n = len(lanes)
    time_col = "aicore_time(us)" if prefix in ("", "aic") else "aiv_time(us)"
    out: dict[str, Any] = {
        time_col: total_us / n if n else 0,
        f"{p}total_cycles": round(total_us * clock / 1e6),
        f"{p}icache_miss_rate": None,
    }
    for pipe, unit in RATIO_UNITS.items():
        b = busy.get((kind, unit), 0.0)
        out[f"{p}{pipe}_ratio"] = b / total_us if total_us else 0
        out[f"{p}{pipe}_time(us)"] = b / n if n else 0
    return out


def _common(o: OpSpan, task_id: int, wait: float) -> dict[str, Any]:
    attrs = dict(o.attrs)
    for col in ("Input Data Types", "Output Data Types"):
        if col in attrs:
            attrs[col] = ";".join(_DTYPES.get(t, t.upper()) for t in attrs[col].split(";"))
    return {
        "Device_id": 0,
        "Model ID": 0,
        "Task ID": task_id,
        "Stream ID": 0,
        "Op Name": o.name,
        "OP Type": o.op_type,
        "OP State": "static",
        "Task Start Time(us)": o.start_us,
        "Task Duration(us)": o.dur_us,
        "Task Wait Time(us)": wait,
        "HF32 Eligible": "NO",
        "Context ID": None,
        **attrs,
    }


def op_summary_table(source: Any) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The columns and rows of ``op_summary`` for a trace (a :class:`Trace` or a path)."""
    tr = _trace(source)
    ops = sorted(tr.ops, key=lambda o: (o.start_us, o.name))
    if tr.kind != "hetnpu":
        first = ops[0].pipe if ops else ()
        columns = tuple(tr.meta.get("columns") or (*COMMON, *(c for c, _ in first)))
        rows = [
            {
                "Op Name": o.name,
                "OP Type": o.op_type,
                "Task Type": o.task_type,
                "Task Start Time(us)": o.start_us,
                "Task Duration(us)": o.dur_us,
                "Task Wait Time(us)": o.wait_us,
                "Block Dim": o.cores,
                **dict(o.attrs),
                **dict(o.pipe),
            }
            for o in ops
        ]
        return columns, rows
    pipe_cols, figures = _simulated_pipe(tr)
    rows, prev_end = [], 0.0
    for task_id, o in enumerate(ops):
        fig = figures[o.name]
        lanes = fig.pop("lanes")
        kind = task_type(set(lanes))
        aiv = lanes.get("aiv", 0)
        row = _common(o, task_id, max(o.start_us - prev_end, 0.0))
        row["Task Type"] = kind
        row["Block Dim"] = aiv if kind == "AI_VECTOR_CORE" else sum(lanes.values()) - aiv
        row["Mix Block Dim"] = aiv if kind == "MIX_AIC" else 0
        row.update(fig)
        rows.append(row)
        prev_end = max(prev_end, o.start_us + o.dur_us)
    return (*COMMON, *pipe_cols), rows


def op_statistic_table(source: Any) -> list[dict[str, Any]]:
    """``op_statistic`` rows: per (OP Type, Task Type), count and times, longest total first."""
    tr = _trace(source)
    groups: dict[tuple[str, str], list[OpSpan]] = defaultdict(list)
    for o in tr.ops:
        groups[(o.op_type, o.task_type or "AI_CORE")].append(o)
    grand = sum(o.dur_us for o in tr.ops) or 1.0
    rows = []
    for (op_type, core), spans in groups.items():
        total = sum(o.dur_us for o in spans)
        count = sum(o.count for o in spans)
        given = dict(spans[0].pipe) if len(spans) == 1 and spans[0].count > 1 else {}
        durs = [o.dur_us for o in spans]
        rows.append(
            {
                "Device_id": 0,
                "OP Type": op_type,
                "Core Type": core,
                "Count": count,
                "Total Time(us)": total,
                "Min Time(us)": given.get("Min Time(us)", min(durs)),
                "Avg Time(us)": given.get("Avg Time(us)", total / count),
                "Max Time(us)": given.get("Max Time(us)", max(durs)),
                "Ratio(%)": given.get("Ratio(%)", total / grand * 100),
            }
        )
    rows.sort(key=lambda r: (-r["Total Time(us)"], r["OP Type"], r["Core Type"]))
    return rows


def write_msprof(source: Any, out_dir: str | os.PathLike[str], tag: str = "0") -> list[Path]:
    """Write ``op_summary_<tag>.csv`` and ``op_statistic_<tag>.csv`` into ``out_dir``
    (created if missing), atomically; return their paths."""
    tr = _trace(source)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary, statistic = out / f"op_summary_{tag}.csv", out / f"op_statistic_{tag}.csv"
    if tr.kind == "msprof-statistic":
        written = [statistic]
    else:
        columns, rows = op_summary_table(tr)
        atomic_write_text(summary, _csv(columns, rows))
        written = [summary, statistic]
    atomic_write_text(statistic, _csv(OP_STATISTIC, op_statistic_table(tr)))
    return written
