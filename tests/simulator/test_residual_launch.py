"""A residual Add folded into its convolution's kernel launches nothing of its own.

CANN's buffer fusion ``TbeConvDoubleInFusionPass`` (convolution -> elementwise with a second
input -> elementwise) adds the residual in the convolution's epilogue: one kernel, one task
(:func:`hetnpu.simulator.prepare.residual_adds`). On coupled chips the simulator reads the
residual in that epilogue (the Add is recorded as fused); on split chips it still times the
Add's read of the residual after the convolution. Neither charges a ``task_launch_s`` for the
Add, and the calibration's kernel count (:func:`hetnpu.fidelity.calibrate.kernels`) agrees.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.fidelity.calibrate import kernels
from hetnpu.graph import load
from hetnpu.simulator import simulate


def _residual_block() -> object:
    w = numpy_helper.from_array(np.zeros((16, 16, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"], name="relu1"),
        helper.make_node("Conv", ["r", "w"], ["b"], name="conv2", pads=[1, 1, 1, 1]),
        helper.make_node("Add", ["b", "r"], ["s"], name="residual"),
        helper.make_node("Relu", ["s"], ["y"], name="relu2"),
    ]
    graph = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])],
        [w],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize("chip", ["ascend310p", "ascend910b"])
def test_residual_add_launches_nothing(chip: str) -> None:
    spec = load_npu(chip, {"task_launch_s": 5e-6})
    res = simulate(_residual_block(), spec)
    per_kernel = round(5e-6 * spec.clock_hz)
    add = next(o for o in res.ops if o.name == "residual")
    assert add.launch_cycles == 0
    if spec.architecture == "coupled":
        assert add.bound == "fused" and add.fused_into == "conv2"
    else:
        assert add.end > add.start  # its read of the residual is timed after the convolution
    # The input TransData and the two convolutions are the only kernels.
    assert res.launch_cycles == 3 * per_kernel
    pred = SimpleNamespace(result=res)
    assert kernels(pred) == 3  # type: ignore[arg-type]
