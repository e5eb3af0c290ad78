"""The lowering and the graph's work counts agree on every op the simulator times: each op's
program shape serves the kind of work :func:`hetnpu.graph.cost.node_cost` says it is."""

from __future__ import annotations

from collections.abc import Callable

import onnx
import pytest
from onnx import TensorProto, helper

from hetnpu.graph import Graph, Node, load
from hetnpu.graph.cost import node_cost
from hetnpu.simulator.lowering import LOWERINGS, attention, matmul, movement, vector

_SERVES: dict[Callable[..., object] | None, frozenset[str]] = {
    matmul.lower_conv: frozenset({"conv"}),
    matmul.lower_matmul: frozenset({"matmul"}),
    matmul.lower_gemm: frozenset({"matmul"}),
    vector.lower_elementwise: frozenset({"elementwise"}),
    vector.lower_norm: frozenset({"norm", "softmax"}),
    vector.lower_reduce: frozenset({"reduction"}),
    vector.lower_pool: frozenset({"pool"}),
    movement.lower_zero: frozenset({"zero"}),
    movement.lower_copy: frozenset({"data_movement"}),
    movement.lower_gather: frozenset({"data_movement"}),
    movement.lower_permute: frozenset({"data_movement"}),
    getattr(movement, "lower_fill", None): frozenset({"data_movement"}),
    attention.lower_attention: frozenset({"matmul"}),
    attention.lower_rms_norm: frozenset({"norm"}),
    attention.lower_rotary: frozenset({"elementwise"}),
}
"""The kinds of work each lowering function is the program shape of."""


def _any_graph() -> Graph:
    vi = helper.make_tensor_value_info
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"], name="relu")],
        "g",
        [vi("x", TensorProto.FLOAT, [2, 3])],
        [vi("y", TensorProto.FLOAT, [2, 3])],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _bare(op_type: str) -> Node:
    inputs = tuple(f"in{i}" for i in range(9))
    return Node("n", op_type, "", inputs, ("out",), {}, (), 0, False, onnx.NodeProto())


@pytest.mark.parametrize("op_type", sorted(set(LOWERINGS) - {"TransData"}))
def test_the_lowering_serves_the_kind_of_work_node_cost_counts(op_type: str) -> None:
    # Before one table: ConstantOfShape and EyeLike lowered as zero work but cost their output
    # bytes; global pools were pools to node_cost and reductions to the lowering; node_cost did
    # not know LpNormalization.
    kind = node_cost(_any_graph(), _bare(op_type)).kind
    assert kind in _SERVES[LOWERINGS[op_type]], f"{op_type}: {kind}"
