"""Which mechanism each op's time came from: the one home of that judgement.

Six mechanisms, named as Ascend performance engineers name them:

- ``cube``: Cube (matrix) compute; ``vector``: Vector compute;
- ``memory``: the MTE engines moving data to and from GM (HBM and L2);
- ``dispatch``: the task scheduler starting the op's kernel (a simulated op's
  ``launch_cycles``, spent just before its span);
- ``sync``: neither compute nor transfers kept a unit busy for half the op: fixed latencies,
  pipeline fill and set_flag/wait_flag waits dominate (the simulator's ``latency`` bound; on a
  real chip, Scalar time, which issues and waits on those flags);
- ``layout``: a TransData layout conversion (ND/NCHW ⇄ NC1HWC0/FRACTAL), whatever unit ran it.

A simulated op (:class:`~hetnpu.simulator.result.OpRecord`) splits as: its launch cycles to
``dispatch``; its body (start to end) to one mechanism: ``layout`` for TransData, else by the
simulator's own bound (``compute`` → ``cube`` or ``vector``, whichever unit was busier;
``memory`` → ``memory``; ``latency`` and work-free ops → ``sync``). Units overlap inside an
op, so the body is charged whole to the mechanism that bounded it rather than split by busy
cycles (which would add up to more than the op's time).

A measured op (:class:`~hetnpu.traces.read.OpSpan` read from msprof or torch_npu) has no launch
inside its Task Duration; its mechanism is the largest of its PipeUtilization ratios (``mac`` →
``cube``, ``vec`` → ``vector``, ``mte1``/``mte2``/``mte3``/``fixpipe`` → ``memory``,
``scalar`` → ``sync``), ``layout`` for TransData, and ``""`` when the profile kept no ratios.

Left out: splitting an op's body across mechanisms by overlap (the simulator records busy cycles
per unit, not which unit was on the critical path at each cycle), and HCCL communication (the
single-chip simulator has none).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "COLOURS",
    "CUBE",
    "DISPATCH",
    "LAYOUT",
    "MECHANISMS",
    "MEMORY",
    "SYNC",
    "VECTOR",
    "dominant",
    "op_mechanism",
    "op_time_parts",
    "pipe_mechanism",
    "result_time_parts",
]

CUBE, VECTOR, MEMORY, DISPATCH, SYNC, LAYOUT = (
    "cube",
    "vector",
    "memory",
    "dispatch",
    "sync",
    "layout",
)
MECHANISMS = (CUBE, VECTOR, MEMORY, DISPATCH, SYNC, LAYOUT)

COLOURS = {
    CUBE: "good",
    VECTOR: "olive",
    MEMORY: "thread_state_iowait",
    DISPATCH: "grey",
    SYNC: "yellow",
    LAYOUT: "terrible",
}
"""Mechanism → Chrome trace ``cname`` (the catapult colour names Perfetto and chrome://tracing
accept), so a timeline's colours say where time went."""

LAYOUT_OPS = frozenset({"TransData"})

# PipeUtilization unit (the column name without its aic_/aiv_ prefix and _ratio suffix).
_PIPE = {
    "mac": CUBE,
    "cube": CUBE,
    "vec": VECTOR,
    "mte1": MEMORY,
    "mte2": MEMORY,
    "mte3": MEMORY,
    "fixpipe": MEMORY,
    "scalar": SYNC,
}
_RATIO = re.compile(r"^(?:ai[cv]_)?([a-z0-9]+?)(?:_fp16|_int8|_fp32)?_ratio$")


def op_time_parts(op: Any) -> dict[str, int]:
    """Cycles of a simulated op per mechanism; they add up to ``launch_cycles + cycles``.

    >>> from hetnpu.simulator.result import OpRecord
    >>> conv = OpRecord(0, "c", "Conv", 10, 110, (), 300, 20, 90, "compute", 0, 0, 0, 0, 0, 0,
    ...                 launch_cycles=10)
    >>> op_time_parts(conv)
    {'dispatch': 10, 'cube': 100}
    """
    parts: dict[str, int] = {}
    if op.launch_cycles:
        parts[DISPATCH] = op.launch_cycles
    body = op.end - op.start
    if body <= 0:
        return parts
    if op.op_type in LAYOUT_OPS:
        mech = LAYOUT
    elif op.bound == "compute":
        mech = CUBE if op.cube_cycles >= op.vector_cycles else VECTOR
    elif op.bound == "memory":
        mech = MEMORY
    else:
        mech = SYNC
    parts[mech] = parts.get(mech, 0) + body
    return parts


def dominant(parts: Mapping[str, float]) -> str:
    """The mechanism with the most time (ties in :data:`MECHANISMS` order); ``""`` if none."""
    best = ""
    for m in MECHANISMS:
        if parts.get(m, 0) > parts.get(best, 0):
            best = m
    return best


def op_mechanism(op: Any) -> str:
    """The mechanism most of a simulated op's time (launch included) came from."""
    if op.fused_into is not None:
        return ""
    return dominant(op_time_parts(op))


def result_time_parts(ops: Iterable[Any]) -> dict[str, int]:
    """Cycles per mechanism summed over simulated ops, in :data:`MECHANISMS` order."""
    total = dict.fromkeys(MECHANISMS, 0)
    for op in ops:
        for m, c in op_time_parts(op).items():
            total[m] += c
    return total


def pipe_mechanism(op_type: str, ratios: Mapping[str, float | None]) -> str:
    """The mechanism of a measured op from its PipeUtilization ratios (msprof column names).

    >>> pipe_mechanism("MatMulV2", {"aic_mac_ratio": 0.82, "aic_mte2_ratio": 0.96})
    'memory'
    >>> pipe_mechanism("TransData", {"aiv_vec_ratio": 0.5})
    'layout'
    >>> pipe_mechanism("Add", {})
    ''
    """
    if op_type in LAYOUT_OPS:
        return LAYOUT
    best: dict[str, float] = {}
    for column, value in ratios.items():
        m = _RATIO.match(column)
        mech = _PIPE.get(m.group(1)) if m else None
        if mech is None or value is None:
            continue
        best[mech] = max(best.get(mech, 0.0), float(value))
    return dominant(best)
