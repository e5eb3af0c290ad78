"""The chip: AI cores sharing HBM and L2, running a model's ops one after another on one stream.

:func:`simulate` lowers each op (cached), starts every core's unit processes at once, and
starts the next op when the last unit of this one finishes, as a model's tasks run in order on
one stream. Coupled chips (310, 310P, 910) run Cube and Vector ops on the same AI cores; split
chips (910B) run Cube ops on the AIC cores and Vector ops on the AIV cores (1:2), which exchange
data through GM (ascend-facts §1.9). A 4-D float input that feeds a Conv first goes through a
TransData op into NC1HWC0, as ATC inserts one (§3.5); epilogues that ATC fuses into a Conv or
MatMul (ReLU, BatchNormalization...) are recorded as ``fused`` and cost nothing, a residual
Add fed by a Conv (:func:`~hetnpu.simulator.prepare.residual_adds`) is read and added in the
convolution's epilogue on coupled chips and reads only its other input after it on split ones,
and a chain of elementwise ops runs as its first op's kernel (:mod:`~hetnpu.simulator.ubfusion`).

L2 is modelled per tensor: a tensor read the first time in an op comes from HBM for its unique
bytes (repeat reads by other cores or blocks then hit L2), a tensor resident in L2 (written or
read recently, least recently used first out, ``l2_bytes`` in total) is read from L2, and an
output that fits is written into L2. A fused kernel's write stands for its epilogue's output
(a Conv with its ReLU, a convolution with its residual Add: :func:`~hetnpu.simulator.prepare.
kernel_aliases`), so the consumers of that output find it in L2. HBM and L2 are shared FIFO
buses (:class:`~hetnpu.simulator.core.Bus`).

Each op that runs as a kernel of its own waits ``task_launch_s`` before it starts (the task
scheduler starting it on the cores; a fused epilogue launches nothing). A Concat that GE makes
no task (:mod:`~hetnpu.simulator.notask`: batch 1, C0-aligned channels) neither launches nor
moves anything: its producers wrote their outputs in place, and its output is resident in L2
when all of its inputs are.

A dirty tensor evicted from L2 by an op's tensors is written back to HBM on the HBM bus,
reserved when the op starts, and the op cannot complete before that write-back has (CANN
Ascend C best practices, "Setting a Proper L2 CacheMode": the replaced data "needs to be
written back to the GM during the replacement (this process occupies the GM bandwidth). After
the old data is written back, the new data can enter the L2 cache"). The page is written for
A2/A3 (910B/910C); GE's platform configs mark the 310P3's and 910's L2 as a cache too, and the
310's as a buffer GE allocates, which frees a tensor after its last reader instead
(:mod:`~hetnpu.simulator.l2`, the spec's ``l2_kind``).

The 310P's standalone vector cores run nothing: GE compiles a model for the AI cores and
excludes the vector-core engine unless ATC's ``core_type`` is ``VectorCore`` (hicann/ge
ffdcbc9f, ``compiler/engines/manager/engine_manager/dnnengine_manager.cc``,
``DNNEngineManager::GetExcludeEngines``).

Left out: the write-back of the graph's dirty outputs at the end of a run is counted in
``hbm_bytes`` but not timed; what :mod:`~hetnpu.simulator.l2` leaves out of L2; NoC topology,
and overlap between consecutive ops (a launch included).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import simpy

from hetnpu.devices.presets import npu_spec
from hetnpu.errors import ConfigError, ScheduleError
from hetnpu.graph.control import ControlOptions
from hetnpu.graph.ir import Graph, Node
from hetnpu.graph.onnx_io import as_graph
from hetnpu.simulator.control import EXPANDED_OPS, run_expanded
from hetnpu.simulator.core import (
    BIG,
    ROLE_IDS,
    Bus,
    CompiledProgram,
    Pipe,
    compiled_programs,
    run_core,
)
from hetnpu.simulator.formats import format_plan
from hetnpu.simulator.isa import UNITS
from hetnpu.simulator.l2 import L2Residency, Lifetimes
from hetnpu.simulator.lowering import Unsupported, event_budget, lower
from hetnpu.simulator.lowering.common import LowerCtx, Lowered
from hetnpu.simulator.notask import notask_concats
from hetnpu.simulator.op_record import record_op
from hetnpu.simulator.prepare import (
    VIEW_OPS,
    conv_residuals,
    device_nbytes,
    fusions,
    input_transdata,
    kernel_aliases,
    matmul_ub_fusion,
    npu_refusal,
    residual_adds,
)
from hetnpu.simulator.result import OpRecord, SimResult, UnsupportedOp
from hetnpu.simulator.spec_key import chip_key, lowering_key
from hetnpu.simulator.tiler import precision_info

__all__ = ["chip_key", "simulate"]

_COUPLED_UNITS = UNITS
_AIC_UNITS = ("SCALAR", "MTE2", "MTE1", "CUBE", "FIXPIPE")
_AIV_UNITS = ("SCALAR", "MTE2", "VECTOR", "MTE3")


class _Run:
    """State of one simulation (the driver process and its bookkeeping)."""

    def __init__(
        self,
        graph: Graph,
        spec: Any,
        ctx_for: Callable[[str | None], LowerCtx],
        trace_level: str | None,
        progress: Callable[[int, int], None] | None,
    ) -> None:
        self.graph, self.spec, self.ctx_for = graph, spec, ctx_for
        self.ctx = ctx = ctx_for(None)
        self.trace_level = trace_level
        self.progress = progress
        self.env = simpy.Environment()
        clock = spec.clock_hz
        self.hbm = Bus("HBM", spec.hbm_bytes_per_s / clock)
        self.l2 = Bus("L2", spec.l2_bytes_per_s / clock)
        self.key = lowering_key(spec)
        self.launch_cycles = round(float(getattr(spec, "task_launch_s", 0.0)) * spec.clock_hz)
        """Cycles the task scheduler takes to start one kernel (``task_launch_s``)."""
        self.launched = 0
        """Cycles spent starting kernels over the run."""
        self.op_launch = 0
        """Launch cycles of the op being run."""
        if ctx.split:
            self.cores = [f"aic{i}" for i in range(ctx.cube_cores)]
            self.cores += [f"aiv{i}" for i in range(ctx.vector_cores)]
            self.groups = {
                "cube": list(range(ctx.cube_cores)),
                "vector": list(range(ctx.cube_cores, len(self.cores))),
            }
            self.core_units = [_AIC_UNITS] * ctx.cube_cores + [_AIV_UNITS] * ctx.vector_cores
        else:
            self.cores = [f"core{i}" for i in range(ctx.cube_cores)]
            idx = list(range(ctx.cube_cores))
            self.groups = {"cube": idx, "vector": idx}
            self.core_units = [_COUPLED_UNITS] * ctx.cube_cores
        self.busy: dict[str, int] = dict.fromkeys(UNITS, 0)
        self.level_bytes: dict[str, int] = {}
        self.l2_resident = L2Residency(spec.l2_bytes)
        self.l2_buffer = spec.l2_kind == "buffer"
        self.writeback_timed = 0
        """Bytes of dirty L2 evictions written back on the HBM bus during the run."""
        self.ops: list[OpRecord] = []
        self.unsupported: list[UnsupportedOp] = []
        self.raw: list[tuple[Any, ...]] = []
        self.current = "(start)"
        # TBE UB fusions of a MatMul with its elementwise tail: not on split (A2) chips.
        ub = not ctx.split
        mm = matmul_ub_fusion(graph, ub)  # once: the three passes below all read it
        self.residual = residual_adds(graph, ub, mm)
        # On coupled chips the residual is added in the convolution's epilogue, its read
        # overlapping the Cube (cube_program's residual_role); on split chips it stays timed
        # after the convolution.
        self.conv_residual = {} if ctx.split else conv_residuals(graph, self.residual)
        """Conv node -> (its fused residual Add, the residual tensor its epilogue reads)."""
        self.epilogue_add = {add: conv for conv, (add, _) in self.conv_residual.items()}
        self.fused, self.chain_writes = fusions(graph, ub, mm, self.residual)
        self.alias = kernel_aliases(graph, self.fused, self.residual, ub, mm)
        """Tensor -> the tensor a fused kernel really writes in its place (L2 residency)."""
        # ATC's input TransData, and the format plan they start (walked once: run_order and
        # the no-task Concats both read it).
        self.input_transdata = input_transdata(graph)
        converted = frozenset(n.inputs[0] for n in self.input_transdata)
        self.transdata_before, formats = format_plan(graph, converted)
        self.notask = notask_concats(graph, ctx.prec, formats)
        """Concats GE runs as no task: their inputs are written in place in the output."""
        self.control = ControlOptions()
        """If/Loop/Scan choices and fed values (set by :func:`simulate`)."""
        # One persistent pipe per unit of every core, handed a queue per op it takes part in.
        self.pipes: list[dict[str, Pipe]] = [
            {u: Pipe(self.env, self.hbm, self.l2) for u in units if u != "SCALAR"}
            for units in self.core_units
        ]
        self.bus_bpc = max(self.hbm.bytes_per_cycle, self.l2.bytes_per_cycle)

    # --- the driver ---------------------------------------------------------------------
    def driver(self):
        nodes = self.run_order
        for i, node in enumerate(nodes):
            if self.progress is not None:
                self.progress(i, len(nodes))
            yield from self._step(i, node)
            if self.l2_buffer:
                self.l2_resident.free(self.lifetimes.dead_after(i))
        if self.progress is not None:
            self.progress(len(nodes), len(nodes))

    def _step(self, i: int, node: Node):
        env = self.env
        into = self.fused.get(node.name) or self.epilogue_add.get(node.name)
        if into is not None:
            # An epilogue of a residual Add runs in the convolution that adds it.
            into = self.epilogue_add.get(into, into)
            self.ops.append(OpRecord.fused(i, node.name, node.op_type, env.now, into))
            return
        if node.op_type in EXPANDED_OPS and node.domain in ("", "ai.onnx"):
            # Control flow and RNNs: timed as what they run (hetnpu.simulator.control).
            self.current = node.name
            yield from run_expanded(self, i, node)
            return
        try:
            node, low = self._lowered(node)
            roles = self._roles(node)
        except Unsupported as exc:
            self.unsupported.append(UnsupportedOp(node.name, node.op_type, str(exc)))
            return
        self.current = node.name
        # The task scheduler starts kernels one after another on the op stream, the cores
        # idle meanwhile; an op with no instructions (a reshape in place) is no kernel.
        # A residual Add runs inside its convolution's kernel (TbeConvDoubleInFusionPass,
        # see residual_adds): it launches nothing of its own.
        kernel = any(low.programs) and node.name not in self.residual
        self.op_launch = self.launch_cycles if kernel else 0
        if self.op_launch:
            yield env.timeout(self.op_launch)
            self.launched += self.op_launch
        yield from self._run_op(i, node, low, roles)

    @functools.cached_property
    def run_order(self) -> list[Node]:
        """The ops in run order: ATC's input TransData first, constants folded away, and the
        TransData of every format boundary just before the op that needs it."""
        ops: list[Node] = list(self.input_transdata)
        for node in self.graph:
            if not node.is_constant:
                ops.extend(self.transdata_before.get(node.name, ()))
                ops.append(node)
        return ops

    def _lowered(self, node: Node) -> tuple[Node, Lowered]:
        """(the node as the chip runs it, its program); Unsupported if the NPU cannot."""
        g = self.graph
        # Synthetic nodes (index < 0: ATC's own TransData) are not ONNX ops to ask about.
        reason = npu_refusal(node, g, self.ctx.prec.name) if node.index >= 0 else None
        if reason is not None:
            raise Unsupported(reason)
        if node.name in self.notask:
            # ConcatNotaskPass: the producers wrote the output already; no kernel, no launch.
            return node, Lowered("vector", (), tile="no task (inputs in place)")
        node = self._as_run(node)
        return node, lower(node, g, self.ctx_for(node.name), self.key)

    def _as_run(self, node: Node) -> Node:
        """``node`` with the tensors its kernel really reads and writes."""
        if node.name in self.conv_residual:
            # Its epilogue adds the residual: a fourth input after the (optional) bias.
            ins = (*node.inputs, "", "")[:3]
            return dataclasses.replace(node, inputs=(*ins, self.conv_residual[node.name][1]))
        if node.name in self.residual:
            # Folded into its convolution's epilogue: the other input comes from GM, and the
            # sum leaves with the convolution's own write.
            skip = self.residual[node.name]
            kept = tuple(t for t in node.inputs if t != skip)
            return dataclasses.replace(node, inputs=kept, outputs=())
        if node.name in self.chain_writes:
            # The first op of a fused elementwise chain: the kernel writes the chain's end.
            return dataclasses.replace(node, outputs=(self.chain_writes[node.name],))
        return node

    @functools.cached_property
    def lifetimes(self) -> Lifetimes:
        """When each L2 entry dies in an L2 buffer: after its last reader under any name (a
        view's, a fused epilogue's, a subgraph's outer-scope read); the outputs never do."""
        alias, skipped = self.alias, self.fused.keys() | self.epilogue_add.keys()
        reads = (
            (i, alias.get(t, t))
            for i, node in enumerate(self.run_order)
            for t in (node if node.name in skipped else self._as_run(node)).all_inputs
        )
        return Lifetimes(reads, (alias.get(t, t) for t in self.graph.outputs))

    def lower_all(self) -> None:
        """Lower every op the chip will run (into the lowering cache), without running any:
        under an event budget this refuses a model too big for it before the first event."""
        for node in self.run_order:
            if node.name in self.fused or node.name in self.epilogue_add:
                continue
            try:
                self._lowered(node)
            except Unsupported:
                continue

    def _roles(self, node: Node) -> list[int]:
        g, prec = self.graph, self.ctx.prec
        remaining = [0] * max(len(ROLE_IDS), 8)
        present = [t for t in node.inputs if t]
        for j, t in enumerate(present):
            rid = ROLE_IDS.setdefault(f"in{j}", len(ROLE_IDS))
            if rid >= len(remaining):
                remaining += [0] * (rid + 1 - len(remaining))
            # A tensor read twice (a convolution whose residual is its own input) comes from
            # HBM once; the second read finds it in L2.
            resident = self.alias.get(t, t) in self.l2_resident or t in present[:j]
            remaining[rid] = 0 if resident else device_nbytes(g, t, prec)
        out_bytes = sum(device_nbytes(g, t, prec) for t in node.outputs if t)
        rid = ROLE_IDS.setdefault("out0", len(ROLE_IDS))
        if rid >= len(remaining):
            remaining += [0] * (rid + 1 - len(remaining))
        remaining[rid] = 0 if out_bytes <= self.spec.l2_bytes else BIG
        return remaining

    def _run_op(self, index: int, node: Node, low: Lowered, remaining: list[int]):
        env, spec = self.env, self.spec
        t0 = env.now
        hbm0, l20 = self.hbm.nbytes, self.l2.nbytes
        cores = self.groups[low.group]
        started: list[tuple[int, CompiledProgram, list[str], list[Any], Any]] = []
        pending = [0]
        done_ev = env.event()

        def done() -> None:
            pending[0] -= 1
            if pending[0] == 0:
                done_ev.succeed()

        record = self.trace_level == "instr"
        for c, cp in enumerate(compiled_programs(low, spec)):
            if cp is None:
                continue
            pending[0] += len(cp.queues)
            units, spans, recs = run_core(env, cp, remaining, self.pipes[cores[c]], record, done)
            started.append((cores[c], cp, units, spans, recs))
        # The op's tensors enter L2 as it runs; the dirty tensors they evict are written back
        # to HBM first, on the HBM bus, before the op can complete (CANN, "Setting a Proper L2
        # CacheMode": "the old data needs to be written back to the GM during the replacement
        # (this process occupies the GM bandwidth)").
        wb_end = self._enter_l2(node, t0)
        if pending[0]:
            yield done_ev
        if wb_end > env.now:
            yield env.timeout(wb_end - env.now)
        self.ops.append(record_op(self, index, node, low, t0, hbm0, l20, started))

    def _enter_l2(self, node: Node, now: int) -> int:
        """Make ``node``'s inputs (read) and outputs (written, dirty) most recent in L2 and
        reserve the HBM bus from ``now`` for the dirty tensors that evicts; return the cycle
        the write-back ends (``now`` if nothing dirty was evicted). A view touches nothing."""
        if node.op_type in VIEW_OPS:
            return now
        if node.name in self.notask:
            # The inputs are slices of the output's memory: resident together, resident whole,
            # and a later reader of an input (DenseNet's next Concat) reads that memory.
            whole = self.alias.get(node.outputs[0], node.outputs[0])
            parts = [t for t in node.inputs if t]
            entries = [self.alias.get(t, t) for t in parts]
            if self.l2_resident.merge(entries, whole):
                self.alias.update(dict.fromkeys(parts, whole))
                if self.l2_buffer:
                    self.lifetimes.merge(entries, whole)
            return now
        g, prec = self.graph, self.ctx.prec
        before = self.l2_resident.writeback_bytes
        alias = self.alias
        for t in node.inputs:
            if t:
                self.l2_resident.touch(alias.get(t, t), device_nbytes(g, t, prec), dirty=False)
        for t in node.outputs:
            if t:
                self.l2_resident.touch(alias.get(t, t), device_nbytes(g, t, prec), dirty=True)
        evicted = self.l2_resident.writeback_bytes - before
        if not evicted:
            return now
        self.writeback_timed += evicted
        return self.hbm.reserve(now, evicted)

    def result(self, events: int, wall_s: float, double_buffer: bool) -> SimResult:
        cycles = self.env.now
        self.l2_resident.flush(self.alias.get(t, t) for t in self.graph.outputs)
        unit_cores = {u: sum(u in us for us in self.core_units) for u in UNITS}
        busy = {
            u: (self.busy[u] / (cycles * unit_cores[u]) if cycles and unit_cores[u] else 0.0)
            for u in UNITS
            if unit_cores[u]
        }
        levels = dict(self.level_bytes)
        # Evictions were timed on the HBM bus (counted in hbm.nbytes); the final flush of
        # the dirty outputs is counted, not timed.
        levels["HBM"] = self.hbm.nbytes + self.l2_resident.writeback_bytes - self.writeback_timed
        levels["L2"] = self.l2.nbytes
        return SimResult(
            chip=str(getattr(self.spec, "name", "npu")),
            precision=self.ctx.prec.name,
            clock_hz=float(self.spec.clock_hz),
            cycles=cycles,
            ops=tuple(self.ops),
            unit_busy=MappingProxyType(busy),
            unit_busy_cycles=MappingProxyType({u: self.busy[u] for u in busy}),
            bytes_by_level=MappingProxyType(dict(sorted(levels.items()))),
            hbm_bytes=levels["HBM"],
            events=events,
            unsupported=tuple(self.unsupported),
            cores=tuple(self.cores),
            trace_level=self.trace_level,
            raw_events=tuple(self.raw),
            double_buffer=double_buffer,
            wall_s=wall_s,
            spec=self.spec,
            launch_cycles=self.launched,
        )


def simulate(
    graph: Graph | Any,
    chip: Any,
    *,
    precision: str = "fp16",
    double_buffer: bool = True,
    trace_level: str | None = None,
    check: bool = False,
    max_events: int | None = None,
    force_tiles: Mapping[str, tuple[int, int, int]] | None = None,
    progress: Callable[[int, int], None] | None = None,
    branches: Mapping[str, str] | None = None,
    trips: Mapping[str, int] | None = None,
    feeds: Mapping[str, Any] | None = None,
) -> SimResult:
    """Simulate a model on an Ascend chip, cycle by cycle at instruction granularity.

    Parameters
    ----------
    graph
        A :class:`~hetnpu.graph.Graph`, or anything :func:`hetnpu.graph.load` accepts.
    chip
        An ``NpuSpec`` or a preset name / TOML path for :func:`hetnpu.devices.presets.npu_spec`.
    precision
        ``"fp16"`` (ATC's default for float32 models), ``"fp32"`` or ``"int8"``: the Cube's
        fractal shape and every float tensor's bytes follow it.
    double_buffer
        Two ping-pong slots per buffer (the default) or one, which serialises the pipes.
    trace_level
        ``None`` (no raw events kept), ``"op"`` (one span per op, core and unit) or
        ``"instr"`` (every instruction).
    check
        Raise :class:`~hetnpu.errors.ScheduleError` if any op beats its roofline bound.
    max_events
        Stop with ScheduleError after this many SimPy events (a guard for huge models).
    force_tiles
        Node name → forced (m, k, n) Cube tile; one that does not fit raises ScheduleError.
    progress
        Called as ``progress(done, total)`` as ops start.
    branches, trips, feeds
        If/Loop/Scan choices and input values, by the rule of :mod:`hetnpu.graph.control`
        (``branches={"If_0": "then"}``, ``trips={"Loop_0": 8}``); the branch or trip count
        that known or fed values select wins, a contradicting choice is a ConfigError.

    Returns
    -------
    SimResult

    Examples
    --------
    >>> from hetnpu import models
    >>> res = simulate(models.build("mlp", batch=4), "ascend910")
    >>> [(o.op_type, o.bound) for o in res.ops][:2]  # the Relu rides on the Gemm's output
    [('Gemm', ...), ('Relu', 'fused')]
    >>> res.cycles == res.ops[-1].end, 0 < res.unit_busy["CUBE"] < 1
    (True, True)
    """
    if trace_level not in (None, "op", "instr"):
        raise ConfigError(f"trace_level {trace_level!r}: expected 'op' or 'instr'")
    prec = precision_info(precision)
    spec = npu_spec(chip)
    g = as_graph(graph)
    split = spec.architecture == "split"
    if force_tiles:
        unknown = sorted(set(force_tiles) - set(g.nodes))
        if unknown:
            raise ConfigError(f"force_tiles: no node named {unknown[0]!r}")
    t_start = time.perf_counter()
    ctxs: dict[Any, LowerCtx] = {}

    def ctx_for(name: str | None) -> LowerCtx:
        force = (force_tiles or {}).get(name) if name else None
        if force not in ctxs:
            ctxs[force] = LowerCtx(
                spec,
                prec,
                double_buffer,
                split,
                spec.ai_cores,
                spec.vector_cores if split else spec.ai_cores,
                tuple(force) if force else None,
            )
        return ctxs[force]

    run = _Run(g, spec, ctx_for, trace_level, progress)
    run.control = ControlOptions(
        branches=dict(branches or {}), trips=dict(trips or {}), feeds=dict(feeds or {})
    )
    run.control.check(g)
    if max_events is not None:
        # Every op's instruction count is known once lowered: refuse before the first event.
        with event_budget(max_events):
            run.lower_all()
    proc = run.env.process(run.driver())
    if max_events is None:
        run.env.run()
    else:
        n = 0
        while run.env.peek() != float("inf"):
            run.env.step()
            n += 1
            if n > max_events:
                raise ScheduleError(
                    f"simulation needs more than max_events={max_events:,} SimPy events "
                    f"(reached at op {run.current!r}); raise --max-events or simulate less"
                )
    if not proc.triggered:
        last = run.ops[-1].name if run.ops else "(start)"
        raise ScheduleError(f"simulation deadlocked after op {last!r} (a lowering bug)")
    events = next(run.env._eid)  # SimPy's event counter: every scheduled event was processed
    res = run.result(events, time.perf_counter() - t_start, double_buffer)
    if check:
        bad = res.check_violations()
        if bad:
            o = bad[0]
            raise ScheduleError(
                f"op {o.name!r} ({o.op_type}) simulated {o.cycles} cycles, below its roofline "
                f"bound {o.roofline_cycles} ({len(bad)} ops violate)"
            )
    return res
