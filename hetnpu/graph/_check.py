"""onnx's checker and shape inference, run cheaply on big models.

Both serialise every weight they are given, which for a 400 MB model costs seconds and for
external data needs the files relative to the working directory. They run here on a copy in
which big or external weights are replaced by small stand-ins of the same type; the weights
themselves are checked directly (inline byte counts, external files against the model's own
folder).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import helper

from hetnpu.errors import ModelError, some

__all__ = ["check_model", "infer_shapes", "one_line"]

_FLOAT_TYPES = frozenset(
    {
        onnx.TensorProto.FLOAT,
        onnx.TensorProto.FLOAT16,
        onnx.TensorProto.BFLOAT16,
        onnx.TensorProto.DOUBLE,
    }
)


def one_line(exc: BaseException) -> str:
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text.replace("==> Context:", "—")


def _inference_errors(exc: BaseException) -> str:
    """onnx's inference errors, the first three of them: after the first failing node every
    node downstream fails too ("Input 0 expected to have type"), one error per node."""
    text = one_line(exc)
    head, sep, rest = text.partition("(op_type:")
    if not sep:
        return text
    errors = [f"(op_type:{e.strip()}" for e in rest.split("(op_type:")]
    return f"{head}{some(errors, quote=False)}"


WEIGHTS_KEY = "hetnpu.weights"
"""Model metadata key; its value ``"absent"`` marks a model whose float weights carry dims and
type but no data (built for simulation: the simulator needs shapes, never weight values)."""


def weights_absent(model: onnx.ModelProto) -> bool:
    """Whether ``model`` says its float weights were left out on purpose."""
    return any(p.key == WEIGHTS_KEY and p.value == "absent" for p in model.metadata_props)


def check_model(model: onnx.ModelProto, where: str, base_dir: str | None) -> None:
    absent = weights_absent(model)
    heavy = {
        t.name
        for t in model.graph.initializer
        if _is_external(t) or _is_big(t) or (absent and _valueless_float(t))
    }
    if heavy:
        # The checker resolves external files against the working directory, and serializes
        # every weight it is given; external tensors are checked here against the model's own
        # folder, big inline ones by their byte count, and the checker sees small stand-ins.
        for t in model.graph.initializer:
            if _is_external(t):
                _check_external(t, where, base_dir)
            elif t.name in heavy and not (absent and _valueless_float(t)):
                _check_inline_size(t, where)
        model = _lightweight_copy(model, lambda t: t.name in heavy, _stand_in)
    try:
        onnx.checker.check_model(model)
    except onnx.checker.ValidationError as exc:
        raise ModelError(f"{where}: {one_line(exc)}") from None
    except ValueError as exc:  # models over 2 GiB in memory
        raise ModelError(f"{where}: {exc}") from None


def _itemsize(t: onnx.TensorProto, where: str) -> int:
    try:
        return helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except KeyError:
        raise ModelError(
            f"{where}: initializer {t.name!r} has an unknown data_type {t.data_type}"
        ) from None


def _stand_in(t: onnx.TensorProto) -> onnx.TensorProto:
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except KeyError:  # an unknown data_type: the checker names it
        itemsize = 1
    return onnx.TensorProto(name=t.name, data_type=t.data_type, dims=[1], raw_data=bytes(itemsize))


def _check_inline_size(t: onnx.TensorProto, where: str) -> None:
    count = int(np.prod(t.dims, dtype=np.int64))
    if t.HasField("raw_data"):
        have = len(t.raw_data) // _itemsize(t, where)
    else:
        field = helper.tensor_dtype_to_field(t.data_type)
        have = len(getattr(t, field))
    if have != count:
        raise ModelError(
            f"{where}: initializer {t.name!r} has dims {list(t.dims)} ({count} elements) "
            f"but carries {have}: the file is truncated or corrupt"
        )


def _check_external(t: onnx.TensorProto, where: str, base_dir: str | None) -> None:
    info = onnx.external_data_helper.ExternalDataInfo(t)
    root = Path(base_dir or ".").resolve()
    path = (root / info.location).resolve()
    if root not in path.parents or not path.is_file():
        raise ModelError(
            f"{where}: initializer {t.name!r} keeps its data in {info.location!r}, "
            f"which is not a file beside the model"
        )
    itemsize = _itemsize(t, where)
    need = (info.offset or 0) + (info.length or int(np.prod(t.dims)) * itemsize)
    if path.stat().st_size < need:
        raise ModelError(
            f"{where}: initializer {t.name!r}: {info.location!r} is truncated "
            f"({path.stat().st_size} bytes, need {need})"
        )


# Weights bigger than this (in elements, floating point only) are left out of the copy that
# shape inference sees: inference needs their type and dims, never their values, and
# serializing hundreds of MiB of weights into the C++ inferencer dominated load time (BERT-base:
# 4.3 s of 6 s). Integer tensors stay, whatever their size: data propagation reads shapes,
# indices and axes from them.
_INFER_MAX_ELEMENTS = 4096


def infer_shapes(model: onnx.ModelProto, where: str) -> onnx.ModelProto:
    skeleton = _lightweight_copy(
        model,
        _is_big,
        lambda t: onnx.TensorProto(name=t.name, data_type=t.data_type, dims=t.dims),
    )
    try:
        inferred = onnx.shape_inference.infer_shapes(
            skeleton, check_type=True, strict_mode=True, data_prop=True
        )
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as exc:
        raise ModelError(f"{where}: shape inference failed: {_inference_errors(exc)}") from None
    except Exception as exc:
        # On some malformed nodes (a Loop without a body, a Constant whose tensor has no
        # type) onnx's C++ inferencer lets a bare ValueError or RuntimeError through that
        # names nothing; the checker usually names the node, so its verdict is preferred.
        raise ModelError(
            f"{where}: shape inference failed: {_checker_verdict(model) or one_line(exc)}"
        ) from None
    if skeleton is model:
        return inferred
    # Inference only adds types: graph outputs, value_info, and the same inside subgraphs
    # (which live in node attributes); the weights come back from the original.
    for field in ("node", "output", "value_info"):
        model.graph.ClearField(field)
        getattr(model.graph, field).extend(getattr(inferred.graph, field))
    return model


def _checker_verdict(model: onnx.ModelProto) -> str | None:
    """The checker's complaint about ``model`` in one line, or None if it has none."""
    light = _lightweight_copy(model, lambda t: _is_external(t) or _is_big(t), _stand_in)
    try:
        onnx.checker.check_model(light)
    except Exception as exc:  # ValidationError, or whatever else a malformed proto provokes
        return one_line(exc)
    return None


