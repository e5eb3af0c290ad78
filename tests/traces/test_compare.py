"""Real profiles against simulated runs: ops matched by name, else by family and order; sim/real
ratios per op and family, the mechanism each side, and the ops that explain the gap."""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main
from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.traces.attribution import op_mechanism
from hetnpu.traces.chrome import write_chrome_trace
from hetnpu.traces.compare import compare_runs, family
from hetnpu.traces.msprof_write import write_msprof
from hetnpu.traces.read import read_trace
from tests.traces._profiles import (
    KERNEL_DETAILS_910B,
    OP_SUMMARY_COUPLED,
    TRACE_VIEW,
)


def test_real_kernel_details_against_the_simulated_block(attention) -> None:
    res, sim = attention
    c = compare_runs(KERNEL_DETAILS_910B, sim)
    pairs = {p["real"]: p["sim"] for p in c.ops}
    # No names are shared: families and order pair them.
    assert pairs == {
        "Transpose95": "k_transpose",
        "BatchMatMul96": "scores",
        "Mul97": "scaled",
        "ScaledMaskedSoftmax98": "probs",
        "BatchMatMul101": "context",
        "Transpose102": "ctx_transpose",
        "MatMul103": "proj",
    }
    assert {p["matched_by"] for p in c.ops} == {"type"}
    assert c.unmatched_sim == []
    assert set(c.unmatched_real) == {
        "AsStrided94",
        "AsStrided93",
        "trans_Cast_18",
        "StatelessDropOutGenMask99/DSASTATELESSGENBITMASK",
        "DropOutDoMask100",
        "hcom_allReduce__445_3",
    }
    real = {o.name: o for o in read_trace(KERNEL_DETAILS_910B).ops}
    sim_ops = {o.name: o for o in res.ops}
    for p in c.ops:
        sim_us = sim_ops[p["sim"]].cycles / res.clock_hz * 1e6
        assert p["real_us"] == real[p["real"]].dur_us
        assert p["sim_us"] == pytest.approx(sim_us, abs=1e-6)
        assert p["ratio"] == pytest.approx(sim_us / real[p["real"]].dur_us, rel=1e-6)
        assert p["sim_mechanism"] == op_mechanism(sim_ops[p["sim"]])
    # The real BatchMatMul's ArithmeticUtilization says Cube; its Softmax, Vector.
    by = {p["real"]: p for p in c.ops}
    assert by["BatchMatMul96"]["real_mechanism"] == "cube"
    assert by["ScaledMaskedSoftmax98"]["real_mechanism"] == "vector"
    # Families add up their pairs.
    mm = next(t for t in c.types if t["family"] == "matmul")
    assert mm["count"] == 3
    assert mm["real_us"] == pytest.approx(45.5 + 46 + 496.7)
    assert mm["ratio"] == pytest.approx(mm["sim_us"] / mm["real_us"])
    # The gap list: the largest absolute gaps first, covering at least 80 % of their sum.
    total = sum(abs(p["delta_us"]) for p in c.ops)
    shares = [g["share"] for g in c.gap]
    assert shares == sorted(shares, reverse=True)
    assert c.gap[-1]["cumulative"] >= 0.8 > c.gap[-1]["cumulative"] - shares[-1]
    assert c.gap[0]["share"] == pytest.approx(abs(c.ops[0]["delta_us"]) / total)
    assert c.sim_us == pytest.approx(sum(p["sim_us"] for p in c.ops))


def test_trace_diff_cli_prints_and_writes_the_comparison(attention, tmp_path, capsys) -> None:
    out = tmp_path / "diff.json"
    argv = ["trace-diff", str(KERNEL_DETAILS_910B), str(attention[1]), "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "7 ops matched (0 by name)" in text and "op families" in text
    assert "explain" in text and "only in base" in text
    matched = json.loads(out.read_text())["matched"]
    assert len(matched["ops"]) == 7 and matched["types"][0]["family"]


def test_same_run_matches_by_name_with_ratio_one(attention, tmp_path) -> None:
    # A simulated run written in msprof's schema compares with its own trace name by name.
    csv_path = write_msprof(attention[1], tmp_path)[0]
    c = compare_runs(csv_path, attention[1])
    assert {p["matched_by"] for p in c.ops} == {"name"}
    assert all(p["ratio"] == pytest.approx(1.0, abs=1e-6) for p in c.ops)
    assert c.unmatched_real == c.unmatched_sim == [] and c.gap == []


def test_real_op_summary_loads_summarises_and_diffs(attention, capsys) -> None:
    # The coupled-core op_summary row is a custom Add kernel: its OP Type (add_custom) names
    # no ONNX op, so the diff lists it unmatched rather than guessing.
    sim = attention[1]
    assert main(["summary", str(OP_SUMMARY_COUPLED)]) == 0
    assert "add_custom" in capsys.readouterr().out
    c = compare_runs(OP_SUMMARY_COUPLED, sim)
    assert c.ops == [] and c.unmatched_real == ["add_custom"]
    assert main(["trace-diff", str(OP_SUMMARY_COUPLED), str(sim)]) == 0
    assert "0 ops matched" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Conv", "Conv2D"),
        ("Gemm", "MatMulV2"),
        ("MatMul", "BatchMatMulV3"),
        ("Softmax", "SoftmaxV2"),
    ],
)
def test_families_fold_onnx_and_cann_types(a, b) -> None:
    assert family(a) == family(b)


def test_different_families_stay_apart() -> None:
    assert family("Add") != family("Mul") and family("Conv") != family("MatMul")


def test_real_resnet_timeline_against_a_simulated_resnet50(tmp_path) -> None:
    # The closest model to the torch_npu CNN training step: ResNet-50 (inference, batch 1) on
    # the 910B4. Its ATC TransData and MaxPool meet the real trans_TransData and
    # MaxPoolWithArgmaxV1 tasks by family; the training-only tasks stay unmatched.
    from hetnpu import models
    from hetnpu.devices.presets import load_npu

    graph = load(models.build("resnet50", batch=1))
    # A real task's duration leaves its launch out (msprof's Task Wait Time): so does this run.
    chip = load_npu("ascend910b4", {"task_launch_s": 0.0})
    res = simulate(graph, chip, trace_level="op")
    sim = tmp_path / "r50.json"
    write_chrome_trace(res, sim, "op", graph=graph)
    c = compare_runs(TRACE_VIEW, sim)
    assert {t["family"] for t in c.types} == {"transdata", "maxpool"}
    by_family = {t["family"]: t for t in c.types}
    assert by_family["transdata"]["real_mechanism"] == by_family["transdata"]["sim_mechanism"]
    assert by_family["transdata"]["sim_mechanism"] == "layout"
    real_pool = next(o for o in read_trace(TRACE_VIEW).ops if o.op_type == "MaxPoolWithArgmaxV1")
    pool = next(p for p in c.ops if p["family"] == "maxpool")
    assert (pool["real"], pool["sim"]) == (real_pool.name, "/maxpool/MaxPool")
    assert "aclnnInplaceZero_ZerosLikeAiCore_ZerosLike" in c.unmatched_real
