"""The system simulator reuses an NPU stage's timing only for a stage that times alike."""

from __future__ import annotations

from types import SimpleNamespace

from onnx import TensorProto, helper

from hetnpu.graph import load
from hetnpu.simulator.system import _stage_key


def _two_chains(add_reads: str):
    """x -> Neg -> Abs twice, side by side; the final Add reads c1 and ``add_reads``."""
    nodes = [
        helper.make_node("Neg", ["x"], ["b1"], name="n1"),
        helper.make_node("Abs", ["b1"], ["c1"], name="a1"),
        helper.make_node("Neg", ["x"], ["b2"], name="n2"),
        helper.make_node("Abs", ["b2"], ["c2"], name="a2"),
        helper.make_node("Add", ["c1", add_reads], ["y"], name="add"),
    ]
    shape = [1, 64, 32, 32]
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, shape),
            helper.make_tensor_value_info("c2", TensorProto.FLOAT, shape),
        ],
    )
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _key(graph, nodes, sid):
    plan = SimpleNamespace(graph=graph, transdata=())
    return _stage_key(plan, SimpleNamespace(id=sid, nodes=tuple(nodes)))


def test_identical_stages_share_one_timing():
    g = _two_chains(add_reads="c2")
    assert _key(g, ["n1", "a1"], 0) == _key(g, ["n2", "a2"], 1)


def test_an_intermediate_read_after_the_stage_changes_the_key():
    # b2 is read by the Add too: it must reach GM, and Neg -> Abs cannot fuse in that stage.
    g = _two_chains(add_reads="b2")
    assert _key(g, ["n1", "a1"], 0) != _key(g, ["n2", "a2"], 1)
