"""An op defined as an ONNX function loads with its attribute defaults left unset."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

import hetnpu
from hetnpu.graph import load


def _mvn_model(opset: int):
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], name="mvn")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 4, 1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 4, 1])
    graph = helper.make_graph([node], "g", [x], [y])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_mvn_without_axes_loads_with_the_default_spelled_out_and_runs_as_onnxruntime():
    # onnx's shape inference alone refuses this model: it expands the function body without
    # the schema's default for `axes`.
    g = load(_mvn_model(13))
    assert list(g.node("mvn").attrs["axes"]) == [0, 2, 3]
    assert g.tensors["y"].shape == (2, 3, 4, 1)
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 1)).astype(np.float32)
    model = _mvn_model(18)
    (got,) = hetnpu.InferenceSession(model).run(None, {"x": x})
    (want,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_an_attribute_given_is_kept():
    model = _mvn_model(13)
    model.graph.node[0].attribute.append(helper.make_attribute("axes", [2, 3]))
    assert list(load(model).node("mvn").attrs["axes"]) == [2, 3]
