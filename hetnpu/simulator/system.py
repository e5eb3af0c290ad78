"""The whole heterogeneous system on one SimPy timeline: an execution plan's stages on their
devices and its transfers on their links.

- An NPU stage (``npu`` or ``sim-npu``) is exported as its own ONNX model and timed cycle by
  cycle by :func:`hetnpu.simulator.simulate`; the plan's TransData conversions into and out of
  the NPU's layouts run on the NPU before and after it, each a memory-bound pass over its bytes
  (:meth:`~hetnpu.devices.roofline.RooflineCostModel.transdata`) unless the simulator already
  timed it (an input TransData it inserts itself). Ops the simulator cannot lower are timed by
  the NPU roofline and listed in :attr:`StageRecord.roofline_ops`.
- A CPU or GPU stage runs its ops one after another, each for its roofline time on the
  device's spec (:class:`~hetnpu.devices.roofline.RooflineCostModel`).
- A transfer takes each link on its path for the link's latency plus bytes over bandwidth. NPU
  and GPU reach the host (and each other, through host memory) over their own host links. A
  link carries one transfer at a time in each direction (``bytes_per_s`` is one direction's
  bandwidth): transfers in one direction queue, opposite directions overlap, as on full-duplex
  PCIe. Host inputs are on the CPU at time 0; outputs end on the CPU.
- A device runs one stage at a time; a stage starts once every input has arrived. Waiting
  stages and transfers are served in plan order (stage id, transfer index), so the same plan
  always gives the same timeline.
- Several NPUs (``npu:0`` … ``npu:N``) talk over the links of a topology
  (:mod:`hetnpu.devices.topology`): a transfer between two of them holds the lanes its route
  crosses (a pair link of a full mesh, or the sender's and receiver's switch ports) for
  α + bytes·β. Transfers a plan groups as a collective (:class:`~hetnpu.scheduler.plan.
  Collective`) move together, as the HCCL algorithm the topology calls for
  (:mod:`hetnpu.simulator.collectives`), once every rank's source stage has ended; stages that
  do not wait for it overlap with it.

Left out: overlap inside a stage with its own transfers (a stage starts when all its inputs
are in and its outputs leave when it ends), host-side launch costs of NPU stages, and
contention for host memory between the CPU and DMA.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import simpy

from hetnpu.devices.names import HOST, NPU, NPU_DEVICES
from hetnpu.errors import ConfigError
from hetnpu.simulator.collectives import CollectiveRecord, run_collective
from hetnpu.simulator.links import check_topology, lanes, send_s
from hetnpu.simulator.result import SimResult

if TYPE_CHECKING:
    from hetnpu.scheduler.plan import ExecutionPlan

__all__ = ["StageRecord", "SystemResult", "TransferRecord", "simulate_system"]

_NPU = NPU_DEVICES
_HOST = HOST


@dataclass(frozen=True)
class StageRecord:
    """When one stage ran. ``compute_s`` is its ops' time, ``transdata_s`` its layout
    conversions'; ``end_s - start_s`` is their sum."""

    id: int
    device: str
    start_s: float
    end_s: float
    nodes: tuple[str, ...]
    compute_s: float
    transdata_s: float
    npu_cycles: int | None = None
    """Simulated cycles of the stage's model (NPU stages only)."""
    roofline_ops: tuple[str, ...] = ()
    """NPU ops the simulator could not lower, timed by the NPU roofline instead."""

    @property
    def ops(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True)
class TransferRecord:
    """When one tensor crossed one link path (``hops``: lane, start, end for each link)."""

    tensor: str
    bytes: int
    link: str
    src_stage: int | None
    dst_stage: int | None
    src_device: str
    dst_device: str
    ready_s: float
    """When the producer finished (0 for host inputs)."""
    start_s: float
    end_s: float
    hops: tuple[tuple[str, float, float], ...] = ()


