"""The op-family table, and the work counts that take their kinds from it."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from hetnpu.graph import Graph, Node, load
from hetnpu.graph.cost import KINDS, node_cost
from hetnpu.graph.opfamilies import (
    FAMILY,
    MOVEMENT,
    PARTIAL_READ_OPS,
    ZERO_WORK_OPS,
    family,
    ops_of,
)


def _any_graph() -> Graph:
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [vi("x", TensorProto.FLOAT, [2, 3])],
        [vi("y", TensorProto.FLOAT, [2, 3])],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _bare(op_type: str, domain: str = "") -> Node:
    """A node of ``op_type`` whose tensors the graph does not know (their work counts as 0)."""
    attrs = {"equation": "ij,jk->ik"} if op_type == "Einsum" else {}
    inputs = tuple(f"in{i}" for i in range(9))
    return Node("n", op_type, domain, inputs, ("out",), attrs, (), 0, False, onnx.NodeProto())


def test_every_op_has_one_family_and_every_family_is_a_kind() -> None:
    assert set(FAMILY.values()) == set(KINDS) - {"unknown"}
    assert set(MOVEMENT) == ops_of("data_movement")
    assert ops_of("zero") == ZERO_WORK_OPS and "Reshape" in ZERO_WORK_OPS
    assert {"Slice", "Gather", "Pad"} <= PARTIAL_READ_OPS
    assert not PARTIAL_READ_OPS & {"Transpose", "ConstantOfShape", "EyeLike"}
    with pytest.raises(ValueError, match="unknown op family"):
        ops_of("movement")


def test_ops_outside_onnx_or_the_table_are_unknown() -> None:
    assert family("Conv", "com.microsoft") == "unknown"
    assert family("Conv", "ai.onnx") == "conv"
    assert family("NoSuchOp") == "unknown"


@pytest.mark.parametrize("op_type", sorted(FAMILY))
def test_node_cost_takes_its_kind_from_the_table(op_type: str) -> None:
    assert node_cost(_any_graph(), _bare(op_type)).kind == FAMILY[op_type]


def test_a_foreign_domain_op_is_unknown_work() -> None:
    assert node_cost(_any_graph(), _bare("Conv", "com.microsoft")).kind == "unknown"


def test_lp_normalization_is_norm_work() -> None:
    # The lowering timed LpNormalization as a normalisation while node_cost had no entry for it
    # (kind "unknown", no FLOPs). L2 along the last axis of (4, 8): square, sum, divide per
    # element, a square root per row.
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("LpNormalization", ["x"], ["y"], name="lp", axis=-1, p=2)],
        "g",
        [vi("x", TensorProto.FLOAT, [4, 8])],
        [vi("y", TensorProto.FLOAT, [4, 8])],
    )
    g = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    cost = node_cost(g, g.node("lp"))
    assert (cost.kind, cost.flops, cost.macs) == ("norm", 32 * 3 + 4, 0)
    assert (cost.bytes_read, cost.bytes_written) == (128, 128)


def test_bytes_at_a_devices_sizes_follow_the_same_counting() -> None:
    # An Add reading x twice counts it once, at whatever size the caller holds it in.
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["y"], name="add")],
        "g",
        [vi("x", TensorProto.FLOAT, [4, 8])],
        [vi("y", TensorProto.FLOAT, [4, 8])],
    )
    g = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    at_model = node_cost(g, g.node("add"))
    halved = node_cost(g, g.node("add"), itemsize=lambda t: 2)
    assert (at_model.bytes_read, at_model.bytes_written) == (128, 128)
    assert (halved.bytes_read, halved.bytes_written) == (64, 64)
    assert (halved.flops, halved.kind) == (at_model.flops, at_model.kind)
