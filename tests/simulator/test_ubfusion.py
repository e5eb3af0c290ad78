"""Elementwise chains fused into one kernel, as CANN's AutomaticUbFusion does."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.prepare import fused_writes, fusion_map
from hetnpu.simulator.ubfusion import MAX_CHAIN

SHAPE = [1, 32, 28, 28]
NBYTES = 32 * 28 * 28 * 2  # one fp16 activation


def _graph(nodes, outputs=("y",), inputs=("x",), inits=()):
    g = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info(i, TensorProto.FLOAT, SHAPE) for i in inputs],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, SHAPE) for o in outputs],
        list(inits),
    )
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _bn_inits():
    return [numpy_helper.from_array(np.ones(32, np.float32), n) for n in ("s", "b", "m", "v")]


def test_pre_activation_bn_relu_is_one_kernel_reading_once_and_writing_once() -> None:
    # DenseNet's pre-activation: Concat -> BN -> ReLU -> Conv; here BN -> ReLU alone.
    nodes = [
        helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["t"], name="bn"),
        helper.make_node("Relu", ["t"], ["y"], name="relu"),
    ]
    g = _graph(nodes, inits=_bn_inits())
    assert fusion_map(g) == {"relu": "bn"}
    assert fused_writes(g) == {"bn": "y"}
    res = simulate(g, "ascend310p")
    ops = {o.name: o for o in res.ops}
    assert ops["relu"].bound == "fused" and ops["relu"].cycles == 0
    assert ops["relu"].fused_into == "bn"
    # One read of x and one write of y (per-channel parameters are a few bytes more).
    assert 2 * NBYTES <= ops["bn"].gm_bytes <= 2 * NBYTES + 4096
    assert ops["bn"].launch_cycles > 0 and ops["relu"].launch_cycles == 0


def test_chain_is_cheaper_than_its_ops_apart() -> None:
    nodes = [
        helper.make_node("Sigmoid", ["x"], ["a"], name="sig"),
        helper.make_node("Mul", ["x", "a"], ["y"], name="mul"),  # x is read by the chain already
    ]
    fused = _graph(nodes)
    assert fusion_map(fused) == {"mul": "sig"}
    apart = _graph(nodes, outputs=("y", "a"))  # the intermediate is a graph output: no fusion
    assert fusion_map(apart) == {}
    assert simulate(fused, "ascend310p").cycles < simulate(apart, "ascend310p").cycles


def test_a_second_input_the_chain_does_not_read_stops_it() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Add", ["a", "z"], ["y"], name="add"),  # z is read by nobody else
    ]
    assert fusion_map(_graph(nodes, inputs=("x", "z"))) == {}


def test_an_intermediate_read_twice_stops_the_chain() -> None:
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Neg", ["a"], ["b"], name="neg"),
        helper.make_node("Abs", ["a"], ["c"], name="abs"),
        helper.make_node("Add", ["b", "c"], ["y"], name="add"),
    ]
    chains = fusion_map(_graph(nodes))
    assert "neg" not in chains and "abs" not in chains


def test_a_chain_holds_at_most_28_ops() -> None:
    n = MAX_CHAIN + 5
    names = ["x", *(f"t{i}" for i in range(n - 1)), "y"]
    nodes = [helper.make_node("Neg", [names[i]], [names[i + 1]], name=f"n{i}") for i in range(n)]
    fused = fusion_map(_graph(nodes))
    roots = {r for r in fused.values()}
    assert roots == {"n0", f"n{MAX_CHAIN}"}
    assert sum(1 for r in fused.values() if r == "n0") == MAX_CHAIN - 1
    assert fused_writes(_graph(nodes)) == {"n0": f"t{MAX_CHAIN - 1}", f"n{MAX_CHAIN}": "y"}


def test_a_follower_reading_a_weight_sized_constant_is_not_fused() -> None:
    # Relu -> Mul by a constant of the activation's own size: fused, the root would not read it.
    w = numpy_helper.from_array(np.ones(SHAPE, np.float32), "w")
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu"),
        helper.make_node("Mul", ["a", "w"], ["y"], name="mul"),
    ]
    assert fusion_map(_graph(nodes, inits=[w])) == {}
    scale = numpy_helper.from_array(np.ones((1, 32, 1, 1), np.float32), "s")  # per channel
    nodes[1] = helper.make_node("Mul", ["a", "s"], ["y"], name="mul")
    assert fusion_map(_graph(nodes, inits=[scale])) == {"mul": "relu"}