@dataclass(frozen=True)
class SystemResult:
    """The outcome of :func:`simulate_system`; two runs of one plan compare equal."""

    chip: str
    precision: str
    strategy: str
    makespan_s: float
    estimated_makespan_s: float | None
    """The plan's list-schedule estimate (roofline costs), for comparison."""
    stages: tuple[StageRecord, ...]
    transfers: tuple[TransferRecord, ...]
    npu_results: Mapping[int, SimResult] = field(compare=False, repr=False, default_factory=dict)
    """Stage id -> the simulator's result for that NPU stage (its own cycle timeline)."""
    op_spans: tuple[tuple[int, str, str, float, float], ...] = field(default=(), repr=False)
    """(stage, node, op type, start s, end s) of each op, with ``trace_level`` set."""
    collectives: tuple[CollectiveRecord, ...] = ()
    """When each of the plan's collectives ran, with its sends on the link lanes."""
    topology: str | None = None

    @property
    def npu_cycles(self) -> int:
        return sum(s.npu_cycles or 0 for s in self.stages)

    def device_busy(self) -> dict[str, float]:
        """Device (and link lane) -> fraction of the makespan it was busy."""
        busy: dict[str, float] = {}
        for s in self.stages:
            busy[s.device] = busy.get(s.device, 0.0) + s.end_s - s.start_s
        for t in self.transfers:
            for lane, a, b in t.hops:
                busy[lane] = busy.get(lane, 0.0) + b - a
        for c in self.collectives:
            for *_, lane, a, b in c.sends:
                busy[lane] = busy.get(lane, 0.0) + b - a
        span = self.makespan_s or 1.0
        return {k: v / span for k, v in sorted(busy.items())}

    def to_summary(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "chip": self.chip,
            "precision": self.precision,
            "strategy": self.strategy,
            "makespan_s": self.makespan_s,
            "estimated_makespan_s": self.estimated_makespan_s,
            "npu_cycles": self.npu_cycles,
            "device_busy": self.device_busy(),
            "stages": [
                {
                    "id": s.id,
                    "device": s.device,
                    "start_s": s.start_s,
                    "end_s": s.end_s,
                    "ops": s.ops,
                    "compute_s": s.compute_s,
                    "transdata_s": s.transdata_s,
                    "npu_cycles": s.npu_cycles,
                    "roofline_ops": list(s.roofline_ops),
                }
                for s in self.stages
            ],
            "transfers": [
                {
                    "tensor": t.tensor,
                    "bytes": t.bytes,
                    "link": t.link,
                    "src_stage": t.src_stage,
                    "dst_stage": t.dst_stage,
                    "ready_s": t.ready_s,
                    "start_s": t.start_s,
                    "end_s": t.end_s,
                }
                for t in self.transfers
                if t.hops
            ],
            "collectives": [
                {
                    "name": c.name,
                    "kind": c.kind,
                    "algorithm": c.algorithm,
                    "ranks": list(c.ranks),
                    "bytes": c.nbytes,
                    "start_s": c.start_s,
                    "end_s": c.end_s,
                }
                for c in self.collectives
            ],
        }


def simulate_system(
    plan: ExecutionPlan,
    chip: Any,
    *,
    cpu: Any = None,
    gpu: Any = None,
    precision: str = "fp16",
    trace_level: str | None = None,
    topology: Any = None,
) -> SystemResult:
    """Run an execution plan on CPU, GPU and NPU on one timeline.

    The simulator consumes plans and never partitions: :func:`hetnpu.simulate_system` is the
    entry point that partitions a model first.

    Parameters
    ----------
    plan
        The :class:`~hetnpu.scheduler.ExecutionPlan` to run (its graph is the model).
    chip
        NPU preset name, TOML path or ``NpuSpec``.
    cpu, gpu
        ``CpuSpec``/``GpuSpec`` or preset names (default: the generic ``cpu_x86`` and
        ``gpu_datacentre`` presets).
    precision
        NPU precision: ``fp16``, ``fp32`` or ``int8``.
    trace_level
        ``None``, ``"op"`` or ``"instr"``: with a level, every op gets a span in
        :meth:`SystemResult.trace_events` and NPU stages keep their simulator events at that
        level (in :attr:`SystemResult.npu_results`).
    topology
        A :class:`~hetnpu.devices.topology.Topology`, preset name or TOML path: the links
        between NPUs, needed when the plan runs on more than one (``npu:0``, ``npu:1``, …).

    Returns
    -------
    SystemResult

    Raises
    ------
    ConfigError
        Unknown preset or trace level; a plan over several NPUs without a topology, or on
        NPUs the topology does not have.
    """
    from hetnpu.devices.presets import cpu_spec, gpu_spec, npu_spec
    from hetnpu.devices.roofline import RooflineCostModel
    from hetnpu.devices.topology import topology_spec

    if trace_level not in (None, "op", "instr"):
        raise ConfigError(f"trace_level {trace_level!r}: expected 'op' or 'instr'")
    spec = npu_spec(chip)
    cpu_s, gpu_s = cpu_spec(cpu), gpu_spec(gpu)
    topo = None if topology is None else topology_spec(topology)
    check_topology(plan, topo)
    roofline = RooflineCostModel(spec, cpu_s, gpu_s, precision=precision)
    durations = _stage_times(plan, spec, roofline, precision, trace_level)
    stages, transfers, colls = _run(plan, durations, spec, gpu_s, topo)
    ops = [] if trace_level is None else _op_spans(stages, durations)
    ends = [s.end_s for s in stages] + [t.end_s for t in transfers] + [c.end_s for c in colls]
    return SystemResult(
        chip=spec.name,
        precision=precision,
        strategy=plan.strategy,
        makespan_s=max([*ends, 0.0]),
        estimated_makespan_s=plan.estimated_makespan_s,
        stages=tuple(stages),
        transfers=tuple(transfers),
        npu_results={s.id: d.sim for s, d in zip(plan.stages, durations, strict=True) if d.sim},
        op_spans=tuple(ops),
        collectives=tuple(colls),
        topology=None if topo is None else topo.name,
    )


