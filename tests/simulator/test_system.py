"""The whole heterogeneous system on one timeline: stages, transfers, overlap, CLI."""

from __future__ import annotations

import itertools
import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu import chips
from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.graph import load
from hetnpu.simulator.system import simulate_system
from hetnpu.traces import validate_trace


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
def matmul_only():
    return load(
        _model(
            [helper.make_node("MatMul", ["X", "W"], ["Y"], name="mm")],
            [_vi("X", [512, 1024])],
            [_vi("Y", [512, 1024])],
            [_weight("W", (1024, 1024))],
        )
    )


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


def test_single_npu_stage_is_input_link_stage_output_link(matmul_only) -> None:
    spec = chips.load("ascend310")
    res = simulate_system(matmul_only, spec, devices="npu,cpu")
    (stage,) = res.stages
    assert stage.device == "npu" and stage.npu_cycles and stage.npu_cycles > 0
    assert stage.end_s - stage.start_s == pytest.approx(
        stage.npu_cycles / spec.clock_hz + stage.transdata_s
    )
    link = spec.host_link
    h2d, d2h = sorted((t for t in res.transfers if t.hops), key=lambda t: t.start_s)
    assert (h2d.tensor, d2h.tensor) == ("X", "Y")
    for t in (h2d, d2h):
        assert t.end_s - t.start_s == pytest.approx(link.latency_s + t.bytes / link.bytes_per_s)
    # Closed form: nothing overlaps in a chain, so the makespan is the sum of the parts.
    assert stage.start_s == pytest.approx(h2d.end_s)
    assert d2h.start_s == pytest.approx(stage.end_s)
    assert res.makespan_s == pytest.approx(
        (h2d.end_s - h2d.start_s) + (stage.end_s - stage.start_s) + (d2h.end_s - d2h.start_s)
    )


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
    a.write_trace(tmp_path / "a.json")
    b.write_trace(tmp_path / "b.json")
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert validate_trace(tmp_path / "a.json") == []


def test_all_cpu_system_is_the_cpu_roofline_sum(two_branches) -> None:
    from hetnpu.devices.roofline import RooflineCostModel
    from hetnpu.scheduler._specs import host_specs, npu_spec

    res = simulate_system(two_branches, "ascend910", devices="cpu")
    cpu, gpu = host_specs()
    roof = RooflineCostModel(npu_spec("ascend910"), cpu, gpu)
    expected = sum(roof.cost(two_branches, n, "cpu") for n in two_branches if not n.is_constant)
    assert [s.device for s in res.stages] == ["cpu"]
    assert not [t for t in res.transfers if t.hops]
    assert res.makespan_s == pytest.approx(expected)


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
