"""Which ONNX ops each kind of device runs, and why not.

Each device kind answers from the list its real toolchain works from:

* ``npu`` (and ``sim-npu``, which answers exactly as ``npu``): CANN's list of ONNX operators
  that ATC converts (``atc --framework=5``), kept with its source in
  ``data/cann_onnx_ops.json``; per-op attribute limits from the operator pages are the small
  predicates in ``_NPU_LIMITS``.
* ``cpu``: onnxruntime's CPU execution provider, asked at run time for its kernel registry. An
  op it has no kernel for may still run on onnx's ReferenceEvaluator
  (:func:`reference_evaluator_supports`), which the CPU backend falls back to.
* ``gpu``: onnxruntime's CUDA execution provider: the live registry when onnxruntime-gpu is
  installed, else ``data/ort_cuda_kernels.json``, a snapshot of onnxruntime's own
  ``docs/OperatorKernels.md``.

A node whose outputs are all constants folds away at compile time, so every device accepts it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

import onnx
import onnxruntime
from onnx import defs
from onnx.reference import ReferenceEvaluator
from onnx.reference.ops import load_op
from onnxruntime.capi import _pybind_state

from hetnpu.errors import ConfigError
from hetnpu.graph.ir import Graph, Node, Tensor

__all__ = [
    "DEVICE_KINDS",
    "PRECISIONS",
    "Verdict",
    "can_run",
    "capability_table",
    "reference_evaluator_supports",
    "supported_ops",
]

DEVICE_KINDS = ("npu", "gpu", "cpu")
_ALIASES = {"sim-npu": "npu"}
PRECISIONS = ("fp16", "fp32", "int8")
"""NPU precision: ``fp16`` is ATC's default (float32 data computed in float16); ``fp32`` is
``atc --precision_mode=must_keep_origin_dtype``; ``int8`` is a quantised model (Cube ops in
int8, the rest in float16), so it admits what ``fp16`` admits. CPU and GPU ignore it."""

_DATA = Path(__file__).with_name("data")
_ORT_OPEN_END = 2**31 - 1  # onnxruntime's "no upper opset bound"


@dataclass(frozen=True)
class Verdict:
    """Whether a device can run a node; ``reason`` says why not (or which runtime will)."""

    supported: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.supported


def can_run(device: str, node: Node, graph: Graph, *, precision: str = "fp16") -> Verdict:
    """Can ``device`` run ``node`` of ``graph``?

    Parameters
    ----------
    device
        One of :data:`DEVICE_KINDS` or ``"sim-npu"``.
    node, graph
        The node and the loaded graph it belongs to (for tensor dtypes, shapes and opsets).
    precision
        NPU precision mode, one of :data:`PRECISIONS`.

    Returns
    -------
    Verdict
        Truthy when supported; ``reason`` names the rule that refused it, e.g.
        ``"Loop: control flow runs on the host"``.

    Raises
    ------
    ConfigError
        Unknown device or precision.

    Examples
    --------
    >>> can_run("npu", g.node("conv2"), g)  # doctest: +SKIP
    Verdict(supported=False, reason='Conv with group=2 not supported (CANN: group=1 or depthwise)')
    """
    kind = _device_kind(device)
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if node.is_constant:
        return Verdict(True, f"{node.op_type}: constant, folded at compile time")
    return _CHECKS[kind](node, graph, precision)


def supported_ops(device: str) -> frozenset[str]:
    """Op types of the default ONNX domain that ``device`` may run (subject to dtypes/attributes).

    Raises
    ------
    ConfigError
        Unknown device.
    """
    kind = _device_kind(device)
    if kind == "npu":
        first = _first_versions()
        top = max(_cann()["default_opsets"])
        return frozenset(
            op
            for op, entry in _cann()["ops"].items()
            if "placement" not in entry and first.get(("", op), 0) <= top
        )
    if kind == "gpu":
        return frozenset(op for dom, op in _cuda_kernels()[0] if dom == "")
    return _cpu_ops()


def capability_table(
    graph: Graph, devices: Sequence[str], *, precision: str = "fp16"
) -> dict[str, dict[str, Verdict]]:
    """Every node against every device: ``{node_name: {device: Verdict}}`` in topological order.

    Raises
    ------
    ConfigError
        Unknown device or precision.
    """
    for device in devices:
        _device_kind(device)
    return {
        node.name: {d: can_run(d, node, graph, precision=precision) for d in devices}
        for node in graph
    }


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


# --- shared helpers ---------------------------------------------------------------------------


def _device_kind(device: str) -> str:
    kind = _ALIASES.get(device, device)
    if kind not in DEVICE_KINDS:
        known = ", ".join((*DEVICE_KINDS, *_ALIASES))
        raise ConfigError(f"unknown device {device!r}; known devices: {known}")
    return kind


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


# --- onnxruntime kernel registries (CPU live, CUDA live or snapshot) ---------------------------


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


# --- CPU: onnxruntime, else the ReferenceEvaluator ----------------------------------------------

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


def _cpu(node: Node, graph: Graph, precision: str) -> Verdict:
    ort = _ort_verdict(
        _live_kernels("CPUExecutionProvider"), "onnxruntime CPU", node, graph, fp16_cast=True
    )
    if ort:
        return ort
    if reference_evaluator_supports(node, graph):
        return Verdict(True, f"{ort.reason}; onnx ReferenceEvaluator implements it")
    return Verdict(False, f"{ort.reason}, nor does onnx ReferenceEvaluator implement it")


@functools.cache
def _cpu_ops() -> frozenset[str]:
    ort = {op for dom, op in _live_kernels("CPUExecutionProvider") if dom == ""}
    latest = defs.onnx_opset_version()
    ref = {
        s.name
        for s in defs.get_all_schemas()
        if s.domain == "" and s.name not in ort and _reference_has("", s.name, latest)
    }
    return frozenset(ort | ref)


def _gpu(node: Node, graph: Graph, precision: str) -> Verdict:
    table, label = _cuda_kernels()
    return _ort_verdict(table, label, node, graph, fp16_cast=False)


# --- NPU: CANN's ONNX operator list -------------------------------------------------------------


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
    # The page says group must be 1; depthwise (group = in = out channels) lowers to
    # DepthwiseConv2D, the only grouped case MindSpore's Ascend Conv2D accepts.
    if group != 1 and not group == x.shape[1] == w.shape[0]:
        dil = f" and dilations={dilations}" if any(d != 1 for d in dilations) else ""
        return f"Conv with group={group}{dil} not supported (CANN: group=1 or depthwise)"
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
    if node.attrs.get("count_include_pad", 0):
        return "AveragePool with count_include_pad=1 not supported"
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
    _npu_control_flow,
    _npu_listed,
    _npu_opset,
    _npu_placement,
    _npu_dtypes,
    _npu_static,
    _npu_limits,
)


def _npu(node: Node, graph: Graph, precision: str) -> Verdict:
    for check in _NPU_CHECKS:
        reason = check(node, graph, precision)
        if reason:
            prefix = "" if reason.startswith(node.op_type + " ") else f"{node.op_type}: "
            return Verdict(False, prefix + reason)
    return Verdict(True, f"{node.op_type}: on CANN's ONNX operator list")


_CHECKS: dict[str, Callable[[Node, Graph, str], Verdict]] = {
    "npu": _npu,
    "gpu": _gpu,
    "cpu": _cpu,
}
