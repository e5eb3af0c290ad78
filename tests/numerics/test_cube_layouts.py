"""Cube ops on the simulated NPU really go through the NPU's layouts, and get them right.

Shapes are chosen off the 16-element blocks (3, 17, 33 channels; M, K, N of 5, 19, 23) so every
conversion pads; a conversion that misplaced or kept a pad would change the answer. Each layout
function is then replaced by a subtly wrong one to show the answer depends on it.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu import InferenceSession
from hetnpu.backends import npu_numerics
from hetnpu.backends.base import CompileOptions
from hetnpu.backends.sim import SimNpuBackend
from hetnpu.devices import layouts
from tests.conftest import ort_run
from tests.numerics._probe import rel_error


def _model(node: onnx.NodeProto, inputs, weights, out_shape, opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(
        [node],
        node.op_type.lower(),
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
        [helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, out_shape)],
        [numpy_helper.from_array(v, k) for k, v in weights.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _conv(cin, cout, k=3, group=1, stride=1, pad=1, dilation=1, size=9, one_d=False, seed=0):
    rng = np.random.default_rng(seed)
    spatial = (size,) if one_d else (size, size)
    kernel = (k,) if one_d else (k, k)
    w = rng.standard_normal((cout, cin // group, *kernel)).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    nd = len(spatial)
    node = helper.make_node(
        "Conv",
        ["x", "w", "b"],
        ["y"],
        group=group,
        strides=[stride] * nd,
        pads=[pad] * (2 * nd),
        dilations=[dilation] * nd,
    )
    x = rng.standard_normal((2, cin, *spatial)).astype(np.float32)
    return _model(node, [("x", x.shape)], {"w": w, "b": b}, None), {"x": x}


def _matmul(shape_a, shape_b, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape_a).astype(np.float32)
    b = rng.standard_normal(shape_b).astype(np.float32)
    node = helper.make_node("MatMul", ["a", "b"], ["y"])
    return _model(node, [("a", a.shape), ("b", b.shape)], {}, None), {"a": a, "b": b}


def _gemm(m, k, n, trans_a, trans_b, seed=0):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(np.float32)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(np.float32)
    c = rng.standard_normal(n).astype(np.float32)
    node = helper.make_node(
        "Gemm", ["a", "b", "c"], ["y"], alpha=0.5, beta=2.0, transA=trans_a, transB=trans_b
    )
    return _model(node, [("a", a.shape)], {"b": b, "c": c}, None), {"a": a}


CASES = {
    "conv_3_to_17": lambda: _conv(3, 17),
    "conv_33_to_20_stride2_dilated": lambda: _conv(33, 20, stride=2, dilation=2, pad=2),
    "conv_grouped_18_in_3_groups": lambda: _conv(18, 21, group=3),
    "conv_depthwise_17": lambda: _conv(17, 17, group=17),
    "conv_1x1_no_pad": lambda: _conv(19, 35, k=1, pad=0),
    "conv1d_5_to_7": lambda: _conv(5, 7, one_d=True, size=13),
    "matmul_5x19_19x23": lambda: _matmul((5, 19), (19, 23)),
    "matmul_batched_broadcast": lambda: _matmul((3, 2, 17, 9), (9, 33)),
    "matmul_vector": lambda: _matmul((19,), (19, 5)),
    "gemm_transA": lambda: _gemm(7, 18, 21, 1, 0),
    "gemm_transB": lambda: _gemm(7, 18, 21, 0, 1),
}


def _run(model, feeds, precision):
    """Run ``model`` whole on the sim-npu backend, as a stage placed there runs."""
    exe = SimNpuBackend(strict=True).compile(model, CompileOptions(precision=precision))
    return exe.run(feeds)[model.graph.output[0].name]


# What CANN runs on the NPU in fp16 (its capability list leaves 1-D convs to the CPU).
ON_NPU = [c for c in sorted(CASES) if c != "conv1d_5_to_7"]


@pytest.mark.parametrize("case", ON_NPU)
def test_session_runs_cube_ops_on_sim_npu(case) -> None:
    model, feeds = CASES[case]()
    sess = InferenceSession(model, devices=["sim-npu", "cpu"], strict=True)
    assert set(sess.get_device_assignment().values()) == {"sim-npu"}
    got = sess.run(None, feeds)[0]
    want = next(iter(ort_run(model, feeds).values()))
    assert 0 < rel_error(got, want) <= 5e-3


@pytest.mark.parametrize("case", sorted(CASES))
def test_fp32_matches_onnxruntime(case) -> None:
    model, feeds = CASES[case]()
    want = next(iter(ort_run(model, feeds).values()))
    got = _run(model, feeds, "fp32")
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel_error(got, want) <= 1e-5


@pytest.mark.parametrize("case", sorted(CASES))
def test_fp16_within_fp16_tolerance(case) -> None:
    model, feeds = CASES[case]()
    want = next(iter(ort_run(model, feeds).values()))
    got = _run(model, feeds, "fp16")
    err = rel_error(got, want)
    # fp16 operands (2^-11 relative each), fp32 accumulation, one rounding on the way out.
    assert err <= 5e-3
    assert err > 0  # it really computed in fp16


def test_fp16_operands_accumulate_in_fp32() -> None:
    # 4096 ones plus one: an fp16 accumulator would stop at 2048 (its spacing there is 2).
    a = np.ones((1, 4097), np.float32)
    b = np.ones((4097, 1), np.float32)
    acc = npu_numerics.matmul(a, b, "fp16")
    assert acc.dtype == np.float32 and acc[0, 0] == 4097.0
    assert npu_numerics.fixpipe(acc, "fp16")[0, 0] == np.float16(4097.0)  # 4096: fp16's spacing


def _swap_first_two(axis: int):
    def mutate(arr: np.ndarray) -> np.ndarray:
        out = np.array(arr, copy=True)
        idx = [slice(None)] * out.ndim
        a, b = list(idx), list(idx)
        a[axis], b[axis] = 0, 1
        out[tuple(a)], out[tuple(b)] = arr[tuple(b)], arr[tuple(a)]
        return out

    return mutate


# (layout function, which case exercises it, how to break it: swap two entries of an axis)
BROKEN = {
    "nchw_to_nc1hwc0": ("conv_3_to_17", -1),  # C0 order inside a block
    "oihw_to_fractal_z": ("conv_3_to_17", 2),  # N0 order inside a fractal
    "nc1hwc0_to_nchw": ("conv_3_to_17", 1),  # channel order coming back
    "nd_to_fractal_nz": ("matmul_5x19_19x23", -2),  # row order inside a fractal
    "fractal_nz_to_nd": ("matmul_5x19_19x23", -1),  # column order coming back
}


@pytest.mark.parametrize("func", sorted(BROKEN))
def test_a_wrong_layout_conversion_gives_a_wrong_answer(monkeypatch, func) -> None:
    case, axis = BROKEN[func]
    model, feeds = CASES[case]()
    want = next(iter(ort_run(model, feeds).values()))
    assert rel_error(_run(model, feeds, "fp32"), want) <= 1e-5
    real = getattr(layouts, func)
    mutate = _swap_first_two(axis)
    calls = []

    def wrong(*args, **kwargs):
        calls.append(func)
        return mutate(real(*args, **kwargs))

    monkeypatch.setattr(layouts, func, wrong)
    got = _run(model, feeds, "fp32")
    assert calls, f"{func} was not used"
    assert rel_error(got, want) > 1e-2
