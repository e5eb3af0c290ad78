"""Control-flow subgraphs as standalone graphs, and the values known inside them.

:func:`body_graph` makes an If branch or a Loop/Scan body a loaded, shape-inferred
:class:`~hetnpu.graph.ir.Graph`: its inputs are the body's own formal inputs, typed from the
node's inputs (a Scan's per-trip slices without their scan axis), and every outer-scope tensor
it reads; outer constants become initializers. Where onnx's shape inference leaves a shape
unknown, one run of onnx's reference evaluator on known values supplies it.
:func:`known_value` is a tensor's value when constants, fed inputs or such a run fix it.

Left out: values computed from more than :data:`MAX_EVAL_NODES` ops are not evaluated (the
reference evaluator is slow on real work).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

import networkx as nx
import numpy as np
import onnx
from onnx import helper

from hetnpu.errors import ModelError
from hetnpu.graph.ir import Graph, Node

__all__ = ["MAX_EVAL_NODES", "body_graph", "known_value", "truth"]

MAX_EVAL_NODES = 64
"""Most ops evaluated to learn a condition or trip count from fed values (a cost guard)."""


def known_value(graph: Graph, tensor: str, feeds: Mapping[str, Any]) -> np.ndarray | None:
    """``tensor``'s value if it is a constant, a fed input, or computable from those by at
    most :data:`MAX_EVAL_NODES` ops; otherwise ``None``."""
    if not tensor:
        return None
    value = graph.constant_value(tensor)
    if value is not None:
        return value
    if tensor in feeds:
        return np.asarray(feeds[tensor])
    probed, fed = _VALUES.get(graph, ({}, False))
    if fed and tensor in probed:
        return np.asarray(probed[tensor])
    producer = graph.producer(tensor)
    if producer is None:
        return None
    upstream = nx.ancestors(graph.dag, producer.name) | {producer.name}
    if len(upstream) > MAX_EVAL_NODES:
        return None
    needed = {t for n in upstream for t in graph.nodes[n].all_inputs if t in graph.inputs}
    if not needed <= set(feeds):
        return None
    from onnx.reference import ReferenceEvaluator

    from hetnpu.graph.onnx_io import extract

    model = extract(graph, upstream)
    if tensor not in {o.name for o in model.graph.output}:
        model.graph.output.append(helper.make_empty_tensor_value_info(tensor))
    inputs = {i.name for i in model.graph.input}
    try:
        (value,) = ReferenceEvaluator(model).run(
            [tensor], {k: np.asarray(v) for k, v in feeds.items() if k in inputs}
        )
    except Exception:  # an unevaluable condition is merely unknown
        return None
    return np.asarray(value)


def truth(value: np.ndarray | None) -> bool | None:
    """A one-element value as a bool; ``None`` for no value or several elements."""
    if value is None or value.size != 1:
        return None
    return bool(value.reshape(()))


_BODIES: weakref.WeakKeyDictionary[Graph, dict[tuple[str, str], Graph]] = (
    weakref.WeakKeyDictionary()
)


_VALUES: weakref.WeakKeyDictionary[Graph, tuple[Mapping[str, np.ndarray], bool]] = (
    weakref.WeakKeyDictionary()
)
"""Values of a body graph's tensors from its probing run, for the bodies nested in it, and
whether they follow from fed values only (then they may select branches, not just shapes)."""


def body_graph(
    graph: Graph, node: Node, attr: str, feeds: Mapping[str, Any] | None = None
) -> Graph:
    """The subgraph ``attr`` of control-flow ``node`` as a loaded, shape-inferred Graph.

    Where onnx's shape inference leaves a tensor's shape unknown (shapes computed by ops on
    constants, branches that differ), the If branch is run once by onnx's reference evaluator
    on the values it reads, when they are known: fed graph inputs, or for a graph that is
    itself a body, the values of its own probing run; else zeros of the inputs' static shapes.
    The shapes seen become the body's.

    Raises
    ------
    ModelError
        The subgraph reads a tensor of unknown rank, or does not shape-infer; the message
        names the node and the subgraph.
    """
    values, fed = _known_values(graph, feeds or {})
    per_graph = _BODIES.setdefault(graph, {})
    probe = tuple(sorted((k, v.shape, str(v.dtype)) for k, v in values.items()))
    key = (node.name, attr, probe)
    found = per_graph.get(key)
    if found is None:
        found = per_graph[key] = _build_body(graph, node, attr, values, fed)
    return found


def _known_values(graph: Graph, feeds: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], bool]:
    """Values of ``graph``'s inputs to probe its bodies with, and whether all were fed."""
    probed, fed = _VALUES.get(graph, ({}, True))
    values = dict(probed)
    for name in graph.inputs:
        if name in feeds:
            values[name] = np.asarray(feeds[name])
        elif name not in values:
            t = graph.tensors[name]
            fed = False
            if t.is_tensor and t.is_static and t.dtype != "undefined":
                values[name] = np.zeros(t.shape, dtype=t.dtype)  # type: ignore[arg-type]
    return values, fed


def _value_info(graph: Graph, outer: str, name: str, drop_axis: int | None = None) -> Any:
    t = graph.tensors.get(outer)
    if t is None:
        raise ModelError(f"tensor {outer!r} has no type")
    if t.type_proto is not None:
        return helper.make_value_info(name, t.type_proto)
    if t.shape is None:
        raise ModelError(f"the subgraph reads {outer!r}, whose rank is unknown")
    shape: list[Any] | None = None
    if t.shape is not None:
        shape = [d if d is not None else (s or None) for d, s in
                 zip(t.shape, t.symbols or (None,) * len(t.shape), strict=True)]  # fmt: skip
        if drop_axis is not None:
            del shape[drop_axis % len(shape)]
    return helper.make_tensor_value_info(name, t.elem_type, shape)


