"""Stages, transfers, TransData, validation and JSON of plans built from hand-made graphs."""

from __future__ import annotations

import dataclasses
import json

import pytest

from hetnpu.errors import ScheduleError
from hetnpu.scheduler import build_plan, estimate_makespan, place
from hetnpu.scheduler.plan import ExecutionPlan, Stage
from tests.conftest import ort_run
from tests.scheduler.helpers import TableCosts, check_plan, random_feeds, run_stages, tiny_model

COSTS = TableCosts({"npu": 0.25, "sim-npu": 0.25, "gpu": 0.5, "cpu": 1.0}, move=0.5)


def diamond():
    # a feeds b (CPU only) and c; d joins them. a, c, d on the NPU cannot be one stage:
    # d waits for b, which waits for a.
    return tiny_model(
        [
            ("a", "Relu", ["x"]),
            ("b", "CastLike", ["a"]),
            ("c", "Sigmoid", ["a"]),
            ("d", "Add", ["b", "c"]),
        ],
        ["d"],
    )


def stage_sets(plan):
    return [(s.device, set(s.nodes)) for s in plan.stages]


def test_merging_never_creates_a_cycle():
    g = diamond()
    p = place(g, ["npu", "cpu"])
    plan = build_plan(g, p.assignment, fallbacks=p.fallbacks)
    assert stage_sets(plan) == [("npu", {"a", "c"}), ("cpu", {"b"}), ("npu", {"d"})]
    check_plan(plan)
    plan.validate()


def test_independent_same_device_regions_merge():
    # s has no path to or from q's region except through x, so it joins q's NPU stage.
    g = tiny_model(
        [("p", "CastLike", ["x"]), ("q", "Relu", ["p"]), ("s", "Tanh", ["x"])], ["q", "s"]
    )
    plan = build_plan(g, place(g, ["npu", "cpu"]).assignment)
    assert stage_sets(plan) == [("cpu", {"p"}), ("npu", {"q", "s"})]
    check_plan(plan)


def test_transfers_and_transdata_at_npu_boundaries():
    g = tiny_model(
        [("a", "Relu", ["x"]), ("b", "CastLike", ["a"]), ("d", "Add", ["a", "b"])], ["d"]
    )
    p = place(g, ["npu", "cpu"])
    plan = build_plan(g, p.assignment, fallbacks=p.fallbacks, cost_model=COSTS)
    assert stage_sets(plan) == [("npu", {"a"}), ("cpu", {"b"}), ("npu", {"d"})]
    moves = {
        (t.tensor, t.src_stage, t.dst_stage, t.src_device, t.dst_device) for t in plan.transfers
    }
    assert moves == {
        ("x", None, 0, "cpu", "npu"),
        ("a", 0, 1, "npu", "cpu"),
        ("a", 0, 2, "npu", "npu"),
        ("b", 1, 2, "cpu", "npu"),
        ("d", 2, None, "npu", "cpu"),
    }
    assert all(t.nbytes == 1 * 4 * 2 * 2 * 4 for t in plan.transfers)
    # a goes from NPU stage 0 to NPU stage 2 in the NPU's layout: its out/in pair cancels;
    # it leaves once for the CPU.
    conversions = {(d.tensor, d.stage, d.src_layout, d.dst_layout) for d in plan.transdata}
    assert conversions == {
        ("x", 0, "NCHW", "NC1HWC0"),
        ("a", 0, "NC1HWC0", "NCHW"),
        ("b", 2, "NCHW", "NC1HWC0"),
        ("d", 2, "NC1HWC0", "NCHW"),
    }
    assert all(d.nbytes > 0 for d in plan.transdata)
    assert plan.fallbacks.keys() == {"b"} and "CastLike" in plan.fallbacks["b"]


def test_min_stage_size_moves_small_accelerator_stages_to_cpu():
    g = diamond()
    plan = build_plan(g, place(g, ["npu", "cpu"]).assignment, min_stage_size=2)
    assert stage_sets(plan) == [("npu", {"a", "c"}), ("cpu", {"b", "d"})]
    assert "min_stage_size=2" in plan.fallbacks["d"]
    check_plan(plan)


def test_constant_producers_are_folded_and_exported_with_their_stage():
    from hetnpu.graph import load
    from hetnpu.models.synthetic import random_dag

    g = load(random_dag(12, seed=4, constant_fraction=1.0))
    plan = build_plan(g, place(g, ["npu", "cpu"]).assignment)
    assert plan.folded and all(g.nodes[n].op_type == "ConstantOfShape" for n in plan.folded)
    assert not set(plan.folded) & set(plan.assignment)
    feeds = random_feeds(g)
    got = run_stages(plan, feeds)
    for name, want in ort_run(g.model, feeds).items():
        assert (got[name] == want).all()


