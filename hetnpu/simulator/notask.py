"""Concatenations GE turns into no task: the inputs are written where the output lies.

CANN's Graph Engine runs ``ConcatNotaskPass`` at the default optimisation level (``--oo_level``
O3, "all optimisations on": ATC reference, ``--oo_level``). When every input of a ConcatD sits
in memory exactly where it belongs in the output, GE allocates the inputs as consecutive slices
of the output buffer, marks the Concat ``_no_task`` and generates no kernel for it: no launch,
no copy (mirror-cann/ge ``compiler/graph/passes/memory_optimize/concat_notask_pass.cc``).
That holds when, in the runtime layout, every axis before the concatenated one is 1 and the
concatenated axis carries no padding. For an NCHW activation kept in NC1HWC0 and concatenated
on C, the runtime axis is C1: the batch must be 1 and each input's channels a multiple of C0
(``CheckRealConcatDim``, ``CheckConcatDimAlignment``); for an ND tensor every axis before the
concatenated one must be 1. The pass further requires (``InputCheck``) every input's size to
be a multiple of 32 bytes, no input twice, no input produced by a graph input or a constant,
none that is a graph output, none produced by a Concat already made no-task, and none already
placed in another no-task Concat's output (``can_reused_for_concat_optimize``: the first Concat
in graph order claims a producer's output).

So a DenseNet's dense-layer Concat, whose first input every later Concat of the block reads
too, is made no-task only once per block, while 13 of Inception-v3's 16 branch Concats are
(at batch 1; not the input transform's Concat of 1-channel planes, nor Mixed_7b's and
Mixed_7c's outer Concats, whose inputs include their no-task inner Concats' outputs).

Left out: the Split counterpart (``StridedReadOptimizer``, split outputs as views of the
input) and Pack; the pass's checks on subgraphs, memory types, L1/L2 fusion and reference
nodes, which these graphs do not raise. Also FE's ConcatCOptimize pass, which would make a
channel Concat of convolutions' outputs no task at any batch (the convolutions writing into its
output with a stride: hicann/ge ffdcbc9f ``concat_c_optimize_fusion_pass.cc``): the built-in
fusion switch config turns it off (the same repository's stub of it,
``tests/engines/nn_engine/depends/CANN_910b_stub/cann/opp/built-in/fusion_pass/config/
fusion_config.json``: ``"ConcatCOptimize": "off"``), and modelled on, it made Inception-v3's
rows at batch 4-64 3-9% faster than before, away from the measured ones (the 310P3's rows
10.8% -> 10.9% MAPE).
"""

from __future__ import annotations

from collections.abc import Mapping

from hetnpu.devices.layouts import nc1hwc0_c0
from hetnpu.devices.rates import device_dtype
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.lowering import dev_nbytes
from hetnpu.simulator.prepare import VIEW_OPS
from hetnpu.simulator.tiler import Precision

__all__ = ["notask_concats"]

_ALIGN_BYTES = 32
"""``TENSOR_ALIGN_SIZE`` of the pass: every input's size a multiple of 32 bytes."""


def notask_concats(graph: Graph, prec: Precision, fmt: Mapping[str, str]) -> set[str]:
    """Names of the Concat nodes GE runs as no task (see the module docstring).

    ``fmt`` is each tensor's layout on the chip (:func:`~hetnpu.simulator.formats.format_plan`).
    """
    outputs = set(graph.outputs)
    claimed: set[str] = set()
    notask: set[str] = set()
    for node in graph:
        if node.op_type != "Concat" or node.is_constant:
            continue
        inputs = [t for t in node.inputs if t]
        if len(inputs) < 2 or len(set(inputs)) != len(inputs):
            continue
        if not all(_input_ok(graph, t, outputs, claimed, notask) for t in inputs):
            continue
        if not all(_layout_ok(graph, t, node, fmt, prec) for t in inputs):
            continue
        notask.add(node.name)
        claimed.update(inputs)
    return notask


def _input_ok(graph: Graph, t: str, outputs: set[str], claimed: set[str], notask: set[str]) -> bool:
    if t in outputs or t in claimed:
        return False
    src = _real_producer(graph, t)
    return src is not None and not src.is_constant and src.name not in notask


def _real_producer(graph: Graph, t: str) -> Node | None:
    node = graph.producer(t)
    # GE traces reference ops (views) back to the real producer (GetFirstNotRefNode).
    while node is not None and node.op_type in VIEW_OPS and node.inputs and node.inputs[0]:
        node = graph.producer(node.inputs[0])
    return node


def _layout_ok(graph: Graph, t: str, node: Node, fmt: Mapping[str, str], prec: Precision) -> bool:
    tensor = graph.tensors.get(t)
    if tensor is None or tensor.shape is None or any(d is None for d in tensor.shape):
        return False
    shape = tuple(int(d) for d in tensor.shape)  # type: ignore[arg-type]
    rank = len(shape)
    axis = int(node.attrs.get("axis", 0))
    axis = axis + rank if axis < 0 else axis
    if not 0 <= axis < rank or dev_nbytes(graph, t, prec) % _ALIGN_BYTES:
        return False
    if fmt.get(t) == "NC1HWC0":
        # Runtime shape (N, C1, H, W, C0): NCHW axis a is runtime axis a (C is split into
        # C1 and C0, C1 in its place); C must be unpadded when it is the axis.
        c0 = nc1hwc0_c0(device_dtype(tensor.dtype, prec.name))
        runtime = (shape[0], -(-shape[1] // c0), shape[2], shape[3])
        if axis == 1 and shape[1] % c0:
            return False
        return all(d == 1 for d in runtime[:axis])
    return all(d == 1 for d in shape[:axis])
