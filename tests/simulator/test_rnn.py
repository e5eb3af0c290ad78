"""GRU, RNN and LSTM lowered to the chip: one kernel of T x directions cell steps."""

from __future__ import annotations

import pytest

from hetnpu.devices.presets import npu_spec
from hetnpu.graph.cost import node_cost
from hetnpu.simulator import simulate
from hetnpu.simulator.lowering.rnn import cell_graph
from tests.graph.test_control_flow import _recurrent

CHIP = "ascend910b"  # split AIC/AIV: the gate projection on the Cube cores, gates on Vector


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
@pytest.mark.parametrize("dirs", [1, 2])
def test_recurrent_op_is_one_kernel_of_warm_steps(op, dirs):
    spec = npu_spec(CHIP)
    g = _recurrent(op, t=4, b=2, i=24, h=32, dirs=dirs, bias=True)
    node = g.node("rnn")
    res = simulate(g, spec)
    rec = next(o for o in res.ops if o.name == "rnn")
    in_kernel = spec.model_copy(update={"task_launch_s": 0.0})
    cell, steps = cell_graph(g, node)
    assert steps == 4 * dirs
    one = simulate(cell, in_kernel)
    two = simulate(cell_graph(g, node, unrolled=2)[0], in_kernel)
    assert rec.cycles == one.cycles + (steps - 1) * (two.cycles - one.cycles)
    assert {o.op_type for o in one.ops} >= {"MatMul", "Tanh"}
    # The Cube does at least the formula's MACs (fractal padding on top), per step.
    assert rec.macs >= node_cost(g, node).macs > 0
    assert rec.launch_cycles == round(spec.task_launch_s * spec.clock_hz)
    assert not res.unsupported
