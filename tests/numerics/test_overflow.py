"""fp16 overflow on the simulated NPU is reported like the chip's overflow flag, never silent."""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu import InferenceSession
from hetnpu.backends.base import CompileOptions
from hetnpu.backends.sim import SimNpuBackend
from hetnpu.errors import HetnpuError, NumericOverflowError, NumericOverflowWarning
from tests.conftest import ort_run


def _chain(nodes, weights=None, shape=(2, 8)) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)],
        [numpy_helper.from_array(v, k) for k, v in (weights or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


# x (rows sum to 245 at most) -> MatMul by 100s (2.5e4: fine) -> Mul by 4 (9.8e4: overflow)
MATMUL_THEN_MUL = _chain(
    [
        helper.make_node("MatMul", ["x", "w"], ["m"], name="matmul"),
        helper.make_node("Mul", ["m", "four"], ["big"], name="times_four"),
        helper.make_node("Relu", ["big"], ["y"], name="relu"),
    ],
    {"w": np.full((8, 8), 100.0, np.float32), "four": np.array(4.0, np.float32)},
)
FEED = {"x": np.linspace(0, 40, 16, dtype=np.float32).reshape(2, 8)}


def _run(model, feeds, **options):
    sess = InferenceSession(model, devices=["sim-npu", "cpu"], **options)
    assert set(sess.get_device_assignment().values()) == {"sim-npu"}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = sess.run(None, feeds)[0]
    return out, [w for w in caught if issubclass(w.category, NumericOverflowWarning)]


def test_overflow_warning_names_the_first_op_beyond_fp16() -> None:
    out, flags = _run(MATMUL_THEN_MUL, FEED)
    assert len(flags) == 1
    assert "node 'times_four' (Mul)" in str(flags[0].message)
    worst = FEED["x"].sum(axis=1).max() * 100 * 4  # the fp32 magnitude it would have had
    assert f"{worst:.3g}" in str(flags[0].message)
    assert np.isinf(out).any()


def test_overflow_raises_when_strict() -> None:
    with pytest.raises(NumericOverflowError, match=r"node 'times_four' \(Mul\)") as err:
        _run(MATMUL_THEN_MUL, FEED, strict=True)
    assert isinstance(err.value, HetnpuError)


def test_cube_overflow_is_flagged_at_the_cast_out_of_l0c() -> None:
    _, flags = _run(MATMUL_THEN_MUL, {"x": FEED["x"] * 4})  # MatMul itself reaches 9.8e4
    assert len(flags) == 1 and "node 'matmul' (MatMul)" in str(flags[0].message)


def test_fp32_mode_has_fp32_range_and_matches_onnxruntime() -> None:
    out, flags = _run(MATMUL_THEN_MUL, FEED, precision="fp32", strict=True)
    assert not flags
    want = ort_run(MATMUL_THEN_MUL, FEED)["y"]
    np.testing.assert_allclose(out, want, rtol=1e-6)


def test_vector_op_overflow_and_invalid_results_are_flagged() -> None:
    model = _chain(
        [
            helper.make_node("Add", ["x", "one"], ["a"], name="add"),
            helper.make_node("Exp", ["a"], ["y"], name="exp"),  # exp(12) = 1.6e5 > 65504
        ],
        {"one": np.array(1.0, np.float32)},
    )
    _, flags = _run(model, {"x": np.full((2, 8), 11.0, np.float32)})
    assert len(flags) == 1 and "node 'exp' (Exp)" in str(flags[0].message)
    zero = _chain([helper.make_node("Div", ["x", "x"], ["y"], name="div")])
    out, flags = _run(zero, {"x": np.zeros((2, 8), np.float32)})  # 0/0: NaN from finite inputs
    assert np.isnan(out).all()
    assert len(flags) == 1 and "node 'div' (Div)" in str(flags[0].message)


def test_input_beyond_fp16_is_flagged_at_the_copy_in() -> None:
    model = _chain([helper.make_node("Relu", ["x"], ["y"], name="relu")])
    exe = SimNpuBackend(strict=True).compile(model, CompileOptions(precision="fp16"))
    with pytest.raises(NumericOverflowError, match=r"node 'input x' \(Cast\).*1e\+05"):
        exe.run({"x": np.full((2, 8), 1e5, np.float32)})


def test_input_beyond_fp16_is_flagged_through_the_session() -> None:
    # The session's TransData into the NPU stage is where the value would become inf.
    model = _chain([helper.make_node("Relu", ["x"], ["y"], name="relu")])
    _, flags = _run(model, {"x": np.full((2, 8), 1e5, np.float32)})
    assert len(flags) == 1 and "tensor 'x' entering stage 0 (sim-npu)" in str(flags[0].message)
    with pytest.raises(NumericOverflowError, match="tensor 'x' entering stage 0"):
        _run(model, {"x": np.full((2, 8), 1e5, np.float32)}, strict=True)


def test_inf_fed_in_is_not_an_overflow() -> None:
    # The user's own inf passes through; the flag is for values the device created.
    model = _chain([helper.make_node("Relu", ["x"], ["y"], name="relu")])
    x = np.zeros((2, 8), np.float32)
    x[0, 0] = np.inf
    out, flags = _run(model, {"x": x}, strict=True)
    assert not flags and out[0, 0] == np.inf