def _build_body(
    graph: Graph, node: Node, attr: str, values: Mapping[str, np.ndarray], fed: bool
) -> Graph:
    from hetnpu.graph.onnx_io import load, outer_references

    where = f"node {node.name!r} ({node.op_type}) {attr}"
    sub = onnx.GraphProto()
    sub.CopyFrom(node.attrs[attr])
    formal = [vi.name for vi in sub.input]
    typed: list[Any] = []
    if node.op_type == "Loop":
        typed = [
            helper.make_tensor_value_info(formal[0], onnx.TensorProto.INT64, []),
            helper.make_tensor_value_info(formal[1], onnx.TensorProto.BOOL, []),
        ]
        typed += [
            _value_info(graph, o, f) for o, f in zip(node.inputs[2:], formal[2:], strict=False)
        ]
    elif node.op_type == "Scan":
        m = node.attrs.get("num_scan_inputs", 1)
        n_state = len(node.inputs) - m
        axes = list(node.attrs.get("scan_input_axes", [0] * m))
        typed = [
            _value_info(graph, o, f) for o, f in zip(node.inputs[:n_state], formal, strict=False)
        ]
        typed += [
            _value_info(graph, o, f, drop_axis=a)
            for o, f, a in zip(node.inputs[n_state:], formal[n_state:], axes, strict=False)
        ]
    del sub.input[:]
    sub.input.extend(typed)
    _constants_to_initializers(sub)
    _drop_shapeless_types(sub)
    probed = truth(values.get(node.inputs[0])) if node.inputs else None
    taken = None if probed is None else ("then_branch" if probed else "else_branch")
    if node.op_type == "If" and taken in (None, attr):
        # A branch's outputs are the If's: where the outer graph knows their shapes (from
        # inference, or from a probing run that took this branch), so does the branch.
        for out, outer in zip(sub.output, node.outputs, strict=False):
            t = graph.tensors.get(outer)
            if t is not None and t.is_tensor and t.shape is not None and t.elem_type:
                out.CopyFrom(_value_info(graph, outer, out.name))
    holder = helper.make_node(node.op_type, [], [], name="holder", **{attr: sub})
    for outer in outer_references(holder):
        value = graph.constant_value(outer)
        if value is not None:
            sub.initializer.append(onnx.numpy_helper.from_array(value, outer))
        else:
            sub.input.append(_value_info(graph, outer, outer))
    # Inputs of unknown element type (an outer tensor ONNX could not type) cannot be loaded.
    model = helper.make_model(
        sub, opset_imports=list(graph.model.opset_import), functions=list(graph.model.functions)
    )
    model.ir_version = max(graph.model.ir_version, 4)
    try:
        body = load(model, require_static=False)
    except ModelError as exc:
        raise ModelError(f"{where}: {exc}") from None
    if node.op_type != "If" or not any(
        t.is_tensor and not t.is_static for t in body.tensors.values()
    ):
        return body
    seen = _probe(body, values)
    if not seen:
        return body
    for vi in list(model.graph.value_info):
        if vi.name in seen:
            model.graph.value_info.remove(vi)
    for name, value in seen.items():
        if name in body.tensors and not body.tensors[name].is_constant:
            elem = onnx.helper.np_dtype_to_tensor_dtype(value.dtype)
            model.graph.value_info.append(
                helper.make_tensor_value_info(name, elem, list(value.shape))
            )
    try:
        body = load(model, require_static=False)
    except ModelError:
        return body
    _VALUES[body] = (seen, fed)
    return body


def _probe(body: Graph, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every top-level tensor of ``body`` from one reference run, or {} if it cannot run."""
    from onnx.reference import ReferenceEvaluator

    if not set(body.inputs) <= set(values):
        return {}
    try:
        with np.errstate(all="ignore"):  # zeros or real data may overflow an exp: shapes hold
            run = ReferenceEvaluator(body.model).run(
                None, {k: values[k] for k in body.inputs}, intermediate=True
            )
    except Exception:  # a branch that cannot run on these values keeps its shapes
        return {}
    return {k: v for k, v in run.items() if isinstance(v, np.ndarray)}


def _drop_shapeless_types(g: onnx.GraphProto) -> None:
    # Exporters type subgraph values without a shape, which the checker refuses at the top
    # level; left untyped, shape inference fills them in.
    for out in g.output:
        if out.type.HasField("tensor_type") and not out.type.tensor_type.HasField("shape"):
            out.ClearField("type")
    for v in [v for v in g.value_info if not v.type.tensor_type.HasField("shape")]:
        g.value_info.remove(v)


def _constants_to_initializers(sub: onnx.GraphProto) -> None:
    # Exporters put a branch's weights and pads in Constant nodes; onnx's shape inference reads
    # values (Pad's pads, Reshape's shape) only from initializers, so they become those.
    kept = []
    for n in sub.node:
        attr = n.attribute[0] if n.op_type == "Constant" and len(n.attribute) == 1 else None
        if attr is not None and attr.name == "value" and n.domain in ("", "ai.onnx"):
            t = onnx.TensorProto()
            t.CopyFrom(attr.t)
            t.name = n.output[0]
            sub.initializer.append(t)
        else:
            kept.append(n)
    del sub.node[:]
    sub.node.extend(kept)
