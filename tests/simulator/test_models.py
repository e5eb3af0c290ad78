"""Whole models: every light model of onnx's test data, determinism, the roofline check, and
split (AIC/AIV) chips."""

from __future__ import annotations

import json

import pytest

from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.traces import write_trace
from tests.conftest import LIGHT_DIR, LIGHT_MODELS


@pytest.fixture(scope="module")
def light_graphs() -> dict:
    return {name: load(LIGHT_DIR / f"{name}.onnx") for name in LIGHT_MODELS}


@pytest.mark.parametrize("chip_name", ["ascend310", "ascend910"])
def test_every_light_model_simulates(light_graphs, chip, chip_name) -> None:
    spec = chip(chip_name)
    assert len(light_graphs) >= 9
    for name, graph in light_graphs.items():
        res = simulate(graph, spec)
        assert res.cycles > 0, name
        # ATC's TransData of 4-D inputs into NC1HWC0 before a Conv is an op of its own.
        timed = {o.name for o in res.ops if not o.name.startswith("TransData:")}
        inputs = [t for t in graph.inputs if any(c.op_type == "Conv" for c in graph.consumers(t))]
        assert [o.name for o in res.ops[: len(inputs)]] == [f"TransData:{t}" for t in inputs]
        refused = {u.name for u in res.unsupported}
        runtime = {n.name for n in graph if not n.is_constant}
        # Every op is either timed or reported with a reason, never dropped.
        assert timed | refused == runtime and not timed & refused, name
        assert all(u.reason for u in res.unsupported), name
        # Simulated cycles never beat the roofline bound (max of Cube and bandwidth bounds).
        bad = res.check_violations()
        assert not bad, (name, [(o.name, o.cycles, o.roofline_cycles) for o in bad])
        # Ops run one after another on one stream.
        assert all(a.end <= b.start for a, b in zip(res.ops, res.ops[1:], strict=False))
        assert res.ops[-1].end <= res.cycles


def test_determinism_of_results_and_traces(light_graphs, chip, tmp_path) -> None:
    graph = light_graphs["light_squeezenet"]
    a = simulate(graph, chip("ascend910"), trace_level="instr")
    b = simulate(graph, chip("ascend910"), trace_level="instr")
    assert a == b
    for level in ("op", "instr"):
        write_trace(a, tmp_path / f"a_{level}.json", level=level)
        write_trace(b, tmp_path / f"b_{level}.json", level=level)
        assert (tmp_path / f"a_{level}.json").read_bytes() == (
            tmp_path / f"b_{level}.json"
        ).read_bytes()
    assert a.to_summary() | {"wall_s": 0} == b.to_summary() | {"wall_s": 0}
    json.dumps(a.to_summary())


def test_check_mode_passes_on_a_model(light_graphs, chip) -> None:
    res = simulate(light_graphs["light_resnet50"], chip("ascend910"), check=True)
    conv = [o for o in res.ops if o.op_type == "Conv"]
    assert conv and all(o.roofline_cycles > 0 and o.roofline_ratio >= 1 for o in conv)
    assert {o.bound for o in conv} <= {"compute", "memory", "latency"}
    # Relu and BatchNormalization right after a Conv ride on its output path.
    assert any(o.bound == "fused" and o.fused_into for o in res.ops)


def test_split_chip_runs_cube_on_aic_and_vector_on_aiv(chip, mm_relu_model) -> None:
    graph = load(mm_relu_model, input_shapes={"A": [512, 256]})
    res = simulate(graph, chip("ascend910b"))
    by_name = {o.name: o for o in res.ops}
    assert by_name["mm"].cores and all(c.startswith("aic") for c, _, _ in by_name["mm"].cores)
    soft = by_name["softmax"].cores
    assert soft and all(c.startswith("aiv") for c, _, _ in soft)
    assert by_name["relu"].bound == "fused"
    assert "FIXPIPE" in res.unit_busy and res.unit_busy["FIXPIPE"] > 0
