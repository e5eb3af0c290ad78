"""Op summaries of simulated and onnxruntime-measured runs, and trace-diff, via API and CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import onnxruntime as ort
import pytest
from typer.testing import CliRunner

from hetnpu.cli import app, main
from hetnpu.traces.chrome import write_chrome_trace
from hetnpu.traces.read import read_trace
from hetnpu.traces.summary import OP_COLUMNS, diff_traces, op_summary, unit_utilisation
from hetnpu.traces.validate import validate_trace
from tests.traces._models import residual_model, run, runtime_like_trace


def test_op_summary_of_a_simulation(sim, tmp_path) -> None:
    path = tmp_path / "t.json"
    write_chrome_trace(sim.result, path, "op", graph=sim.graph, spec=sim.spec)
    rows = op_summary(path)
    timed = [o for o in sim.result.ops if o.fused_into is None]
    assert [r["op"] for r in rows] == [o.name for o in timed]
    for r, o in zip(rows, timed, strict=True):
        assert set(r) == set(OP_COLUMNS)
        assert r["device"] == "ascend910" and r["cores"] == len(o.cores)
        assert r["duration_us"] == pytest.approx(o.cycles / sim.result.clock_hz * 1e6)
        assert r["start_us"] == pytest.approx(o.start / sim.result.clock_hz * 1e6)
        assert (r["cube_cycles"], r["vector_cycles"], r["bound"]) == (
            o.cube_cycles,
            o.vector_cycles,
            o.bound,
        )
        assert 0 < r["utilisation"] <= 1
    assert rows[0]["op"] == "TransData:X" and rows[0]["cube_cycles"] == 0
    assert rows[1]["cube_cycles"] > 0 and rows[-1]["cube_cycles"] == 0  # conv vs mul


def test_onnxruntime_profile_reads_and_summarises_through_the_cli(tmp_path, capsys) -> None:
    opts = ort.SessionOptions()
    opts.enable_profiling = True
    opts.profile_file_prefix = str(tmp_path / "ort")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(
        residual_model().SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    x = np.zeros((1, 16, 56, 56), np.float32)
    for _ in range(2):
        sess.run(None, {"X": x})
    profile = sess.end_profiling()
    tr = read_trace(profile)
    assert tr.kind == "onnxruntime"
    assert sorted({o.name for o in tr.ops}) == ["conv1", "conv2", "mul", "relu1"]
    assert {o.op_type for o in tr.ops} == {"Conv", "Relu", "Mul"}
    assert {o.device for o in tr.ops} == {"cpu"} and len(tr.ops) == 8  # two runs
    out = tmp_path / "ops.csv"
    assert main(["summary", profile, "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 8 and rows[0]["op"] == "conv1" and rows[0]["utilisation"] == ""
    assert "onnxruntime" in capsys.readouterr().out
    # A measured run and a simulated one compare op by op.
    sim_path = tmp_path / "sim.json"
    write_chrome_trace(run().result, sim_path, "op")
    d = diff_traces(profile, sim_path)
    # The simulated TransData has no measured counterpart but is still listed.
    assert {r["op"] for r in d.ops} == {"TransData:X", "conv1", "conv2", "mul", "relu1"}


def test_trace_diff_names_the_ops_a_chip_parameter_changed(tmp_path, capsys) -> None:
    base, slow = run(), run(hbm_bytes_per_s=4e10)
    a, b = tmp_path / "base.json", tmp_path / "slow.json"
    write_chrome_trace(base.result, a, "op")
    write_chrome_trace(slow.result, b, "op")
    before = {o.name: o.cycles for o in base.result.ops}
    after = {o.name: o.cycles for o in slow.result.ops}
    expected = {n for n in before if before[n] != after[n]}
    assert expected  # the override matters for this model
    d = diff_traces(a, b)
    assert set(d.changed()) == expected
    biggest = max(expected, key=lambda n: abs(after[n] - before[n]))
    assert d.ops[0]["op"] == biggest and d.ops[0]["delta_us"] > 0
    assert d.new_us > d.base_us
    assert d.units[0]["delta_us"] != 0
    out = tmp_path / "diff.json"
    assert main(["trace-diff", str(a), str(b), "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert biggest in text and f"{len(expected)} of 4 ops changed" in text
    assert json.loads(out.read_text())["ops"][0]["op"] == biggest
    # Identical runs differ nowhere.
    assert diff_traces(a, a).changed() == []


def test_bad_trace_file_is_one_line_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["summary", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.json" in err


def test_runtime_profile_shape_reads_per_device(tmp_path) -> None:
    trace = runtime_like_trace()
    assert validate_trace(trace) == []
    rows = op_summary(trace)
    assert [(r["op"], r["device"]) for r in rows] == [
        ("conv1", "cpu"),
        ("relu1", "cpu"),
        ("conv2", "sim-npu"),
        ("mul", "sim-npu"),
    ]
    util = {(u["device"], u["unit"]): u["utilisation"] for u in unit_utilisation(trace)}
    # cpu's wall spans its ops and its lanes (stage and transfers): 12 µs here, not the 10 µs
    # of its ops alone.
    assert util[("cpu", "stage")] == pytest.approx(10 / 12)
    assert util[("cpu", "transfers")] == pytest.approx(2 / 12)
    path = tmp_path / "rt.json"
    path.write_text(json.dumps(trace))
    assert main(["trace-check", str(path)]) == 0
    trace["traceEvents"][-1]["ts"] = "17"
    path.write_text(json.dumps(trace))
    result = CliRunner().invoke(app, ["trace-check", str(path)])
    assert result.exit_code == 1 and "ts '17' is not a number" in result.output
    assert main(["trace-check", str(path)]) == 1


def test_summary_of_a_trace_without_op_spans_says_what_it_holds(tmp_path, capsys) -> None:
    # A measured sim-npu run: stage and transfer spans, no per-kernel ones.
    trace = runtime_like_trace()
    trace["traceEvents"] = [e for e in trace["traceEvents"] if e.get("cat") != "op"]
    path = tmp_path / "stages.json"
    path.write_text(json.dumps(trace))
    assert main(["summary", str(path)]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "0 ops" in out and "no op spans in this trace" in out
    assert "sim-npu records each stage as one span" in out
    assert "stage" in out  # the units table lists the stage lanes
