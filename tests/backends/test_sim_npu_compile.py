"""sim-npu compiles a stage as ATC does before computing it: folding in fp32, then casting.

Each model is hand-made with onnx.helper and checked against onnxruntime.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.backends.base import CompileOptions
from hetnpu.backends.sim import SimNpuBackend
from hetnpu.devices.atc_compile import fold_for_npu
from hetnpu.errors import NumericOverflowWarning
from tests.conftest import ort_run

FP16_TOL = 2e-2  # max |error| <= FP16_TOL x max |output|, as the builder-model tests hold


def _model(nodes, inputs, outputs, weights, opset=15):
    graph = helper.make_graph(
        nodes,
        "g",
        inputs,
        outputs,
        [numpy_helper.from_array(np.asarray(v), k) for k, v in weights.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _sim(model, feeds, precision="fp16", **backend):
    exe = SimNpuBackend(strict=True, **backend).compile(model, CompileOptions(precision=precision))
    return exe.run(feeds)


def _rel(got, want):
    return float(np.abs(got - want).max() / np.abs(want).max())


def _huge_variance_bn_model():
    """BN (variance 9.8e7) on the input, a Conv, BN (variance 9.8e7) after it, ReLU."""
    rng = np.random.default_rng(0)
    c = 4
    weights = {
        "W": rng.standard_normal((c, 3, 3, 3)).astype(np.float32),
        "Bc": rng.standard_normal(c).astype(np.float32),
        # Channel 0: scale / sqrt(var) = 1e4 / 9.9e3, so the channel is ~1000 after the BN.
        "s": np.array([1e4, 1, 1, 1], np.float32),
        "b": np.zeros(c, np.float32),
        "m": np.array([-1e3, 0.1, -0.2, 50], np.float32),
        "v": np.array([9.8e7, 1.0, 0.5, 2e5], np.float32),
        "s_in": np.array([2, 1, 1], np.float32),
        "b_in": np.zeros(3, np.float32),
        "m_in": np.array([5e3, 0, 0], np.float32),
        "v_in": np.array([9.8e7, 1, 3], np.float32),
    }
    n = helper.make_node
    nodes = [
        n("BatchNormalization", ["x", "s_in", "b_in", "m_in", "v_in"], ["xb"], name="bn_in"),
        n("Conv", ["xb", "W", "Bc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        n("BatchNormalization", ["c", "s", "b", "m", "v"], ["bn"], name="bn"),
        n("Relu", ["bn"], ["y"], name="relu"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, c, 8, 8])
    model = _model(nodes, [x], [y], weights)
    feeds = {"x": (rng.standard_normal((1, 3, 8, 8)) * 10).astype(np.float32)}
    return model, feeds


def test_batchnorm_with_huge_variance_is_folded_in_fp32_and_matches_onnxruntime(monkeypatch):
    model, feeds = _huge_variance_bn_model()
    want = ort_run(model, feeds)["y"]
    got = _sim(model, feeds)["y"]
    assert np.isfinite(got).all() and np.abs(got).max() > 0
    assert _rel(got, want) <= FP16_TOL
    # Without the fold the statistics are cast first: a variance of inf zeroes channel 0,
    # the largest, so the error is of the order of the output itself.
    monkeypatch.setattr("hetnpu.backends.sim.fold_for_npu", lambda m: m)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", NumericOverflowWarning)
        unfolded = SimNpuBackend().compile(model, CompileOptions()).run(feeds)["y"]
    assert not _rel(unfolded, want) <= 0.5


def test_folding_puts_batchnorm_into_the_conv_and_keeps_the_values():
    model, feeds = _huge_variance_bn_model()
    folded = fold_for_npu(model)
    assert [n.op_type for n in folded.graph.node] == ["BatchNormalization", "Conv", "Relu"]
    conv = folded.graph.node[1]
    assert conv.name == "conv" and conv.output[0] == "bn"
    # The BatchNormalization left (on a graph input) carries the folded scale and shift.
    weights = {t.name: numpy_helper.to_array(t) for t in folded.graph.initializer}
    standalone = folded.graph.node[0]
    var = weights[standalone.input[4]]
    np.testing.assert_allclose(var + 1e-5, 1.0, rtol=1e-6)
    np.testing.assert_allclose(
        weights[standalone.input[1]][0], 2 / np.sqrt(9.8e7 + 1e-5), rtol=1e-6
    )
    assert all(np.abs(v).max() < 6e4 for v in weights.values())  # all fp16-representable
    # In fp32 the folded graph computes what the original does.
    want = ort_run(model, feeds)["y"]
    np.testing.assert_allclose(ort_run(folded, feeds)["y"], want, rtol=1e-4, atol=1e-4)
    assert model.graph.node[2].op_type == "BatchNormalization"  # the input is left unchanged


def test_constants_are_folded_in_fp32_before_the_cast():
    # 300 * 300 = 90000 overflows fp16; folded in fp32, then divided by 1000, it is 90.
    weights = {"a": np.float32(300.0), "k": np.float32(1000.0)}
    nodes = [
        helper.make_node("Mul", ["a", "a"], ["sq"], name="square"),
        helper.make_node("Div", ["sq", "k"], ["c"], name="scale"),
        helper.make_node("Add", ["x", "c"], ["y"], name="add"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = _model(nodes, [x], [y], weights)
    folded = fold_for_npu(model)
    assert [n.name for n in folded.graph.node] == ["add"]
    feeds = {"x": np.array([1.0, 2.0], np.float32)}
    np.testing.assert_allclose(_sim(model, feeds)["y"], [91.0, 92.0])


FORMERLY_SKIPPED = {
    # op: (attributes, input shapes, opset)
    "HardSwish": ({}, {"x": [2, 3, 4]}, 14),
    "MeanVarianceNormalization": ({}, {"x": [1, 2, 3, 3]}, 13),
    "GlobalLpPool": ({"p": 2}, {"x": [1, 2, 3, 3]}, 13),
    "MaxRoiPool": ({"pooled_shape": [2, 2]}, {"x": [1, 2, 5, 5], "rois": [2, 5]}, 13),
}


@pytest.mark.parametrize("op", sorted(FORMERLY_SKIPPED))
def test_every_vector_op_is_rounded_to_fp16(op):
    attrs, shapes, opset = FORMERLY_SKIPPED[op]
    inputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in shapes.items()]
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    node = helper.make_node(op, list(shapes), ["y"], name="op", **attrs)
    model = _model([node], inputs, [y], {}, opset)
    rng = np.random.default_rng(5)
    feeds = {n: rng.uniform(-3, 3, s).astype(np.float32) for n, s in shapes.items()}
    if op == "MaxRoiPool":
        feeds["rois"] = np.array([[0, 0, 0, 4, 4], [0, 1, 1, 3, 4]], np.float32)
    got = _sim(model, feeds)["y"]
    # The op's exact result on fp16 inputs, rounded to fp16: what one Vector op writes.
    held = {n: v.astype(np.float16).astype(np.float32) for n, v in feeds.items()}
    want = ort_run(model, held)["y"].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(got, got.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(got, want, rtol=2**-10, atol=1e-6)
    # In fp32 mode nothing is rounded: the result is onnxruntime's to fp32 accuracy.
    exact = ort_run(model, feeds)["y"]
    np.testing.assert_allclose(_sim(model, feeds, "fp32")["y"], exact, rtol=1e-5, atol=1e-6)


def test_one_hot_with_a_one_element_depth_runs_like_onnxruntime():
    # What TensorFlow exporters write: depth as a 1-D tensor of one element, axis=-1, then a
    # Reshape, a ReduceSum and a Div (a file-type classifier's one_hot block).
    weights = {
        "depth": np.array([8], np.int32),
        "values": np.array([0, 1], np.float32),
        "shape": np.array([2, -1], np.int64),
        "axes": np.array([1], np.int64),
    }
    n = helper.make_node
    nodes = [
        n("OneHot", ["x", "depth", "values"], ["oh"], name="one_hot/OneHot", axis=-1),
        n("Reshape", ["oh", "shape"], ["flat"], name="one_hot/Reshape"),
        n("ReduceSum", ["flat", "axes"], ["s"], name="one_hot/Sum", keepdims=1),
        n("Div", ["flat", "s"], ["y"], name="one_hot/truediv"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.INT64, [2, 5])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 40])
    model = _model(nodes, [x], [y], weights, opset=13)
    feeds = {"x": np.random.default_rng(0).integers(0, 8, (2, 5)).astype(np.int64)}
    want = ort_run(model, feeds)["y"]
    np.testing.assert_allclose(_sim(model, feeds)["y"], want, rtol=1e-3)


def test_an_expansion_bigger_than_the_model_is_left_to_run_time() -> None:
    from onnx import TensorProto, helper, numpy_helper

    from hetnpu.devices.atc_compile import fold_for_npu

    shape = numpy_helper.from_array(np.array([2048, 2048], np.int64), "shape")
    small = numpy_helper.from_array(np.array([2, 2], np.int64), "small")
    nodes = [
        helper.make_node("ConstantOfShape", ["shape"], ["big"], name="fill_big"),  # 16 MiB
        helper.make_node("ConstantOfShape", ["small"], ["tiny"], name="fill_tiny"),
        helper.make_node("Add", ["x", "big"], ["y"], name="add"),
        helper.make_node("Add", ["z", "tiny"], ["w"], name="add_tiny"),
    ]
    g = helper.make_graph(
        nodes,
        "g",
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
            for n, s in (("x", [2048, 2048]), ("z", [2, 2]))
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "w")],
        [shape, small],
    )
    folded = fold_for_npu(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))
    names = [n.name for n in folded.graph.node]
    assert "fill_big" in names and "fill_tiny" not in names  # the small one became a weight
    assert "tiny" in {t.name for t in folded.graph.initializer}
