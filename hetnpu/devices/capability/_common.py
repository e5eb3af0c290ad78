"""What the device checks share: the verdict, device kinds and precisions, ONNX schema and type
look-ups, and the data files the lists are kept in."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
from onnx import defs

from hetnpu.devices.precision_modes import PRECISIONS
from hetnpu.graph.ir import Graph, Tensor

# PRECISIONS is the NPU's (:mod:`hetnpu.devices.precision_modes`), re-exported for the checks:
# ``int8`` admits what ``fp16`` admits; CPU and GPU ignore it.
__all__ = ["PRECISIONS", "Verdict"]

_DATA = Path(__file__).parent.parent / "data"


@dataclass(frozen=True)
class Verdict:
    """Whether a device can run a node; ``reason`` says why not (or which runtime will)."""

    supported: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.supported


def _domain(domain: str) -> str:
    return "" if domain in ("", "ai.onnx") else domain


def _opset(graph: Graph, domain: str) -> int | None:
    wanted = _domain(domain)
    return next((v for d, v in graph.opsets.items() if _domain(d) == wanted), None)


def _tensors(graph: Graph, names: Sequence[str]) -> list[Tensor]:
    return [graph.tensors[n] for n in names if n and n in graph.tensors]


def _onnx_type(t: Tensor | None) -> str | None:
    """ONNX element type name as onnxruntime prints it: ``float``, ``double``, ``float16``..."""
    if t is None or not t.elem_type:
        return None
    return onnx.TensorProto.DataType.Name(t.elem_type).lower()


def _dtype(t: Tensor) -> str | None:
    """numpy-style name for messages (``float64``), falling back to the ONNX name."""
    if not t.elem_type:
        return None
    return t.dtype if t.dtype not in ("undefined", "object") else _onnx_type(t)


def _non_tensor(graph: Graph, names: Sequence[str]) -> str | None:
    """The first of ``names`` that is a sequence, optional or other non-tensor value, with its
    type: ``"'x' is a seq(tensor(float))"``; ``None`` when all are tensors."""
    for t in _tensors(graph, names):
        if not t.is_tensor:
            return f"{t.name!r} is a {t.type_str}"
    return None


def _type_proto(t: Tensor | None) -> onnx.TypeProto:
    if t is None or not t.elem_type:
        return onnx.TypeProto()
    return onnx.helper.make_tensor_type_proto(t.elem_type, t.shape)


@functools.cache
def _schema(domain: str, op_type: str, opset: int) -> defs.OpSchema | None:
    try:
        return defs.get_schema(op_type, opset, domain)
    except defs.SchemaError:
        return None


@functools.cache
def _first_versions() -> dict[tuple[str, str], int]:
    """The opset in which each ONNX op first appeared."""
    first: dict[tuple[str, str], int] = {}
    for s in defs.get_all_schemas_with_history():
        key = (s.domain, s.name)
        first[key] = min(first.get(key, s.since_version), s.since_version)
    return first


def _load_json(name: str) -> Any:
    with open(_DATA / name, encoding="utf-8") as f:
        return json.load(f)
