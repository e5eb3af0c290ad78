"""Chrome Trace Event output of a measured :class:`~hetnpu.runtime.session.InferenceSession` run.

The same object form as the simulator's trace (:mod:`hetnpu.traces.chrome`), so Perfetto,
``hetnpu summary``, ``hetnpu report`` and ``hetnpu trace-diff`` read both:

- process 0 is the host, with one ``X`` span per ``run`` call (thread ``runs``);
- then one process per device (``cpu``, ``sim-npu``...) with threads ``stages`` (one span per
  stage execution; args: stage, run, engine, nodes), ``ops`` (cat ``op``, one span per kernel
  onnxruntime's own profiler recorded; args: ``op_type``, provider, bytes), ``transfers``
  (copies into the device; host-bound copies sit on their source device) and ``transdata``
  (NPU layout conversions);
- ``s``/``f`` flow arrows from each producer stage to the transfer it feeds, and from each
  transfer to the stage that reads it;
- ``M`` metadata naming every pid and tid.

Times are microseconds from the first recorded event, kept to whole nanoseconds. Work that
overlaps in time on one device (independent stages, concurrent ``run`` calls) is spread over
numbered lanes (``stages``, ``stages #2``...) so that spans on a thread never overlap, as
Perfetto requires. onnxruntime's kernel times are relative to its own clock: each of its
``model_run`` spans is matched to the stage execution that contains it (the k-th run of a stage
to the k-th) and centred in it; a kernel never leaves its stage's span.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from hetnpu.traces.events import flow, metadata, span, write_trace_file

__all__ = ["GENERATOR", "runtime_trace", "write_runtime_trace"]

GENERATOR = "hetnpu.runtime"
_KINDS = ("stages", "ops", "transfers", "transdata")
_ORT_SUFFIX = "_kernel_time"
OrtEvents = Sequence[tuple[Any, int, list[dict[str, Any]]]]


def _ns(us: float) -> int:
    return round(us * 1000)


def _ort_ops(events: list[dict[str, Any]], ort: OrtEvents) -> list[dict[str, Any]]:
    """Kernel spans of onnxruntime's profiles, moved onto the session's clock."""
    spans: dict[tuple[Any, int], list[dict[str, Any]]] = defaultdict(list)
    for e in events:
        if e["kind"] == "stage":
            spans[(e.get("plan"), e["stage"])].append(e)
    out = []
    for plan, stage, raw in ort:
        runs = sorted(
            (e for e in raw if e.get("name") == "model_run" and e.get("ph") == "X"),
            key=lambda e: float(e.get("ts", 0)),
        )
        kernels = [
            e
            for e in raw
            if e.get("cat") == "Node" and str(e.get("name", "")).endswith(_ORT_SUFFIX)
        ]
        mine = sorted(spans.get((plan, stage), []), key=lambda e: e["start_us"])
        for mr, stage_span in zip(runs, mine, strict=False):
            lo, hi = stage_span["start_us"], stage_span["end_us"]
            mr_ts, mr_dur = float(mr.get("ts", 0)), float(mr.get("dur", 0))
            offset = lo + max(0.0, (hi - lo - mr_dur) / 2) - mr_ts
            for k in kernels:
                ts = float(k.get("ts", 0))
                if not mr_ts <= ts <= mr_ts + mr_dur:
                    continue
                args = k.get("args") or {}
                start = min(max(ts + offset, lo), hi)
                end = min(max(start + float(k.get("dur", 0)), start), hi)
                nbytes = sum(
                    int(args.get(key, 0) or 0)
                    for key in ("activation_size", "parameter_size", "output_size")
                )
                out.append(
                    {
                        "kind": "op",
                        "name": str(k["name"]).removesuffix(_ORT_SUFFIX),
                        "device": stage_span["device"],
                        "start_us": start,
                        "end_us": end,
                        "args": {
                            "op_type": str(args.get("op_name", "")),
                            "provider": str(args.get("provider", "")),
                            "stage": stage,
                            "run": stage_span["run"],
                            "bytes": nbytes,
                            "ort_dur_us": float(k.get("dur", 0)),
                        },
                    }
                )
    return out


def _lanes(spans: list[dict[str, Any]]) -> None:
    """Give each span the lowest lane free at its start (interval partitioning)."""
    ends: list[int] = []
    for s in sorted(spans, key=lambda s: (s["ts_ns"], -s["end_ns"])):
        for lane, end in enumerate(ends):
            if end <= s["ts_ns"]:
                ends[lane] = s["end_ns"]
                s["lane"] = lane
                break
        else:
            s["lane"] = len(ends)
            ends.append(s["end_ns"])


def _span(e: dict[str, Any]) -> tuple[str, str, str, dict[str, Any]]:
    """(device, thread kind, name, args) of a recorded event."""
    kind = e["kind"]
    if kind == "run":
        return "host", "runs", f"run {e['run']}", {"run": e["run"]}
    if kind == "stage":
        args = {k: e[k] for k in ("stage", "run", "engine", "nodes")}
        return e["device"], "stages", f"stage {e['stage']} ({e['device']})", args
    if kind == "transfer":
        keys = ("tensor", "src_device", "dst_device", "bytes", "run", "src_stage", "dst_stage")
        args = {k: e[k] for k in keys if k in e}
        device = e["src_device"] if e["dst_device"] == "host" else e["dst_device"]
        return device, "transfers", f"{e['src_device']}->{e['dst_device']} {e['tensor']}", args
    if kind == "transdata":
        args = {k: e[k] for k in ("tensor", "src_layout", "dst_layout", "bytes", "stage", "run")}
        return e["device"], "transdata", f"TransData {e['src_layout']}->{e['dst_layout']}", args
    return e["device"], "ops", e["name"], e["args"]


def runtime_trace(
    events: Iterable[dict[str, Any]],
    ort: OrtEvents = (),
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The Chrome trace (object form) of a session's recorded events.

    Parameters
    ----------
    events
        What the session recorded: dicts with ``kind`` (run, stage, transfer, transdata),
        ``start_us``/``end_us`` on the session's clock, and the kind's fields.
    ort
        ``(plan, stage, onnxruntime profile events)`` per profiled onnxruntime executable.
    meta
        Goes into ``otherData`` beside ``generator``.
    """
    recorded = [dict(e) for e in events]
    spans = [*recorded, *_ort_ops(recorded, ort)]
    t0 = min((e["start_us"] for e in spans), default=0.0)
    devices = ["host"]
    for e in spans:
        e["device_"], e["thread_"], e["name_"], e["args_"] = _span(e)
        if e["device_"] not in devices:
            devices.append(e["device_"])
        e["ts_ns"] = _ns(e["start_us"] - t0)
        e["end_ns"] = max(_ns(e["end_us"] - t0), e["ts_ns"])
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for e in spans:
        groups[(e["device_"], e["thread_"])].append(e)
    trace: list[dict[str, Any]] = []
    threads: dict[tuple[int, int], str] = {}
    for (device, thread), group in groups.items():
        _lanes(group)
        pid = devices.index(device)
        base = 0 if thread == "runs" else 100 * (_KINDS.index(thread) + 1)
        for e in group:
            tid = base + e["lane"] + 1
            threads[(pid, tid)] = thread if e["lane"] == 0 else f"{thread} #{e['lane'] + 1}"
            e["pid"], e["tid"] = pid, tid
            ts, dur = e["ts_ns"] / 1000, (e["end_ns"] - e["ts_ns"]) / 1000
            trace.append(span(e["name_"], e["kind"], pid, tid, ts, dur, e["args_"]))
    trace += _flows(recorded)
    trace.sort(key=lambda e: (e["pid"], e["tid"], e["ts"], -e.get("dur", 0), e["ph"]))
    head: list[dict[str, Any]] = []
    for pid, device in enumerate(devices):
        head.append(metadata(pid, 0, "process_name", device))
        head.append(metadata(pid, 0, "process_sort_index", pid))
    for (pid, tid), name in sorted(threads.items()):
        head.append(metadata(pid, tid, "thread_name", name))
        head.append(metadata(pid, tid, "thread_sort_index", tid))
    other = {"generator": GENERATOR, **(meta or {})}
    other["ops_from"] = "onnxruntime's profiler (stages it runs); other engines give stage spans"
    return {"displayTimeUnit": "ns", "otherData": other, "traceEvents": head + trace}


