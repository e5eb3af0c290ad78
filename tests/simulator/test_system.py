"""The whole heterogeneous system on one timeline: stages, transfers, overlap, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.api import simulate_system
from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.graph import load
from hetnpu.scheduler import partition
from hetnpu.traces import validate_trace, write_trace


def _model(nodes, inputs, outputs, inits=()) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(m)
    return m


def _vi(name: str, shape: list[int]):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def _weight(name: str, shape: tuple[int, ...], seed: int = 0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.05, name)


@pytest.fixture(scope="module")
def two_branches():
    """A MatMul branch the NPU runs beside a chain of Mish (not in CANN's list) the CPU runs,
    long enough to outlast the NPU's input transfer."""
    mish = [helper.make_node("Mish", ["X"], ["M0"], name="mish")]
    mish += [helper.make_node("Mish", [f"M{i}"], [f"M{i + 1}"], name=f"mish{i}") for i in range(7)]
    return load(
        _model(
            [
                helper.make_node("MatMul", ["X", "W"], ["A"], name="mm"),
                helper.make_node("Relu", ["A"], ["Y"], name="relu"),
                *mish,
            ],
            [_vi("X", [1024, 1024])],
            [_vi("Y", [1024, 1024]), _vi("M7", [1024, 1024])],
            [_weight("W", (1024, 1024))],
        )
    )


def test_npu_then_cpu_plan_matches_the_makespan_worked_out_by_hand() -> None:
    """A two-stage plan: MatMul (16x1024 @ 1024x16, fp16) on the NPU, its Relu on the CPU.
    Every term below is worked out from the preset files and the tensor sizes, not read back
    from the result, so a wrong stage time, transfer time or ordering moves the makespan.

    ascend910.toml: clock 976_562_500 Hz; host link PCIe 4.0 x16 at 31.5e9 B/s, 10 us latency;
    HBM 1.2e12 B/s; gm_latency 195 + mte_latency 16 = 211 cycles of TransData overhead.
    cpu_x86.toml: 204.8e9 B/s of memory, 5.888e12 FLOP/s, 5 us launch overhead.
    """
    x = helper.make_tensor_value_info("A", TensorProto.FLOAT16, [16, 1024])
    z = helper.make_tensor_value_info("Z", TensorProto.FLOAT16, [16, 16])
    w = numpy_helper.from_array(np.full((1024, 16), 0.01, np.float16), "W")
    model = _model(
        [
            helper.make_node("MatMul", ["A", "W"], ["Y"], name="mm"),
            helper.make_node("Relu", ["Y"], ["Z"], name="relu"),
        ],
        [x],
        [z],
        [w],
    )
    graph = load(model)
    plan = partition(
        graph, ["npu", "cpu"], strategy="affinity", affinity={"mm": "npu", "relu": "cpu"}
    )
    res = simulate_system(None, "ascend910", plan=plan)
    clock = 976_562_500
    # 1. A (16·1024·2 = 32768 B) crosses the NPU's host link: latency + bytes / bandwidth.
    h2d = 10e-6 + 32768 / 31.5e9
    # 2. The NPU stage: TransData of A into FRACTAL_NZ (16 rows and 1024 columns are whole
    #    16x16 fractals, so 32768 B read + 32768 B written through HBM, plus the GM round
    #    trip), the MatMul, then Y (16x16, 512 + 512 B) back to ND. The MatMul's 1720 cycles
    #    are worked out in test_gemm_cycles.py's terms: A and B loads from HBM at 67 B/cycle,
    #    4 + (16 + 490) + (16 + 490) + 195 (B lands) + MTE1 (16 + 64 + 128) + mmad (8 + 64)
    #    + L0C->UB (8 + 2) + MTE3 (16 + 8) + 195 (the write lands) = 1720.
    transdata_in = 65536 / 1.2e12 + 211 / clock
    matmul = 1720 / clock
    transdata_out = 1024 / 1.2e12 + 211 / clock
    npu = transdata_in + matmul + transdata_out
    # 3. Y (512 B) crosses back to the host.
    d2h = 10e-6 + 512 / 31.5e9
    # 4. Relu on the CPU: memory-bound (512 B in, 512 B out at 204.8e9 B/s beats 256 FLOPs at
    #    5.888e12 FLOP/s by far) plus the launch overhead.
    relu = 1024 / 204.8e9 + 5e-6
    # A chain: each part starts when the previous ends, so the makespan is their sum.
    assert res.makespan_s == pytest.approx(h2d + npu + d2h + relu, rel=1e-9)
    npu_stage, cpu_stage = res.stages
    assert (npu_stage.device, npu_stage.npu_cycles) == ("npu", 1720)
    assert (npu_stage.start_s, npu_stage.end_s) == pytest.approx((h2d, h2d + npu), rel=1e-9)
    assert cpu_stage.device == "cpu"
    assert cpu_stage.start_s == pytest.approx(h2d + npu + d2h, rel=1e-9)
    assert npu_stage.transdata_s == pytest.approx(transdata_in + transdata_out, rel=1e-9)


def test_independent_stages_overlap_on_npu_and_cpu(two_branches) -> None:
    res = simulate_system(two_branches, "ascend910", devices="npu,cpu")
    by_node = {n: s for s in res.stages for n in s.nodes}
    npu, cpu = by_node["mm"], by_node["mish"]
    assert (npu.device, cpu.device) == ("npu", "cpu")
    assert npu.id != cpu.id
    # The CPU's Mish and the NPU's MatMul run at the same time.
    assert cpu.start_s < npu.end_s and npu.start_s < cpu.end_s
    busy = sum(s.end_s - s.start_s for s in res.stages)
    busy += sum(h[2] - h[1] for t in res.transfers for h in t.hops)
    assert res.makespan_s < busy
    # Every stage starts only after each of its inputs has arrived.
    for t in res.transfers:
        if t.dst_stage is not None:
            assert res.stages[t.dst_stage].start_s >= t.end_s - 1e-15
        if t.src_stage is not None:
            assert t.start_s >= res.stages[t.src_stage].end_s - 1e-15


def test_one_link_direction_carries_one_transfer_at_a_time(two_branches) -> None:
    res = simulate_system(two_branches, "ascend310", devices="npu,cpu")
    lanes: dict[str, list[tuple[float, float]]] = {}
    for t in res.transfers:
        for lane, a, b in t.hops:
            lanes.setdefault(lane, []).append((a, b))
    assert lanes
    for spans in lanes.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end - 1e-15


def test_same_plan_same_timeline_and_trace_bytes(two_branches, tmp_path) -> None:
    a = simulate_system(two_branches, "ascend910", devices="npu,cpu", trace_level="op")
    b = simulate_system(two_branches, "ascend910", devices="npu,cpu", trace_level="op")
    assert a == b
    write_trace(a, tmp_path / "a.json")
    write_trace(b, tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert validate_trace(tmp_path / "a.json") == []


def test_all_cpu_system_is_the_cpu_roofline_sum(two_branches) -> None:
    """On the CPU alone, each op takes max(FLOPs / peak, bytes / bandwidth) + launch overhead of
    the generic CPU preset (ops one after another, nothing to transfer): worked out here from
    the op counts and the preset's three numbers, not by the cost model the system uses."""
    from hetnpu.devices.presets import cpu_spec
    from hetnpu.graph.cost import node_cost

    cpu = cpu_spec()
    expected = 0.0
    for n in two_branches:
        if n.is_constant:
            continue
        work = node_cost(two_branches, n)
        moved = work.bytes_read + work.bytes_written
        expected += max(work.flops / cpu.peak_fp32_flops, moved / cpu.mem_bytes_per_s)
        expected += cpu.launch_overhead_s
    res = simulate_system(two_branches, "ascend910", devices="cpu")
    assert [s.device for s in res.stages] == ["cpu"]
    assert not [t for t in res.transfers if t.hops]
    assert res.makespan_s == pytest.approx(expected, rel=1e-12)


def test_unknown_device_is_a_config_error(two_branches) -> None:
    with pytest.raises(ConfigError, match="tpu"):
        simulate_system(two_branches, "ascend910", devices="tpu,cpu")


def test_cli_system_json_and_trace(two_branches, tmp_path, capsys) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(two_branches.model, model)
    out, trace = tmp_path / "s.json", tmp_path / "t.json"
    args = ["simulate", str(model), "--chip", "ascend310", "--devices", "npu,cpu"]
    assert main([*args, "--strategy", "heft", "--json", str(out), "--trace", str(trace)]) == 0
    summary = json.loads(out.read_text())
    assert summary["strategy"] == "heft" and summary["makespan_s"] > 0
    assert {s["device"] for s in summary["stages"]} <= {"npu", "cpu"}
    assert sum(s["ops"] for s in summary["stages"]) == 10
    assert validate_trace(trace) == []
    assert "makespan" in capsys.readouterr().out
    assert main([*args[:-1], "npu,tpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert "tpu" in err and len(err.splitlines()) == 1
