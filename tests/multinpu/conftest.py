"""Small models for the multi-NPU tests: a CNN, an MLP and a two-layer decoder with weights."""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper


def tiny_cnn(batch: int = 2) -> onnx.ModelProto:
    """Conv(3->16)+BN+Relu, Conv(16->16)+Relu, pool, Gemm(16->8): every TP rule of a CNN."""
    rng = np.random.default_rng(1)

    def init(name: str, *shape: int) -> onnx.TensorProto:
        return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32) * 0.3, name)

    inits = [
        init("w1", 16, 3, 3, 3),
        init("b1", 16),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 16).astype(np.float32), "scale"),
        init("bias", 16),
        init("mean", 16),
        numpy_helper.from_array(rng.uniform(0.5, 1.5, 16).astype(np.float32), "var"),
        init("w2", 16, 16, 3, 3),
        init("b2", 16),
        init("fc", 8, 16),
        init("fcb", 8),
    ]
    nodes = [
        helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], pads=[1, 1, 1, 1], name="conv1"),
        helper.make_node(
            "BatchNormalization", ["c1", "scale", "bias", "mean", "var"], ["n1"], name="bn1"
        ),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], name="conv2"),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("GlobalAveragePool", ["r2"], ["p"], name="pool"),
        helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fc", "fcb"], ["y"], transB=1, name="fc"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, 8])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def tiny_decoder(phase: str = "prefill") -> onnx.ModelProto:
    from hetnpu.models.decoder.config import load_config
    from hetnpu.models.decoder.graph import build_decoder

    c = dataclasses.replace(
        load_config("llama-2-7b"),
        name="tiny-llama",
        layers=2,
        hidden=64,
        heads=8,
        kv_heads=4,
        head_dim=8,
        intermediate=128,
        vocab=96,
        rotary_dim=8,
    )
    return build_decoder(c, phase, batch=1, seq=4, attention="decomposed")


@pytest.fixture(scope="session")
def cnn() -> onnx.ModelProto:
    return tiny_cnn()


@pytest.fixture(scope="session")
def decoder() -> onnx.ModelProto:
    return tiny_decoder()
