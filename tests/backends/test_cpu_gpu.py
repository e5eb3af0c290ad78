"""The CPU backend (onnxruntime, else onnx's reference evaluator) and the GPU backend's refusal."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from hetnpu.backends import CompileOptions, get_backend
from hetnpu.errors import BackendUnavailableError, ConfigError


def _single(op, inputs, opset, shape=(2, 4), **attrs):
    node = helper.make_node(op, list(inputs), ["y"], **attrs)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(i, TensorProto.FLOAT, list(shape)) for i in inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_cpu_runs_on_onnxruntime():
    exe = get_backend("cpu").compile(_single("Relu", ["x"], 17), CompileOptions())
    assert exe.engine == "onnxruntime"
    x = np.array([[-1, 2, -3, 4]] * 2, np.float32)
    np.testing.assert_array_equal(exe.run({"x": x})["y"], np.maximum(x, 0))


def test_cpu_falls_back_to_reference_evaluator_for_ops_onnxruntime_lacks():
    # SwiGLU (opset 28) is newer than any kernel onnxruntime 1.32 has.
    exe = get_backend("cpu").compile(_single("SwiGLU", ["a", "b"], 28), CompileOptions())
    assert exe.engine == "onnx-reference"
    a = np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4)
    b = np.full((2, 4), 3, np.float32)
    swish = a / (1 + np.exp(-a))
    np.testing.assert_allclose(exe.run({"a": a, "b": b})["y"], swish * b, rtol=1e-6)


def test_cpu_runs_dtypes_onnxruntimes_python_api_cannot_pass_on_the_reference_evaluator():
    import ml_dtypes

    node = helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.BFLOAT16, [4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    exe = get_backend("cpu").compile(model, CompileOptions())
    assert exe.engine == "onnx-reference"
    x = np.array([1.0, 1.00390625, -2.5, 3e38], np.float32)
    y = exe.run({"x": x})["y"]
    assert y.dtype == ml_dtypes.bfloat16
    np.testing.assert_array_equal(y, x.astype(ml_dtypes.bfloat16))


def test_cpu_retries_a_run_onnxruntime_fails_on_the_reference_evaluator():
    from hetnpu.backends.cpu import _RetryOnReference

    exe = get_backend("cpu").compile(_single("Relu", ["x"], 17), CompileOptions())
    assert isinstance(exe, _RetryOnReference) and exe.engine == "onnxruntime"

    def broken(feeds):
        raise RuntimeError("onnxruntime: kernel failed")

    exe._ort.run = broken  # what a kernel that rejects these inputs at run time looks like
    x = np.array([[-1, 2, -3, 4]] * 2, np.float32)
    np.testing.assert_array_equal(exe.run({"x": x})["y"], np.maximum(x, 0))
    assert exe.engine == "onnx-reference"


def test_gpu_without_cuda_says_what_to_install():
    backend = get_backend("gpu")
    status = backend.available()
    if status:  # a lent machine with CUDA: the backend must then really run
        exe = backend.compile(_single("Relu", ["x"], 17), CompileOptions())
        x = np.ones((2, 4), np.float32)
        np.testing.assert_array_equal(exe.run({"x": x})["y"], x)
        return
    assert "onnxruntime-gpu" in status.reason
    with pytest.raises(BackendUnavailableError, match=r"gpu: .*hetnpu\[gpu\]"):
        backend.compile(_single("Relu", ["x"], 17), CompileOptions())


def test_unknown_device():
    with pytest.raises(
        ConfigError, match=r"unknown device\(s\) 'tpu'; known devices: npu, sim-npu, gpu, cpu"
    ):
        get_backend("tpu")
