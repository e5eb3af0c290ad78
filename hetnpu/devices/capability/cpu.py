"""The CPU's answer: onnxruntime's CPU provider, else onnx's ReferenceEvaluator, which the CPU
backend falls back to for what onnxruntime has no kernel for."""

from __future__ import annotations

import functools
from importlib import import_module

from onnx import defs
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import load_op

from hetnpu.devices.capability._common import Verdict, _domain, _opset, _type_proto
from hetnpu.devices.capability.ort import _live_kernels, _ort_verdict
from hetnpu.graph.ir import Graph, Node

_REFERENCE_OPS = {  # domain -> module with load_op, as ReferenceEvaluator._load_impl dispatches
    "": "onnx.reference.ops",
    "ai.onnx.ml": "onnx.reference.ops.aionnxml",
    "ai.onnx.preview": "onnx.reference.ops.aionnx_preview",
    "ai.onnx.preview.training": "onnx.reference.ops.aionnx_preview_training",
    "experimental": "onnx.reference.ops.experimental",
}


@functools.cache
def _reference_has(domain: str, op_type: str, opset: int) -> bool:
    # Ops defined as ONNX functions are built by evaluating their bodies.
    kwargs = {"evaluator_cls": ReferenceEvaluator} if domain == "" else {}
    try:
        import_module(_REFERENCE_OPS[domain]).load_op(domain, op_type, opset, **kwargs)
    except (RuntimeError, ValueError, TypeError, defs.SchemaError):
        return False  # NotImplementedError and the evaluator's own errors derive from these
    return True


def cpu_verdict(node: Node, graph: Graph, precision: str) -> Verdict:
    ort = _ort_verdict(
        _live_kernels("CPUExecutionProvider"), "onnxruntime CPU", node, graph, fp16_cast=True
    )
    if ort:
        return ort
    if reference_evaluator_supports(node, graph):
        return Verdict(True, f"{ort.reason}; onnx ReferenceEvaluator implements it")
    return Verdict(False, f"{ort.reason}, nor does onnx ReferenceEvaluator implement it")


@functools.cache
def cpu_ops() -> frozenset[str]:
    ort = {op for dom, op in _live_kernels("CPUExecutionProvider") if dom == ""}
    latest = defs.onnx_opset_version()
    ref = {
        s.name
        for s in defs.get_all_schemas()
        if s.domain == "" and s.name not in ort and _reference_has("", s.name, latest)
    }
    return frozenset(ort | ref)


def reference_evaluator_supports(node: Node, graph: Graph) -> bool:
    """Whether ``onnx.reference.ReferenceEvaluator`` has an implementation for ``node``.

    Looks the op up in onnx's reference op registries the way the evaluator does (per domain,
    at the model's opset, expanding ops defined as ONNX functions); model-local functions count.
    """
    if any((f.domain, f.name) == (node.domain, node.op_type) for f in graph.model.functions):
        return True
    domain = _domain(node.domain)
    if domain not in _REFERENCE_OPS:
        return False
    opset = _opset(graph, domain) or defs.onnx_opset_version()
    if _reference_has(domain, node.op_type, opset):
        return True
    if domain != "":
        return False
    # Ops whose function body depends on input types can only be built with the node in hand.
    types = [_type_proto(graph.tensors.get(t)) for t in node.inputs]
    context = {"node": node.proto, "input_types": types, "evaluator_cls": ReferenceEvaluator}
    try:
        load_op("", node.op_type, opset, **context)
    except (RuntimeError, ValueError, TypeError, defs.SchemaError):
        return False
    return True