def _valueless_float(t: onnx.TensorProto) -> bool:
    if t.data_type not in _FLOAT_TYPES or t.HasField("raw_data") or _is_external(t):
        return False
    return not len(getattr(t, helper.tensor_dtype_to_field(t.data_type)))


def _is_external(t: onnx.TensorProto) -> bool:
    return onnx.external_data_helper.uses_external_data(t)


def _is_big(t: onnx.TensorProto) -> bool:
    return (
        t.data_type in _FLOAT_TYPES
        and int(np.prod(t.dims, dtype=np.int64)) > _INFER_MAX_ELEMENTS
        and not _is_external(t)
    )


def _lightweight_copy(
    model: onnx.ModelProto,
    heavy: Callable[[onnx.TensorProto], bool],
    replace: Callable[[onnx.TensorProto], onnx.TensorProto],
) -> onnx.ModelProto:
    """A copy of ``model`` whose ``heavy`` initializers are ``replace``d; ``model`` if none."""
    if not any(heavy(t) for t in model.graph.initializer):
        return model
    copy = onnx.ModelProto()
    for field, _ in model.ListFields():
        if field.name != "graph":
            _copy_field(copy, model, field.name)
    for field, _ in model.graph.ListFields():
        if field.name != "initializer":
            _copy_field(copy.graph, model.graph, field.name)
    copy.graph.initializer.extend(replace(t) if heavy(t) else t for t in model.graph.initializer)
    return copy


def _copy_field(dst: Any, src: Any, name: str) -> None:
    value = getattr(src, name)
    if hasattr(value, "extend"):
        getattr(dst, name).extend(value)
    elif hasattr(value, "CopyFrom"):
        getattr(dst, name).CopyFrom(value)
    else:
        setattr(dst, name, value)
