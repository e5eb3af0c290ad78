"""Exporting node sets: the pieces of any split, run in order, reproduce the whole model."""

from __future__ import annotations

import functools

import networkx as nx
import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hetnpu.errors import ModelError
from hetnpu.graph import Graph, extract, load
from tests.conftest import LIGHT_DIR, LIGHT_MODELS, ort_run


@functools.cache
def _graph(name: str) -> Graph:
    return load(LIGHT_DIR / f"{name}.onnx")


@functools.cache
def _reference(name: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    g = _graph(name)
    rng = np.random.default_rng(0)
    feeds = {i: rng.standard_normal(g.tensors[i].shape).astype(np.float32) for i in g.inputs}
    # The whole model as onnxruntime sees the original file, not our export of it.
    return feeds, ort_run(onnx.load(str(LIGHT_DIR / f"{name}.onnx")), feeds)


def _run_pieces(g: Graph, pieces: list[list[str]], feeds: dict[str, np.ndarray]) -> dict:
    values = dict(feeds)
    for piece in pieces:
        model = extract(g, piece)
        onnx.checker.check_model(model)
        values.update(ort_run(model, values))
    return values


@st.composite
def splits(draw, g: Graph) -> list[list[str]]:
    """A random topological order cut into contiguous runs: an arbitrary acyclic split."""
    names = list(g.nodes)
    # A seed rather than a drawn permutation: models have up to ~2,000 nodes.
    priority = np.random.default_rng(draw(st.integers(0, 2**32 - 1))).permutation(len(names))
    rank = dict(zip(names, priority.tolist(), strict=True))
    order = list(nx.lexicographical_topological_sort(g.dag, key=rank.__getitem__))
    k = draw(st.integers(1, min(5, len(order))))
    cuts = sorted(draw(st.sets(st.integers(1, len(order) - 1), min_size=k - 1, max_size=k - 1)))
    return [order[a:b] for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True)]


@pytest.mark.parametrize("name", LIGHT_MODELS)
@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_pieces_reproduce_whole_model_bit_for_bit(name, data):
    g = _graph(name)
    feeds, whole = _reference(name)
    values = _run_pieces(g, data.draw(splits(g)), feeds)
    for out in g.outputs:
        np.testing.assert_array_equal(values[out], whole[out])


def test_whole_graph_export_round_trips():
    g = _graph("light_squeezenet")
    m = extract(g, g.nodes)
    assert [i.name for i in m.graph.input] == list(g.inputs)
    assert [o.name for o in m.graph.output] == list(g.outputs)
    assert m.opset_import == g.model.opset_import
    onnx.checker.check_model(m, full_check=True)


def test_piece_interface_is_boundary_tensors_only():
    g = _graph("light_bvlc_alexnet")
    conv1 = next(n for n in g if n.op_type == "Conv")
    relu1 = g.consumers(conv1.outputs[0])[0]
    m = extract(g, [conv1.name, relu1.name])
    # The weights come from ConstantOfShape nodes outside the set: they are inputs of the piece.
    assert [i.name for i in m.graph.input] == [conv1.inputs[0], conv1.inputs[1], conv1.inputs[2]]
    assert [o.name for o in m.graph.output] == [relu1.outputs[0]]
    assert [tuple(d.dim_value for d in o.type.tensor_type.shape.dim) for o in m.graph.output] == [
        g.tensors[relu1.outputs[0]].shape
    ]


def test_initializers_travel_with_the_piece_that_reads_them():
    g = _graph("light_resnet50")
    first = next(iter(g))  # a ConstantOfShape over an initializer shape
    m = extract(g, [first.name])
    assert [t.name for t in m.graph.initializer] == [first.inputs[0]]
    assert not m.graph.input


def test_bad_node_sets():
    g = _graph("light_squeezenet")
    with pytest.raises(ModelError, match="no such node"):
        extract(g, ["not-a-node"])
    with pytest.raises(ModelError, match="empty"):
        extract(g, [])
