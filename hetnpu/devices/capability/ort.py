"""onnxruntime's kernel registries, and a verdict from them: the CPU provider's asked live, the
CUDA provider's live when onnxruntime-gpu is installed, else the snapshot in
``data/ort_cuda_kernels.json`` (onnxruntime's own ``docs/OperatorKernels.md``)."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import onnxruntime
from onnx import defs
from onnxruntime.capi import _pybind_state

from hetnpu.devices.capability._common import (
    Verdict,
    _domain,
    _load_json,
    _non_tensor,
    _onnx_type,
    _opset,
    _schema,
)
from hetnpu.graph.ir import Graph, Node

_ORT_OPEN_END = 2**31 - 1  # onnxruntime's "no upper opset bound"


@dataclass(frozen=True)
class _Kernel:
    since: int
    until: int | None
    types: Mapping[str, frozenset[str]]
    """Type parameter -> tensor element types; sequence/optional types are not checked."""

    def covers(self, version: int) -> bool:
        return self.since <= version and (self.until is None or version <= self.until)

    def fits(self, typed: Sequence[tuple[str, str]]) -> bool:
        return all(ty in self.types[p] for p, ty in typed if p in self.types)

    def span(self) -> str:
        if self.until is None:
            return f"{self.since}+"
        return str(self.since) if self.since == self.until else f"{self.since}-{self.until}"


_KernelTable = Mapping[tuple[str, str], tuple[_Kernel, ...]]


def _tensor_types(constraints: Mapping[str, Sequence[str]]) -> dict[str, frozenset[str]]:
    out = {}
    for param, types in constraints.items():
        names = frozenset(t[len("tensor(") : -1] for t in types if t.startswith("tensor("))
        if names:
            out[param] = names
    return out


@functools.cache
def _live_kernels(provider: str) -> _KernelTable:
    """Kernel defs onnxruntime registered for ``provider`` in this process (cached)."""
    table: dict[tuple[str, str], list[_Kernel]] = {}
    for k in _pybind_state.get_all_opkernel_def():
        if k.provider != provider:
            continue
        lo, hi = k.version_range
        kernel = _Kernel(lo, None if hi >= _ORT_OPEN_END else hi, _tensor_types(k.type_constraints))
        table.setdefault((_domain(k.domain), k.op_name), []).append(kernel)
    return {key: tuple(v) for key, v in table.items()}


@functools.cache
def _cuda_kernels() -> tuple[_KernelTable, str]:
    """CUDA kernels and where they came from: the live registry if present, else the snapshot."""
    if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
        live = _live_kernels("CUDAExecutionProvider")
        if live:
            return live, f"onnxruntime {onnxruntime.__version__} CUDA"
    data = _load_json("ort_cuda_kernels.json")
    table: dict[tuple[str, str], list[_Kernel]] = {}
    for domain, op, lo, hi, types in data["kernels"]:
        kernel = _Kernel(lo, hi, {p: frozenset(t) for p, t in types.items()})
        table.setdefault((domain, op), []).append(kernel)
    src = data["source"]
    label = f"onnxruntime CUDA (snapshot of {src['path']} @ {src['commit'][:7]})"
    return {key: tuple(v) for key, v in table.items()}, label


def _typed_tensors(node: Node, graph: Graph, schema: defs.OpSchema | None) -> list[tuple[str, str]]:
    """(type parameter, element type) for each input/output whose formal type is a parameter."""
    if schema is None:  # contrib ops: onnx has no schema, so dtypes are not checked
        return []
    variadic = defs.OpSchema.FormalParameterOption.Variadic
    pairs = []
    for names, formals in ((node.inputs, schema.inputs), (node.outputs, schema.outputs)):
        for i, name in enumerate(names):
            if not name or not formals or (i >= len(formals) and formals[-1].option != variadic):
                continue
            ty = _onnx_type(graph.tensors.get(name))
            if ty:
                pairs.append((formals[min(i, len(formals) - 1)].type_str, ty))
    return pairs


def _ort_verdict(
    table: _KernelTable, label: str, node: Node, graph: Graph, *, fp16_cast: bool
) -> Verdict:
    domain = _domain(node.domain)
    opset = _opset(graph, domain) or 1
    schema = _schema(domain, node.op_type, opset)
    version = schema.since_version if schema else opset
    name = f"{domain + '::' if domain else ''}{node.op_type}-{version}"
    kernels = table.get((domain, node.op_type), ())
    in_range = [k for k in kernels if k.covers(version)]
    if not in_range and schema and (schema.has_function or schema.has_context_dependent_function):
        # onnxruntime inlines an op it has no kernel for when ONNX defines it as a function.
        return Verdict(True, f"{name}: {label}, expanded into its ONNX function body")
    if not kernels:
        return Verdict(False, f"{name}: no {label} kernel")
    if not in_range:
        spans = ", ".join(dict.fromkeys(k.span() for k in sorted(kernels, key=lambda k: k.since)))
        return Verdict(False, f"{name}: {label} kernels cover opsets {spans} only")
    typed = _typed_tensors(node, graph, schema)
    if any(k.fits(typed) for k in in_range):
        return Verdict(True, f"{name}: {label} kernel")
    # onnxruntime's CPU provider wraps float16 nodes lacking a float16 kernel in casts to float.
    as_fp32 = [(p, "float" if ty == "float16" else ty) for p, ty in typed]
    if fp16_cast and as_fp32 != typed and any(k.fits(as_fp32) for k in in_range):
        return Verdict(True, f"{name}: {label} float kernel, behind inserted fp16 casts")
    given = ", ".join(f"{p}={ty}" for p, ty in dict.fromkeys(typed))
    return Verdict(False, f"{name}: no {label} kernel for {given}")


def gpu_verdict(node: Node, graph: Graph, precision: str) -> Verdict:
    # Values cross to and from a GPU stage as arrays; sequences and optionals stay on the host.
    found = _non_tensor(graph, (*node.inputs, *node.outputs))
    if found:
        return Verdict(False, f"{node.op_type}: {found}; only tensors move to the GPU")
    table, label = _cuda_kernels()
    return _ort_verdict(table, label, node, graph, fp16_cast=False)