def _stage_times(
    plan: Any, spec: Any, roofline: Any, precision: str, trace_level: str | None
) -> list[_Duration]:
    """Each stage's time; NPU stages of one op signature (the same subgraph on another rank,
    in another layer) are simulated once, since the NPUs are of one chip."""
    memo: dict[bytes, _Duration] = {}
    out = []
    for s in plan.stages:
        key = _stage_key(plan, s) if s.device in _NPU and trace_level is None else None
        if key is not None and key in memo:
            out.append(memo[key])
            continue
        d = _stage_time(plan, s, spec, roofline, precision, trace_level)
        if key is not None:
            memo[key] = d
        out.append(d)
    return out


def _stage_key(plan: Any, stage: Any) -> bytes:
    """What a stage's timing depends on: its ops with their attributes, in order, each tensor's
    shape, dtype and constness, which outputs are read after the stage (they must reach GM,
    and stop a fusion), and the layout conversions at its edges (tensor and node names left
    out)."""
    import hashlib

    graph = plan.graph
    h = hashlib.sha256()
    local: dict[str, int] = {}
    inside = set(stage.nodes)

    def leaves(t: str) -> bool:  # read after the stage: it must reach GM, fusion stops there
        return t in graph.outputs or any(c.name not in inside for c in graph.consumers(t))

    for n in stage.nodes:
        node = graph.nodes[n]
        wires = [local.setdefault(t, len(local)) for t in (*node.all_inputs, *node.outputs) if t]
        tensors = [
            (graph.tensors[t].shape, graph.tensors[t].dtype, graph.tensors[t].is_constant)
            for t in (*node.all_inputs, *node.outputs)
            if t and t in graph.tensors
        ]
        out_leaves = [leaves(t) for t in node.outputs if t]
        attrs = sorted(node.attrs.items(), key=lambda kv: kv[0])
        h.update(repr((node.op_type, wires, tensors, out_leaves, attrs)).encode())
    for td in plan.transdata:
        if td.stage == stage.id:
            h.update(repr((td.src_layout, td.dst_layout, td.nbytes)).encode())
    return h.digest()


@dataclass
class _Duration:
    """A stage's time: conversions in, ops (per op for traces), conversions out."""

    transdata_in: float
    ops: list[tuple[str, str, float, float]]
    """(node, op type, start, end) relative to the end of the conversions in."""
    transdata_out: float
    cycles: int | None = None
    roofline_ops: tuple[str, ...] = ()
    sim: SimResult | None = None

    @property
    def compute(self) -> float:
        return self.ops[-1][3] if self.ops else 0.0

    @property
    def total(self) -> float:
        return self.transdata_in + self.compute + self.transdata_out


def _stage_time(
    plan: Any, stage: Any, spec: Any, roofline: Any, precision: str, trace_level: str | None
) -> _Duration:
    graph = plan.graph
    if stage.device not in _NPU:
        ops, now = [], 0.0
        for n in stage.nodes:
            node = graph.nodes[n]
            dt = roofline.cost(graph, node, stage.device)
            ops.append((n, node.op_type, now, now + dt))
            now += dt
        return _Duration(0.0, ops, 0.0)
    from hetnpu.graph import load
    from hetnpu.simulator.chip import simulate

    sub = load(plan.export_stage(stage.id))
    res = simulate(sub, spec, precision=precision, trace_level=trace_level)
    clock = res.clock_hz
    timed = {o.name for o in res.ops}
    ops = [(o.name, o.op_type, o.start / clock, o.end / clock) for o in res.ops]
    # Ops the simulator could not lower run after it, at the NPU roofline.
    extra = [u.name for u in res.unsupported if u.name in sub.nodes]
    now = res.cycles / clock
    for n in extra:
        dt = roofline.cost(graph, graph.nodes[n], NPU)
        ops.append((n, graph.nodes[n].op_type, now, now + dt))
        now += dt
    conv_in = conv_out = 0.0
    for td in plan.transdata:
        if td.stage != stage.id:
            continue
        to_npu = td.src_layout in ("NCHW", "ND")
        if to_npu and f"TransData:{td.tensor}" in timed:
            continue  # the simulator inserted and timed this one itself
        dt = roofline.transdata(graph, td.tensor, to_npu=to_npu)
        if to_npu:
            conv_in += dt
        else:
            conv_out += dt
    return _Duration(conv_in, ops, conv_out, res.cycles, tuple(extra), res)


