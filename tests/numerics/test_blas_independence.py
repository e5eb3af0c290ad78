"""Cube results do not depend on which BLAS kernel the machine runs.

A hand-made model as squeezenet ends: a 1x1 Conv with 1000 equal output channels whose logits
reach 1e10, global average pooling, and an opset-9 Softmax (input coerced to 2-D, so it runs
over the 1000 classes). The exact answer is 0.001 for every class, and onnxruntime gives it. An fp32
ulp at 1e10 is 1024, so a Softmax turns a one-ulp difference between two logits into 0 against
0.001. OpenBLAS adds a long dot product in an order that depends on the column's place in its
register tile and on the kernel it picks for the processor (``OPENBLAS_CORETYPE`` chooses it),
so the Cube's numerics must not inherit that order. Each kernel the CPU can run is tried in a
child process of its own, since OpenBLAS reads the variable once at load.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

ROOT = Path(__file__).resolve().parents[2]


def squeezenet_tail(channels: int = 1000, cin: int = 512, hw: int = 13) -> onnx.ModelProto:
    w = np.full((channels, cin, 1, 1), 0.5, np.float32)
    b = np.full((channels,), 3.0, np.float32)
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv10", kernel_shape=[1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["p"], name="pool"),
        helper.make_node("Softmax", ["p"], ["y"], name="softmax"),
    ]
    graph = helper.make_graph(
        nodes,
        "squeezenet_tail",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, channels, 1, 1])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    return model


def large_input(cin: int = 512, hw: int = 13) -> np.ndarray:
    # Values up to 1e8 (seeded), so the logits (means of sums of 512 of them, halved) reach
    # about 1e10. A smooth ramp hides the bug: its per-pixel differences average out.
    return np.random.default_rng(0).uniform(0, 1e8, (1, cin, hw, hw)).astype(np.float32)


_CHILD = """
import numpy as np
from hetnpu.backends.base import CompileOptions
from hetnpu.backends.sim import SimNpuBackend
from tests.numerics.test_blas_independence import large_input, squeezenet_tail
y = SimNpuBackend(strict=True).compile(squeezenet_tail(), CompileOptions(precision="fp32"))
y = y.run({"x": large_input()})["y"].ravel()
print(len(np.unique(y)), float(y.min()), float(y.max()))
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.split(":", 1)[-1].split())


def _kernels() -> list[str]:
    """OpenBLAS kernels this CPU can run (a kernel past the CPU's instructions would crash)."""
    flags = _cpu_flags()
    out = ["Prescott"]  # SSE3: every x86-64 CPU this project runs on
    if {"avx2", "fma"} <= flags:
        out += ["Haswell", "Zen"]
    if {"avx512f", "avx512bw", "avx512vl"} <= flags:
        out += ["SkylakeX"]
    return out


def test_onnxruntime_gives_the_exact_answer() -> None:
    from tests.conftest import ort_run

    y = ort_run(squeezenet_tail(), {"x": large_input()})["y"]
    logit = ort_run(_with_output(squeezenet_tail(), "p", [1, 1000, 1, 1]), {"x": large_input()})[
        "p"
    ]
    assert float(logit.max()) > 1e9  # an fp32 ulp here is 128 or more
    np.testing.assert_array_equal(y, np.float32(0.001))


def _with_output(model: onnx.ModelProto, name: str, shape: list[int]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    out.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
    return out


@pytest.mark.skipif(
    sys.platform != "linux" or os.uname().machine != "x86_64",
    reason="OpenBLAS kernel names are x86-64's",
)
@pytest.mark.parametrize("kernel", _kernels())
def test_sim_npu_softmax_of_equal_logits_under_every_blas_kernel(kernel: str) -> None:
    env = {**os.environ, "OPENBLAS_CORETYPE": kernel, "PYTHONPATH": str(ROOT)}
    env.pop("OPENBLAS_L2_SIZE", None)
    done = subprocess.run(
        [sys.executable, "-c", _CHILD],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    distinct, lo, hi = done.stdout.split()
    assert (int(distinct), float(lo), float(hi)) == (
        1,
        float(np.float32(0.001)),
        float(np.float32(0.001)),
    )
