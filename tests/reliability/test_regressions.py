"""One test per bug the fuzz campaign found and that was fixed: each builds the smallest model
that reproduces it and asserts the clean HetnpuError (or the success) that replaced the crash.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import hetnpu
from hetnpu.errors import ModelError, ScheduleError
from tests.support.mutations import HUGE


def _model(nodes, inputs, outputs, inits=(), opset=17) -> onnx.ModelProto:
    g = helper.make_graph(nodes, "regression", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _mlp(batch: int) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 64])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((64, 32), np.float32), "w")
    nodes = [
        helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Softmax", ["r"], ["y"], name="softmax"),
    ]
    return _model(nodes, [x], [y], [w])


def _convnet(batch: int = 1, size: int = 8) -> onnx.ModelProto:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 4, size, size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    w = numpy_helper.from_array(np.ones((8, 4, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["s"], name="sigmoid"),
        helper.make_node("GlobalAveragePool", ["s"], ["y"], name="gap"),
    ]
    return _model(nodes, [x], [y], [w])


def test_loop_without_body_is_a_model_error_naming_the_node() -> None:
    # onnx's shape inference raised a bare ValueError("vector::reserve") on it.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = _model([helper.make_node("Loop", ["x"], ["y"], name="broken_loop")], [x], [y])
    with pytest.raises(ModelError, match="broken_loop"):
        hetnpu.load(model)


def test_constant_with_a_wrongly_typed_value_is_a_model_error_naming_the_node() -> None:
    # onnx's shape inference raised a bare ValueError("Invalid tensor data type 0.").
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    bad = helper.make_node("Constant", [], ["c"], name="bad_const")
    bad.attribute.append(helper.make_attribute("value", [1, 2]))
    bad.attribute[0].name = "value"
    model = _model([bad, helper.make_node("Relu", ["c"], ["y"], name="relu")], [], [y])
    with pytest.raises(ModelError, match="bad_const"):
        hetnpu.load(model)


def test_required_input_left_empty_is_refused_before_onnxruntime_segfaults() -> None:
    # The checker accepts Sum(x, ""); onnxruntime then died with SIGSEGV in session.run.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = _model([helper.make_node("Sum", ["x", ""], ["y"], name="sum")], [x], [y])
    with pytest.raises(ModelError, match=r"node 'sum' \(Sum\) leaves input 1 \('data_0'\) empty"):
        hetnpu.load(model)
    with pytest.raises(ModelError, match="'sum'"):
        hetnpu.InferenceSession(model, ["cpu"])


def test_omitted_optional_inputs_are_still_accepted() -> None:
    # Clip's min and max are optional: leaving min empty is valid ONNX and must load and run.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])
    hi = numpy_helper.from_array(np.array(1.0, np.float32), "hi")
    model = _model([helper.make_node("Clip", ["x", "", "hi"], ["y"], name="clip")], [x], [y], [hi])
    hetnpu.load(model)
    out = hetnpu.InferenceSession(model, ["cpu"]).run(None, {"x": np.array([-5, 0.5, 5], "f4")})
    np.testing.assert_array_equal(out[0], np.array([-5, 0.5, 1], "f4"))


@pytest.mark.parametrize("build", [_mlp, lambda b: _convnet(batch=b)])
def test_zero_batch_simulates_without_dividing_by_zero(build) -> None:
    # The tiler divided by the tile's zero M (MatMul) and lower_conv by the zero pixel count.
    res = hetnpu.simulate(hetnpu.load(build(0)), "ascend910")
    assert res.cycles >= 0
    assert all(o.macs == 0 for o in res.ops)


def test_zero_spatial_size_conv_is_not_a_zero_division() -> None:
    res = hetnpu.simulate(hetnpu.load(_convnet(size=0)), "ascend910")
    assert "conv" in {u.name for u in res.unsupported} | {o.name for o in res.ops}


@pytest.mark.parametrize("build", [_mlp, lambda b: _convnet(batch=b)])
def test_huge_dim_is_refused_by_the_lowering_before_building_programs(build) -> None:
    # A 2^31 batch used to build one tile tuple per output block (billions) and thrash.
    import tracemalloc

    g = hetnpu.load(build(HUGE))
    tracemalloc.start()
    try:
        with pytest.raises(ScheduleError, match=r"op '[^']+'.*instructions, over the limit"):
            hetnpu.simulate(g, "ascend910")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 << 20, f"{peak / 2**20:.0f} MiB allocated refusing a huge dim"


@pytest.mark.parametrize("data_type", [99, TensorProto.UNDEFINED])
def test_external_initializer_of_unknown_type_is_a_model_error(tmp_path, data_type) -> None:
    # The size check of external data looked the type up and raised a bare KeyError.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 4])
    w = numpy_helper.from_array(np.ones((4, 4), np.float32), "w")
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [x], [y], [w])
    path = tmp_path / "m.onnx"
    onnx.save(model, str(path), save_as_external_data=True, location="w.bin", size_threshold=0)
    stored = onnx.load(str(path), load_external_data=False)
    stored.graph.initializer[0].data_type = data_type
    onnx.save(stored, str(path))
    with pytest.raises(ModelError, match=f"initializer 'w' has data_type {data_type}"):
        hetnpu.load(path)


def test_pooling_window_larger_than_its_input_is_refused_at_load() -> None:
    # A negative input dim made the session bind H=1 at run time; MaxPool's 3x3 window then
    # gave an empty output, and onnxruntime died with SIGFPE further down (inception_v1).
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "h", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    nodes = [
        helper.make_node("MaxPool", ["x"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["p"], ["y"], name="relu"),
    ]
    model = _model(nodes, [x], [y])
    assert hetnpu.load(model, input_shapes={"x": [1, 4, 5, 8]}).tensors["p"].shape == (1, 4, 2, 3)
    match = r"node 'pool' \(MaxPool\): its window does not fit input 'x' of shape \[1, 4, 1, 8\]"
    with pytest.raises(ModelError, match=match):
        hetnpu.load(model, input_shapes={"x": [1, 4, 1, 8]})
    sess = hetnpu.InferenceSession(model, ["cpu"])
    with pytest.raises(ModelError, match=match):
        sess.run(None, {"x": np.zeros((1, 4, 1, 8), np.float32)})


def test_zero_channel_tensors_round_trip_through_nc1hwc0() -> None:
    # sim-npu converted a C=0 activation back from NC1HWC0 and got an InputError naming no
    # tensor ("channels must be a positive integer, got 0"): an empty tensor is no error.
    from hetnpu.devices import layouts

    x = np.zeros((2, 0, 3, 3), np.float32)
    five_hd = layouts.nchw_to_nc1hwc0(x)
    assert five_hd.shape == (2, 0, 3, 3, 16)
    assert layouts.nc1hwc0_to_nchw(five_hd, 0).shape == (2, 0, 3, 3)
    nhwc = np.zeros((2, 3, 3, 0), np.float16)
    assert layouts.nc1hwc0_to_nhwc(layouts.nhwc_to_nc1hwc0(nhwc), 0).shape == (2, 3, 3, 0)
    with pytest.raises(hetnpu.errors.InputError, match="non-negative integer, got -1"):
        layouts.nc1hwc0_to_nchw(five_hd, -1)


def test_mobilenet_with_zero_input_channels_fails_cleanly_on_sim_npu() -> None:
    from tests.support.mutations import MutationSpec
    from tests.support.pipeline import FuzzConfig, run_case

    result = run_case(MutationSpec("mobilenetv2", "dim_zero", 1241463164), FuzzConfig())
    assert result.what == "input 'input' dim 1 := 0"
    assert not result.bugs, result.describe()


def test_invalid_utf8_in_a_name_is_a_model_error() -> None:
    # A flipped bit in a node name: protobuf parses it, then raises UnicodeDecodeError when
    # load renames nodes (mobilenetv2/bitflip/3313024437).
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="relu_node")], [x], [y])
    data = model.SerializeToString().replace(b"relu_node", b"relu\xf2node")
    with pytest.raises(ModelError, match="not valid UTF-8"):
        hetnpu.load(data)


def test_constant_outputs_that_cannot_be_folded_are_a_model_error() -> None:
    # light_zfnet512/drop_input/3402736474: a Conv lost its data input, so everything up to
    # the softmax output became "constant", and onnx's reference Conv raised IndexError.
    from tests.support.mutations import MutationSpec
    from tests.support.pipeline import FuzzConfig, run_case

    result = run_case(MutationSpec("light_zfnet512", "drop_input", 3402736474), FuzzConfig())
    assert not result.bugs, result.describe()
    sessions = [s for s in result.stages if s.stage.startswith("session")]
    assert sessions and all(s.error == "ModelError" for s in sessions)
    assert "'gpu_0/softmax_1' cannot be folded" in sessions[0].message


def test_onnxruntime_failing_to_create_a_session_is_a_backend_error(monkeypatch) -> None:
    import onnxruntime as ort
    from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

    from hetnpu.backends import CompileOptions, get_backend

    def out_of_memory(*args, **kwargs):
        raise RuntimeException("std::bad_alloc")

    monkeypatch.setattr(ort, "InferenceSession", out_of_memory)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = _model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [x], [y])
    with pytest.raises(hetnpu.errors.BackendUnavailableError, match="bad_alloc"):
        get_backend("cpu").compile(model, CompileOptions())
