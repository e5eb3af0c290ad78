"""One op's record after it ran on the simulated chip: its span on each core, the busy time
of each unit, its bound (compute, memory, latency) against its roofline, and its bytes.

Left out: per-instruction detail beyond what the trace level keeps (``run.raw``).
"""

from __future__ import annotations

from typing import Any

from hetnpu.graph.ir import Node
from hetnpu.simulator.bounds import roofline_bounds
from hetnpu.simulator.isa import UNITS
from hetnpu.simulator.lowering.common import Lowered
from hetnpu.simulator.result import OpRecord

__all__ = ["record_op"]

_COMPUTE = frozenset({"CUBE", "VECTOR"})
"""Units whose busy time makes an op compute-bound; the others (MTE1/2/3, FixPipe) move data."""


def record_op(
    run: Any, index: int, node: Node, low: Lowered, t0: int, hbm0: int, l20: int, started: list[Any]
) -> OpRecord:
    """The record of ``node``'s run on ``run``'s chip, from the unit spans of every core it
    ``started``; adds its unit busy time and per-level bytes to ``run``'s totals."""
    end = run.env.now
    per_unit = dict.fromkeys(UNITS, 0)
    spans = []
    compute = memory = 0
    trace_ops = run.trace_level == "op"
    raw = run.raw
    programs: dict[int, list[Any]] = {}
    for core, cp, units, uspans, recs in started:
        name = run.cores[core]
        c_end = t0
        for u, (first, u_end, busy, _count) in zip(units, uspans, strict=True):
            per_unit[u] += busy
            if u_end > c_end:
                c_end = u_end
            if u in _COMPUTE:
                if busy > compute:
                    compute = busy
            elif busy > memory:
                memory = busy
            if trace_ops:
                raw.append((name, u, first, u_end, node.name, index, busy))
        if run.trace_level is not None:
            raw.append(
                (name, "SCALAR", t0, t0 + cp.scalar_cycles, node.name, index, len(cp.instrs))
            )
        if recs is not None:
            for u, rec in zip(units, recs, strict=True):
                for idx, s, e in rec:
                    ins = cp.instrs[idx]
                    raw.append((name, u, s, e, ins.op, index, ins.nbytes))
        spans.append((name, t0, c_end))
        entry = programs.setdefault(id(cp), [cp, 0])
        entry[1] += 1
    gm_bytes = 0
    for cp, count in programs.values():
        gm_bytes += cp.gm_bytes * count
        per_unit["SCALAR"] += cp.scalar_cycles * count
        for lvl, b in cp.level_bytes.items():
            run.level_bytes[lvl] = run.level_bytes.get(lvl, 0) + b * count
    for u, b in per_unit.items():
        run.busy[u] += b
    cycles = end - t0
    if not started:
        bound = "zero"
    elif max(compute, memory) * 2 < cycles:
        bound = "latency"
    else:
        bound = "compute" if compute >= memory else "memory"
    comp_b, mem_b = roofline_bounds(node, run.graph, low, run.ctx, run.bus_bpc, gm_bytes)
    if not started:
        comp_b = mem_b = 0
    hbm = run.hbm.nbytes - hbm0
    return OpRecord(
        index,
        node.name,
        node.op_type,
        t0,
        end,
        tuple(spans),
        per_unit["CUBE"],
        per_unit["VECTOR"],
        per_unit["MTE1"] + per_unit["MTE2"] + per_unit["MTE3"] + per_unit["FIXPIPE"],
        bound,
        max(comp_b, mem_b),
        comp_b,
        mem_b,
        low.macs,
        hbm + run.l2.nbytes - l20,
        hbm,
        low.tile,
        launch_cycles=run.op_launch,
    )
