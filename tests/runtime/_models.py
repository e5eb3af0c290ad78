"""Small models for the runtime tests, and onnxruntime as the reference they are checked by."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from hetnpu import models

SMALL = {
    "mlp": {"batch": 2},
    "resnet50": {"image_size": 32},
    "mobilenetv2": {"image_size": 32},
    "bert_base": {"seq_len": 16, "num_layers": 2, "vocab_size": 1000},
}
"""The project's builders at shapes small enough for the default suite."""


@functools.cache
def small(name: str) -> onnx.ModelProto:
    return models.build(name, **SMALL[name])


def feeds_for(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs for ``model``: floats standard normal, int64 token ids/masks valid."""
    rng = np.random.default_rng(seed)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    out = {}
    for arg in sess.get_inputs():
        shape = [d if isinstance(d, int) else 2 for d in arg.shape]
        if arg.type == "tensor(int64)":
            high = 2 if "mask" in arg.name else 1000
            out[arg.name] = rng.integers(0, high, shape).astype(np.int64)
        else:
            out[arg.name] = rng.standard_normal(shape).astype(np.float32)
    return out


def ort_session(model: onnx.ModelProto) -> ort.InferenceSession:
    """A plain onnxruntime CPU session with default options, the reference."""
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def branchy(dynamic: bool = True) -> onnx.ModelProto:
    """Two independent branches from one input, and four outputs of three dtypes.

    ``conv`` and ``relu`` both read only X, so placed on two devices (:data:`SPLIT`) their
    stages can run at once. Outputs, deliberately not in graph order: ``idx`` (int64, ArgMax
    of the relu branch), ``y`` (float, the conv), ``pos`` (bool, relu > 0) and ``k`` (a
    Constant, known before run time).
    """
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array((rng.standard_normal((4, 4, 3, 3)) / 6).astype(np.float32), "W")
    batch: int | str = "batch" if dynamic else 2
    zero = numpy_helper.from_array(np.float32(0))
    nodes = [
        helper.make_node("Conv", ["X", "W"], ["y"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["X"], ["r"], name="relu"),
        helper.make_node("ArgMax", ["r"], ["idx"], name="argmax", axis=1, keepdims=0),
        helper.make_node("Constant", [], ["zero"], name="zero_c", value=zero),
        helper.make_node("Greater", ["r", "zero"], ["pos"], name="greater"),
        helper.make_node(
            "Constant", [], ["k"], name="k_c", value=numpy_helper.from_array(np.arange(3))
        ),
    ]
    graph = helper.make_graph(
        nodes,
        "branchy",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [batch, 4, 6, 6])],
        [
            helper.make_tensor_value_info("idx", TensorProto.INT64, [batch, 6, 6]),
            helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 4, 6, 6]),
            helper.make_tensor_value_info("pos", TensorProto.BOOL, [batch, 4, 6, 6]),
            helper.make_tensor_value_info("k", TensorProto.INT64, [3]),
        ],
        [w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


SPLIT = {"conv": "sim-npu", "relu": "cpu", "argmax": "cpu", "greater": "cpu"}
"""Affinity putting :func:`branchy`'s branches on two devices."""


def big_output(n: int = 1 << 22) -> onnx.ModelProto:
    """x [1, n] -> x * 2: a 16 MiB output, so that writing it takes measurable time."""
    two = numpy_helper.from_array(np.array([2.0], np.float32), "two")
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["y"], name="mul")],
        "big_output",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, n])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n])],
        [two],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def assert_same_as_ort(
    outs: Sequence[np.ndarray], ref: Sequence[np.ndarray], tol: float | None = None
) -> None:
    """Same count, order, dtype and shape; values equal (``tol=None``) or within
    ``tol`` × the output's largest magnitude."""
    assert len(outs) == len(ref)
    for k, (a, b) in enumerate(zip(outs, ref, strict=True)):
        assert isinstance(a, np.ndarray), k
        assert a.dtype == b.dtype, (k, a.dtype, b.dtype)
        assert a.shape == b.shape, (k, a.shape, b.shape)
        if tol is None or b.dtype.kind not in "fc":
            np.testing.assert_array_equal(a, b, err_msg=f"output {k}")
        else:
            assert np.isfinite(a).all(), f"output {k} has inf/NaN"
            err = float(np.abs(a.astype(np.float64) - b).max())
            assert err <= tol * float(np.abs(b).max()), (k, err, float(np.abs(b).max()))
