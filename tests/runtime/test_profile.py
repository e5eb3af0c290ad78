"""The measured profile: a valid Chrome trace the trace tools read, with ORT's ops in it."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import hetnpu
from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.traces import check_trace, op_summary, read_trace, unit_utilisation
from hetnpu.traces.runtime import GENERATOR
from tests.runtime._models import SPLIT, branchy, small

RUNS = 3


@pytest.fixture(scope="module")
def trace_path(tmp_path_factory):
    sess = hetnpu.InferenceSession(
        branchy(), devices=["sim-npu", "cpu"], strategy="affinity", affinity=SPLIT, profile=True
    )
    x = np.random.default_rng(0).standard_normal((2, 4, 6, 6)).astype(np.float32)
    for _ in range(RUNS):
        sess.run(None, {"X": x})
    path = tmp_path_factory.mktemp("profile") / "run.json"
    assert sess.end_profiling(path) == os.fspath(path)
    return path


def test_trace_validates(trace_path):
    check_trace(trace_path)


def test_trace_records_every_run_stage_transfer_and_layout_conversion(trace_path):
    data = json.loads(trace_path.read_text())
    assert data["otherData"]["generator"] == GENERATOR == "hetnpu.runtime"
    spans = [e for e in data["traceEvents"] if e["ph"] == "X"]
    by_cat: dict[str, list] = {}
    for e in spans:
        by_cat.setdefault(e["cat"], []).append(e)
    assert len(by_cat["run"]) == RUNS
    assert len(by_cat["stage"]) == 2 * RUNS  # one NPU and one CPU stage per run
    # X goes to the NPU (copy + NCHW->NC1HWC0), y comes back (NC1HWC0->NCHW + copy to host).
    moved = sorted(e["args"]["dst_device"] for e in by_cat["transfer"])
    assert moved == ["host"] * RUNS + ["sim-npu"] * RUNS
    layouts = sorted(
        (e["args"]["src_layout"], e["args"]["dst_layout"]) for e in by_cat["transdata"]
    )
    assert layouts == [("NC1HWC0", "NCHW")] * RUNS + [("NCHW", "NC1HWC0")] * RUNS
    for run in by_cat["run"]:  # every stage of a run lies inside it
        inside = [s for s in by_cat["stage"] if s["args"]["run"] == run["args"]["run"]]
        assert all(
            run["ts"] <= s["ts"] and s["ts"] + s["dur"] <= run["ts"] + run["dur"] + 1e-3
            for s in inside
        )
    flows = [e for e in data["traceEvents"] if e["ph"] in "sf"]
    assert flows and len(flows) % 2 == 0


def test_ops_come_from_onnxruntimes_profiler(trace_path):
    data = json.loads(trace_path.read_text())
    ops = [e for e in data["traceEvents"] if e.get("cat") == "op"]
    procs = {
        e["pid"]: e["args"]["name"]
        for e in data["traceEvents"]
        if e["ph"] == "M" and e["name"] == "process_name"
    }
    assert ops
    assert all(e["args"]["op_type"] and procs[e["pid"]] == "cpu" for e in ops)
    # Each ORT kernel sits inside its own stage's span of the same run.
    stages = [e for e in data["traceEvents"] if e.get("cat") == "stage"]
    for op in ops:
        (stage,) = [
            s
            for s in stages
            if s["args"]["run"] == op["args"]["run"] and s["args"]["stage"] == op["args"]["stage"]
        ]
        assert stage["ts"] <= op["ts"] and op["ts"] + op["dur"] <= stage["ts"] + stage["dur"] + 1e-3
    types = {e["args"]["op_type"] for e in ops}
    assert {"ArgMax", "Greater"} <= types


def test_trace_tools_read_it(trace_path, tmp_path, capsys):
    tr = read_trace(trace_path)
    assert tr.kind == "hetnpu" and tr.ops
    rows = op_summary(trace_path)
    assert {r["device"] for r in rows} == {"cpu"}
    assert main(["summary", str(trace_path), "--csv", str(tmp_path / "ops.csv")]) == 0
    assert "argmax" in (tmp_path / "ops.csv").read_text()
    assert main(["trace-diff", str(trace_path), str(trace_path)]) == 0
    assert main(["trace-check", str(trace_path)]) == 0
    # Stage and transfer lanes outlast the ops inside them: utilisation stays a fraction.
    units = unit_utilisation(trace_path)
    assert units and all(0 <= u["utilisation"] <= 1 + 1e-9 for u in units)


def test_profiling_a_whole_model_on_cpu(tmp_path):
    model = small("mlp")
    sess = hetnpu.InferenceSession(model, devices=["cpu"], profile=True)
    sess.run(None, {"input": np.ones((2, 784), np.float32)})
    path = sess.end_profiling(tmp_path / "mlp.json")
    check_trace(path)
    types = {r["type"] for r in op_summary(path)}
    assert {"Gemm", "Softmax"} <= types or {"FusedGemm", "Softmax"} <= types


def test_end_profiling_needs_profile():
    sess = hetnpu.InferenceSession(small("mlp"), devices=["cpu"])
    with pytest.raises(ConfigError, match="profile=True"):
        sess.end_profiling("x.json")
