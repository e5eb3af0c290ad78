"""The analytical cost model against figures worked out from the presets by hand."""

from __future__ import annotations

import pytest

from hetnpu.graph import load
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
