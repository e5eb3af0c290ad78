"""The last step of building a decoder: graph inputs and outputs, the checked ModelProto, its
initializers (with values, or dims only when the weights are absent) and metadata."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hetnpu.graph import WEIGHTS_KEY
from hetnpu.models._builder import GraphBuilder
from hetnpu.models.decoder.config import DecoderConfig

__all__ = ["DECODER_KEY", "assemble", "cache_names"]

DECODER_KEY = "hetnpu.decoder"
"""Metadata key of the JSON record of what was built (config, phase, batch, seq, kv_len)."""


def cache_names(layer: int) -> tuple[str, str, str, str]:
    """Names of layer ``layer``'s past key, past value, present key and present value."""
    return (
        f"past_key_values.{layer}.key",
        f"past_key_values.{layer}.value",
        f"present.{layer}.key",
        f"present.{layer}.value",
    )


def assemble(
    b: GraphBuilder,
    c: DecoderConfig,
    record: dict[str, Any],
    elem: int,
    opset: int,
    shape: tuple[int, int, int],
) -> onnx.ModelProto:
    """The checked model of the nodes and weights collected in ``b`` (see ``build_decoder``)."""
    bsz, s, kv_len = shape
    total = kv_len + s
    d, kvh = c.head_dim, c.kv_heads
    vi = helper.make_tensor_value_info
    inputs = [
        vi("input_ids", TensorProto.INT64, [bsz, s]),
        vi("position_ids", TensorProto.INT64, [bsz, s]),
    ]
    outputs = [vi("logits", elem, [bsz, c.vocab])]
    for i in range(c.layers):
        past_k, past_v, present_k, present_v = cache_names(i)
        if kv_len:
            inputs += [vi(n, elem, [bsz, kvh, kv_len, d]) for n in (past_k, past_v)]
        outputs += [vi(n, elem, [bsz, kvh, total, d]) for n in (present_k, present_v)]
    graph = helper.make_graph(b.nodes, f"{c.name}-{record['phase']}", inputs, outputs)
    if elem != TensorProto.FLOAT:
        _retype_float_constants(graph, elem)
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hetnpu.models"
    )
    model.ir_version = helper.find_min_ir_version_for(list(model.opset_import))
    skeleton = onnx.ModelProto()
    skeleton.CopyFrom(model)
    skeleton.graph.input.extend(vi(k, elem, a.shape) for k, a in b.weights.items())
    onnx.checker.check_model(skeleton, full_check=True)
    props = {DECODER_KEY: json.dumps(record, sort_keys=True)}
    if b.shapes_only:
        props[WEIGHTS_KEY] = "absent"
        model.graph.initializer.extend(
            onnx.TensorProto(name=k, dims=a.shape, data_type=elem) for k, a in b.weights.items()
        )
    else:
        np_dtype = helper.tensor_dtype_to_np_dtype(elem)
        model.graph.initializer.extend(
            numpy_helper.from_array(a.astype(np_dtype), k) for k, a in b.weights.items()
        )
    helper.set_model_props(model, props)
    return model


def _retype_float_constants(graph: onnx.GraphProto, elem: int) -> None:
    """Float Constant nodes (rope tables, masks, eps, scale) in ``elem``, as the graph's floats."""
    np_dtype = helper.tensor_dtype_to_np_dtype(elem)
    for node in graph.node:
        if node.op_type != "Constant":
            continue
        value = numpy_helper.to_array(node.attribute[0].t)
        if value.dtype == np.float32:
            node.attribute[0].t.CopyFrom(
                numpy_helper.from_array(value.astype(np_dtype), node.attribute[0].t.name)
            )
