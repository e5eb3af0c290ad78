"""Whose fault an error is: a backend failing is hetnpu's (BackendFault), never the user's
(InputError); and what the CLI prints of an error stays one short line."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import hetnpu
from hetnpu import models
from hetnpu.cli import main
from hetnpu.errors import MESSAGE_MAX_CHARS, BackendFault, InputError
from tests.conftest import ort_run


def _model(nodes, inputs, outputs, weights, opset=13):
    graph = helper.make_graph(
        nodes, "g", inputs, outputs, [numpy_helper.from_array(v, k) for k, v in weights.items()]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _matmul_model():
    w = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"], name="matmul"),
        helper.make_node("Relu", ["h"], ["y"], name="relu"),
    ]
    return _model(nodes, [x], [y], {"W": w})


def test_a_sim_npu_failure_is_a_backend_fault_naming_stage_node_and_backend(monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("axis 2 is out of bounds for array of dimension 2")

    sess = hetnpu.InferenceSession(_matmul_model(), devices=["sim-npu", "cpu"])
    monkeypatch.setattr("hetnpu.backends.npu_numerics.matmul", broken)
    with pytest.raises(BackendFault) as info:
        sess.run(None, {"x": np.ones((2, 8), np.float32)})
    err = info.value
    assert not isinstance(err, InputError)
    assert err.node == "matmul"
    assert isinstance(err.__cause__, ValueError)
    msg = str(err)
    assert msg.startswith("stage 0 on sim-npu (sim-npu), node 'matmul', failed: ValueError: axis 2")
    assert "hetnpu bug" in msg and "report" in msg


def test_a_tensorflow_style_one_hot_classifier_runs_on_sim_npu_as_on_cpu():
    # A file-type classifier's front: OneHot (depth as a one-element tensor, axis=-1),
    # Reshape, a dense layer with GELU (the 'truediv'), a 1-D convolution, max pooling.
    rng = np.random.default_rng(0)
    b, length, depth, group, hidden = 2, 16, 9, 4, 8
    w = {
        "depth": np.array([depth], np.int32),
        "values": np.array([0, 1], np.float32),
        "shape": np.array([-1, length // group, group * depth], np.int64),
        "W": rng.standard_normal((group * depth, hidden)).astype(np.float32) * 0.3,
        "b": rng.standard_normal(hidden).astype(np.float32),
        "sqrt2": np.array(np.sqrt(2), np.float32),
        "one": np.array(1, np.float32),
        "half": np.array(0.5, np.float32),
        "CW": rng.standard_normal((hidden, hidden, 3)).astype(np.float32) * 0.3,
    }
    n = helper.make_node
    nodes = [
        n("OneHot", ["x", "depth", "values"], ["oh"], name="one_hot/OneHot", axis=-1),
        n("Reshape", ["oh", "shape"], ["r"], name="one_hot/Reshape"),
        n("MatMul", ["r", "W"], ["mm"], name="dense/MatMul"),
        n("Add", ["mm", "b"], ["d"], name="dense/BiasAdd"),
        n("Div", ["d", "sqrt2"], ["dv"], name="dense/gelu/truediv"),
        n("Erf", ["dv"], ["e"], name="dense/gelu/Erf"),
        n("Add", ["e", "one"], ["e1"], name="dense/gelu/add"),
        n("Mul", ["d", "e1"], ["g0"], name="dense/gelu/mul"),
        n("Mul", ["g0", "half"], ["g"], name="dense/gelu/mul_1"),
        n("Transpose", ["g"], ["t"], name="conv/transpose", perm=[0, 2, 1]),
        n("Conv", ["t", "CW"], ["c"], name="conv/Conv", kernel_shape=[3], pads=[1, 1]),
        n("ReduceMax", ["c"], ["y"], name="pool/Max", axes=[2], keepdims=0),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.INT32, [b, length])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [b, hidden])
    model = _model(nodes, [x], [y], w)
    feeds = {"x": rng.integers(0, depth, (b, length)).astype(np.int32)}
    want = ort_run(model, feeds)["y"]
    sess = hetnpu.InferenceSession(model, devices=["sim-npu", "cpu"], strict=True)
    assert "sim-npu" in set(sess.get_device_assignment().values())
    got = sess.run(None, feeds)[0]
    assert np.abs(got - want).max() <= 2e-2 * np.abs(want).max()


@pytest.fixture(scope="module")
def small_bert(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "bert.onnx"
    model = models.build(
        "bert_base", num_layers=2, hidden=32, heads=2, intermediate=64, vocab_size=100, seq_len=16
    )
    path.write_bytes(model.SerializeToString())
    return path


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("hetnpu: error: ")
    return lines[0]


def test_binding_bert_past_its_positions_lists_the_first_problems_only(small_bert, capsys):
    shapes = ["--input-shape", "input_ids=1,600", "--input-shape", "attention_mask=1,600"]
    rc = main(["simulate", str(small_bert), "--chip", "ascend910", *shapes])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "shape inference failed" in line and "/embeddings/Add" in line
    assert " more" in line and len(line) <= len("hetnpu: error: ") + MESSAGE_MAX_CHARS + 40


def test_any_huge_message_is_capped_by_the_cli(small_bert, capsys):
    name = "x" * 100_000
    rc = main(["simulate", str(small_bert), "--chip", "ascend910", "--input-shape", f"{name}=1"])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "more characters)" in line
    assert len(line) <= len("hetnpu: error: ") + MESSAGE_MAX_CHARS + 40
