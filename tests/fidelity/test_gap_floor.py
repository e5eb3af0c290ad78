"""``benchmarks/fidelity_gaps.py``'s traffic floor: weights once, and every activation larger
than L2 written once and read once by each kernel that reads it, kernels as fused."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate
from tests.support.graphs import float_graph

ROOT = Path(__file__).resolve().parents[2]
C, H = 16, 32
ACT = C * H * H * 2  # one fp16 activation of the model below on the device
WEIGHT = C * C * 3 * 3 * 2


@pytest.fixture(scope="module")
def gaps():
    spec = importlib.util.spec_from_file_location(
        "fidelity_gaps", ROOT / "benchmarks" / "fidelity_gaps.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _graph():
    """x -> Conv a -> ReLU -> t, read by Conv b (-> u) and Conv c (-> v); u, v are outputs."""
    w = [numpy_helper.from_array(np.ones((C, C, 3, 3), np.float32), f"w{i}") for i in "abc"]
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["ya"], name="a", **conv),
        helper.make_node("Relu", ["ya"], ["t"], name="relu"),
        helper.make_node("Conv", ["t", "wb"], ["u"], name="b", **conv),
        helper.make_node("Conv", ["t", "wc"], ["v"], name="c", **conv),
    ]
    shape = [1, C, H, H]
    return float_graph(nodes, [("x", shape)], [("u", shape), ("v", shape)], w)


def test_tensors_larger_than_l2_move_once_per_write_and_per_reading_kernel(gaps) -> None:
    graph = _graph()
    spec = load_npu("ascend310p", {"l2_bytes": ACT - 1})
    res = simulate(graph, spec)
    assert {op.name: op.fused_into for op in res.ops}["relu"] == "a"
    # x read by a; t (the ReLU's output: a's own output never leaves its kernel) written
    # once and read by b and c; u and v written.
    expected = 3 * WEIGHT + ACT + 3 * ACT + 2 * ACT
    assert gaps.whole_tensor_floor(graph, res) == expected


def test_tensors_that_fit_l2_leave_the_weights_alone(gaps) -> None:
    graph = _graph()
    res = simulate(graph, "ascend310p")
    assert gaps.whole_tensor_floor(graph, res) == 3 * WEIGHT


def test_a_kernel_reads_a_tensor_once_and_a_shared_weight_is_read_once(gaps) -> None:
    shape = [1, C, H, H]
    w = numpy_helper.from_array(np.ones((C, C, 3, 3), np.float32), "w")
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("Mul", ["x", "x"], ["sq"], name="square"),
        helper.make_node("Conv", ["sq", "w"], ["u"], name="b", **conv),
        helper.make_node("Conv", ["sq", "w"], ["v"], name="c", **conv),
    ]
    graph = float_graph(nodes, [("x", shape)], [("u", shape), ("v", shape)], [w])
    res = simulate(graph, load_npu("ascend310p", {"l2_bytes": ACT - 1}))
    # x once (not once per operand), sq written and read by b and c, u and v, w once.
    assert gaps.whole_tensor_floor(graph, res) == ACT + 3 * ACT + 2 * ACT + WEIGHT


def test_a_gather_needs_the_rows_it_takes_not_the_table(gaps) -> None:
    table = numpy_helper.from_array(np.ones((1000, 64), np.float32), "table")
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, 8])
    out = helper.make_tensor_value_info("rows", TensorProto.FLOAT, [1, 8, 64])
    g = helper.make_graph(
        [helper.make_node("Gather", ["table", "ids"], ["rows"], name="embed")],
        "embed", [ids], [out], [table],
    )  # fmt: skip
    graph = load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    res = simulate(graph, load_npu("ascend310p", {"l2_bytes": 16}))
    rows = 8 * 64 * 2
    # The rows read from the table, the ids, the rows written: not the 128 kB table.
    assert gaps.whole_tensor_floor(graph, res) == rows + 8 * 8 + rows
