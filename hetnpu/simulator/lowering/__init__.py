"""Lowering: each ONNX op to per-core instruction programs, by a registry keyed by op_type.

:data:`LOWERINGS` is the one place that lists which op types the simulator can time and which
function lowers them (as onnx/reference's ``_op_list.py``); the function follows from the op's
family in :mod:`hetnpu.graph.opfamilies`, the table :mod:`hetnpu.graph.cost` reads too.
:func:`lower` caches programs by (op signature, chip, options), so the repeated layers of a
model lower once.

Left out: op fusion beyond the epilogues listed in :data:`FUSED_EPILOGUES` and the residual Adds
of :func:`hetnpu.simulator.prepare.residual_adds` (ATC fuses more), and
ops that need AI CPU (they are reported unsupported).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from hetnpu.errors import ScheduleError
from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.opfamilies import COPY, FAMILY, FILL, GATHER, MOVEMENT, PERMUTE, ZERO_WORK_OPS
from hetnpu.simulator.lowering.attention import ATTENTION_LOWERINGS
from hetnpu.simulator.lowering.common import (
    MAX_OP_INSTRUCTIONS,
    LowerCtx,
    Lowered,
    Unsupported,
    dev_nbytes,
)
from hetnpu.simulator.lowering.matmul import lower_conv, lower_gemm, lower_matmul
from hetnpu.simulator.lowering.movement import (
    lower_copy,
    lower_fill,
    lower_gather,
    lower_permute,
    lower_zero,
)
from hetnpu.simulator.lowering.vector import (
    ELEMENTWISE_CPR,
    NORM_PASSES,
    REDUCE_OPS,
    lower_elementwise,
    lower_norm,
    lower_pool,
    lower_reduce,
)

__all__ = [
    "FUSED_EPILOGUES",
    "LOWERINGS",
    "MAX_OP_INSTRUCTIONS",
    "EventBudget",
    "LowerCtx",
    "Lowered",
    "Unsupported",
    "dev_nbytes",
    "event_budget",
    "lower",
    "signature",
]

Lowering = Callable[[Node, Graph, LowerCtx], Lowered]

_CUBE_OPS: dict[str, Lowering] = {"Conv": lower_conv, "MatMul": lower_matmul, "Gemm": lower_gemm}

_BY_FAMILY: dict[str, Lowering] = {
    "elementwise": lower_elementwise,
    "softmax": lower_norm,
    "norm": lower_norm,
    "reduction": lower_reduce,
    "pool": lower_pool,
    "zero": lower_zero,
}

_BY_MOVEMENT: dict[str, Lowering] = {
    COPY: lower_copy,
    GATHER: lower_gather,
    PERMUTE: lower_permute,
    FILL: lower_fill,
}

_TIMED: tuple[str, ...] = (
    *_CUBE_OPS,
    *ELEMENTWISE_CPR,
    *NORM_PASSES,
    *REDUCE_OPS,
    "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool",
    *sorted(ZERO_WORK_OPS),
    "Concat", "Slice", "Split", "Pad", "Expand", "Tile", "ReverseSequence", "Trilu",
    "Compress", "ScatterND", "ScatterElements",
    "Gather", "GatherElements", "GatherND",
    "Transpose", "DepthToSpace", "SpaceToDepth", "Resize", "Upsample",
    "ConstantOfShape", "EyeLike",
)  # fmt: skip
"""The ONNX ops the simulator times: those with a program shape and, for Vector ops, a cost
per repeat (:data:`ELEMENTWISE_CPR`, :data:`NORM_PASSES`)."""


def _lowering_of(op_type: str) -> Lowering:
    if op_type in _CUBE_OPS:
        return _CUBE_OPS[op_type]
    kind = FAMILY[op_type]
    return _BY_MOVEMENT[MOVEMENT[op_type]] if kind == "data_movement" else _BY_FAMILY[kind]


LOWERINGS: dict[str, Lowering] = {
    **{op: _lowering_of(op) for op in _TIMED},
    # Not an ONNX op: the layout conversion the chip inserts in front of a Conv.
    "TransData": lower_permute,
    # Opset-23 transformer ops, as CANN's fused kernels (lowering/attention.py).
    **ATTENTION_LOWERINGS,
}
"""op_type → lowering function."""

FUSED_EPILOGUES: frozenset[str] = frozenset({"Relu", "Clip", "LeakyRelu", "BatchNormalization"})
"""Ops ATC folds into a preceding Conv/Gemm/MatMul output path (BN into the weights, the
activation into the L0C→UB or FixPipe conversion); they cost nothing when so fused."""

FUSE_INTO: frozenset[str] = frozenset({"Conv", "Gemm", "MatMul"})

_CACHE: dict[tuple[Any, ...], Lowered] = {}
_CACHE_LIMIT = 4096


def signature(node: Node, graph: Graph) -> tuple[Any, ...]:
    """What a lowering may depend on: op type, attributes, and input/output shapes and dtypes."""
    tensors = tuple(
        (graph.tensors[t].shape, graph.tensors[t].dtype) if t in graph.tensors else None
        for t in (*node.inputs, *node.outputs)
    )
    attrs = tuple(sorted((k, repr(v)) for k, v in node.attrs.items()))
    return (node.op_type, node.domain, attrs, tensors)


def lower(node: Node, graph: Graph, ctx: LowerCtx, chip_key: tuple[Any, ...]) -> Lowered:
    """Lower ``node`` (cached); :class:`Unsupported` when no lowering applies."""
    fn = LOWERINGS.get(node.op_type)
    if fn is None or node.domain not in ("", "ai.onnx"):
        raise Unsupported(f"no NPU lowering for {node.domain or 'ai.onnx'}::{node.op_type}")
    key = (signature(node, graph), chip_key, ctx.prec.name, ctx.double_buffer, ctx.force_tile)
    hit = _CACHE.get(key)
    if hit is None:
        hit = fn(node, graph, ctx)
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = hit
    _charge(node, hit)
    return hit


class EventBudget:
    """The events a simulation may process, charged op by op as ops are lowered."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self.needed = 0
        """A lower bound on the events of the ops lowered so far: one per instruction, since
        every instruction ends in a SimPy timeout (runs take 1.8-2.3 per instruction)."""


_BUDGET: ContextVar[EventBudget | None] = ContextVar("hetnpu_event_budget", default=None)


@contextlib.contextmanager
def event_budget(max_events: int | None) -> Iterator[EventBudget | None]:
    """Within the block, :func:`lower` refuses an op that takes the run past ``max_events``.

    A simulator that lowers every op before running any learns that a model is too big before
    spending a single event on it; the check costs a sum of tuple lengths per op.

    Raises
    ------
    ScheduleError
        From :func:`lower`, naming the op that crossed the budget and the count reached.
    """
    if max_events is None:
        yield None
        return
    budget = EventBudget(max_events)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


def _charge(node: Node, lowered: Lowered) -> None:
    budget = _BUDGET.get()
    if budget is None:
        return
    count = lowered.instructions
    budget.needed += count
    if budget.needed > budget.max_events:
        raise ScheduleError(
            f"op {node.name!r} ({node.op_type}) lowers to {count:,} instructions, which takes "
            f"the run to at least {budget.needed:,} SimPy events, over max_events="
            f"{budget.max_events:,}"
        )
