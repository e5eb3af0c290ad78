"""Chips and tiny models for the simulator tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu.graph import Graph, load


def _model(nodes: list[onnx.NodeProto], inputs: list[Any], outputs: list[Any]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _vi(name: str, shape: list[int], dtype: int = TensorProto.FLOAT16) -> Any:
    return helper.make_tensor_value_info(name, dtype, shape)


@pytest.fixture
def chip() -> Callable[..., Any]:
    """``chip(name="ascend910", **overrides)`` loads a preset with spec-field overrides."""
    from hetnpu import chips

    def make(name: str = "ascend910", **overrides: Any) -> Any:
        return chips.load(name, overrides=overrides or None)

    return make


@pytest.fixture
def matmul() -> Callable[..., Graph]:
    """``matmul(M, K, N)``: a graph with one fp16 MatMul node named ``mm``."""

    def make(m: int, k: int, n: int, dtype: int = TensorProto.FLOAT16) -> Graph:
        node = helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm")
        return load(
            _model(
                [node],
                [_vi("A", [m, k], dtype), _vi("B", [k, n], dtype)],
                [_vi("Y", [m, n], dtype)],
            )
        )

    return make


@pytest.fixture
def add() -> Callable[..., Graph]:
    """``add(elements)``: a graph with one fp16 Add of two equal (elements/4096, 4096) tensors,
    named ``add`` (2-D: onnx's shape inference is slow on huge 1-D tensors)."""

    def make(elements: int) -> Graph:
        shape = [elements // 4096, 4096]
        node = helper.make_node("Add", ["A", "B"], ["Y"], name="add")
        return load(_model([node], [_vi("A", shape), _vi("B", shape)], [_vi("Y", shape)]))

    return make


@pytest.fixture
def mm_relu_model(tmp_path: Any) -> str:
    """Path of a small MatMul → Relu → Softmax model on disk (for the CLI)."""
    nodes = [
        helper.make_node("MatMul", ["A", "B"], ["Y"], name="mm"),
        helper.make_node("Relu", ["Y"], ["R"], name="relu"),
        helper.make_node("Softmax", ["R"], ["S"], name="softmax"),
    ]
    model = _model(
        nodes,
        [_vi("A", ["batch", 256], TensorProto.FLOAT)],
        [_vi("S", ["batch", 512], TensorProto.FLOAT)],
    )
    weights = np.random.default_rng(0).standard_normal((256, 512)).astype(np.float32)
    model.graph.initializer.append(numpy_helper.from_array(weights, "B"))
    path = tmp_path / "mm.onnx"
    onnx.save(model, path)
    return str(path)
