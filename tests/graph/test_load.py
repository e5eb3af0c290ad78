"""Loading ONNX models into the graph IR, and every way a model can be bad."""

from __future__ import annotations

import networkx as nx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.errors import ModelError
from hetnpu.graph import load
from tests.conftest import LIGHT_DIR, LIGHT_MODELS


def _model(nodes, inputs, outputs, inits=(), opset=17, domains=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    opsets = [helper.make_opsetid("", opset), *(helper.make_opsetid(d, 1) for d in domains)]
    return helper.make_model(graph, opset_imports=opsets)


def _vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_models_get_static_shapes_for_every_consumed_tensor(name):
    g = load(LIGHT_DIR / f"{name}.onnx")
    assert nx.is_directed_acyclic_graph(g.dag)
    assert list(g.nodes) == list(
        nx.lexicographical_topological_sort(g.dag, key=lambda n: g.nodes[n].index)
    )
    for node in g:
        for t in node.all_inputs:
            assert g.tensors[t].is_static, (node.name, t)
    # Weights come from ConstantOfShape over initializers: folded, so constant.
    convs = [n for n in g if n.op_type == "Conv"]
    assert convs and all(g.tensors[n.inputs[1]].is_constant for n in convs)
    assert not any(g.tensors[i].is_constant for i in g.inputs)


def test_symbolic_dims_are_bound_and_propagated():
    m = _model(
        [
            helper.make_node("MatMul", ["x", "w"], ["y"], name="mm"),
            helper.make_node("Relu", ["y"], ["z"]),
        ],
        [_vi("x", ["batch", "seq", 8])],
        [_vi("z", ["batch", "seq", 4])],
        [numpy_helper.from_array(np.ones((8, 4), np.float32), "w")],
    )
    g = load(m, input_shapes={"x": [3, 5, 8]})
    assert g.tensors["z"].shape == (3, 5, 4)
    assert g.tensors["y"].shape == (3, 5, 4)
    assert g.tensors["w"].is_constant and not g.tensors["y"].is_constant
    assert g.inputs == ("x",)
    # Node without a name got a deterministic one.
    assert "Relu_1" in g.nodes


def test_unbound_symbolic_dim_is_refused_with_its_name():
    m = _model(
        [helper.make_node("Relu", ["x"], ["y"], name="r")],
        [_vi("x", ["N", 3])],
        [_vi("y", ["N", 3])],
    )
    with pytest.raises(ModelError, match=r"input 'x' has an unbound dim 0 \(N\)"):
        load(m)
    assert load(m, require_static=False).tensors["x"].symbols == ("N", None)


def test_reshape_shape_is_propagated_through_shape_ops():
    # Shape -> Gather -> Concat -> Reshape: only data propagation resolves this.
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
        helper.make_node("Concat", ["b", "minus1"], ["target"], axis=0),
        helper.make_node("Reshape", ["x", "target"], ["y"], name="flatten"),
    ]
    inits = [
        numpy_helper.from_array(np.array([0], np.int64), "zero"),
        numpy_helper.from_array(np.array([-1], np.int64), "minus1"),
    ]
    m = _model(nodes, [_vi("x", ["N", 2, 3])], [_vi("y", None)], inits)
    g = load(m, input_shapes={"x": [4, 2, 3]})
    assert g.tensors["y"].shape == (4, 6)


def test_control_flow_is_one_opaque_node_with_outer_inputs():
    then = helper.make_graph(
        [helper.make_node("Add", ["x", "x"], ["t"])], "then", [], [_vi("t", [2])]
    )
    other = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["e"])], "else", [], [_vi("e", [2])]
    )
    m = _model(
        [helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other, name="branch")],
        [_vi("c", [], TensorProto.BOOL), _vi("x", [2])],
        [_vi("y", [2])],
        [numpy_helper.from_array(np.full(2, 3, np.float32), "k")],
    )
    g = load(m)
    node = g.nodes["branch"]
    assert node.has_subgraphs and len(g) == 1
    assert node.implicit_inputs == ("x", "k")
    assert [n.name for n in g.consumers("x")] == ["branch"]


def test_external_data_model_loads_and_exports(tmp_path):
    from hetnpu.graph import extract
    from tests.conftest import ort_run

    w = np.arange(64 * 64, dtype=np.float32).reshape(64, 64) / 4096
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [1, 64])],
        [_vi("y", [1, 64])],
        [numpy_helper.from_array(w, "w")],
    )
    path = tmp_path / "ext.onnx"
    onnx.save_model(m, path, save_as_external_data=True, location="ext.bin", size_threshold=0)
    assert (tmp_path / "ext.bin").stat().st_size == w.nbytes
    g = load(path)
    np.testing.assert_array_equal(g.constant_value("w"), w)
    x = np.ones((1, 64), np.float32)
    out = ort_run(extract(g, ["mm"]), {"x": x})["y"]
    np.testing.assert_allclose(out, x @ w, rtol=1e-6)


