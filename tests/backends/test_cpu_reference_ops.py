"""What the CPU device runs on onnx's ReferenceEvaluator rather than onnxruntime: the
``ai.onnx.preview`` domain, ImageDecoder (the ``image`` extra), and the ops whose onnxruntime
kernel departs from the ONNX spec. Each result is checked against a closed form or numpy,
never against the evaluator itself."""

from __future__ import annotations

import io
import sys

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

import hetnpu
from hetnpu.backends import CompileOptions
from hetnpu.backends.cpu import CpuBackend
from hetnpu.devices.capability import can_run
from hetnpu.errors import BackendUnavailableError
from hetnpu.graph import load


def _model(nodes, inputs, outputs, opsets=(("", 23),), initializers=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets])


def _vi(name, dims, elem=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, elem, dims)


def test_flex_attention_of_the_preview_domain_is_scaled_dot_product_attention():
    b, h, lq, lk, e = 1, 2, 3, 5, 4
    model = _model(
        [helper.make_node("FlexAttention", ["q", "k", "v"], ["y"], domain="ai.onnx.preview")],
        [_vi("q", [b, h, lq, e]), _vi("k", [b, h, lk, e]), _vi("v", [b, h, lk, e])],
        [_vi("y", [b, h, lq, e])],
        opsets=(("", 23), ("ai.onnx.preview", 1)),
    )
    rng = np.random.default_rng(1)
    q = rng.standard_normal((b, h, lq, e)).astype(np.float32)
    k = rng.standard_normal((b, h, lk, e)).astype(np.float32)
    v = rng.standard_normal((b, h, lk, e)).astype(np.float32)
    scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(e)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    want = (probs / probs.sum(-1, keepdims=True)) @ v
    sess = hetnpu.InferenceSession(model, devices=["sim-npu", "cpu"], precision="fp32")
    (got,) = sess.run(None, {"q": q, "k": k, "v": v})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    assert set(sess.get_device_assignment().values()) == {"cpu"}  # ATC parses "" only


def _png(pixels: np.ndarray) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return np.frombuffer(buf.getvalue(), np.uint8)


def _decoder_model():
    return _model(
        [helper.make_node("ImageDecoder", ["data"], ["img"], pixel_format="BGR")],
        [_vi("data", ["n"], TensorProto.UINT8)],
        [_vi("img", None, TensorProto.UINT8)],
        opsets=(("", 20),),
    )


def test_image_decoder_gives_back_the_pixels_a_lossless_image_holds():
    pixels = np.random.default_rng(2).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    (got,) = hetnpu.InferenceSession(_decoder_model()).run(None, {"data": _png(pixels)})
    np.testing.assert_array_equal(got, pixels[:, :, ::-1])  # BGR, as asked


def test_image_decoder_without_pillow_names_the_extra(monkeypatch):
    data = _png(np.zeros((2, 2, 3), np.uint8))
    sess = hetnpu.InferenceSession(_decoder_model())
    monkeypatch.setitem(sys.modules, "PIL.Image", None)  # import PIL.Image now fails
    with pytest.raises(BackendUnavailableError, match=r"hetnpu\[image\]"):
        sess.run(None, {"data": data})


def _resize_model(mode):
    scales = numpy_helper.from_array(np.array([1, 1, 0.6, 0.6], np.float32), "scales")
    return _model(
        [
            helper.make_node(
                "Resize",
                ["x", "", "scales"],
                ["y"],
                name="resize",
                mode=mode,
                coordinate_transformation_mode="align_corners",
            )
        ],
        [_vi("x", [1, 1, 2, 4])],
        [_vi("y", [1, 1, 1, 2])],
        initializers=[scales],
    )


def test_resize_align_corners_with_scales_follows_the_spec():
    # Spec: scale = length_resized / length_original, so along the width
    # x_original = 1 * (4 - 1) / (4 * 0.6 - 1) = 2.142857 and y = 1 + 2.142857 (linear).
    x = np.arange(1, 9, dtype=np.float32).reshape(1, 1, 2, 4)
    model = _resize_model("linear")
    (got,) = hetnpu.InferenceSession(model).run(None, {"x": x})
    np.testing.assert_allclose(got.ravel(), [1.0, 1.0 + 3 / 1.4], rtol=1e-6)
    (theirs,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": x})
    assert not np.allclose(theirs, got)  # the departure this routes around is still there
    g = load(model)
    assert "onnx ReferenceEvaluator" in can_run("cpu", g.node("resize"), g).reason
    exe = CpuBackend().compile(model, CompileOptions())
    assert exe.engine == "onnx-reference"


def test_nearest_resize_stays_on_onnxruntime():
    exe = CpuBackend().compile(_resize_model("nearest"), CompileOptions())
    assert exe.engine == "onnxruntime"


def test_dft_is_accurate_to_float32_where_onnxruntime_is_not():
    n = 100  # not a power of two
    signal = np.random.default_rng(3).standard_normal((1, n, 1)).astype(np.float32)
    axis = numpy_helper.from_array(np.array(1, np.int64), "axis")
    model = _model(
        [helper.make_node("DFT", ["x", "", "axis"], ["y"], name="dft")],
        [_vi("x", [1, n, 1])],
        [_vi("y", [1, n, 2])],
        initializers=[axis],
    )
    exact = np.fft.fft(signal[0, :, 0].astype(np.float64))
    exact = np.stack([exact.real, exact.imag], axis=-1)

    def error(y):
        return np.abs(y[0] - exact).max() / np.abs(exact).max()

    (got,) = hetnpu.InferenceSession(model).run(None, {"x": signal})
    (theirs,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": signal})
    assert error(got) < 2 * np.finfo(np.float32).eps
    assert error(theirs) > 1e-6  # what running it on the evaluator buys
