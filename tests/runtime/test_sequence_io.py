"""Sequence- and optional-typed graph inputs and outputs through ``InferenceSession``, checked
against onnxruntime's own session on the same model."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import hetnpu
from hetnpu.devices.capability import can_run
from hetnpu.errors import InputError, ModelError
from hetnpu.graph import load

SEQ_F32 = helper.make_tensor_sequence_value_info("seq", TensorProto.FLOAT, None)


def _model(nodes, inputs, outputs, opset=18):
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _insert_model():
    """seq_out = SequenceInsert(seq, Relu(x)); n = SequenceLength(seq_out)."""
    return _model(
        [
            helper.make_node("Relu", ["x"], ["r"], name="relu"),
            helper.make_node("SequenceInsert", ["seq", "r"], ["seq_out"], name="insert"),
            helper.make_node("SequenceLength", ["seq_out"], ["n"], name="length"),
        ],
        [SEQ_F32, helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
        [
            helper.make_tensor_sequence_value_info("seq_out", TensorProto.FLOAT, None),
            helper.make_tensor_value_info("n", TensorProto.INT64, []),
        ],
    )


def _optional_model():
    """has = OptionalHasElement(opt); y = Identity(opt)."""
    opt = helper.make_value_info(
        "opt",
        helper.make_optional_type_proto(helper.make_tensor_type_proto(TensorProto.FLOAT, [3])),
    )
    return _model(
        [
            helper.make_node("OptionalHasElement", ["opt"], ["has"], name="has"),
            helper.make_node("Identity", ["opt"], ["y"], name="same"),
        ],
        [opt],
        [
            helper.make_tensor_value_info("has", TensorProto.BOOL, []),
            helper.make_value_info("y", opt.type),
        ],
    )


def _ort(model, feed):
    return ort.InferenceSession(model.SerializeToString()).run(None, feed)


def _assert_same(got, want):
    assert type(got) is type(want)
    if isinstance(want, list):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _assert_same(g, w)
    elif want is not None:
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("devices", [["cpu"], ["sim-npu", "cpu"]])
def test_a_sequence_goes_in_and_comes_out_as_onnxruntime_gives_it(devices):
    model = _insert_model()
    rng = np.random.default_rng(0)
    feed = {
        "seq": [rng.standard_normal((2, 3)).astype(np.float32) for _ in range(2)],
        "x": rng.standard_normal((2, 3)).astype(np.float32),
    }
    sess = hetnpu.InferenceSession(model, devices=devices, precision="fp32")
    got = sess.run(None, feed)
    want = _ort(model, feed)
    _assert_same(got, want)
    assert len(got[0]) == 3 and int(got[1]) == 3
    # Placement: the tensor op may go to the NPU; the sequence ops never do.
    assignment = sess.get_device_assignment()
    assert assignment["insert"] == assignment["length"] == "cpu"
    if "sim-npu" in devices:
        assert assignment["relu"] == "sim-npu"


def test_an_empty_sequence_is_fed_and_filled():
    model = _insert_model()
    x = np.array([[-1, 2, -3], [4, -5, 6]], np.float32)
    got = hetnpu.InferenceSession(model).run(None, {"seq": [], "x": x})
    _assert_same(got, _ort(model, {"seq": [], "x": x}))
    np.testing.assert_array_equal(got[0][0], np.maximum(x, 0))


@pytest.mark.parametrize("value", [None, np.array([1.0, 2.0, 3.0], np.float32)])
def test_an_optional_input_may_be_left_empty(value):
    model = _optional_model()
    got = hetnpu.InferenceSession(model).run(None, {"opt": value})
    want = _ort(model, {"opt": value})
    assert bool(got[0]) == (value is not None) == bool(want[0])
    _assert_same(got[1], want[1])


def test_inputs_and_outputs_are_described_as_onnxruntime_describes_them():
    for model in (_insert_model(), _optional_model()):
        ours = hetnpu.InferenceSession(model)
        theirs = ort.InferenceSession(model.SerializeToString())
        assert [(a.name, a.type) for a in ours.get_inputs()] == [
            (a.name, a.type) for a in theirs.get_inputs()
        ]
        assert [(a.name, a.type) for a in ours.get_outputs()] == [
            (a.name, a.type) for a in theirs.get_outputs()
        ]


def test_a_mistyped_sequence_is_an_input_error_naming_the_element():
    sess = hetnpu.InferenceSession(_insert_model())
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(InputError, match=r"input 'seq': expected a list of arrays"):
        sess.run(None, {"seq": np.zeros((2, 2, 3), np.float32), "x": x})
    with pytest.raises(InputError, match=r"input 'seq\[1\]': expected dtype float32.*float64"):
        sess.run(None, {"seq": [x, x.astype(np.float64)], "x": x})
    with pytest.raises(
        InputError, match=r"input 'opt': expected a numpy array \(tensor\(float\)\), got str"
    ):
        hetnpu.InferenceSession(_optional_model()).run(None, {"opt": "abc"})


def test_the_npu_refuses_a_node_reading_a_sequence_naming_its_type():
    g = load(_insert_model())
    verdict = can_run("sim-npu", g.node("insert"), g, precision="fp32")
    assert not verdict and "'seq' is a seq(tensor(float)): ATC compiles tensors only" in (
        verdict.reason
    )
    assert can_run("cpu", g.node("insert"), g)
    assert not can_run("gpu", g.node("length"), g)


def test_the_ir_keeps_the_value_types_and_exports_them():
    g = load(_optional_model())
    opt = g.tensors["opt"]
    assert (opt.kind, opt.type_str, opt.shape, opt.dtype) == (
        "optional",
        "optional(tensor(float))",
        None,
        "undefined",
    )
    assert g.tensors["has"].is_tensor and g.tensors["has"].type_str == "tensor(bool)"
    part = hetnpu.graph.extract(load(_insert_model()), ["insert"])
    onnx.checker.check_model(part, full_check=True)
    types = {vi.name: vi.type.WhichOneof("value") for vi in [*part.graph.input]}
    assert types == {"seq": "sequence_type", "r": "tensor_type"}
    with pytest.raises(ModelError, match=r"input 'seq' is a seq\(tensor\(float\)\), not a tensor"):
        load(_insert_model(), input_shapes={"seq": [2, 3]})


def test_an_empty_tensor_runs_as_onnxruntime_runs_it():
    model = _model(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])],
    )
    x = np.zeros((0, 3), np.float32)
    got = hetnpu.InferenceSession(model).run(None, {"x": x})
    _assert_same(got, _ort(model, {"x": x}))
    with pytest.raises(ModelError, match="dims must be positive"):
        load(model, input_shapes={"x": [0, 3]})
