"""Control flow and RNNs on the simulated chip: branch, trips x body cycles + control tasks."""

from __future__ import annotations

import numpy as np

from hetnpu import models
from hetnpu.devices.presets import npu_spec
from hetnpu.graph import load
from hetnpu.graph.control import ControlOptions, body_graph
from hetnpu.graph.cost import node_cost
from hetnpu.simulator import simulate
from hetnpu.simulator.lowering.rnn import cell_graph
from tests.graph.test_control_flow import control_model

CHIP = "ascend310p"


def _switch_cycles(spec) -> int:
    # No public figure for a StreamSwitch task: the presets leave it unset, one kernel launch.
    assert spec.stream_switch_s is None
    return round(spec.task_launch_s * spec.clock_hz)


def _op(res, name):
    return next(o for o in res.ops if o.name == name)


def test_if_loop_scan_take_body_cycles_plus_control_tasks():
    spec = npu_spec(CHIP)
    assert spec.control_task_s > 0
    g = load(control_model(cond_value=False, trips=4))
    res = simulate(g, spec)
    sw = _switch_cycles(spec)
    for name, attr, trips, tasks in (
        ("branch", "else_branch", 1, 1),
        ("loop", "body", 4, 5),
        ("scan", "body", 6, 7),
    ):
        body = simulate(body_graph(g, g.node(name), attr), spec)
        op = _op(res, name)
        assert op.cycles == tasks * sw + trips * body.cycles, name
        assert op.macs == trips * sum(o.macs for o in body.ops)
    assert not res.unsupported
    assert res.cycles == res.ops[-1].end


def test_branch_choice_and_feeds_change_the_timed_branch():
    spec = npu_spec(CHIP)
    g = load(control_model(trips=2))
    then_ = _op(simulate(g, spec, branches={"branch": "then"}), "branch")
    else_ = _op(simulate(g, spec, feeds={"cond": np.array(False)}), "branch")
    then_body = simulate(body_graph(g, g.node("branch"), "then_branch"), spec)
    assert then_.cycles == _switch_cycles(spec) + then_body.cycles
    assert (
        then_.macs != else_.macs
        and then_.macs
        >= node_cost(g, g.node("branch"), control=ControlOptions(branches={"branch": "then"})).macs
    )


def test_same_model_same_cycles_and_trace_bytes(tmp_path):
    from hetnpu.traces import write_chrome_trace

    g = load(control_model(trips=3))
    runs = [simulate(g, CHIP, branches={"branch": "else"}, trace_level="op") for _ in range(2)]
    assert runs[0].cycles == runs[1].cycles and runs[0].ops == runs[1].ops
    paths = [tmp_path / f"run{i}.json" for i in range(2)]
    for res, path in zip(runs, paths, strict=True):
        write_chrome_trace(res, path, "op", graph=g, spec=res.spec)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    assert b'"loop"' in paths[0].read_bytes()


def test_crnn_lstms_run_steps_of_their_cell():
    g = load(models.build("crnn", width=48))  # 13 time steps
    spec = npu_spec(CHIP)
    res = simulate(g, spec)
    lstms = [n for n in g if n.op_type == "LSTM"]
    assert len(lstms) == 4 and not [u for u in res.unsupported if u.op_type == "LSTM"]
    in_kernel = spec.model_copy(update={"task_launch_s": 0.0})  # one DynamicRNN kernel
    for node in lstms:
        cell, steps = cell_graph(g, node)
        one = simulate(cell, in_kernel)
        two = simulate(cell_graph(g, node, unrolled=2)[0], in_kernel)
        op = _op(res, node.name)
        assert steps == 13 == g.tensors[node.inputs[0]].shape[0]
        # The first step fetches the weights; the later ones find them in L2.
        warm = two.cycles - one.cycles
        assert 0 < warm < one.cycles
        assert op.cycles == one.cycles + (steps - 1) * warm
        # The Cube does the formula's work, fractal padding on top.
        assert op.macs >= node_cost(g, node).macs
        assert op.cycles >= op.roofline_cycles
