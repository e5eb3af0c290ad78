"""Data-movement lowerings: the TransData into NC1HWC0 pads channels as the layouts module does,
and fills (ConstantOfShape, EyeLike) write their output instead of costing nothing."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from hetnpu.devices.layouts import padded_nbytes
from hetnpu.devices.presets import npu_spec
from hetnpu.devices.rates import device_dtype
from hetnpu.graph import Graph, load
from hetnpu.simulator import simulate
from hetnpu.simulator.lowering import LOWERINGS
from hetnpu.simulator.lowering.common import LowerCtx
from hetnpu.simulator.prepare import input_transdata
from hetnpu.simulator.tiler import precision_info


def _model(
    nodes: list[onnx.NodeProto], inputs: list, outputs: list, weights: list | None = None
) -> Graph:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=weights)
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _stored_bytes(op_type: str, node, graph: Graph, precision: str) -> int:
    spec = npu_spec("ascend910")
    ctx = LowerCtx(spec, precision_info(precision), True, False, spec.ai_cores, spec.ai_cores)
    low = LOWERINGS[op_type](node, graph, ctx)
    return sum(i.nbytes for prog in low.programs for i in prog if i.unit == "MTE3")


@pytest.mark.parametrize("precision", ["fp16", "fp32", "int8"])
def test_transdata_pads_channels_to_the_layouts_c0(precision: str) -> None:
    # Three channels pad to one block of C0: 16 for fp16 and fp32 (C0 is the cube size, not a
    # 32-byte row), 32 for int8. Before, the lowering took the Cube's K0 and padded fp32 to 8.
    vi = helper.make_tensor_value_info
    w = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 1, 1], [0.5] * 12)
    g = _model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv")],
        [vi("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [vi("y", TensorProto.FLOAT, [1, 4, 8, 8])],
        [w],
    )
    (td,) = input_transdata(g)
    want = padded_nbytes((1, 3, 8, 8), "NC1HWC0", device_dtype("float32", precision))
    c0 = {"fp16": 16, "fp32": 16, "int8": 32}[precision]
    assert want == 8 * 8 * c0 * {"fp16": 2, "fp32": 4, "int8": 1}[precision]
    assert _stored_bytes("TransData", td, g, precision) == want


def _fill_model(op_type: str) -> Graph:
    """``op_type`` fed by a run-time input, so nothing folds it away, then a Relu."""
    vi = helper.make_tensor_value_info
    if op_type == "ConstantOfShape":
        nodes = [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("ConstantOfShape", ["s"], ["f"], name="fill"),
        ]
    else:
        nodes = [helper.make_node("EyeLike", ["x"], ["f"], name="fill")]
    nodes.append(helper.make_node("Relu", ["f"], ["y"], name="relu"))
    return _model(
        nodes,
        [vi("x", TensorProto.FLOAT, [512, 512])],
        [vi("y", TensorProto.FLOAT, [512, 512])],
    )


@pytest.mark.parametrize("op_type", ["ConstantOfShape", "EyeLike"])
def test_a_fill_writes_its_output(op_type: str) -> None:
    # Before, the lowering took both for reshapes (zero work) while hetnpu.graph.cost charged
    # them their output: 512 x 512 fp16 = 512 KiB stored, none of it read.
    g = _fill_model(op_type)
    assert not g.node("fill").is_constant
    assert _stored_bytes(op_type, g.node("fill"), g, "fp16") == 512 * 512 * 2
    (rec,) = [o for o in simulate(g, "ascend910").ops if o.name == "fill"]
    assert rec.cycles > 0 and rec.bound != "zero"
    assert rec.memory_bound_cycles > 0 and rec.compute_bound_cycles == 0
    assert rec.cycles >= rec.roofline_cycles


@pytest.mark.parametrize("op_type", ["ConstantOfShape", "EyeLike"])
def test_a_fill_passes_the_check(op_type: str) -> None:
    res = simulate(_fill_model(op_type), "ascend910", check=True)
    assert not res.check_violations()