# --- bad models ---------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(ModelError, match="no such file"):
        load(tmp_path / "nope.onnx")


def test_truncated_file(tmp_path):
    data = (LIGHT_DIR / "light_squeezenet.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match=str(path)):
        load(path)


def test_not_onnx(tmp_path):
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelError, match=r"not .*ONNX"):
        load(path)


def test_unknown_domain_names_node_and_domain():
    m = _model(
        [helper.make_node("Frob", ["x"], ["y"], domain="com.acme", name="frob1")],
        [_vi("x", [2])],
        [_vi("y", [2])],
        domains=["com.acme"],
    )
    with pytest.raises(ModelError, match=r"'frob1' \(Frob\).*'com.acme'"):
        load(m)


def test_unknown_op_in_default_domain():
    m = _model(
        [helper.make_node("Frobnicate", ["x"], ["y"], name="f")], [_vi("x", [2])], [_vi("y", [2])]
    )
    with pytest.raises(ModelError, match="Frobnicate"):
        load(m)


def test_missing_input_names_node_and_tensor():
    m = _model(
        [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")],
        [_vi("x", [2])],
        [_vi("y", [2])],
    )
    with pytest.raises(ModelError, match="ghost"):
        load(m)


def test_cycle_names_its_nodes():
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
    ]
    m = _model(nodes, [_vi("x", [2])], [_vi("b", [2])])
    with pytest.raises(
        ModelError, match=r"cycle: first -> second -> first|cycle: second -> first -> second"
    ):
        load(m)


def test_unsorted_but_acyclic_graph_is_sorted():
    nodes = [
        helper.make_node("Relu", ["a"], ["y"], name="late"),
        helper.make_node("Neg", ["x"], ["a"], name="early"),
    ]
    g = load(_model(nodes, [_vi("x", [2])], [_vi("y", [2])]))
    assert list(g.nodes) == ["early", "late"]


def test_shape_that_cannot_be_bound():
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [1, 8])],
        [_vi("y", [1, 4])],
        [numpy_helper.from_array(np.ones((8, 4), np.float32), "w")],
    )
    with pytest.raises(ModelError, match=r"mm|MatMul"):
        load(m, input_shapes={"x": [1, 5]})
    with pytest.raises(ModelError, match="rank 2"):
        load(m, input_shapes={"x": [1, 8, 1]})
    with pytest.raises(ModelError, match=r"no graph input named 'y'.*'x'"):
        load(m, input_shapes={"y": [1, 8]})
    with pytest.raises(ModelError, match="positive"):
        load(m, input_shapes={"x": [0, 8]})


def test_empty_graph():
    with pytest.raises(ModelError, match="no nodes"):
        load(_model([], [_vi("x", [2])], [_vi("x", [2])]))


def test_big_weights_are_checked_by_size_and_kept_intact():
    # Big float weights bypass the checker's own serialization; their byte count is still checked,
    # and the loaded graph still carries every value.
    w = np.arange(64 * 128, dtype=np.float32).reshape(64, 128)
    init = numpy_helper.from_array(w, "w")
    m = _model(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        [_vi("x", [2, 64])],
        [_vi("y", [2, 128])],
    )
    m.graph.initializer.append(init)
    g = load(m)
    assert g.tensors["y"].shape == (2, 128)
    np.testing.assert_array_equal(g.constant_value("w"), w)
    m.graph.initializer[0].raw_data = m.graph.initializer[0].raw_data[:-8]
    with pytest.raises(ModelError, match=r"initializer 'w'.*truncated"):
        load(m)


def test_a_weight_free_model_loads_only_when_it_says_so() -> None:
    """Builders under ``models.shapes_only()`` leave float weights without data and mark the
    model; the loader accepts exactly that, and still refuses the same tensors unmarked (a
    truncated file)."""
    from hetnpu import models
    from hetnpu.graph import WEIGHTS_KEY, weights_absent
    from hetnpu.graph.cost import total_cost

    with models.shapes_only():
        bare = models.build("resnet18", batch=2)
    assert weights_absent(bare)
    g = load(bare)
    full = load(models.build("resnet18", batch=2))
    assert total_cost(g).macs == total_cost(full).macs
    assert g.tensors["logits"].shape == (2, 1000)
    unmarked = onnx.ModelProto()
    unmarked.CopyFrom(bare)
    del unmarked.metadata_props[:]
    assert not weights_absent(unmarked)
    with pytest.raises(ModelError, match="carries 0: the file is truncated"):
        load(unmarked)
    assert WEIGHTS_KEY == "hetnpu.weights"
