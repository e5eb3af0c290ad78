"""Helpers for the scheduler tests: an independent plan checker and a stage-by-stage runner."""

from __future__ import annotations

import networkx as nx
import numpy as np
from onnx import TensorProto, helper

from hetnpu.devices.capability import can_run
from hetnpu.graph import Graph
from tests.conftest import ort_run


def check_plan(plan) -> None:
    """The plan invariants, checked from the graph up (not through ``plan.validate``)."""
    g: Graph = plan.graph
    where: dict[str, int] = {}
    for s in plan.stages:
        for n in s.nodes:
            assert n not in where, f"{n} in two stages"
            where[n] = s.id
            node = g.nodes[n]
            assert not node.is_constant
            assert can_run(s.device, node, g, precision=plan.precision), (s.device, n)
            assert plan.assignment[n] == s.device
    assert set(where) == {n.name for n in g if not n.is_constant}
    assert set(plan.folded) == {n.name for n in g if n.is_constant}
    stage_dag = nx.DiGraph()
    stage_dag.add_nodes_from(range(len(plan.stages)))
    moved = {(t.tensor, t.dst_stage) for t in plan.transfers}
    for node in g:
        if node.is_constant:
            continue
        for t in node.all_inputs:
            if g.tensors[t].is_constant:
                continue
            prod = g.producer(t)
            src = None if prod is None else where[prod.name]
            if src != where[node.name]:
                assert (t, where[node.name]) in moved, (
                    f"{t} enters stage {where[node.name]} unmoved"
                )
                if src is not None:
                    stage_dag.add_edge(src, where[node.name])
                    assert src < where[node.name], "stages not in run order"
    assert nx.is_directed_acyclic_graph(stage_dag)
    for t in g.outputs:
        assert (t, None) in moved, f"output {t} never reaches the host"


def run_stages(plan, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run each exported stage in plan order in onnxruntime, passing tensors along."""
    values = dict(feeds)
    for s in plan.stages:
        model = plan.export_stage(s.id)
        assert {i.name for i in model.graph.input} - {
            x.name for x in model.graph.initializer
        } == set(s.inputs)
        values.update(ort_run(model, values))
    return values


def random_feeds(graph: Graph, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        n: rng.standard_normal(graph.tensors[n].shape).astype(graph.tensors[n].dtype)
        for n in graph.inputs
    }


class TableCosts:
    """A cost model with round numbers, so expected makespans can be worked out by hand:
    every op costs ``op[device]`` seconds, every cross-device tensor move ``move`` seconds."""

    def __init__(self, op: dict[str, float], move: float) -> None:
        self.op = op
        self.move = move

    def cost(self, graph, node, device):
        return 0.0 if node.is_constant else self.op[device]

    def transfer(self, graph, tensor, src, dst):
        return 0.0 if src == dst else self.move


def tiny_model(nodes: list[tuple[str, str, list[str]]], outputs: list[str]):
    """A float (1, 4, 2, 2) model from (name, op_type, inputs) triples; node outputs are named
    after the nodes; ``x`` is the input. ``CastLike`` (the NPU lacks it) reads its input twice."""
    from hetnpu.graph import load

    shape = [1, 4, 2, 2]
    protos = []
    for name, op, ins in nodes:
        ins = [*ins, ins[0]] if op == "CastLike" else ins
        protos.append(helper.make_node(op, ins, [name], name=name))
    graph = helper.make_graph(
        protos,
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, shape) for o in outputs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return load(model)
