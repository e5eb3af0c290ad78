"""ATC's precision modes on sim-npu: which ops compute in fp16 and which keep fp32.

One hand-made model, x -> MatMul -> Softmax -> Relu, with a Relu after the MatMul and one on
the input: the Cube op (trustlist), a blocklist op and graylist ops that follow their upstream.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import hetnpu
from hetnpu.backends.base import CompileOptions
from hetnpu.backends.sim import SimNpuBackend
from hetnpu.devices.precision_modes import ATC_MODES, node_precisions, precision_mode
from hetnpu.errors import ConfigError
from tests.conftest import ort_run

OUTPUTS = ("mm", "sm", "after_softmax", "after_matmul", "after_input")


def _model():
    rng = np.random.default_rng(2)
    w = rng.standard_normal((16, 8)).astype(np.float32)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["mm"], name="matmul"),
        helper.make_node("Softmax", ["mm"], ["sm"], name="softmax", axis=-1),
        helper.make_node("Relu", ["sm"], ["after_softmax"], name="relu_softmax"),
        helper.make_node("Relu", ["mm"], ["after_matmul"], name="relu_matmul"),
        helper.make_node("Relu", ["x"], ["after_input"], name="relu_input"),
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 16])
    outs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in OUTPUTS]
    graph = helper.make_graph(nodes, "g", [x], outs, [numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    # 1 + 2^-12 steps: values fp16 cannot hold, so a rounding shows.
    feeds = {"x": (rng.standard_normal((4, 16)) * (1 + 2**-12)).astype(np.float32)}
    return model, feeds


def _run(precision, **backend):
    model, feeds = _model()
    exe = SimNpuBackend(**backend).compile(model, CompileOptions(precision=precision))
    return exe.run(feeds), feeds


def _is_fp16(a):
    return bool(np.array_equal(a, a.astype(np.float16).astype(np.float32)))


def _softmax(a):
    e = np.exp(a.astype(np.float64) - a.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_mix_precision_lists_pick_each_ops_dtype():
    model, _ = _model()
    got = node_precisions(model.graph.node, precision_mode("allow_mix_precision"))
    assert {k: v.output for k, v in got.items()} == {
        "mm": "fp16",  # trustlist (Cube)
        "sm": "fp32",  # blocklist
        "after_softmax": "fp32",  # graylist: follows the Softmax
        "after_matmul": "fp16",  # graylist: follows the MatMul
        "after_input": "fp32",  # graylist with nothing upstream: the model's own dtype
    }


def test_allow_mix_precision_keeps_the_blocklist_in_fp32():
    out, feeds = _run("allow_mix_precision")
    assert _is_fp16(out["mm"]) and _is_fp16(out["after_matmul"])
    assert not _is_fp16(out["sm"])
    np.testing.assert_allclose(out["sm"], _softmax(out["mm"]), rtol=1e-6)
    np.testing.assert_array_equal(out["after_input"], np.maximum(feeds["x"], 0))


def test_force_fp16_rounds_every_op():
    out, _ = _run("force_fp16")
    assert all(_is_fp16(out[n]) for n in OUTPUTS)


def test_modify_mixlist_moves_an_op_to_the_trustlist():
    mixlist = {"white-list": {"to-add": ["Softmax"]}}
    mode = precision_mode("allow_mix_precision").modify_mixlist(mixlist)
    assert "Softmax" in mode.trustlist and "Softmax" not in mode.blocklist
    out, _ = _run("allow_mix_precision", modify_mixlist=mixlist)
    assert _is_fp16(out["sm"]) and _is_fp16(out["after_softmax"])


def test_force_fp32_takes_fp16_operands_and_writes_fp32():
    out, feeds = _run("force_fp32")
    w = numpy_helper.to_array(_model()[0].graph.initializer[0])
    held = [a.astype(np.float16).astype(np.float64) for a in (feeds["x"], w)]
    np.testing.assert_allclose(out["mm"], held[0] @ held[1], rtol=1e-6, atol=1e-6)
    assert not _is_fp16(out["mm"]) and not _is_fp16(out["sm"])


def test_allow_fp32_to_fp16_rounds_the_cube_only():
    out, _ = _run("allow_fp32_to_fp16")
    assert _is_fp16(out["mm"])
    assert not _is_fp16(out["sm"])


def test_must_keep_origin_dtype_is_onnxruntime_to_fp32_accuracy():
    model, feeds = _model()
    out, _ = _run("fp32")
    want = ort_run(model, feeds)
    for name in OUTPUTS:
        np.testing.assert_allclose(out[name], want[name], rtol=1e-5, atol=1e-6)


def test_a_session_picks_the_mode_through_backend_options():
    model, feeds = _model()
    opts = {"sim-npu": {"precision_mode": "allow_mix_precision"}}
    # The session's precision sets the casts at stage boundaries: fp32 keeps what each op wrote.
    sess = hetnpu.InferenceSession(
        model, devices=["sim-npu", "cpu"], precision="fp32", backend_options=opts
    )
    assert set(sess.get_device_assignment().values()) == {"sim-npu"}
    mm, sm = sess.run(["mm", "sm"], feeds)
    assert _is_fp16(mm) and not _is_fp16(sm)


def test_unknown_modes_are_config_errors_naming_the_known_ones():
    with pytest.raises(ConfigError, match=r"'fp8'.*allow_mix_precision"):
        SimNpuBackend(precision_mode="fp8")
    with pytest.raises(ConfigError, match="int8"):
        SimNpuBackend().compile(_model()[0], CompileOptions(precision="int8"))
    with pytest.raises(ConfigError, match="has no mixlist"):
        ATC_MODES["force_fp16"].modify_mixlist({"black-list": {"to-add": ["Exp"]}})
