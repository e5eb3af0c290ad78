"""onnxruntime's interface: inputs checked, outputs in ORT's order/dtype/shape, NodeArgs."""

from __future__ import annotations

import numpy as np
import pytest

import hetnpu
from hetnpu.errors import BackendFault, InputError
from tests.runtime._models import SPLIT, assert_same_as_ort, branchy, ort_session, small


@pytest.fixture(scope="module")
def split_session():
    return hetnpu.InferenceSession(
        branchy(), devices=["sim-npu", "cpu"], strategy="affinity", affinity=SPLIT
    )


def _x(batch=3, seed=0):
    return np.random.default_rng(seed).standard_normal((batch, 4, 6, 6)).astype(np.float32)


@pytest.mark.parametrize("names", [None, ["k", "y"], ["pos"], ["y", "idx", "pos", "k"]])
def test_outputs_in_onnxruntimes_order_dtype_and_shape(split_session, names):
    feeds = {"X": _x()}
    ref = ort_session(branchy()).run(names, feeds)
    assert_same_as_ort(split_session.run(names, feeds), ref, 2e-2)


def test_cpu_only_outputs_equal_onnxruntimes_bit_for_bit():
    sess = hetnpu.InferenceSession(branchy(), devices=["cpu"])
    feeds = {"X": _x(batch=2)}
    assert_same_as_ort(sess.run(None, feeds), ort_session(branchy()).run(None, feeds))


def test_node_args_match_onnxruntimes(split_session):
    ref = ort_session(branchy())
    for mine, theirs in (
        (split_session.get_inputs(), ref.get_inputs()),
        (split_session.get_outputs(), ref.get_outputs()),
    ):
        assert [(a.name, a.shape, a.type) for a in mine] == [
            (a.name, a.shape, a.type) for a in theirs
        ]


def test_symbolic_batch_is_planned_per_shape(split_session):
    for batch in (1, 4):
        y = split_session.run(["y"], {"X": _x(batch)})[0]
        assert y.shape == (batch, 4, 6, 6)


def test_device_assignment_and_providers(split_session):
    split_session.run(None, {"X": _x()})
    assert split_session.get_device_assignment() == SPLIT
    assert split_session.get_providers() == ["sim-npu", "cpu"]
    plan = split_session.get_plan()
    assert sorted(s.device for s in plan.stages) == ["cpu", "sim-npu"]


@pytest.mark.parametrize(
    ("feed", "message"),
    [
        (
            {"x": np.zeros((1, 784), np.float32)},
            r"unknown input\(s\) \['x'\].*inputs are \['input'\]",
        ),
        ({}, r"missing input\(s\) \['input'\]"),
        (
            {"input": np.zeros((1, 784), np.float64)},
            r"input 'input': expected dtype float32.*got float64",
        ),
        ({"input": np.zeros((784,), np.float32)}, r"input 'input': expected rank 2 .*got rank 1"),
        (
            {"input": np.zeros((2, 783), np.float32)},
            r"input .input.: expected shape \[2, 784\], got \[2, 783\] "
            r"\(dim 1: expected 784, got 783\)",
        ),
        ({"input": [[0.0] * 784]}, r"input 'input': expected a numpy array, got list"),
    ],
    ids=["wrong-name", "missing", "wrong-dtype", "wrong-rank", "wrong-shape", "not-an-array"],
)
def test_bad_inputs_raise_input_error_naming_the_input(feed, message):
    sess = hetnpu.InferenceSession(small("mlp").SerializeToString(), devices=["cpu"])
    with pytest.raises(InputError, match=message):
        sess.run(None, feed)


def test_symbolic_dims_accept_any_size_but_check_the_fixed_ones(split_session):
    with pytest.raises(
        InputError, match=r"input 'X': expected shape \['batch', 4, 6, 6\], got \[2, 4, 5, 6\]"
    ):
        split_session.run(None, {"X": np.zeros((2, 4, 5, 6), np.float32)})


def test_unknown_output_name(split_session):
    with pytest.raises(InputError, match=r"unknown output\(s\) \['nope'\]"):
        split_session.run(["nope"], {"X": _x()})


def test_model_from_a_path(tmp_path):
    path = tmp_path / "mlp.onnx"
    path.write_bytes(small("mlp").SerializeToString())
    sess = hetnpu.InferenceSession(str(path), devices=["cpu"])
    x = np.ones((2, 784), np.float32)
    assert_same_as_ort(
        sess.run(None, {"input": x}), ort_session(small("mlp")).run(None, {"input": x})
    )


def _model(nodes, inputs, outputs, inits=(), opset=17):
    from onnx import helper

    graph = helper.make_graph(nodes, "m", inputs, outputs, list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_cpu_runs_what_onnxruntime_lacks_on_onnxs_reference_evaluator():
    from onnx import TensorProto, helper
    from onnx.reference import ReferenceEvaluator

    # SwiGLU (opset 28) is newer than any kernel onnxruntime 1.32 has.
    model = _model(
        [
            helper.make_node("SwiGLU", ["a", "b"], ["y"], name="swiglu"),
            helper.make_node("Relu", ["y"], ["z"], name="relu"),
        ],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [2, 4]) for n in "ab"],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, [2, 4])],
        opset=28,
    )
    sess = hetnpu.InferenceSession(model, devices=["cpu"])
    assert [e.engine for e in sess._latest_plan().executables] == ["onnx-reference"]
    feeds = {
        "a": np.linspace(-2, 2, 8, dtype=np.float32).reshape(2, 4),
        "b": np.full((2, 4), 3, np.float32),
    }
    assert_same_as_ort(sess.run(None, feeds), ReferenceEvaluator(model).run(None, feeds))


def test_a_failure_inside_an_engine_is_a_backend_fault_naming_the_stage():
    from onnx import TensorProto, helper, numpy_helper

    model = _model(
        [helper.make_node("Gather", ["T", "i"], ["y"], name="gather")],
        [helper.make_tensor_value_info("i", TensorProto.INT64, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])],
        [numpy_helper.from_array(np.ones((4, 3), np.float32), "T")],
    )
    sess = hetnpu.InferenceSession(model, devices=["cpu"])
    with pytest.raises(BackendFault, match=r"stage 0 on cpu .*nodes 'gather'.*out of data bounds"):
        sess.run(None, {"i": np.array([0, 9], np.int64)})
