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
One module per answer: :mod:`.npu`, :mod:`.cpu`, :mod:`.ort` (onnxruntime's registries and the
GPU); what they share is in ``_common``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hetnpu.devices.capability._common import PRECISIONS, Verdict
from hetnpu.devices.capability.cpu import cpu_ops, cpu_verdict, reference_evaluator_supports
from hetnpu.devices.capability.npu import npu_ops, npu_verdict
from hetnpu.devices.capability.ort import _cuda_kernels, gpu_verdict
from hetnpu.devices.names import DEVICE_KINDS
from hetnpu.devices.names import device_kind as _device_kind
from hetnpu.errors import ConfigError
from hetnpu.graph.ir import Graph, Node

__all__ = [
    "DEVICE_KINDS",
    "PRECISIONS",
    "Verdict",
    "can_run",
    "capability_table",
    "reference_evaluator_supports",
    "supported_ops",
]

_CHECKS: dict[str, Callable[[Node, Graph, str], Verdict]] = {
    "npu": npu_verdict,
    "gpu": gpu_verdict,
    "cpu": cpu_verdict,
}


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
    >>> from onnx import TensorProto, helper
    >>> from hetnpu.graph import load
    >>> x, y = (helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 8]) for n in "xy")
    >>> mish = helper.make_node("Mish", ["x"], ["y"], name="mish")
    >>> g = load(helper.make_model(helper.make_graph([mish], "g", [x], [y])))
    >>> can_run("npu", g.node("mish"), g)
    Verdict(supported=False, reason="Mish: not in CANN's ONNX operator list")
    >>> bool(can_run("cpu", g.node("mish"), g))
    True
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
        return npu_ops()
    if kind == "gpu":
        return frozenset(op for dom, op in _cuda_kernels()[0] if dom == "")
    return cpu_ops()


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