def _flows(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Producer stage -> transfer -> consumer stage arrows, ids from 1."""
    stages = {(e.get("plan"), e["run"], e["stage"]): e for e in events if e["kind"] == "stage"}
    out: list[dict[str, Any]] = []

    def arrow(src: dict[str, Any], dst: dict[str, Any], name: str) -> None:
        fid = len(out) // 2 + 1
        end, start = src["end_ns"], max(dst["ts_ns"], src["end_ns"])
        if start > dst["end_ns"]:  # the consumer began before the producer ended: no arrow
            return
        out.extend(
            flow(
                fid,
                name,
                (src["pid"], src["tid"], end / 1000),
                (dst["pid"], dst["tid"], start / 1000),
            )
        )

    for e in events:
        if e["kind"] != "transfer":
            continue
        if "src_stage" in e:
            src = stages.get((e.get("plan"), e["run"], e["src_stage"]))
            if src is not None:
                arrow(src, e, e["tensor"])
        if "dst_stage" in e:
            dst = stages.get((e.get("plan"), e["run"], e["dst_stage"]))
            if dst is not None:
                arrow(e, dst, e["tensor"])
    return out


def write_runtime_trace(
    path: str | os.PathLike[str],
    events: Iterable[dict[str, Any]],
    ort: OrtEvents = (),
    meta: dict[str, Any] | None = None,
) -> None:
    """Write :func:`runtime_trace` to ``path`` atomically (temporary file, then rename)."""
    data = runtime_trace(events, ort, meta)
    write_trace_file(path, data["otherData"], data["traceEvents"])
