"""Checks on a model's nodes that onnx's checker leaves out, where leaving them out crashes a
runtime later.
"""

from __future__ import annotations

import onnx

from hetnpu.errors import ModelError
from hetnpu.graph.ir import Graph, type_kind, type_string

__all__ = [
    "check_initializer_types",
    "check_inputs_typed",
    "check_omitted_inputs",
    "check_windows",
]

_OPTIONAL = onnx.defs.OpSchema.FormalParameterOption.Optional
_KNOWN_TYPES = frozenset(onnx.TensorProto.DataType.values()) - {onnx.TensorProto.UNDEFINED}


def check_initializer_types(model: onnx.ModelProto, where: str) -> None:
    """Refuse an initializer whose data_type is UNDEFINED or no TensorProto type at all.

    onnx's inferencer and checker reject it too, but with "Invalid tensor data type 99."
    naming no tensor, and some of its size checks raise a bare KeyError first.
    """
    for t in model.graph.initializer:
        if t.data_type not in _KNOWN_TYPES:
            raise ModelError(
                f"{where}: initializer {t.name!r} has data_type {t.data_type}, "
                "which is no ONNX tensor type"
            )


# The value types a graph input may have besides tensors: what the runtimes here can be fed.
_NON_TENSOR_INPUTS = frozenset({"sequence", "optional"})


def check_inputs_typed(graph: onnx.GraphProto, where: str, initializers: set[str]) -> None:
    """Refuse a runtime input that is no tensor, sequence or optional, or a tensor without
    even a rank: nothing could be planned for it."""
    for vi in graph.input:
        if vi.name in initializers:
            continue
        if vi.HasField("type") and type_kind(vi.type) in _NON_TENSOR_INPUTS:
            continue  # a sequence's or optional's elements are shaped when fed
        if not vi.HasField("type") or not vi.type.HasField("tensor_type"):
            raise ModelError(
                f"{where}: input {vi.name!r} has no tensor, sequence or optional type"
                + (f" (it is a {type_string(vi.type)})" if vi.HasField("type") else "")
            )
        if not vi.type.tensor_type.HasField("shape"):
            raise ModelError(
                f"{where}: input {vi.name!r} has no shape (not even a rank); "
                f"give one with --input-shape {vi.name}=d0,d1,..."
            )


def check_omitted_inputs(model: onnx.ModelProto, where: str) -> None:
    """Refuse an empty input name (ONNX's "omitted") where the op's schema requires a value.

    The checker accepts ``Sum(x, "")``, and onnxruntime then dereferences the missing tensor
    and dies with a segmentation fault at run time; only Optional formal parameters may be
    omitted (ONNX IR, "Optional inputs and outputs").

    Raises
    ------
    ModelError
        Naming the node, the input position and the formal parameter.
    """
    opsets = {o.domain or "": o.version for o in model.opset_import}
    for node in model.graph.node:
        if "" not in node.input:
            continue
        domain = "" if node.domain == "ai.onnx" else node.domain
        version = opsets.get(domain)
        if version is None:
            continue  # the checker reports the missing opset import
        try:
            schema = onnx.defs.get_schema(node.op_type, version, domain)
        except onnx.defs.SchemaError:
            continue  # an unknown op: the checker or the domain check reports it
        params = schema.inputs
        for i, name in enumerate(node.input):
            if name or not params:
                continue
            param = params[min(i, len(params) - 1)]  # a trailing variadic takes the rest
            if param.option != _OPTIONAL:
                raise ModelError(
                    f"{where}: node {node.name!r} ({node.op_type}) leaves input {i} "
                    f"({param.name!r}) empty, but it is not optional"
                )


_WINDOWED = frozenset({"Conv", "MaxPool", "AveragePool", "LpPool"})


def check_windows(graph: Graph, where: str) -> None:
    """Refuse a convolution or pooling whose window does not fit its (non-empty) input.

    ONNX's output-size formula then gives a spatial dim of 0, which shape inference accepts;
    onnxruntime refuses such a tensor at some ops and dies with SIGFPE at others, so it is
    reported here, at load, naming the node and the shapes.

    Raises
    ------
    ModelError
        Naming the node, its input and the empty output shape.
    """
    for node in graph:
        if node.op_type not in _WINDOWED or node.domain not in ("", "ai.onnx"):
            continue
        if not node.inputs or not node.outputs:
            continue
        x, y = graph.tensors.get(node.inputs[0]), graph.tensors.get(node.outputs[0])
        if x is None or y is None or not x.is_static or not y.is_static:
            continue
        if x.size and len(y.shape) > 2 and 0 in y.shape[2:]:  # type: ignore[index,operator]
            raise ModelError(
                f"{where}: node {node.name!r} ({node.op_type}): its window does not fit input "
                f"{x.name!r} of shape {list(x.shape)}; the output {y.name!r} would have shape "
                f"{list(y.shape)}"
            )
