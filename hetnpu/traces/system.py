"""The Chrome trace of a whole-system run (:func:`hetnpu.simulator.system.simulate_system`):
a process per device with its stages (and ops), a ``links`` process with a thread per link
lane, and flow arrows from producer stage to transfer to consumer stage.
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from hetnpu.atomic import atomic_write_text

if TYPE_CHECKING:
    from hetnpu.simulator.system import SystemResult

__all__ = ["system_trace_events", "write_system_trace"]


def write_system_trace(result: SystemResult, path: str | os.PathLike[str]) -> None:
    """Write :func:`system_trace_events` as a Chrome trace JSON object, atomically."""
    doc = {
        "displayTimeUnit": "ns",
        "otherData": {
            "generator": "hetnpu.system",
            "chip": result.chip,
            "precision": result.precision,
            "strategy": result.strategy,
            "makespan_s": result.makespan_s,
        },
        "traceEvents": system_trace_events(result),
    }
    atomic_write_text(path, json.dumps(doc, separators=(",", ":")) + "\n")


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 6)  # picosecond resolution, as hetnpu.traces.chrome


def system_trace_events(result: SystemResult) -> list[dict[str, Any]]:
    """Chrome trace events of a system run (timestamps in microseconds).

    One process per device (in order of first use), with a ``stages`` thread of ``X`` spans
    (and an ``ops`` thread when the run had a ``trace_level``); one ``links`` process with a
    thread per link lane holding each transfer hop. Flow arrows (``s``/``f``) run from a
    producer stage to each transfer of its outputs and from the transfer to its consumer
    stage. ``M`` events name every process and thread.
    """
    devices = list(dict.fromkeys(s.device for s in result.stages))
    pid = {d: i + 1 for i, d in enumerate(devices)}
    link_pid = len(devices) + 1
    lanes = list(dict.fromkeys(lane for t in result.transfers for lane, _, _ in t.hops))
    tid = {lane: i + 1 for i, lane in enumerate(lanes)}
    ev: list[dict[str, Any]] = []

    def meta(p: int, t: int | None, kind: str, name: str) -> None:
        e: dict[str, Any] = {"ph": "M", "pid": p, "name": kind, "args": {"name": name}}
        if t is not None:
            e["tid"] = t
        ev.append(e)

    for d in devices:
        meta(pid[d], 0, "process_name", d)
        meta(pid[d], 1, "thread_name", "stages")
        if result.op_spans:
            meta(pid[d], 2, "thread_name", "ops")
    if lanes:
        meta(link_pid, 0, "process_name", "links")
        for lane in lanes:
            meta(link_pid, tid[lane], "thread_name", lane)
    for s in result.stages:
        ev.append(
            {
                "ph": "X",
                "cat": "stage",
                "name": f"stage {s.id}",
                "pid": pid[s.device],
                "tid": 1,
                "ts": _us(s.start_s),
                "dur": _us(s.end_s) - _us(s.start_s),
                "args": {
                    "ops": s.ops,
                    "compute_us": s.compute_s * 1e6,
                    "transdata_us": s.transdata_s * 1e6,
                    "npu_cycles": s.npu_cycles,
                },
            }
        )
    device_of = {s.id: s.device for s in result.stages}
    for stage_id, node, op, a, b in result.op_spans:
        ev.append(
            {
                "ph": "X",
                "cat": "op",
                "name": node,
                "pid": pid[device_of[stage_id]],
                "tid": 2,
                "ts": _us(a),
                "dur": _us(b) - _us(a),
                "args": {"op_type": op, "stage": stage_id},
            }
        )
    flow = 0
    for t in result.transfers:
        if not t.hops:
            continue
        for lane, a, b in t.hops:
            ev.append(
                {
                    "ph": "X",
                    "cat": "transfer",
                    "name": t.tensor,
                    "pid": link_pid,
                    "tid": tid[lane],
                    "ts": _us(a),
                    "dur": _us(b) - _us(a),
                    "args": {"bytes": t.bytes, "src_stage": t.src_stage, "dst_stage": t.dst_stage},
                }
            )
        first, last = t.hops[0], t.hops[-1]
        if t.src_stage is not None:
            flow += 1
            ev += _flow(
                flow, (pid[t.src_device], 1, t.ready_s), (link_pid, tid[first[0]], first[1])
            )
        if t.dst_stage is not None:
            consumer = result.stages[t.dst_stage]
            flow += 1
            ev += _flow(
                flow, (link_pid, tid[last[0]], last[2]), (pid[t.dst_device], 1, consumer.start_s)
            )
    return ev


def _flow(
    ident: int, src: tuple[int, int, float], dst: tuple[int, int, float]
) -> list[dict[str, Any]]:
    common = {"cat": "dataflow", "name": "tensor", "id": ident}
    return [
        {**common, "ph": "s", "pid": src[0], "tid": src[1], "ts": _us(src[2])},
        {**common, "ph": "f", "bp": "e", "pid": dst[0], "tid": dst[1], "ts": _us(dst[2])},
    ]