def test_makespan_by_hand():
    g = tiny_model([("a", "Relu", ["x"]), ("b", "Tanh", ["a"])], ["b"])
    # in 0.5, a 0.25, b 0.25, out 0.5
    assert estimate_makespan(g, {"a": "npu", "b": "npu"}, COSTS) == pytest.approx(1.5)
    assert estimate_makespan(g, {"a": "cpu", "b": "cpu"}, COSTS) == pytest.approx(2.0)
    # in 0.5, a 0.25, back 0.5, b 1.0
    assert estimate_makespan(g, {"a": "npu", "b": "cpu"}, COSTS) == pytest.approx(2.25)


def test_a_device_runs_one_op_at_a_time():
    g = tiny_model([("a", "Relu", ["x"]), ("b", "Tanh", ["x"])], ["a", "b"])
    free = TableCosts({"cpu": 1.0, "gpu": 1.0}, move=0.0)
    assert estimate_makespan(g, {"a": "cpu", "b": "cpu"}, free) == pytest.approx(2.0)
    assert estimate_makespan(g, {"a": "cpu", "b": "gpu"}, free) == pytest.approx(1.0)


def test_heft_keeps_ops_on_cpu_when_moving_costs_more():
    g = tiny_model([("a", "Relu", ["x"]), ("b", "Tanh", ["a"])], ["b"])
    cheap = place(g, ["npu", "cpu"], strategy="heft", cost_model=COSTS).assignment
    assert cheap == {"a": "npu", "b": "npu"}
    dear = TableCosts({"npu": 0.25, "cpu": 1.0}, move=2.0)
    assert place(g, ["npu", "cpu"], strategy="heft", cost_model=dear).assignment == {
        "a": "cpu",
        "b": "cpu",
    }
    # capability ignores costs: it moves both anyway.
    assert place(g, ["npu", "cpu"], strategy="capability").assignment == {"a": "npu", "b": "npu"}


def test_json_round_trip():
    g = diamond()
    p = place(g, ["npu", "cpu"])
    plan = build_plan(
        g, p.assignment, fallbacks=p.fallbacks, strategy="capability", cost_model=COSTS
    )
    data = json.loads(json.dumps(plan.to_json()))
    again = ExecutionPlan.from_json(data, g)
    assert again.to_json() == plan.to_json()
    assert again.stages == plan.stages and again.transfers == plan.transfers
    assert again.transdata == plan.transdata and dict(again.fallbacks) == dict(plan.fallbacks)


def test_from_json_rejects_a_plan_that_drops_a_node():
    g = diamond()
    data = build_plan(g, place(g, ["npu", "cpu"]).assignment).to_json()
    data["stages"][0]["nodes"].remove("c")
    with pytest.raises(ScheduleError, match="'c'"):
        ExecutionPlan.from_json(data, g)


def test_validate_names_an_op_its_stage_device_cannot_run():
    g = diamond()
    plan = build_plan(g, place(g, ["npu", "cpu"]).assignment)
    bad = [dataclasses.replace(s, device="npu") if "b" in s.nodes else s for s in plan.stages]
    broken = dataclasses.replace(
        plan, stages=tuple(bad), assignment={**plan.assignment, "b": "npu"}
    )
    with pytest.raises(ScheduleError, match=r"'b' \(CastLike\)"):
        broken.validate()


def test_validate_catches_a_missing_transfer_and_a_cycle():
    g = diamond()
    plan = build_plan(g, place(g, ["npu", "cpu"]).assignment)
    lost = dataclasses.replace(plan, transfers=tuple(t for t in plan.transfers if t.tensor != "b"))
    with pytest.raises(ScheduleError, match="'b'"):
        lost.validate()
    merged = (
        Stage(0, "npu", ("a", "c", "d"), ("x", "b"), ("a", "d")),
        Stage(1, "cpu", ("b",), ("a",), ("b",)),
    )
    with pytest.raises(ScheduleError):
        dataclasses.replace(plan, stages=merged).validate()


def test_a_graph_input_that_is_also_an_output_needs_no_transfer() -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    import hetnpu

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [2, 3])
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, [2, 3])
    g = helper.make_graph([helper.make_node("Relu", ["X"], ["Y"], name="r")], "g", [x], [y, x])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    for strategy in ("capability", "heft"):
        plan = hetnpu.partition(m, devices=["npu", "cpu"], strategy=strategy)
        assert ("X", None) not in {(t.tensor, t.dst_stage) for t in plan.transfers}
    feed = {"X": np.array([[-1, 0, 2], [3, -4, 5]], np.float32)}
    y_out, x_out = hetnpu.InferenceSession(m, devices=["cpu"]).run(None, feed)
    np.testing.assert_array_equal(x_out, feed["X"])
    np.testing.assert_array_equal(y_out, np.maximum(feed["X"], 0))
