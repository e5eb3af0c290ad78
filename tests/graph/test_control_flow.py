"""Control flow and recurrent ops in the work counts: the branch, trip count and formulas."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from hetnpu import models
from hetnpu.errors import ConfigError
from hetnpu.graph import load
from hetnpu.graph.control import ControlOptions
from hetnpu.graph.cost import node_cost, total_cost
from hetnpu.graph.cost_control import control_cost

F = TensorProto.FLOAT
M, K, N = 8, 64, 32  # the MatMul in the else branch and in the loop bodies
CONV_MACS = 1 * 16 * 8 * 8 * (4 * 3 * 3)  # Conv 4->16, 3x3, pad 1, on 1x4x8x8


def _init(name, shape, seed=0):
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def control_model(cond_value: bool | None = None, trips: int = 5):
    """If (then: Conv, else: MatMul), a Loop of ``trips`` MatMuls, a Scan over 6 rows."""
    then_g = helper.make_graph(
        [
            helper.make_node("Conv", ["img", "cw"], ["conv"], pads=[1, 1, 1, 1]),
            helper.make_node("ReduceSum", ["conv"], ["t_out"], keepdims=0),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("t_out", F, [])],
    )
    else_g = helper.make_graph(
        [
            helper.make_node("MatMul", ["a", "b"], ["mm"]),
            helper.make_node("ReduceSum", ["mm"], ["e_out"], keepdims=0),
        ],
        "else",
        [],
        [helper.make_tensor_value_info("e_out", F, [])],
    )
    loop_body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("MatMul", ["a", "b"], ["prod"]),
            helper.make_node("Add", ["acc_in", "prod"], ["acc_out"]),
        ],
        "loop_body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_in", F, [M, N]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("acc_out", F, [M, N]),
        ],
    )
    scan_body = helper.make_graph(
        [
            helper.make_node("MatMul", ["row", "b"], ["r"]),
            helper.make_node("Add", ["s_in", "r"], ["s_out"]),
            helper.make_node("Identity", ["r"], ["y"]),
        ],
        "scan_body",
        [
            helper.make_tensor_value_info("s_in", F, [1, N]),
            helper.make_tensor_value_info("row", F, [1, K]),
        ],
        [
            helper.make_tensor_value_info("s_out", F, [1, N]),
            helper.make_tensor_value_info("y", F, [1, N]),
        ],
    )
    nodes = [
        helper.make_node(
            "If", ["cond"], ["branch_out"], name="branch", then_branch=then_g, else_branch=else_g
        ),
        helper.make_node("Loop", ["M", "", "acc0"], ["acc"], name="loop", body=loop_body),
        helper.make_node(
            "Scan", ["s0", "rows"], ["s", "ys"], name="scan", body=scan_body, num_scan_inputs=1
        ),
    ]
    inits = [
        _init("cw", [16, 4, 3, 3], 1),
        _init("b", [K, N], 2),
        numpy_helper.from_array(np.array(trips, dtype=np.int64), "M"),
    ]
    inputs = [
        helper.make_tensor_value_info("img", F, [1, 4, 8, 8]),
        helper.make_tensor_value_info("a", F, [M, K]),
        helper.make_tensor_value_info("acc0", F, [M, N]),
        helper.make_tensor_value_info("s0", F, [1, N]),
        helper.make_tensor_value_info("rows", F, [6, 1, K]),
    ]
    if cond_value is None:
        inputs.append(helper.make_tensor_value_info("cond", TensorProto.BOOL, []))
    else:
        inits.append(numpy_helper.from_array(np.array(cond_value), "cond"))
    outputs = [helper.make_empty_tensor_value_info(n) for n in ("branch_out", "s", "ys")]
    outputs.append(helper.make_tensor_value_info("acc", F, [M, N]))  # onnx infers no Loop shape
    graph = helper.make_graph(nodes, "control", inputs, outputs, initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_constant_condition_counts_the_branch_it_selects():
    then_g = load(control_model(cond_value=True))
    else_g = load(control_model(cond_value=False))
    assert node_cost(then_g, then_g.node("branch")).macs == CONV_MACS
    assert node_cost(else_g, else_g.node("branch")).macs == M * K * N
    assert control_cost(then_g, then_g.node("branch")).selection.rule == "constant"


def test_unknown_condition_lists_both_and_counts_the_larger():
    g = load(control_model())
    cost = control_cost(g, g.node("branch"))
    assert cost.selection.rule == "both"
    assert cost.macs == (CONV_MACS, M * K * N)
    assert cost.shown_macs == max(CONV_MACS, M * K * N)
    chosen = ControlOptions(branches={"branch": "else"})
    assert node_cost(g, g.node("branch"), control=chosen).macs == M * K * N


def test_fed_condition_selects_the_branch():
    g = load(control_model())
    fed = ControlOptions(feeds={"cond": np.array(False)})
    cost = control_cost(g, g.node("branch"), fed)
    assert cost.selection.rule == "fed" and cost.selection.chosen.attr == "else_branch"
    assert cost.shown_macs == M * K * N


def test_loop_and_scan_count_body_times_trips():
    g = load(control_model(trips=7))
    assert node_cost(g, g.node("loop")).macs == 7 * M * K * N
    assert control_cost(g, g.node("loop")).selection.rule == "constant"
    assert node_cost(g, g.node("scan")).macs == 6 * K * N
    assert control_cost(g, g.node("scan")).selection.rule == "shapes"
    total = total_cost(g, control=ControlOptions(branches={"branch": "then"}))
    assert total.macs == CONV_MACS + 7 * M * K * N + 6 * K * N


def test_a_choice_contradicting_a_known_value_is_refused():
    g = load(control_model(cond_value=True, trips=3))
    with pytest.raises(ConfigError, match="selects then"):
        control_cost(g, g.node("branch"), ControlOptions(branches={"branch": "else"}))
    with pytest.raises(ConfigError, match="known"):
        control_cost(g, g.node("loop"), ControlOptions(trips={"loop": 4}))
    with pytest.raises(ConfigError, match="no control-flow node"):
        ControlOptions(branches={"nope": "then"}).check(g)
    with pytest.raises(ConfigError, match="then or else"):
        ControlOptions(branches={"branch": "maybe"})


def _recurrent(op: str, t: int, b: int, i: int, h: int, dirs: int, bias: bool):
    gates = {"LSTM": 4, "GRU": 3, "RNN": 1}[op]
    inits = [_init("W", [dirs, gates * h, i]), _init("R", [dirs, gates * h, h])]
    ins = ["X", "W", "R"]
    if bias:
        inits.append(_init("B", [dirs, 2 * gates * h]))
        ins.append("B")
    direction = "bidirectional" if dirs == 2 else "forward"
    node = helper.make_node(op, ins, ["Y"], name="rnn", hidden_size=h, direction=direction)
    graph = helper.make_graph(
        [node],
        "rnn",
        [helper.make_tensor_value_info("X", F, [t, b, i])],
        [helper.make_empty_tensor_value_info("Y")],
        initializer=inits,
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


@pytest.mark.parametrize(
    ("op", "gates", "per_unit"),
    # per hidden unit and step: gate sums (3 each with bias) + activations + state update
    [
        ("LSTM", 4, 4 * 3 + 3 * 3 + 2 + 3 + 1),
        ("GRU", 3, 3 * 3 + 2 * 3 + 1 + 1 + 4),
        ("RNN", 1, 3 + 1),
    ],
)
def test_recurrent_ops_count_gate_projections_per_step(op, gates, per_unit):
    t, b, i, h, dirs = 5, 2, 12, 16, 2
    g = _recurrent(op, t, b, i, h, dirs, bias=True)
    cost = node_cost(g, g.node("rnn"))
    macs = dirs * t * b * gates * h * (i + h)
    assert cost.macs == macs and cost.kind == "matmul"
    assert cost.flops == 2 * macs + dirs * t * b * h * per_unit


def test_crnn_lstms_are_counted():
    g = load(models.build("crnn"))
    lstm = sum(node_cost(g, n).macs for n in g if n.op_type == "LSTM")
    assert lstm == 2 * 26 * 4 * 256 * ((512 + 256) + (256 + 256))


def test_info_cli_counts_the_chosen_branch_and_trips(tmp_path, capsys):
    import json

    import onnx

    from hetnpu.cli import main

    path = tmp_path / "control.onnx"
    onnx.save(control_model(trips=3), path)
    out = tmp_path / "info.json"
    args = ["info", str(path), "--input-shape", "img=1,4,8,8", "--json", str(out)]
    assert main([*args, "--branch", "branch=else"]) == 0
    data = json.loads(out.read_text())
    assert data["macs"] == M * K * N + 3 * M * K * N + 6 * K * N
    assert data["control_flow"]["branch"]["rule"] == "chosen"
    assert data["control_flow"]["loop"]["runs"] == [{"subgraph": "body", "trips": 3}]
    assert "control flow" in capsys.readouterr().out
    assert main(args) == 0  # unknown condition: both listed, the larger counted
    both = json.loads(out.read_text())["control_flow"]["branch"]
    assert both["rule"] == "both" and both["macs"] == [CONV_MACS, M * K * N]
    assert main([*args, "--branch", "loop=then"]) == 2
    assert "is a Loop" in capsys.readouterr().err
    assert main([*args, "--trips", "loop=x"]) == 2


def test_simulate_cli_takes_branch_and_trips(tmp_path, capsys):
    import onnx

    from hetnpu.cli import main

    path = tmp_path / "control.onnx"
    onnx.save(control_model(trips=3), path)
    assert main(["simulate", str(path), "--chip", "ascend310p", "--branch", "branch=then"]) == 0
    printed = capsys.readouterr().out
    assert "branch" in printed and "If" in printed
    assert main(["simulate", str(path), "--chip", "ascend310p", "--trips", "loop=4"]) == 2
    assert "known" in capsys.readouterr().err


def test_loop_trip_count_from_feeds_or_choice_else_one_trip():
    model = control_model(cond_value=True, trips=1)
    init = next(i for i in model.graph.initializer if i.name == "M")
    model.graph.initializer.remove(init)
    model.graph.input.append(helper.make_tensor_value_info("M", TensorProto.INT64, []))
    g = load(model)
    unknown = control_cost(g, g.node("loop"))
    assert unknown.selection.rule == "unknown" and unknown.shown_macs == M * K * N
    chosen = control_cost(g, g.node("loop"), ControlOptions(trips={"loop": 9}))
    assert chosen.selection.rule == "chosen" and chosen.shown_macs == 9 * M * K * N
    fed = control_cost(g, g.node("loop"), ControlOptions(feeds={"M": np.array(4)}))
    assert fed.selection.rule == "fed" and fed.shown_macs == 4 * M * K * N


def test_a_loop_that_may_stop_early_takes_fewer_trips_than_its_maximum_never_more():
    from hetnpu.graph.control import select

    body = helper.make_graph(
        [
            helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.int64(2))),
            helper.make_node("Less", ["i", "two"], ["cond_out"]),  # stops after trip 3
            helper.make_node("Identity", ["x_in"], ["x_out"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [2]),
        ],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [2]),
        ],
    )
    graph = helper.make_graph(
        [helper.make_node("Loop", ["M", "", "x"], ["y"], name="loop", body=body)],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.int64(8), "M")],
    )
    g = load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert select(g, g.node("loop")).chosen.trips == 8  # the maximum, marked as such
    assert select(g, g.node("loop"), ControlOptions(trips={"loop": 3})).chosen.trips == 3
    with pytest.raises(ConfigError, match=r"trips loop=9: more than its maximum trip count"):
        select(g, g.node("loop"), ControlOptions(trips={"loop": 9}))