def _run(
    plan: Any, durations: list[_Duration], spec: Any, gpu: Any, topo: Any
) -> tuple[list[StageRecord], list[TransferRecord], list[CollectiveRecord]]:
    env = simpy.Environment()
    device_res = {
        d: simpy.PriorityResource(env, 1) for d in sorted({s.device for s in plan.stages})
    }
    lane_res: dict[str, simpy.PriorityResource] = {}
    stage_done = {s.id: env.event() for s in plan.stages}
    moved = [env.event() for _ in plan.transfers]
    into: dict[int, list[int]] = {}
    for k, tr in enumerate(plan.transfers):
        if tr.dst_stage is not None:
            into.setdefault(tr.dst_stage, []).append(k)
    in_collective = {k: c for c in plan.collectives for k in c.transfers}
    stage_rec: dict[int, StageRecord] = {}
    transfer_rec: dict[int, TransferRecord] = {}
    coll_rec: list[CollectiveRecord] = []

    def transfer(k: int, tr: Any):  # a SimPy process
        if tr.src_stage is not None:
            yield stage_done[tr.src_stage]
        ready = env.now
        hops = []
        path = lanes(tr.src_device, tr.dst_device, spec, gpu, topo)
        for hop in path:
            held = []
            for lane, _ in sorted(hop, key=lambda h: h[0]):  # name order: no crosswise waits
                res = lane_res.setdefault(lane, simpy.PriorityResource(env, 1))
                req = res.request(priority=k)
                yield req
                held.append((res, req))
            start = env.now
            yield env.timeout(send_s(hop[0][1], tr.nbytes))
            for res, req in held:
                res.release(req)
            hops.extend((lane, start, env.now) for lane, _ in hop)
        transfer_rec[k] = TransferRecord(
            tr.tensor,
            tr.nbytes,
            " + ".join(lane for hop in path for lane, _ in hop) or "local",
            tr.src_stage,
            tr.dst_stage,
            tr.src_device,
            tr.dst_device,
            ready,
            hops[0][1] if hops else ready,
            env.now,
            tuple(hops),
        )
        moved[k].succeed()

    def collective(c: Any):  # a SimPy process: all ranks' sources, then the algorithm
        sources = {plan.transfers[k].src_stage for k in c.transfers} - {None}
        yield env.all_of([stage_done[i] for i in sorted(sources)])
        ready = env.now
        rec = yield env.process(
            run_collective(
                env,
                lane_res,
                topo,
                c.kind,
                c.ranks,
                c.nbytes,
                name=c.name,
                priority=min(c.transfers),
                out=coll_rec,
            )
        )
        for k in c.transfers:
            tr = plan.transfers[k]
            transfer_rec[k] = TransferRecord(
                tr.tensor,
                tr.nbytes,
                f"{c.kind} {c.name}",
                tr.src_stage,
                tr.dst_stage,
                tr.src_device,
                tr.dst_device,
                ready,
                rec.start_s,
                rec.end_s,
            )
            moved[k].succeed()

    def stage(s: Any, d: _Duration):  # a SimPy process
        yield env.all_of([moved[k] for k in into.get(s.id, [])])
        with device_res[s.device].request(priority=s.id) as req:
            yield req
            start = env.now
            yield env.timeout(d.total)
        stage_rec[s.id] = StageRecord(
            s.id,
            s.device,
            start,
            env.now,
            s.nodes,
            d.compute,
            d.transdata_in + d.transdata_out,
            d.cycles,
            d.roofline_ops,
        )
        stage_done[s.id].succeed()

    for c in plan.collectives:
        env.process(collective(c))
    for k, tr in enumerate(plan.transfers):
        if k not in in_collective:
            env.process(transfer(k, tr))
    for s, d in zip(plan.stages, durations, strict=True):
        env.process(stage(s, d))
    env.run()
    stages = [stage_rec[s.id] for s in plan.stages]
    return stages, [transfer_rec[k] for k in range(len(plan.transfers))], coll_rec


def _op_spans(
    stages: list[StageRecord], durations: list[_Duration]
) -> list[tuple[int, str, str, float, float]]:
    out = []
    for s, d in zip(stages, durations, strict=True):
        base = s.start_s + d.transdata_in
        out.extend((s.id, n, op, base + a, base + b) for n, op, a, b in d.ops)
    return out
