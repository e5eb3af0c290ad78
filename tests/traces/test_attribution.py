"""Per-op mechanism attribution: from OpRecord fields, in the trace (args, colour), in
``hetnpu simulate --check`` and in measured ops' PipeUtilization ratios."""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main
from hetnpu.simulator.result import OpRecord
from hetnpu.traces.attribution import (
    COLOURS,
    MECHANISMS,
    op_mechanism,
    op_time_parts,
    pipe_mechanism,
    result_time_parts,
)
from hetnpu.traces.chrome import chrome_trace


def _op(op_type: str, bound: str, cube: int = 0, vector: int = 0, launch: int = 0) -> OpRecord:
    return OpRecord(0, "x", op_type, 100, 400, (), cube, vector, 0, bound, 0, 0, 0, 0, 0, 0,
                    launch_cycles=launch)  # fmt: skip


@pytest.mark.parametrize(
    ("op", "parts"),
    [
        (_op("Conv", "compute", cube=500, vector=20), {"cube": 300}),
        (_op("Softmax", "compute", cube=0, vector=90, launch=50), {"dispatch": 50, "vector": 300}),
        (_op("Add", "memory", vector=10), {"memory": 300}),
        (_op("Gemm", "latency", cube=40), {"sync": 300}),
        # A layout conversion is layout whatever unit bounded it.
        (_op("TransData", "memory", vector=200, launch=10), {"dispatch": 10, "layout": 300}),
    ],
)
def test_each_record_splits_into_its_mechanisms(op, parts) -> None:
    assert op_time_parts(op) == parts
    assert sum(parts.values()) == op.launch_cycles + op.cycles
    assert op_mechanism(op) == max(parts, key=parts.get)


def test_launch_dominates_a_short_op_and_fused_ops_have_none() -> None:
    assert op_mechanism(_op("Relu", "compute", vector=5, launch=1000)) == "dispatch"
    fused = OpRecord.fused(1, "relu", "Relu", 400, "conv")
    assert op_mechanism(fused) == "" and op_time_parts(fused) == {}


def test_a_simulated_run_is_accounted_in_full(sim_launch) -> None:
    # With a kernel launch cost every op's launch shows up as dispatch.
    sim = sim_launch
    res = sim.result
    parts = result_time_parts(res.ops)
    assert list(parts) == list(MECHANISMS)
    assert sum(parts.values()) == sum(o.launch_cycles + o.cycles for o in res.ops)
    assert parts["dispatch"] == res.launch_cycles > 0
    assert parts["layout"] == next(o.cycles for o in res.ops if o.op_type == "TransData")
    # The trace carries each op's mechanism, its cycles per mechanism, and its colour.
    trace = chrome_trace(res, "op", graph=sim.graph)
    ops = {e["name"]: e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "op"}
    for o in res.ops:
        if o.fused_into is None:
            args = ops[o.name]["args"]
            assert args["mechanism"] == op_mechanism(o)
            assert args["mechanism_cycles"] == op_time_parts(o)
            assert ops[o.name]["cname"] == COLOURS[op_mechanism(o)]


def test_simulate_check_prints_the_attribution(sim, tmp_path, capsys) -> None:
    model = tmp_path / "m.onnx"
    from tests.traces._models import residual_model

    model.write_bytes(residual_model().SerializeToString())
    assert main(["simulate", str(model), "--chip", "ascend910", "--check"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("check: time by mechanism"))
    res = sim.result  # the same model and chip (recorded at instruction level; same timing)
    parts = result_time_parts(res.ops)
    total = sum(parts.values())
    for m, c in parts.items():
        if c:
            assert f"{m} {c / total:.1%}" in line
    assert "mechanism" in out  # the costliest-ops table's column
    conv1 = next(o for o in res.ops if o.name == "conv1")
    assert f"check: conv1 (Conv) {conv1.launch_cycles + conv1.cycles:,} cycles, " in out


def test_measured_ops_take_the_largest_pipe_ratio() -> None:
    assert pipe_mechanism("Conv2D", {"aic_mac_ratio": 0.7, "aic_mte2_ratio": 0.4}) == "cube"
    assert pipe_mechanism("Add", {"aiv_vec_ratio": 0.1, "aiv_mte2_ratio": 0.8}) == "memory"
    assert pipe_mechanism("Cast", {"aiv_vec_fp16_ratio": 0.3, "aiv_scalar_ratio": 0.1}) == "vector"
    assert pipe_mechanism("X", {"scalar_ratio": 0.9, "vec_ratio": 0.02}) == "sync"
    assert pipe_mechanism("Add", {"aiv_vec_ratio": None}) == ""
    assert json.dumps(COLOURS)  # every mechanism has a colour name
    assert set(COLOURS) == set(MECHANISMS)
