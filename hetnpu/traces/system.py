"""The Chrome trace of a whole-system run (:func:`hetnpu.simulator.system.simulate_system`):
a process per device with its stages (and ops), a ``links`` process with a thread per link
lane, and flow arrows from producer stage to transfer to consumer stage.

On several NPUs each (``npu:0`` … ``npu:7``) is its own process, and a collective draws each
of its sends on the lane it used (a pair's HCCS link, a RoCE port), named after the collective,
with flow arrows from every rank's source stage into it and out of it to every consumer.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from hetnpu.traces.events import Place, flow, metadata, span, write_trace_file

if TYPE_CHECKING:
    from hetnpu.simulator.system import SystemResult

__all__ = ["system_trace_events", "write_system_trace"]


def write_system_trace(result: SystemResult, path: str | os.PathLike[str]) -> None:
    """Write :func:`system_trace_events` as a Chrome trace JSON object, atomically."""
    other = {
        "generator": "hetnpu.system",
        "chip": result.chip,
        "precision": result.precision,
        "strategy": result.strategy,
        "makespan_s": result.makespan_s,
        "topology": result.topology,
    }
    write_trace_file(path, other, system_trace_events(result))


def _us(seconds: float) -> float:
    return round(seconds * 1e6, 6)  # picosecond resolution, as hetnpu.traces.chrome


def _dur(start_s: float, end_s: float) -> float:
    return _us(end_s) - _us(start_s)


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
    lanes = list(
        dict.fromkeys(
            [lane for t in result.transfers for lane, _, _ in t.hops]
            + [send[2] for c in result.collectives for send in c.sends]
        )
    )
    tid = {lane: i + 1 for i, lane in enumerate(lanes)}
    ev: list[dict[str, Any]] = []

    def meta(p: int, t: int | None, kind: str, name: str) -> None:
        ev.append(metadata(p, t, kind, name))

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
        args = {
            "ops": s.ops,
            "compute_us": s.compute_s * 1e6,
            "transdata_us": s.transdata_s * 1e6,
            "npu_cycles": s.npu_cycles,
        }
        ev.append(
            span(
                f"stage {s.id}",
                "stage",
                pid[s.device],
                1,
                _us(s.start_s),
                _dur(s.start_s, s.end_s),
                args,
            )
        )
    device_of = {s.id: s.device for s in result.stages}
    for stage_id, node, op, a, b in result.op_spans:
        args = {"op_type": op, "stage": stage_id}
        ev.append(span(node, "op", pid[device_of[stage_id]], 2, _us(a), _dur(a, b), args))
    n_flows = 0
    for t in result.transfers:
        if not t.hops:
            continue
        for lane, a, b in t.hops:
            args = {"bytes": t.bytes, "src_stage": t.src_stage, "dst_stage": t.dst_stage}
            ev.append(span(t.tensor, "transfer", link_pid, tid[lane], _us(a), _dur(a, b), args))
        first, last = t.hops[0], t.hops[-1]
        if t.src_stage is not None:
            n_flows += 1
            ev += _flow(
                n_flows,
                (pid[t.src_device], 1, _us(t.ready_s)),
                (link_pid, tid[first[0]], _us(first[1])),
            )
        if t.dst_stage is not None:
            consumer = result.stages[t.dst_stage]
            n_flows += 1
            ev += _flow(
                n_flows,
                (link_pid, tid[last[0]], _us(last[2])),
                (pid[t.dst_device], 1, _us(consumer.start_s)),
            )
    for c in result.collectives:
        n_flows = _collective_events(result, c, pid, link_pid, tid, ev, n_flows)
    return ev


def _collective_events(
    result: SystemResult,
    c: Any,
    pid: dict[str, int],
    link_pid: int,
    tid: dict[str, int],
    ev: list[dict[str, Any]],
    n_flows: int,
) -> int:
    """Spans of a collective's sends on their lanes, and the flows into and out of it."""
    args = {"kind": c.kind, "algorithm": c.algorithm, "bytes": c.nbytes, "ranks": list(c.ranks)}
    for src, dst, lane, a, b in c.sends:
        ev.append(
            span(
                c.name,
                "collective",
                link_pid,
                tid[lane],
                _us(a),
                _dur(a, b),
                {**args, "src": src, "dst": dst},
            )
        )
    if not c.sends:
        return n_flows
    first = min(c.sends, key=lambda s: (s[3], s[2]))
    last = max(c.sends, key=lambda s: (s[4], s[2]))
    carried = [t for t in result.transfers if t.link == f"{c.kind} {c.name}"]
    for src_stage in sorted({t.src_stage for t in carried if t.src_stage is not None}):
        stage = result.stages[src_stage]
        n_flows += 1
        ev.extend(
            _flow(
                n_flows,
                (pid[stage.device], 1, _us(stage.end_s)),
                (link_pid, tid[first[2]], _us(first[3])),
            )
        )
    for dst_stage in sorted({t.dst_stage for t in carried if t.dst_stage is not None}):
        stage = result.stages[dst_stage]
        n_flows += 1
        ev.extend(
            _flow(
                n_flows,
                (link_pid, tid[last[2]], _us(last[4])),
                (pid[stage.device], 1, _us(stage.start_s)),
            )
        )
    return n_flows


def _flow(ident: int, src: Place, dst: Place) -> tuple[dict[str, Any], dict[str, Any]]:
    return flow(ident, "tensor", src, dst, cat="dataflow")
