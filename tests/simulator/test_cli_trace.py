"""``hetnpu simulate`` through ``hetnpu.cli.main``, and the Chrome trace format."""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.isa import UNITS
from hetnpu.traces import chrome_trace


def test_cli_writes_summary_and_trace(mm_relu_model, tmp_path, capsys) -> None:
    out, trace = tmp_path / "s.json", tmp_path / "t.json"
    code = main(
        [
            "simulate",
            mm_relu_model,
            "--chip",
            "ascend910",
            "--batch",
            "64",
            "--json",
            str(out),
            "--trace",
            str(trace),
            "--check",
        ]
    )
    assert code == 0
    summary = json.loads(out.read_text())
    for key in ("cycles", "latency_s", "unit_busy", "hbm_bytes", "events", "wall_s", "ops"):
        assert key in summary
    assert {"name", "type", "start", "end", "bound"} <= set(summary["ops"][0])
    assert [o["name"] for o in summary["ops"]] == ["mm", "relu", "softmax"]
    assert summary["cycles"] == summary["ops"][-1]["end"]
    text = capsys.readouterr().out
    assert "cycles" in text and "costliest ops" in text and "check:" in text
    assert json.loads(trace.read_text())["displayTimeUnit"] == "ns"


def test_cli_set_overrides_a_chip_field(mm_relu_model, tmp_path) -> None:
    fast, slow = tmp_path / "fast.json", tmp_path / "slow.json"
    args = ["simulate", mm_relu_model, "--chip", "ascend910", "--input-shape", "A=4096,256"]
    assert main([*args, "--json", str(fast)]) == 0
    assert main([*args, "--set", "ai_cores=4", "--json", str(slow)]) == 0
    assert json.loads(slow.read_text())["cycles"] > json.loads(fast.read_text())["cycles"]


def test_cli_reports_the_kernel_launches_and_their_share(mm_relu_model, tmp_path, capsys) -> None:
    # MatMul -> ReLU -> Softmax is two kernels: the ReLU folds into the MatMul's epilogue.
    args = ["simulate", mm_relu_model, "--chip", "ascend910", "--input-shape", "A=64,256"]
    assert main([*args, "--set", "task_launch_s=2e-6", "--json", str(tmp_path / "s.json")]) == 0
    summary = json.loads((tmp_path / "s.json").read_text())
    per_kernel = round(2e-6 * 976_562_500)
    assert summary["launch_cycles"] == 2 * per_kernel
    out = capsys.readouterr().out
    assert "kernel launches: 2 x 2 us" in out
    assert main([*args, "--set", "task_launch_s=0"]) == 0
    assert "kernel launches" not in capsys.readouterr().out


def test_cli_bad_chip_key_is_one_line_exit_2(mm_relu_model, capsys) -> None:
    code = main(
        [
            "simulate",
            mm_relu_model,
            "--chip",
            "ascend910",
            "--batch",
            "1",
            "--set",
            "no_such_field=3",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_field" in err


def test_chrome_trace_structure(mm_relu_model) -> None:
    res = simulate(
        load(mm_relu_model, input_shapes={"A": [1024, 256]}), "ascend910", trace_level="instr"
    )
    for level in ("op", "instr"):
        trace = chrome_trace(res, level)
        assert trace["displayTimeUnit"] == "ns"
        events = trace["traceEvents"]
        meta = [e for e in events if e["ph"] == "M"]
        spans = [e for e in events if e["ph"] == "X"]
        named_pids = {e["pid"] for e in meta if e["name"] == "process_name"}
        named_tids = {(e["pid"], e["tid"]) for e in meta if e["name"] == "thread_name"}
        assert {e["pid"] for e in spans} <= named_pids
        assert {(e["pid"], e["tid"]) for e in spans} <= named_tids
        # The AI cores' threads are units (msprof's Ascend Hardware and Overlap Analysis
        # processes follow them).
        cores = {
            e["pid"]
            for e in meta
            if e["name"] == "process_name" and e["args"]["name"].startswith("AI core")
        }
        units = {
            e["args"]["name"] for e in meta if e["name"] == "thread_name" and e["pid"] in cores
        }
        assert units <= set(UNITS) and {"CUBE", "MTE2", "VECTOR"} <= units
        for e in spans:
            assert isinstance(e["ts"], float | int) and isinstance(e["dur"], float | int)
            assert e["dur"] >= 0 and e["args"]["op"] if e["pid"] in cores else True
        keys = [(e["pid"], e["tid"], e["ts"], e["dur"], e["name"]) for e in spans]
        assert keys == sorted(keys)
        # ts is in microseconds: the last op ends at cycles / clock.
        stream = [e for e in spans if e["pid"] == 0]
        end = max(e["ts"] + e["dur"] for e in stream)
        assert end == pytest.approx(res.cycles / res.clock_hz * 1e6)
    with pytest.raises(ConfigError):
        chrome_trace(simulate(load(mm_relu_model, input_shapes={"A": [8, 256]}), "ascend910"))
