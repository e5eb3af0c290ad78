"""Ops that run other ops: If, Loop and Scan (control flow), LSTM, GRU and RNN (a cell per step).

GE runs an If as a StreamSwitch task that activates the stream of the branch taken, and a
While/Loop as a StreamSwitch per trip on the loop condition; the branch's and the body's
kernels run on the AI cores like any others (one kernel launch each). An op here is timed as
what it runs, simulated cycle by cycle on the same chip (:func:`hetnpu.simulator.simulate` of
the subgraph), plus its control tasks:

- If: ``1 × stream_switch`` + the branch the rule of :mod:`hetnpu.graph.control` selects (the
  larger one when neither is known nor chosen);
- Loop, Scan: ``(trips + 1) × stream_switch`` + ``trips ×`` the body (one more switch ends the
  loop);
- LSTM, GRU, RNN: one kernel launch + the first step's cell + ``steps × directions - 1``
  warm steps (the second of two consecutive steps, its weights in L2;
  :mod:`hetnpu.simulator.lowering.rnn`); the cells' ops launch nothing of their own.

A control task costs ``stream_switch_s`` when a preset sets it; no public source gives one, so
the presets leave it unset and a control task costs one kernel launch (``task_launch_s``: GE
dispatches StreamSwitch/StreamActive tasks through the same task scheduler as kernels).

Left out: a body's ops are simulated on a chip of their own, so HBM/L2 contention and L2
residency do not carry across the control-flow boundary (each body starts with a cold L2);
every trip of a loop is taken to cost the same; the If's condition evaluation is the cond
producer's own op, already timed; ops inside a body that the NPU cannot run are listed as
unsupported under ``node/inner`` names and not timed. Kernel launches inside a body are part of
the op's cycles, not of the run's ``launch_cycles``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hetnpu.errors import ModelError
from hetnpu.graph.control import CONTROL_OPS, ControlOptions, body_graph, nested_control_nodes
from hetnpu.graph.cost_control import control_cost
from hetnpu.graph.ir import Graph, Node
from hetnpu.simulator.lowering.common import Unsupported
from hetnpu.simulator.lowering.rnn import RECURRENT_OPS, cell_graph
from hetnpu.simulator.result import OpRecord, SimResult, UnsupportedOp

__all__ = ["EXPANDED_OPS", "Expansion", "expand", "run_expanded"]

EXPANDED_OPS = CONTROL_OPS | RECURRENT_OPS


@dataclass(frozen=True)
class Expansion:
    """What an expanded op runs: subgraphs with their repeat counts, and its control tasks."""

    parts: tuple[tuple[str, Graph, int], ...]
    """(subgraph label, its graph, its weight): the op's figures are the weighted sum of its
    parts' simulated figures (a body's trips; for an RNN, the first step and the warm steps as
    ``(2 - T)·one step + (T - 1)·two steps``)."""
    control_tasks: int
    """StreamSwitch/StreamActive tasks on the stream."""
    one_kernel: bool
    """The whole op is one kernel (RNNs): its parts launch nothing of their own."""


def expand(graph: Graph, node: Node, options: ControlOptions | None) -> Expansion:
    """What ``node`` runs on the chip.

    Raises
    ------
    Unsupported
        Its subgraph cannot be built (unknown shapes, no shape inference).
    ConfigError
        A user choice contradicts a known condition or trip count.
    """
    if node.op_type in RECURRENT_OPS:
        cell, steps = cell_graph(graph, node)
        if steps < 2:
            return Expansion((("cell", cell, steps),), 0, True)
        # Step 2 onwards find the weights in L2: T steps = step 1 + (T - 1) x (two - one).
        two, _ = cell_graph(graph, node, unrolled=2)
        return Expansion((("cell", cell, 2 - steps), ("two steps", two, steps - 1)), 0, True)
    ran = control_cost(graph, node, options)
    if ran.error:
        raise Unsupported(ran.error)
    choice = ran.selection.chosen
    feeds = (options or ControlOptions()).feeds
    try:
        body = body_graph(graph, node, choice.attr, feeds)
    except ModelError as exc:
        raise Unsupported(str(exc)) from None
    tasks = 1 if node.op_type == "If" else choice.trips + 1
    return Expansion(((choice.attr, body, choice.trips),), tasks, False)


def run_expanded(run: Any, index: int, node: Node) -> Iterator[Any]:
    """Time ``node`` in the chip run ``run`` (a ``simulator.chip`` run): a SimPy generator."""
    from hetnpu.simulator.chip import simulate

    env, spec = run.env, run.spec
    try:
        exp = expand(run.graph, node, run.control)
    except Unsupported as exc:
        run.unsupported.append(UnsupportedOp(node.name, node.op_type, str(exc)))
        return
    part_spec = spec.model_copy(update={"task_launch_s": 0.0}) if exp.one_kernel else spec
    results: list[tuple[SimResult, int]] = []
    for label, body, repeats in exp.parts:
        inside = {name for name, _ in nested_control_nodes(body.model.graph)}
        res = simulate(
            body,
            part_spec,
            precision=run.ctx.prec.name,
            double_buffer=run.ctx.double_buffer,
            branches={k: v for k, v in run.control.branches.items() if k in inside},
            trips={k: v for k, v in run.control.trips.items() if k in inside},
        )
        results.append((res, repeats))
        for u in res.unsupported:
            run.unsupported.append(
                UnsupportedOp(f"{node.name}/{label}/{u.name}", u.op_type, u.reason)
            )
    launch = run.launch_cycles if exp.one_kernel else 0
    switch = control_overhead_cycles(spec, exp.control_tasks)
    if launch:
        yield env.timeout(launch)
        run.launched += launch
    t0 = env.now
    work = sum(r.cycles * k for r, k in results)
    if switch + work:
        yield env.timeout(switch + work)
    run.ops.append(_record(index, node, t0, env.now, results, launch, run, exp.one_kernel))


def _record(
    index: int,
    node: Node,
    t0: int,
    end: int,
    results: list[tuple[SimResult, int]],
    launch: int,
    run: Any,
    one_kernel: bool,
) -> OpRecord:
    """One record for the whole op; its unit and byte figures are its parts' times repeats."""

    def total(attr: str) -> int:
        return sum(getattr(o, attr) * k for r, k in results for o in r.ops)

    for r, k in results:
        for u, busy in r.unit_busy_cycles.items():
            run.busy[u] = run.busy.get(u, 0) + busy * k
        run.hbm.nbytes += r.hbm_bytes * k
    cube, vector, mte = total("cube_cycles"), total("vector_cycles"), total("mte_cycles")
    compute = max(cube, vector)
    bound = (
        "zero"
        if not any(r.ops for r, _ in results)
        else ("compute" if compute >= mte else "memory")
    )
    label = " + ".join(f"{k} x {r.cycles:,} cycles" for r, k in results)
    used = sorted({c for r, _ in results for o in r.ops for c, _s, _e in o.cores})
    # One kernel (an RNN) holds every core its steps ran on for its whole span, so a trace
    # shows its task type (MIX_AIC on a split chip); control flow is many kernels, no cores.
    cores = tuple((c, t0, end) for c in used) if one_kernel else ()
    return OpRecord(
        index,
        node.name,
        node.op_type,
        t0,
        end,
        cores,
        cube,
        vector,
        mte,
        bound,
        total("roofline_cycles"),
        total("compute_bound_cycles"),
        total("memory_bound_cycles"),
        total("macs"),
        total("gm_bytes"),
        total("hbm_bytes"),
        tile=label,
        launch_cycles=launch,
    )


def control_overhead_cycles(spec: Any, tasks: int) -> int:
    """Cycles of ``tasks`` control tasks of ``spec.control_task_s`` each."""
    return tasks * round(float(spec.control_task_s) * spec.clock_hz)
