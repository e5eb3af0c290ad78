"""The simulator's Chrome traces: Perfetto's rules (checked by the validator), args, flows,
counters, determinism and the atomic streaming writer; and the validator's own verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import onnx
import pytest

from hetnpu.cli import main
from hetnpu.errors import InputError
from hetnpu.simulator import simulate
from hetnpu.simulator.isa import UNITS
from hetnpu.traces import chrome
from hetnpu.traces.chrome import chrome_trace, write_chrome_trace
from hetnpu.traces.summary import unit_utilisation
from hetnpu.traces.validate import check_trace, validate_trace
from tests.traces._models import residual_model

LEVELS = ("op", "instr")


@pytest.mark.parametrize("level", LEVELS)
def test_emitted_trace_is_valid_and_complete(sim, tmp_path, level) -> None:
    path = tmp_path / f"{level}.json"
    write_chrome_trace(sim.result, path, level, graph=sim.graph, spec=sim.spec)
    assert validate_trace(path) == []
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    procs = {e["pid"]: e["args"]["name"] for e in events if e["name"] == "process_name"}
    # A process per device and per AI core; a thread per unit, named as msprof's rows.
    n = len(sim.result.cores)
    assert procs[0] == "ascend910 (chip)"
    assert sorted(procs) == list(range(n + 3))
    # msprof's device lanes come last: tasks per stream, and the overlap analysis.
    assert (procs[n + 1], procs[n + 2]) == ("Ascend Hardware", "Overlap Analysis")
    threads = {
        e["args"]["name"] for e in events if e["name"] == "thread_name" and 0 < e["pid"] <= n
    }
    assert {"SCALAR", "MTE2", "MTE1", "CUBE", "VECTOR", "MTE3"} <= threads <= set(UNITS)
    ops = [e for e in events if e["ph"] == "X" and e["cat"] == "op"]
    # ATC's TransData of the Conv-fed input comes first; relu1 is fused into conv1.
    assert [e["name"] for e in ops] == ["TransData:X", "conv1", "conv2", "mul"]
    conv1 = ops[1]["args"]
    assert conv1["fused"] == ["relu1"]
    assert conv1["input_shapes"] == "1,16,56,56;32,16,3,3"
    assert conv1["output_shapes"] == "1,32,56,56"
    assert conv1["output_formats"] == "NC1HWC0"
    assert conv1["flops"] == 2 * 32 * 56 * 56 * 16 * 9
    assert conv1["cycles"] == sim.result.ops[1].cycles
    assert conv1["hbm_bytes"] > 0
    # Flow arrows follow the data edges, with the fused relu's output coming from conv1.
    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    assert sorted(starts) == sorted(ends) == [1, 2, 3]

    def op_at(ts: float) -> str:
        return next(e["name"] for e in ops if e["ts"] <= ts <= e["ts"] + e["dur"])

    edges = {(op_at(starts[i]["ts"]), op_at(ends[i]["ts"]), starts[i]["name"]) for i in starts}
    assert edges == {("conv1", "conv2", "r1"), ("conv1", "mul", "r1"), ("conv2", "mul", "c2")}
    # Every flow ends on the transfer that loads the tensor: an MTE2 lane of an AI core.
    lane = {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert {lane[(e["pid"], e["tid"])] for e in ends.values()} == {"MTE2"}
    # Bandwidth counters: one step per timed op and a final zero.
    counters = [e for e in events if e["ph"] == "C"]
    assert len(counters) == len(ops) + 1 and counters[-1]["args"] == {
        "HBM GB/s": 0.0,
        "L2 GB/s": 0.0,
    }
    other = trace["otherData"]
    spec = sim.spec
    m0, k0, n0 = spec.cube_mkn_fp16
    assert other["peak_flops"] == 2 * m0 * k0 * n0 * spec.ai_cores * spec.clock_hz
    assert other["hbm_bytes_per_s"] == spec.hbm_bytes_per_s


@pytest.mark.parametrize(
    ("chip", "recorded", "level"),
    [
        ("ascend910", "instr", "instr"),
        ("ascend910", "instr", "op"),
        ("ascend910", "op", "op"),
        ("ascend910b", "op", "op"),
    ],
)
def test_unit_utilisation_from_the_trace_matches_the_simulator(
    sim, tmp_path, chip, recorded, level
) -> None:
    # The simulator sums busy cycles itself; the trace reader sums emitted spans over lanes.
    res = simulate(sim.graph, chip, trace_level=recorded)
    path = tmp_path / "t.json"
    write_chrome_trace(res, path, level)
    assert validate_trace(path) == []
    got = {r["unit"]: r["utilisation"] for r in unit_utilisation(path)}
    for unit, busy in res.unit_busy.items():
        if busy:
            assert got[unit] == pytest.approx(busy, rel=1e-6), unit


def test_same_result_same_bytes_and_dict_matches_file(sim, tmp_path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_chrome_trace(sim.result, a, "instr", graph=sim.graph, spec=sim.spec)
    write_chrome_trace(sim.result, b, "instr", graph=sim.graph, spec=sim.spec)
    assert a.read_bytes() == b.read_bytes()
    as_dict = chrome_trace(sim.result, "instr", graph=sim.graph, spec=sim.spec)
    assert json.loads(a.read_text()) == as_dict
    ids = [e["id"] for e in as_dict["traceEvents"] if e["ph"] == "s"]
    assert ids == list(range(1, len(ids) + 1))


def test_failed_writer_keeps_the_old_file(sim, tmp_path, monkeypatch) -> None:
    path = tmp_path / "t.json"
    path.write_text("old")
    real = chrome.iter_events

    def broken(*args, **kwargs):
        for i, event in enumerate(real(*args, **kwargs)):
            if i == 20:
                raise RuntimeError("writer died")
            yield event

    monkeypatch.setattr(chrome, "iter_events", broken)
    with pytest.raises(RuntimeError):
        write_chrome_trace(sim.result, path, "instr")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["t.json"]


def test_killed_writer_never_leaves_a_truncated_file(tmp_path) -> None:
    # A child process streams a trace whose events come slowly and is SIGKILLed mid-way.
    script = textwrap.dedent(
        f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parents[2])!r})
        from tests.traces._models import run
        from hetnpu.traces import chrome
        real = chrome.iter_events
        def slow(*a, **k):
            for i, e in enumerate(real(*a, **k)):
                if i == 600:
                    print("half", flush=True)
                    time.sleep(60)
                yield e
        chrome.iter_events = slow
        chrome.write_chrome_trace(run().result, {str(tmp_path / "t.json")!r}, "instr")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "half"
        partial = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
        assert partial and partial[0].stat().st_size > 0  # events were streamed out already
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "t.json").exists()


def _trace(*events: dict) -> dict:
    meta = [
        {"ph": "M", "name": "process_name", "pid": 1, "tid": 0, "args": {"name": "p"}},
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "t"}},
    ]
    return {"traceEvents": meta + list(events)}


def _x(name: str, ts: float, dur: float, tid: int = 1) -> dict:
    return {"ph": "X", "name": name, "pid": 1, "tid": tid, "ts": ts, "dur": dur}


@pytest.mark.parametrize(
    ("events", "needle"),
    [
        ([{**_x("a", 0, 1), "ts": "0"}], "event 2 (X 'a'): ts '0' is not a number"),
        ([_x("a", 0, -1)], "event 2 (X 'a'): dur -1"),
        ([_x("a", 0, 2), _x("b", 1, 2)], "event 3 (X 'b'): overlaps event 2 (X 'a')"),
        ([_x("a", 0, 1, tid=2)], "event 2 (X 'a'): pid 1 tid 2 has no thread_name"),
        (
            [_x("a", 0, 1), {"ph": "s", "name": "f", "id": 1, "pid": 1, "tid": 1, "ts": 0.5}],
            "flow id 1 is never finished",
        ),
        (
            [_x("a", 0, 1), {"ph": "f", "name": "f", "id": 1, "pid": 1, "tid": 1, "ts": 5}],
            "event 3 (f 'f'): flow point at ts 5 is inside no span",
        ),
        (
            [{"ph": "C", "name": "bw", "pid": 1, "tid": 0, "ts": 0, "args": {"v": "x"}}],
            "event 2 (C 'bw'): counter args must be a non-empty map of numbers",
        ),
        ([{"ph": "X", "name": "a", "pid": 9, "tid": 1, "ts": 0, "dur": 1}], "pid 9 has no"),
    ],
)
def test_validator_names_the_bad_event(events, needle) -> None:
    errors = validate_trace(_trace(*events))
    assert any(needle in e for e in errors), errors


def test_validator_accepts_nesting_and_siblings_and_check_raises() -> None:
    good = _trace(_x("parent", 0, 10), _x("child", 0, 4), _x("zero", 4, 0), _x("next", 10, 1))
    assert validate_trace(good) == []
    with pytest.raises(InputError, match="overlaps"):
        check_trace(_trace(_x("a", 0, 2), _x("b", 1, 2)))


def test_simulate_cli_trace_is_valid_at_both_levels(tmp_path) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(residual_model(), model)
    for level in LEVELS:
        trace = tmp_path / f"{level}.json"
        args = ["simulate", str(model), "--chip", "ascend910", "--trace", str(trace)]
        assert main([*args, "--trace-level", level]) == 0
        assert validate_trace(trace) == []
        assert json.loads(trace.read_text())["otherData"]["level"] == level


def test_a_residual_add_in_a_convolutions_epilogue_keeps_its_flows(tmp_path) -> None:
    # conv1 → relu1 → conv2 → add(c2, r1) → relu2 → conv3: on a coupled chip the Add and its
    # ReLU run in conv2's kernel, so the trace lists conv2 with both fused, and the block's
    # output reaches conv3 from conv2; the residual r1 reaches conv2 from conv1.
    import numpy as np
    from onnx import helper, numpy_helper

    from tests.support.graphs import float_graph

    rng = np.random.default_rng(0)
    w = [
        numpy_helper.from_array(rng.standard_normal((16, 16, 3, 3)).astype(np.float32), f"W{i}")
        for i in (1, 2, 3)
    ]
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["X", "W1"], ["c1"], name="conv1", **pads),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], name="conv2", **pads),
        helper.make_node("Add", ["c2", "r1"], ["s"], name="add"),
        helper.make_node("Relu", ["s"], ["y2"], name="relu2"),
        helper.make_node("Conv", ["y2", "W3"], ["Y"], name="conv3", **pads),
    ]
    graph = float_graph(nodes, [("X", [1, 16, 28, 28])], [("Y", [1, 16, 28, 28])], w, "block")
    res = simulate(graph, "ascend910", trace_level="op")
    fused = {o.name: o.fused_into for o in res.ops if o.fused_into}
    assert fused == {"relu1": "conv1", "add": "conv2", "relu2": "conv2"}
    path = tmp_path / "t.json"
    write_chrome_trace(res, path, "op", graph=graph)
    assert validate_trace(path) == []
    events = json.loads(path.read_text())["traceEvents"]
    ops = [e for e in events if e["ph"] == "X" and e["cat"] == "op"]
    assert [e["name"] for e in ops] == ["TransData:X", "conv1", "conv2", "conv3"]
    assert sorted(ops[2]["args"]["fused"]) == ["add", "relu2"]

    def op_at(ts: float) -> str:
        return next(e["name"] for e in ops if e["ts"] <= ts <= e["ts"] + e["dur"])

    starts = {e["id"]: e for e in events if e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e["ph"] == "f"}
    edges = {(op_at(starts[i]["ts"]), op_at(ends[i]["ts"]), starts[i]["name"]) for i in starts}
    assert ("conv1", "conv2", "r1") in edges
    assert ("conv2", "conv3", "y2") in edges
