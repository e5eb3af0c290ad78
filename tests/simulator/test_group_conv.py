"""Grouped convolutions as CANN lays their weights out in FRACTAL_Z: ``e_mult`` groups share one
block-diagonal product, ``e_mult = min(lcm(lcm(cin, K0)/cin, lcm(cout, N0)/cout), groups)``
(mindspore ``ms_device_shape_transfer.cc``; GE's format transfer computes the same), and the
Cube runs ``ceil(groups / e_mult)`` products of K = cin_opt x taps, N = cout_opt.
"""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.lowering.matmul import _group_extend


@pytest.mark.parametrize(
    ("cin_g", "cout_g", "groups", "expected"),
    [
        (1, 1, 58, (4, 16, 16)),  # depthwise, 58 channels: 16 per fractal, 4 products
        (1, 2, 32, (2, 16, 32)),  # depthwise with multiplier 2: e = 16
        (4, 4, 32, (8, 16, 16)),  # ResNeXt 32x4d's first stage: 4 groups per fractal
        (8, 8, 32, (16, 16, 16)),  # 2 per fractal
        (16, 16, 32, (32, 16, 16)),  # already whole fractals: one group per product
        (80, 20, 3, (1, 240, 64)),  # ShuffleNet v1 g=3: all three in one product (e capped)
    ],
)
def test_group_extend_closed_form(cin_g, cout_g, groups, expected) -> None:
    assert _group_extend(cin_g, cout_g, groups, 16, 16) == expected


def test_resnext_group_conv_cube_work() -> None:
    cin = cout = 128
    groups, hw = 32, 28
    w = numpy_helper.from_array(np.zeros((cout, cin // groups, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="gconv", group=groups, pads=[1] * 4)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, hw, hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, cout, hw, hw])],
        [w],
    )
    g = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    op = next(o for o in simulate(g, "ascend310p").ops if o.name == "gconv")
    # 8 products of M = 784 (padded to whole 16-row fractals), K = 16 x 9, N = 16.
    assert op.macs == 8 * 784 * (16 * 9) * 16
