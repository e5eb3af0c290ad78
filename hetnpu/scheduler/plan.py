"""``ExecutionPlan``: stages (a same-device subgraph each), the transfers between them, the
TransData layout conversions at NPU boundaries, and the bookkeeping that explains them.

Inside an NPU stage activations live in the Cube's layouts: NC1HWC0 for 4-D tensors,
FRACTAL_NZ for matrices (ascend-facts §3.2, §3.4); outside they are NCHW/ND, as framework
formats stay at model inputs and outputs (§3.5). So a tensor entering an NPU stage from the
host or another device is converted on the way in, and one leaving for a non-NPU consumer on
the way out. Two NPU stages exchanging a tensor need no conversion: the out-conversion of one
and the in-conversion of the other are inverses and cancel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

import networkx as nx
import onnx

from hetnpu.devices.names import is_known_device
from hetnpu.errors import ScheduleError
from hetnpu.graph.ir import Graph
from hetnpu.graph.onnx_io import extract
from hetnpu.scheduler.evaluate import HOST, CostModel, estimate_makespan, runtime_inputs
from hetnpu.scheduler.stages import group_stages, node_preds

__all__ = ["FORMAT", "Collective", "ExecutionPlan", "Stage", "TransData", "Transfer", "build_plan"]

FORMAT = "hetnpu.plan/1"


@dataclass(frozen=True)
class Stage:
    """A same-device subgraph that runs as one unit; ``id`` is its position in the plan."""

    id: int
    device: str
    nodes: tuple[str, ...]
    """Non-constant nodes, in graph order."""
    inputs: tuple[str, ...]
    """Run-time tensors it reads from the host or other stages (constants travel with it)."""
    outputs: tuple[str, ...]
    """Tensors other stages or the host read."""


@dataclass(frozen=True)
class Transfer:
    """A tensor crossing a stage boundary. ``None`` stages mean the host (graph inputs come
    from it, outputs go to it); between stages of one device the link is ``"local"``."""

    tensor: str
    src_stage: int | None
    dst_stage: int | None
    src_device: str
    dst_device: str
    nbytes: int
    link: str


@dataclass(frozen=True)
class Collective:
    """Transfers between NPUs that move as one collective (an all-reduce of partial sums, an
    all-gather of slices, ...): the system simulator times them together, by the algorithm
    the links call for (:mod:`hetnpu.simulator.collectives`), instead of one by one."""

    name: str
    kind: str
    """``all-reduce``, ``all-gather``, ``reduce-scatter``, ``all-to-all`` or ``send-recv``."""
    ranks: tuple[str, ...]
    nbytes: int
    """Bytes of the whole tensor on each rank (the reduced or gathered one)."""
    transfers: tuple[int, ...]
    """Indices into :attr:`ExecutionPlan.transfers` of the copies it carries."""


@dataclass(frozen=True)
class TransData:
    """A layout conversion run inside NPU stage ``stage``."""

    tensor: str
    stage: int
    src_layout: str
    dst_layout: str
    nbytes: int
    """Bytes read plus bytes written, padding included
    (:func:`hetnpu.devices.layouts.transdata_bytes`)."""


@dataclass(frozen=True, eq=False)
class ExecutionPlan:
    """Who runs what: build one with :func:`hetnpu.scheduler.partition` or :func:`build_plan`."""

    graph: Graph
    stages: tuple[Stage, ...]
    transfers: tuple[Transfer, ...]
    transdata: tuple[TransData, ...]
    assignment: Mapping[str, str]
    """Device of every non-constant node."""
    fallbacks: Mapping[str, str]
    """Node -> why it runs on the CPU rather than a listed accelerator."""
    folded: tuple[str, ...]
    """Constant nodes: folded at compile time, exported with the stages that read them."""
    strategy: str
    estimated_makespan_s: float | None
    precision: str = "fp16"
    collectives: tuple[Collective, ...] = ()
    """Groups of transfers moved as collectives (parallel plans)."""

    @cached_property
    def _stage_of(self) -> dict[str, int]:
        return {n: s.id for s in self.stages for n in s.nodes}

    def stage_of(self, node: str) -> int:
        """Id of the stage running ``node``."""
        return self._stage_of[node]

    def stage_graph(self) -> nx.DiGraph:
        """Stages as vertices (attributes ``device``, ``nodes``); edges carry ``tensors``."""
        g = nx.DiGraph()
        for s in self.stages:
            g.add_node(s.id, device=s.device, nodes=len(s.nodes))
        for t in self.transfers:
            if t.src_stage is None or t.dst_stage is None:
                continue
            if g.has_edge(t.src_stage, t.dst_stage):
                g.edges[t.src_stage, t.dst_stage]["tensors"] += (t.tensor,)
            else:
                g.add_edge(t.src_stage, t.dst_stage, tensors=(t.tensor,))
        return g

    def export_stage(self, i: int) -> onnx.ModelProto:
        """Stage ``i`` as a standalone ONNX model, with the constant producers it reads.

        Its inputs are :attr:`Stage.inputs`; its outputs :attr:`Stage.outputs`.
        """
        stage = self.stages[i]
        names = set(stage.nodes) | _constant_closure(self.graph, stage.nodes)
        model = extract(
            self.graph, names, name=f"{self.graph.model.graph.name}_stage{i}_{stage.device}"
        )
        if stage.outputs:
            # A constant shared with another stage is no output of this one.
            keep = set(stage.outputs)
            outs = [o for o in model.graph.output if o.name in keep]
            del model.graph.output[:]
            model.graph.output.extend(outs)
        return model

    def validate(self) -> None:
        """Check the plan's invariants.

        Raises
        ------
        ScheduleError
            Naming the node, stage or tensor: a non-constant node in no stage or in two, a
            constant node placed, a stage on a device that cannot run one of its ops, stages
            out of dependency order or in a cycle, or a cross-stage or host tensor without a
            transfer.
        """
        from hetnpu.scheduler.verdicts import verdict

        graph = self.graph
        seen: dict[str, int] = {}
        for k, s in enumerate(self.stages):
            if s.id != k:
                raise ScheduleError(f"stage at position {k} has id {s.id}")
            if not is_known_device(s.device):
                raise ScheduleError(f"stage {k}: unknown device {s.device!r}")
            if not s.nodes:
                raise ScheduleError(f"stage {k} ({s.device}) has no nodes")
            for n in s.nodes:
                node = graph.nodes.get(n)
                if node is None:
                    raise ScheduleError(f"stage {k}: no node {n!r} in the graph")
                if node.is_constant:
                    raise ScheduleError(f"stage {k}: node {n!r} is constant-folded, not placed")
                if n in seen:
                    raise ScheduleError(f"node {n!r} is in stages {seen[n]} and {k}")
                seen[n] = k
                if self.assignment.get(n) != s.device:
                    raise ScheduleError(
                        f"node {n!r} is in stage {k} ({s.device}) but assigned to "
                        f"{self.assignment.get(n)!r}"
                    )
                answer = verdict(s.device, n, graph, self.precision)
                if not answer.supported:
                    raise ScheduleError(
                        f"stage {k} ({s.device}) holds node {n!r} ({node.op_type}), which "
                        f"{s.device} cannot run: {answer.reason}"
                    )
        missing = [n.name for n in graph if not n.is_constant and n.name not in seen]
        if missing:
            raise ScheduleError(f"{len(missing)} node(s) in no stage, e.g. {missing[:5]}")
        if not nx.is_directed_acyclic_graph(self.stage_graph()):
            cycle = nx.find_cycle(self.stage_graph())
            raise ScheduleError(f"the stage graph has a cycle: {cycle}")
        moved = {(t.tensor, t.dst_stage) for t in self.transfers}
        for s in self.stages:
            for n in s.nodes:
                for t in runtime_inputs(graph, graph.nodes[n]):
                    prod = graph.producer(t)
                    src = None if prod is None else seen[prod.name]
                    if src == s.id:
                        continue
                    if src is not None and src > s.id:
                        raise ScheduleError(
                            f"stage {s.id} reads {t!r} from the later stage {src}: not in run order"
                        )
                    if t not in s.inputs or (t, s.id) not in moved:
                        raise ScheduleError(
                            f"tensor {t!r} crosses into stage {s.id} ({s.device}) "
                            "without a transfer"
                        )
        host_inputs = set(graph.inputs)  # an input passed straight through never leaves the host
        for t in graph.outputs:
            if t in host_inputs:
                continue
            if not graph.tensors[t].is_constant and (t, None) not in moved:
                raise ScheduleError(f"graph output {t!r} has no transfer to the host")
        self._validate_collectives()

    def _validate_collectives(self) -> None:
        claimed: dict[int, str] = {}
        for c in self.collectives:
            for k in c.transfers:
                if not 0 <= k < len(self.transfers):
                    raise ScheduleError(f"collective {c.name!r}: no transfer {k}")
                tr = self.transfers[k]
                if tr.src_device not in c.ranks or tr.dst_device not in c.ranks:
                    raise ScheduleError(
                        f"collective {c.name!r} over {list(c.ranks)} carries tensor "
                        f"{tr.tensor!r} from {tr.src_device} to {tr.dst_device}"
                    )
                if k in claimed:
                    raise ScheduleError(
                        f"transfer of {tr.tensor!r} is in collectives {claimed[k]!r} and {c.name!r}"
                    )
                claimed[k] = c.name

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back against the same graph."""
        return {
            "format": FORMAT,
            "model": self.graph.model.graph.name,
            "strategy": self.strategy,
            "precision": self.precision,
            "estimated_makespan_s": self.estimated_makespan_s,
            "stages": [
                {
                    "id": s.id,
                    "device": s.device,
                    "nodes": list(s.nodes),
                    "inputs": list(s.inputs),
                    "outputs": list(s.outputs),
                }
                for s in self.stages
            ],
            "transfers": [vars(t).copy() for t in self.transfers],
            "transdata": [vars(t).copy() for t in self.transdata],
            "assignment": dict(self.assignment),
            "fallbacks": dict(self.fallbacks),
            "folded": list(self.folded),
            "collectives": [
                {**vars(c), "ranks": list(c.ranks), "transfers": list(c.transfers)}
                for c in self.collectives
            ],
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], graph: Graph) -> ExecutionPlan:
        """Rebuild a plan written by :meth:`to_json` and validate it against ``graph``.

        Raises
        ------
        ScheduleError
            Wrong format, missing keys, or a plan that does not fit ``graph``.
        """
        if data.get("format") != FORMAT:
            raise ScheduleError(
                f"not a hetnpu plan (format {data.get('format')!r}, expected {FORMAT!r})"
            )
        try:
            stages = tuple(
                Stage(
                    int(s["id"]),
                    str(s["device"]),
                    tuple(s["nodes"]),
                    tuple(s["inputs"]),
                    tuple(s["outputs"]),
                )
                for s in data["stages"]
            )
            plan = cls(
                graph=graph,
                stages=stages,
                transfers=tuple(Transfer(**t) for t in data["transfers"]),
                transdata=tuple(TransData(**t) for t in data["transdata"]),
                assignment=MappingProxyType(dict(data["assignment"])),
                fallbacks=MappingProxyType(dict(data["fallbacks"])),
                folded=tuple(data["folded"]),
                strategy=str(data["strategy"]),
                estimated_makespan_s=data["estimated_makespan_s"],
                precision=str(data.get("precision", "fp16")),
                collectives=tuple(
                    Collective(
                        str(c["name"]),
                        str(c["kind"]),
                        tuple(c["ranks"]),
                        int(c["nbytes"]),
                        tuple(int(k) for k in c["transfers"]),
                    )
                    for c in data.get("collectives", ())
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ScheduleError(f"malformed plan: {type(exc).__name__}: {exc}") from None
        plan.validate()
        return plan


def _constant_closure(graph: Graph, names: tuple[str, ...] | list[str]) -> set[str]:
    """Constant nodes whose outputs ``names`` read, directly or through other constants."""
    out: set[str] = set()
    stack = [t for n in names for t in graph.nodes[n].all_inputs]
    while stack:
        prod = graph.producer(stack.pop())
        if prod is not None and prod.is_constant and prod.name not in out:
            out.add(prod.name)
            stack.extend(prod.all_inputs)
    return out


def build_plan(
    graph: Graph,
    assignment: Mapping[str, str],
    *,
    fallbacks: Mapping[str, str] | None = None,
    strategy: str = "manual",
    cost_model: CostModel | None = None,
    min_stage_size: int = 1,
    precision: str = "fp16",
    groups: list[list[str]] | None = None,
) -> ExecutionPlan:
    """Cut an assignment into stages and add transfers and TransData conversions.

    Parameters
    ----------
    graph
        The loaded graph.
    assignment
        Device of every non-constant node (entries for constant nodes are ignored).
    fallbacks
        Node -> reason, from placement; small stages moved to CPU add their own.
    strategy
        Recorded in the plan.
    cost_model
        For the makespan estimate and link names; without one the estimate is ``None``.
    min_stage_size
        Accelerator stages with fewer nodes run on the CPU instead (recorded as fallbacks).
    precision
        NPU precision; decides the element size of converted tensors.
    groups
        The stages' nodes, in run order, when the caller cuts them itself (parallel plans
        cut at collectives); otherwise same-device regions are grouped automatically.

    Raises
    ------
    ScheduleError
        A non-constant node has no device, or a device is unknown.
    """
    from hetnpu.scheduler.transfers import layout_conversions, stage_transfers

    if min_stage_size < 1:
        raise ScheduleError(f"min_stage_size must be at least 1, got {min_stage_size}")
    assign: dict[str, str] = {}
    for node in graph:
        if node.is_constant:
            continue
        dev = assignment.get(node.name)
        if dev is None:
            raise ScheduleError(f"node {node.name!r} ({node.op_type}) has no device")
        if not is_known_device(dev):
            raise ScheduleError(f"node {node.name!r}: unknown device {dev!r}")
        assign[node.name] = dev
    notes = dict(fallbacks or {})
    preds = node_preds(graph)
    while groups is None:
        groups = group_stages(graph, assign, preds)
        small = [g for g in groups if assign[g[0]] != HOST and len(g) < min_stage_size]
        for g in small:
            for n in g:
                notes[n] = (
                    f"its {assign[n]} stage would have {len(g)} node(s), fewer than "
                    f"min_stage_size={min_stage_size}"
                )
                assign[n] = HOST
        if small:
            groups = None
    stage_of = {n: k for k, g in enumerate(groups) for n in g}
    outputs = set(graph.outputs)
    stages = []
    for k, g in enumerate(groups):
        members = set(g)
        ins = [
            t
            for n in g
            for t in runtime_inputs(graph, graph.nodes[n])
            if (p := graph.producer(t)) is None or p.name not in members
        ]
        outs = [
            t
            for n in g
            for t in graph.nodes[n].outputs
            if t
            and (
                t in outputs
                or any(not c.is_constant and stage_of[c.name] != k for c in graph.consumers(t))
            )
        ]
        stages.append(Stage(k, assign[g[0]], tuple(g), tuple(dict.fromkeys(ins)), tuple(outs)))
    transfers = stage_transfers(graph, stages, stage_of, cost_model)
    transdata = layout_conversions(graph, stages, transfers, precision)
    makespan = None if cost_model is None else estimate_makespan(graph, assign, cost_model)
    return ExecutionPlan(
        graph=graph,
        stages=tuple(stages),
        transfers=tuple(transfers),
        transdata=tuple(transdata),
        assignment=MappingProxyType(assign),
        fallbacks=MappingProxyType(
            {n: notes[n] for n in assign if n in notes and assign[n] == HOST}
        ),
        folded=tuple(n.name for n in graph if n.is_constant),
        strategy=strategy,
        estimated_makespan_s=makespan,
        precision=precision,
    )
