"""The NPU's answer: CANN's list of ONNX operators that ATC converts (``atc --framework=5``),
kept with its source in ``data/cann_onnx_ops.json``, and per-op attribute limits from the
operator pages (the small predicates in ``_NPU_LIMITS``). ``sim-npu`` answers exactly as
``npu``."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from hetnpu.devices.capability._common import (
    Verdict,
    _domain,
    _dtype,
    _first_versions,
    _load_json,
    _non_tensor,
    _opset,
    _tensors,
)
from hetnpu.graph.ir import Graph, Node


@functools.cache
def _cann() -> Mapping[str, Any]:
    return _load_json("cann_onnx_ops.json")


_NUMERIC = frozenset({"float16", "float32", "int8", "uint8", "int32", "int64"})
_INTS = frozenset({"int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"})
_NPU_DTYPES = {  # the classes named in cann_onnx_ops.json
    "float": frozenset({"float16", "float32"}),
    "fp16": frozenset({"float16"}),
    "numeric": _NUMERIC,
    "any": _NUMERIC | _INTS | {"bool"},
    "bool": frozenset({"bool"}),
    "int": _INTS,
}
_CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})
_PLACEMENT = {
    "host": "control flow runs on the host",
    "data_dependent": "output shape depends on the data; ATC compiles static shapes only",
    "ai_cpu": "runs on the NPU's AI CPU, not AI Core (assumed for random generators)",
}


def _npu_domain(node: Node, graph: Graph, precision: str) -> str | None:
    if _domain(node.domain):
        return f"domain {node.domain!r}: ATC parses only the default ONNX domain"
    return None


def _npu_tensors_only(node: Node, graph: Graph, precision: str) -> str | None:
    found = _non_tensor(graph, (*node.inputs, *node.outputs))
    return f"{found}: ATC compiles tensors only" if found else None


def _npu_control_flow(node: Node, graph: Graph, precision: str) -> str | None:
    return _PLACEMENT["host"] if node.op_type in _CONTROL_FLOW or node.has_subgraphs else None


def _npu_listed(node: Node, graph: Graph, precision: str) -> str | None:
    if node.op_type in _cann()["ops"]:
        return None
    first, top = _first_versions().get(("", node.op_type)), max(_cann()["default_opsets"])
    if first is not None and first > top:
        return f"first defined in opset {first}, newer than CANN's ONNX parser (opsets <= {top})"
    return "not in CANN's ONNX operator list"


def _npu_opset(node: Node, graph: Graph, precision: str) -> str | None:
    lo, hi = _cann()["ops"][node.op_type].get("opsets", _cann()["default_opsets"])
    opset = _opset(graph, "")
    if opset is not None and not lo <= opset <= hi:
        return f"model opset {opset} is outside CANN's parser range v{lo}-v{hi}"
    return None


def _npu_placement(node: Node, graph: Graph, precision: str) -> str | None:
    placement = _cann()["ops"][node.op_type].get("placement")
    return _PLACEMENT[placement] if placement else None


def _npu_dtypes(node: Node, graph: Graph, precision: str) -> str | None:
    tensors = _tensors(graph, (*node.inputs, *node.outputs))
    for t in tensors:
        dt = _dtype(t)
        if dt == "float64":
            return "dtype float64 not supported: AI Core has no fp64 (ascend-facts §1.1-1.2)"
        if dt is not None and dt not in _NPU_DTYPES["any"]:
            return f"dtype {dt} not supported by CANN's ONNX operators"
    entry = _cann()["ops"][node.op_type]
    allowed = _NPU_DTYPES[entry["dtypes"]]
    data = _tensors(graph, node.inputs)
    dt = _dtype(data[0]) if data else None
    if dt is None:
        return None
    if dt == "float32" and precision in ("fp16", "int8") and "float16" in allowed:
        return None  # ATC's default precision mode computes float32 data in float16
    if dt == "float32" and precision == "fp32" and not entry.get("keep_fp32", True):
        return "float32 with precision fp32 (atc must_keep_origin_dtype) not supported"
    if dt not in allowed:
        under = " with precision fp32" if dt == "float32" else ""
        return f"input dtype {dt}{under} not supported (CANN takes {'/'.join(sorted(allowed))})"
    return None


def _npu_static(node: Node, graph: Graph, precision: str) -> str | None:
    # An output nothing reads (Dropout's mask) may stay uninferred; it is never materialised.
    used = [o for o in node.outputs if graph.consumers(o) or o in graph.outputs]
    for t in _tensors(graph, (*node.inputs, *used)):
        if not t.is_static:
            dims = zip(t.shape or (), t.symbols or [None] * len(t.shape or ()), strict=True)
            shape = [d if d is not None else (sym or "?") for d, sym in dims]
            shape_text = "unknown" if t.shape is None else f"[{', '.join(map(str, shape))}]"
            return f"dynamic shape: ATC needs static shapes ({t.name!r} has shape {shape_text})"
    return None


def _npu_limits(node: Node, graph: Graph, precision: str) -> str | None:
    check = _NPU_LIMITS.get(node.op_type)
    return check(node, graph) if check else None


# Attribute and shape limits from CANN 8.0.0's operator pages (page names in cann_onnx_ops.json).
def _spatial(node: Node, graph: Graph, name: str, default: int) -> list[int]:
    rank = len(graph.tensors[node.inputs[0]].shape or ())
    return list(node.attrs.get(name, [default] * (rank - 2)))


def _outside(values: Sequence[int], lo: int, hi: int) -> bool:
    return any(not lo <= v <= hi for v in values)


def _conv_limits(node: Node, graph: Graph) -> str | None:
    x, w = _tensors(graph, node.inputs[:2])
    rank, group = len(x.shape), node.attrs.get("group", 1)
    dilations, strides = _spatial(node, graph, "dilations", 1), _spatial(node, graph, "strides", 1)
    if rank not in (4, 5):
        return f"Conv on a {rank}-D input not supported (CANN: 4-D or 5-D)"
    # The op page says "group must be 1", but CANN's ONNX Conv parser plugin passes `group` on
    # as Conv2D's `groups` attribute (ops-nn common/src/framework/conv_onnx_plugin.cpp), and
    # grouped networks compiled by ATC were measured on the chip (the ModelZoo ResNeXt-50 and
    # ShuffleNetV1 rows of the calibration table), so grouped convolution is accepted; only
    # channel counts that the groups do not divide are refused.
    if group < 1 or x.shape[1] % group or w.shape[0] % group:
        return (
            f"Conv with group={group} does not divide its {x.shape[1]} input and "
            f"{w.shape[0]} output channels"
        )
    if rank == 5 and node.attrs.get("auto_pad", "NOTSET") != "NOTSET":
        return "3-D Conv with auto_pad other than NOTSET not supported"
    checks = (
        ("dilations", dilations[-2:], 1, 255),
        ("strides", strides[-2:], 1, 63),
        ("pads", list(node.attrs.get("pads", [])), 0, 255),
        ("kernel", list(w.shape[-2:]), 1, 255),
        ("input width", [x.shape[-1]], 1, 4096),
    )
    return next(
        (
            f"Conv with {what}={vals} not supported (CANN: each in [{lo}, {hi}])"
            for what, vals, lo, hi in checks
            if _outside(vals, lo, hi)
        ),
        None,
    )


def _pool_limits(node: Node, graph: Graph, auto_pads: frozenset[str]) -> str | None:
    op, x = node.op_type, graph.tensors[node.inputs[0]]
    kernel, strides = list(node.attrs.get("kernel_shape", [])), _spatial(node, graph, "strides", 1)
    auto_pad = node.attrs.get("auto_pad", "NOTSET")
    if len(x.shape) != 4:
        return f"{op} on a {len(x.shape)}-D input not supported (CANN: 2-D pooling, NCHW)"
    if auto_pad not in auto_pads:
        return f"{op} with auto_pad={auto_pad} not supported"
    if not 1 <= x.shape[-1] <= 4096:
        return f"{op} with input width {x.shape[-1]} not supported (CANN: in [1, 4096])"
    if _outside(strides, 1, 63) or _outside(kernel, 1, 255) or kernel[0] * kernel[-1] > 256:
        return f"{op} with kernel_shape={kernel}, strides={strides} runs on the AI CPU, not AI Core"
    return None


def _maxpool_limits(node: Node, graph: Graph) -> str | None:
    if node.attrs.get("storage_order", 0) != 0:
        return "MaxPool with storage_order=1 not supported"
    if any(d != 1 for d in _spatial(node, graph, "dilations", 1)):
        return "MaxPool with dilations not supported"
    if len([o for o in node.outputs if o]) > 1:
        return "MaxPool with an Indices output not supported (CANN: one output)"
    if node.attrs.get("auto_pad") == "VALID" and node.attrs.get("ceil_mode", 0):
        return "MaxPool with auto_pad=VALID and ceil_mode=1 not supported"
    return _pool_limits(node, graph, frozenset({"NOTSET", "SAME_UPPER", "VALID"}))


def _avgpool_limits(node: Node, graph: Graph) -> str | None:
    # The op page lists no count_include_pad; CANN's ONNX AveragePool parser maps it onto the
    # AvgPool kernel's `exclusive` attribute (exclusive = not count_include_pad), and padded
    # torchvision pools (count_include_pad=1, Inception-v3's branch pools) were measured on the
    # chip, so neither setting is refused.
    return _pool_limits(node, graph, frozenset({"NOTSET", "SAME_UPPER", "VALID"}))


def _lrn_limits(node: Node, graph: Graph) -> str | None:
    size = node.attrs["size"]
    return None if size % 2 else f"LRN with even size={size} not supported (CANN: odd sizes)"


def _batchnorm_limits(node: Node, graph: Graph) -> str | None:
    rank = len(graph.tensors[node.inputs[0]].shape)
    if rank != 4:
        return f"BatchNormalization on a {rank}-D input not supported (CANN: 4-D)"
    if node.attrs.get("training_mode", 0):
        return "BatchNormalization with training_mode=1 not supported (inference only)"
    return None


_NPU_LIMITS: dict[str, Callable[[Node, Graph], str | None]] = {
    "Conv": _conv_limits,
    "MaxPool": _maxpool_limits,
    "AveragePool": _avgpool_limits,
    "LRN": _lrn_limits,
    "BatchNormalization": _batchnorm_limits,
}

# In order: later checks may assume the op is listed and its shapes are static.
_NPU_CHECKS = (
    _npu_domain,
    _npu_tensors_only,
    _npu_control_flow,
    _npu_listed,
    _npu_opset,
    _npu_placement,
    _npu_dtypes,
    _npu_static,
    _npu_limits,
)


def npu_verdict(node: Node, graph: Graph, precision: str) -> Verdict:
    for check in _NPU_CHECKS:
        reason = check(node, graph, precision)
        if reason:
            prefix = "" if reason.startswith(node.op_type + " ") else f"{node.op_type}: "
            return Verdict(False, prefix + reason)
    return Verdict(True, f"{node.op_type}: on CANN's ONNX operator list")


def npu_ops() -> frozenset[str]:
    """Op types of the default domain on CANN's list (subject to dtypes and attributes)."""
    first = _first_versions()
    top = max(_cann()["default_opsets"])
    return frozenset(
        op
        for op, entry in _cann()["ops"].items()
        if "placement" not in entry and first.get(("", op), 0) <= top
    )
