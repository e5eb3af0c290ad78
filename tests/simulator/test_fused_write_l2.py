"""A fused kernel's write is what its epilogue's consumers read, from L2.

A Conv with its ReLU writes the ReLU's output, and a convolution with a residual Add
(``TbeConvDoubleInFusionPass``) writes the sum: the intermediate tensors are never written.
The simulator times the write under the Cube op's output name; L2 residency must take the
epilogue's output as that same data (:func:`hetnpu.simulator.prepare.kernel_aliases`), or
every consumer of a fused convolution would miss L2 and read from HBM what was just written.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.prepare import fusions, kernel_aliases, residual_adds


def _block() -> object:
    w = numpy_helper.from_array(np.zeros((16, 16, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"], name="relu1"),
        helper.make_node("Conv", ["r", "w"], ["b"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "r"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["t"], name="relu2"),
        helper.make_node("Conv", ["t", "w"], ["y"], name="conv3", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])],
        [w],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_epilogue_and_residual_outputs_alias_the_cube_ops_write() -> None:
    g = _block()
    fused, _ = fusions(g)
    alias = kernel_aliases(g, fused, residual_adds(g))
    # relu1 rides on conv1; the residual Add and its ReLU on conv2.
    assert alias == {"r": "a", "s": "b", "t": "b"}


def test_consumers_of_a_fused_convolution_read_it_from_l2() -> None:
    res = simulate(_block(), "ascend310p")
    ops = {o.name: o for o in res.ops}
    # Everything fits the 310P's 16 MB L2: after the first reads of x and w (conv1) and
    # the input TransData, nothing comes from HBM.
    assert ops["conv2"].hbm_bytes == 0
    assert ops["residual"].hbm_bytes == 0
    assert ops["conv3"].hbm_bytes == 0


def _views() -> object:
    # MatMul -> Reshape -> Unsqueeze -> Squeeze -> Reshape -> Add: the views relabel the
    # MatMul's output, so the Add reads what the MatMul wrote.
    w = numpy_helper.from_array(np.zeros((64, 64), np.float32), "w")
    shape = numpy_helper.from_array(np.array([8, 8, 64], np.int64), "shape")
    flat = numpy_helper.from_array(np.array([64, 64], np.int64), "flat")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
        helper.make_node("Reshape", ["m", "shape"], ["v1"], name="reshape"),
        helper.make_node("Unsqueeze", ["v1", "axes"], ["v2"], name="unsqueeze"),
        helper.make_node("Squeeze", ["v2", "axes"], ["v3"], name="squeeze"),
        helper.make_node("Reshape", ["v3", "flat"], ["v4"], name="reshape_back"),
        helper.make_node("Add", ["v4", "x"], ["y"], name="add"),
    ]
    graph = helper.make_graph(
        nodes,
        "views",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 64])],
        [w, shape, flat, axes],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_a_view_is_the_tensor_it_relabels() -> None:
    g = _views()
    fused, _ = fusions(g)
    alias = kernel_aliases(g, fused, residual_adds(g))
    assert {t: alias[t] for t in ("v1", "v2", "v3", "v4")} == dict.fromkeys(
        ("v1", "v2", "v3", "v4"), "m"
    )
    res = simulate(g, "ascend910b4")
    ops = {o.name: o for o in res.ops}
    # A view reads, writes and waits for nothing (no launch, no write-back) ...
    for name in ("reshape", "unsqueeze", "squeeze", "reshape_back"):
        assert ops[name].cycles == 0 and ops[name].gm_bytes == 0
    # ... and the Add finds the MatMul's output (and x) in L2.
    assert ops["add"].hbm_bytes == 0


def test_a_view_evicts_nothing_from_a_full_l2() -> None:
    # An L2 that holds two of the 8 KB fp16 tensors: were a view's output a new dirty tensor,
    # it would evict the MatMul's output and wait for its write-back.
    res = simulate(_views(), load_npu("ascend910b4", {"l2_bytes": 20_000}))
    ops = {o.name: o for o in res.ops}
    assert [ops[n].cycles for n in ("reshape", "unsqueeze", "squeeze", "reshape_back")] == [0] * 4
