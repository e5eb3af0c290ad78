"""The analytical cost model against figures worked out from the presets by hand."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from hetnpu.devices.roofline import RooflineCostModel
from hetnpu.graph import Graph, load
from hetnpu.scheduler import build_plan, default_cost_model
from tests.conftest import LIGHT_DIR


def test_transfer_is_link_latency_plus_bytes_over_bandwidth_plus_transdata(cost_model):
    g = load(LIGHT_DIR / "light_bvlc_alexnet.onnx")
    t = g.tensors["prob_1"]  # (1, 1000) float32: 4000 bytes, FRACTAL_NZ inside the NPU
    link = cost_model.npu.host_link
    wire = link.latency_s + 4000 / link.bytes_per_s
    assert cost_model.transfer(g, t.name, "cpu", "cpu") == 0.0
    to_cpu = cost_model.transfer(g, t.name, "npu", "cpu")
    assert to_cpu == pytest.approx(wire + cost_model.transdata(g, t.name, to_npu=False))
    assert cost_model.transdata(g, t.name, to_npu=False) > 0
    # NPU and GPU meet through host memory: both host links.
    gpu = cost_model.gpu.host_link
    assert cost_model.transfer(g, t.name, "npu", "gpu") == pytest.approx(
        to_cpu + gpu.latency_s + 4000 / gpu.bytes_per_s
    )
    assert cost_model.link_name("npu", "cpu") == link.name


def test_op_cost_is_the_roofline_max_plus_overhead(cost_model):
    from hetnpu.graph.cost import node_cost

    g = load(LIGHT_DIR / "light_vgg19.onnx")
    conv = next(n for n in g if n.op_type == "Conv")
    work = node_cost(g, conv)
    cpu = cost_model.cpu
    want = (
        max(
            work.flops / cpu.peak_fp32_flops,
            (work.bytes_read + work.bytes_written) / cpu.mem_bytes_per_s,
        )
        + cpu.launch_overhead_s
    )
    assert cost_model.cost(g, conv, "cpu") == pytest.approx(want)
    assert cost_model.cost(g, conv, "npu") < cost_model.cost(g, conv, "cpu")
    assert cost_model.cost(g, conv, "npu") >= work.flops / cost_model.npu.peak_flops("fp16")
    folded = next(n for n in g if n.is_constant)
    assert cost_model.cost(g, folded, "npu") == 0.0


def test_a_long_lived_model_never_hands_one_graph_anothers_costs() -> None:
    # A collected graph's id() is handed to a later graph, whose nodes often share its names;
    # a memo keyed by id() would give the later graph the earlier one's costs.
    import gc

    from hetnpu.models.synthetic import random_dag
    from hetnpu.scheduler import default_cost_model

    model = default_cost_model("ascend910")
    seen: set[int] = set()
    reused = 0
    for seed in range(200):
        g = load(random_dag(6, seed, channels=8 + 8 * (seed % 16), spatial=8))
        costs = [model.cost(g, node, "cpu") for node in g]
        if id(g) in seen:
            reused += 1
            fresh = default_cost_model("ascend910")
            assert costs == [fresh.cost(g, node, "cpu") for node in g], seed
            if reused >= 3:
                break
        seen.add(id(g))
        del g
        gc.collect()
    assert reused, "no graph reused a collected graph's id: nothing was tested"


# --- bytes on the NPU: float tensors at the precision's size, whatever their ONNX dtype --------

_N = 1 << 20  # elements: an Add of this size is memory-bound on every preset


def _unary_or_binary(op: str, x_type: int, y_type: int, inputs: int) -> Graph:
    vi = helper.make_tensor_value_info
    names = ["a", "b"][:inputs]
    graph = helper.make_graph(
        [helper.make_node(op, names, ["y"], name="op", **({"to": y_type} if op == "Cast" else {}))],
        "g",
        [vi(n, x_type, [_N]) for n in names],
        [vi("y", y_type, [_N])],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _memory_time(model: RooflineCostModel, nbytes: int) -> float:
    npu = model.npu
    return nbytes / npu.hbm_bytes_per_s + (npu.gm_latency_cycles + npu.mte_latency_cycles) / (
        npu.clock_hz
    )


@pytest.mark.parametrize("precision, size", [("fp16", 2), ("fp32", 4), ("int8", 1)])
@pytest.mark.parametrize("onnx_type", [TensorProto.FLOAT16, TensorProto.FLOAT])
def test_a_float_tensor_takes_the_precisions_bytes_on_the_npu(
    precision: str, size: int, onnx_type: int
) -> None:
    # Before, every tensor was scaled by itemsize/4: an fp16-typed Add at fp16 was charged one
    # byte per element, half what the NPU moves, and at fp32 two instead of four.
    model = default_cost_model("ascend910", precision=precision)
    g = _unary_or_binary("Add", onnx_type, onnx_type, inputs=2)
    assert model.cost(g, g.node("op"), "npu") == pytest.approx(_memory_time(model, 3 * _N * size))


def test_an_int64_tensor_keeps_its_eight_bytes_on_the_npu() -> None:
    # Cast int64 -> float32 at fp16 reads 8 bytes and writes 2 per element (before: (8+4)/2).
    model = default_cost_model("ascend910", precision="fp16")
    g = _unary_or_binary("Cast", TensorProto.INT64, TensorProto.FLOAT, inputs=1)
    assert model.cost(g, g.node("op"), "npu") == pytest.approx(_memory_time(model, 10 * _N))


def _relu_nchw() -> Graph:
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="op")],
        "g",
        [vi("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [vi("y", TensorProto.FLOAT, [1, 3, 8, 8])],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


# NCHW (1, 3, 8, 8) in int8 is 192 B; in NC1HWC0 with C0 = 32, (1, 1, 8, 8, 32), 2048 B.
# Before, int8 kept the float32 model's 4 bytes and C0 = 16: 768 + 4096 B.


def test_the_cost_models_transdata_at_int8_converts_one_byte_elements() -> None:
    model = default_cost_model("ascend910", precision="int8")
    g = _relu_nchw()
    assert model.transdata(g, "x", to_npu=True) == pytest.approx(_memory_time(model, 192 + 2048))


def test_a_plans_transdata_at_int8_converts_one_byte_elements() -> None:
    plan = build_plan(_relu_nchw(), {"op": "npu"}, precision="int8")
    assert {(d.tensor, d.nbytes) for d in plan.transdata} == {("x", 2240), ("y", 2240)}


def _relu_of(shape: list[int]) -> Graph:
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="op")],
        "g",
        [vi("x", TensorProto.FLOAT16, shape)],
        [vi("y", TensorProto.FLOAT16, shape)],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_a_boundary_transdata_of_many_channels_runs_at_the_chips_profiled_rate() -> None:
    # As the simulator times it (hetnpu.simulator.lowering.movement): NC1HWC0 bytes at
    # transdata_bytes_per_cycle on every core, when slower than HBM; 64 channels fill 4 C0.
    model = default_cost_model("ascend910", precision="fp16")
    npu = model.npu
    five_hd = 16 * 64 * 56 * 56 * 2
    want = five_hd / (npu.transdata_bytes_per_cycle * npu.ai_cores * npu.clock_hz)
    assert want > 2 * five_hd / npu.hbm_bytes_per_s
    overhead = _memory_time(model, 0)
    got = model.transdata(_relu_of([16, 64, 56, 56]), "x", to_npu=True)
    assert got == pytest.approx(want + overhead)
    # Three channels (a small-channel network input) stay memory-bound.
    small = _relu_of([16, 3, 56, 56])
    nbytes = 16 * 3 * 56 * 56 * 2 + 16 * 16 * 56 * 56 * 2
    assert model.transdata(small, "x", to_npu=True) == pytest.approx(_memory_time(model, nbytes))
