"""The CPU's answer: onnxruntime's CPU provider, else onnx's ReferenceEvaluator, which the CPU
backend falls back to for what onnxruntime has no kernel for, and for the few cases where
onnxruntime's kernel computes something other than the ONNX spec says (:func:`ort_departure`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from importlib import import_module

import onnx
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


def _attr(node: onnx.NodeProto, name: str, default: object) -> object:
    for a in node.attribute:
        if a.name == name:
            value = onnx.helper.get_attribute_value(a)
            return value.decode() if isinstance(value, bytes) else value
    return default


def _given(node: onnx.NodeProto, i: int) -> bool:
    return len(node.input) > i and bool(node.input[i])


def _dft_departs(node: onnx.NodeProto) -> str | None:
    # Not a reading of the spec but accuracy: against a float64 FFT, onnxruntime 1.32's float32
    # DFT is off by up to 1.3e-6 / 2.2e-5 / 2.5e-4 of the largest bin at lengths 10 / 100 /
    # 1000 (error growing with the length, as a direct sum's does) and 3e-7..7e-7 at powers of
    # two; numpy's FFT, which onnx's reference implementation calls, stays under 4e-8.
    return (
        f"onnxruntime's {node.op_type} is less accurate (up to 2.5e-4 of the largest bin at "
        "length 1000, against numpy's FFT's 4e-8)"
    )


def _resize_departs(node: onnx.NodeProto) -> str | None:
    # The spec defines scale = length_resized / length_original, so with `scales` given,
    # align_corners divides by (length_original * scale - 1), a fractional length; onnxruntime
    # divides by the rounded output length minus one.
    if _attr(node, "coordinate_transformation_mode", "half_pixel") != "align_corners":
        return None
    if _attr(node, "mode", "nearest") == "nearest" or not _given(node, 2):
        return None
    return (
        "align_corners with `scales`: onnxruntime divides by the rounded output length, the "
        "spec by length_original * scale"
    )


def _attention_departs(node: onnx.NodeProto) -> str | None:
    # Spec: "disallowed positions contribute -inf to the bias"; mode 2 of qk_matmul_output is
    # QK + softcap + bias, where onnxruntime writes the lowest finite float instead of -inf.
    if _attr(node, "qk_matmul_output_mode", 0) != 2 or len(node.output) < 4:
        return None
    if not node.output[3]:
        return None
    return "qk_matmul_output mode 2: onnxruntime masks with the lowest float, the spec with -inf"


_ORT_DEPARTURES: dict[tuple[str, str], Callable[[onnx.NodeProto], str | None]] = {
    ("", "DFT"): _dft_departs,
    ("", "STFT"): _dft_departs,
    ("", "Resize"): _resize_departs,
    ("", "Attention"): _attention_departs,
}


def ort_departure(node: onnx.NodeProto) -> str | None:
    """Why onnxruntime's CPU kernel would compute ``node`` otherwise than the ONNX spec says
    (``None`` when it computes it as specified, as far as is known here).

    The CPU backend runs a stage holding such a node on onnx's ReferenceEvaluator instead. The
    cases are those where the spec's text is unambiguous and onnxruntime's result was measured
    to differ from it (Resize with align_corners and scales, Attention's masked
    qk_matmul_output), and DFT/STFT, whose onnxruntime kernel was measured to lose accuracy
    far beyond float32 rounding; a kernel merely rounding differently is not one.
    """
    check = _ORT_DEPARTURES.get((_domain(node.domain), node.op_type))
    return check(node) if check is not None else None


def cpu_verdict(node: Node, graph: Graph, precision: str) -> Verdict:
    departs = ort_departure(node.proto)
    if departs and reference_evaluator_supports(node, graph):
        return Verdict(True, f"{node.op_type}: onnx ReferenceEvaluator ({departs})")
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
