"""The two mechanisms the fidelity work added, each on its own, against closed forms.

- Task launch: every op that is a kernel waits ``task_launch_s`` first; a fused epilogue and
  an in-place reshape launch nothing. So a run's cycles grow by exactly kernels x launch.
- Format boundaries: an op that needs the framework's element order (Reshape, Transpose...)
  between two convolutions costs a TransData out of NC1HWC0 and one back in; an elementwise
  op between them costs none.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate


def _conv_pair(middle: list) -> object:
    w = numpy_helper.from_array(np.zeros((16, 16, 3, 3), np.float32), "w")
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        *middle,
        helper.make_node("Conv", ["b", "w"], ["y"], name="conv2", pads=[1, 1, 1, 1]),
    ]
    graph = helper.make_graph(
        nodes,
        "pair",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 32, 32])],
        [w, numpy_helper.from_array(np.array([1, 16, 32, 32], np.int64), "shape")],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


RELU = [helper.make_node("Relu", ["a"], ["b"], name="relu")]
RESHAPE = [helper.make_node("Reshape", ["a", "shape"], ["b"], name="reshape")]
TRANSPOSE = [helper.make_node("Transpose", ["a"], ["b"], name="swap", perm=[0, 1, 3, 2])]


@pytest.mark.parametrize("launch_us", [1.0, 7.5])
def test_launch_cost_adds_kernels_times_launch_cycles(launch_us: float) -> None:
    g = _conv_pair(TRANSPOSE)
    base = simulate(g, load_npu("ascend310p", {"task_launch_s": 0.0}))
    spec = load_npu("ascend310p", {"task_launch_s": launch_us * 1e-6})
    res = simulate(g, spec)
    per_kernel = round(launch_us * 1e-6 * spec.clock_hz)
    kernels = [o for o in res.ops if o.bound not in ("fused", "zero")]
    # input TransData, conv1, TransData out of 5HD, Transpose, TransData back, conv2
    assert len(kernels) == 6
    assert res.cycles == base.cycles + 6 * per_kernel
    assert res.launch_cycles == 6 * per_kernel
    assert all(o.launch_cycles == per_kernel for o in kernels)


def test_fused_epilogues_and_in_place_reshapes_launch_nothing() -> None:
    spec = load_npu("ascend310p", {"task_launch_s": 5e-6})
    res = simulate(_conv_pair(RELU), spec)
    by_name = {o.name: o for o in res.ops}
    assert by_name["relu"].bound == "fused" and by_name["relu"].launch_cycles == 0
    assert res.launch_cycles == 3 * round(5e-6 * spec.clock_hz)  # TransData in, two convs


@pytest.mark.parametrize(
    ("middle", "boundaries"),
    [(RELU, 0), (RESHAPE, 2), (TRANSPOSE, 2)],
    ids=["relu", "reshape", "transpose"],
)
def test_a_format_boundary_costs_a_transdata_each_way(middle: list, boundaries: int) -> None:
    res = simulate(_conv_pair(middle), load_npu("ascend310p", {"task_launch_s": 0.0}))
    converts = [o for o in res.ops if o.op_type == "TransData"]
    assert len(converts) == 1 + boundaries  # the input one, then one per boundary crossing
    names = [o.name for o in converts[1:]]
    if boundaries:
        assert names == ["TransData:a:ND", "TransData:b:NC1HWC0"]
        # Each moves the whole activation: 16 channels x 32 x 32 fp16, read and written.
        assert all(o.gm_bytes >= 2 * 16 * 32 * 32 * 2 for o in converts[1:])
