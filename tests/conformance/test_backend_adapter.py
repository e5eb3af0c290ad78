"""hetnpu.runtime.onnx_backend: onnx's Backend interface over InferenceSession."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.backend.base import Backend

from hetnpu.errors import InputError
from hetnpu.runtime.onnx_backend import HetnpuBackend, configured
from tests.conftest import ort_run


def _model() -> onnx.ModelProto:
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 10
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
            helper.make_node("Add", ["m", "bias"], ["y"], name="add"),
        ],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)


def test_configured_backends_are_onnx_backends_with_their_device_list() -> None:
    cpu, npu = configured(["cpu"]), configured(["sim-npu", "cpu"], precision="fp32")
    assert issubclass(npu, Backend) and issubclass(npu, HetnpuBackend)
    assert npu.supports_device("CPU") and not npu.supports_device("CUDA")
    rep = npu.prepare(_model())
    assert rep.session.get_providers() == ["sim-npu", "cpu"]
    assert rep.session.get_device_assignment()["matmul"] == "sim-npu"
    assert cpu.prepare(_model()).session.get_providers() == ["cpu"]


@pytest.mark.parametrize("devices", [["cpu"], ["sim-npu", "cpu"]])
def test_run_takes_sequences_dicts_and_numpy_scalars(devices) -> None:
    backend = configured(devices, precision="fp32")
    want = ort_run(_model(), {"x": X, "bias": np.array(0.5, np.float32)})["y"]
    rep = backend.prepare(_model())
    by_position = rep.run([X, np.float32(0.5)])  # onnx's suite feeds 0-d inputs as scalars
    by_name = rep.run({"x": X, "bias": np.array(0.5, np.float32)})
    np.testing.assert_allclose(by_position[0], want, rtol=1e-6)
    np.testing.assert_array_equal(by_position[0], by_name[0])
    np.testing.assert_array_equal(backend.run_model(_model(), [X, np.float32(0.5)])[0], by_name[0])


def test_wrong_input_is_the_sessions_input_error() -> None:
    rep = configured(["cpu"]).prepare(_model())
    with pytest.raises(InputError, match="'x'"):
        rep.run([X.astype(np.float64), np.float32(0.5)])


def test_run_node_builds_a_one_node_model() -> None:
    node = helper.make_node("Gemm", ["a", "b"], ["y"], transB=1, alpha=2.0)
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.arange(12, dtype=np.float32).reshape(4, 3)
    (y,) = configured(["sim-npu", "cpu"], precision="fp32").run_node(node, [a, b])
    np.testing.assert_allclose(y, 2 * a @ b.T, rtol=1e-6)
    (r,) = configured(["cpu"]).run_node(helper.make_node("Relu", ["x"], ["r"]), {"x": X})
    np.testing.assert_array_equal(r, np.maximum(X, 0))
