"""msprof and torch_npu formats: real profiles read, simulated runs written in msprof's schema and
read back without loss, malformed files refused with their place."""

from __future__ import annotations

import csv
import json

import pytest

from hetnpu.cli import main
from hetnpu.errors import InputError
from hetnpu.traces.chrome import write_chrome_trace
from hetnpu.traces.msprof_read import parse_number
from hetnpu.traces.msprof_schema import (
    A2_PIPE,
    COMMON,
    COUPLED_PIPE,
    KERNEL_DETAILS_RENAMES,
    OP_STATISTIC,
)
from hetnpu.traces.msprof_write import write_msprof
from hetnpu.traces.read import read_trace
from hetnpu.traces.summary import op_summary
from tests.traces._profiles import (
    KERNEL_DETAILS_910B,
    KERNEL_DETAILS_A2,
    OP_SUMMARY_COUPLED,
    TRACE_VIEW,
)

# The documented columns, written out here (not taken from the code under test), with their
# source: msprof's "Profile Data File Reference", docs/en/user_guide/
# profile_data_file_references.md (GitHub kali20gakki/msprof @ 66c00af8), op_summary table 1
# (common fields) and table 2 (PipeUtilization: *_vec/_mac/_scalar/_mte1/_mte2/_mte3 time and
# ratio, aic_fixpipe, *_icache_miss_rate, memory_bound, cube_utilization(%)); op_statistic
# table 1. The A2 order is the real kernel_details.csv's, the coupled order the real op_summary
# row's (fixtures/README.md).
DOCUMENTED_COMMON = [
    "Device_id",
    "Model ID",
    "Task ID",
    "Stream ID",
    "Op Name",
    "OP Type",
    "OP State",
    "Task Type",
    "Task Start Time(us)",
    "Task Duration(us)",
    "Task Wait Time(us)",
    "Block Dim",
    "Mix Block Dim",
    "HF32 Eligible",
    "Input Shapes",
    "Input Data Types",
    "Input Formats",
    "Output Shapes",
    "Output Data Types",
    "Output Formats",
    "Context ID",
]
DOCUMENTED_A2 = [f"aic_{p}" for p in ("mac", "scalar", "mte1", "mte2", "fixpipe")] + [
    f"aiv_{p}" for p in ("vec", "scalar", "mte2", "mte3")
]
DOCUMENTED_COUPLED = ["vec", "mac", "scalar", "mte1", "mte2", "mte3"]
DOCUMENTED_STATISTIC = [
    "Device_id",
    "OP Type",
    "Core Type",
    "Count",
    "Total Time(us)",
    "Min Time(us)",
    "Avg Time(us)",
    "Max Time(us)",
    "Ratio(%)",
]


def _header(path) -> list[str]:
    return [KERNEL_DETAILS_RENAMES.get(h, h) for h in next(csv.reader(path.open()))]


def test_schemas_are_the_documented_and_real_columns() -> None:
    assert list(COMMON) == DOCUMENTED_COMMON
    assert list(OP_STATISTIC) == DOCUMENTED_STATISTIC
    for pipe in DOCUMENTED_A2:
        assert {f"{pipe}_ratio", f"{pipe}_time(us)"} <= set(A2_PIPE)
    for pipe in DOCUMENTED_COUPLED:
        assert {f"{pipe}_ratio", f"{pipe}_time(us)"} <= set(COUPLED_PIPE)
    assert "memory_bound" in COUPLED_PIPE and "memory_bound" not in A2_PIPE
    assert A2_PIPE[-1] == "cube_utilization(%)"
    # The real files: the A2 PipeUtilization columns are the tail of torch_npu's header in its
    # order, the coupled ones the tail of msprof's; the common ones all appear in them.
    a2 = _header(KERNEL_DETAILS_A2)
    assert a2[-len(A2_PIPE) :] == list(A2_PIPE)
    assert set(COMMON) - {"Device_id"} <= set(a2)
    assert _header(OP_SUMMARY_COUPLED)[-len(COUPLED_PIPE) :] == list(COUPLED_PIPE)


def test_real_kernel_details_reads_with_task_types_and_pipe_ratios() -> None:
    tr = read_trace(KERNEL_DETAILS_A2)
    assert tr.kind == "torch_npu" and len(tr.ops) == 6
    kinds = {o.op_type: o.task_type for o in tr.ops}
    assert kinds == {
        "MatMulV2": "AI_CORE",
        "MatMulV3": "AI_CORE",
        "FlashAttentionScore": "MIX_AIC",
        "FlashAttentionScoreGrad": "MIX_AIC",
        "Add": "AI_VECTOR_CORE",
    }
    mm = next(o for o in tr.ops if o.op_type == "MatMulV2")
    # The row as written: start padded with a tab, Block Dim 16, wait 1.087 µs.
    assert (mm.start_us, mm.dur_us, mm.cores, mm.wait_us) == (
        1736413971558972.912,
        185.504,
        16,
        1.087,
    )
    pipe = dict(mm.pipe)
    assert pipe["aic_mac_ratio"] == 0.824 and pipe["aic_mte2_ratio"] == 0.964
    assert mm.mechanism == "memory"  # MTE2 busier than the Cube
    assert dict(mm.attrs)["Input Data Types"] == "DT_BF16;DT_BF16"
    # msprof's cube utilisation is aic_total_cycles / (freq x AIC count x duration): with
    # aicore_time = total_cycles / (freq x Block Dim), it is aicore_time x Block Dim /
    # (duration x 20 AICs). The writer uses this formula; the real rows obey it.
    for o in tr.ops:
        p = dict(o.pipe)
        if o.task_type in ("AI_CORE", "MIX_AIC"):
            util = p["aicore_time(us)"] * o.cores / (o.dur_us * 20) * 100
            assert util == pytest.approx(p["cube_utilization(%)"], abs=0.01), o.name


def test_real_coupled_op_summary_obeys_the_memory_bound_formula() -> None:
    (op,) = read_trace(OP_SUMMARY_COUPLED).ops
    p = dict(op.pipe)
    assert op.name == "add_custom" and op.cores == 8 and op.task_type == "AI_CORE"
    # msprof divides its unrounded ratios; the file rounds vec_ratio to 0.0229 (±0.2 %).
    assert p["mte2_ratio"] / max(p["mac_ratio"], p["vec_ratio"]) == pytest.approx(
        p["memory_bound"], rel=3e-3
    )
    assert p["icache_miss_rate"] == 0.0002 and dict(op.attrs)["Input Shapes"] == "N/A"
    assert op.mechanism == "sync"  # scalar_ratio 0.899 dominates this tiny kernel


def test_real_trace_view_reads_device_tasks_and_overlap_lanes(capsys) -> None:
    tr = read_trace(TRACE_VIEW)
    raw = json.loads(TRACE_VIEW.read_text())
    hardware = [e for e in raw if e.get("ph") == "X" and e.get("pid") == 800]
    assert tr.kind == "msprof-timeline" and len(tr.ops) == len(hardware) == 40
    assert {dict(o.attrs)["Stream ID"] for o in tr.ops} == {"3"}
    assert sum(o.dur_us for o in tr.ops) == pytest.approx(sum(e["dur"] for e in hardware))
    relu = next(o for o in tr.ops if o.name == "aclnnRelu_Relu_Relu")
    assert relu.op_type == "Relu"  # aclnn<Api>_<Kernel>_<OpType>
    assert {u.unit for u in tr.units} == {"Computing", "Free"}
    assert main(["summary", str(TRACE_VIEW), "--top", "3"]) == 0
    assert "msprof-timeline" in capsys.readouterr().out


def test_simulated_op_summary_derives_pipe_figures_from_the_run(attention, tmp_path) -> None:
    res, trace = attention
    summary, statistic = write_msprof(trace, tmp_path)
    rows = list(csv.DictReader(summary.open()))
    assert list(rows[0]) == [*COMMON, *A2_PIPE]
    timed = [o for o in res.ops if o.cycles > 0]
    assert [r["Op Name"] for r in rows] == [o.name for o in timed]
    clock = res.clock_hz
    for r, o in zip(rows, timed, strict=True):
        kinds = {c.rstrip("0123456789") for c, _s, _e in o.cores}
        expected = (
            {"aic": "AI_CORE", "aiv": "AI_VECTOR_CORE"}[kinds.pop()]
            if len(kinds) == 1
            else "MIX_AIC"
        )
        assert r["Task Type"] == expected
        assert float(r["Task Duration(us)"]) == pytest.approx(o.cycles / clock * 1e6, abs=1e-6)
        assert int(r["Block Dim"]) + int(r["Mix Block Dim"]) == len(o.cores)
        # Busy cycles come back from ratio x total cycles: the simulator's own per-op sums.
        cube = float(r["aic_mac_ratio"]) * int(r["aic_total_cycles"])
        vec = float(r["aiv_vec_ratio"]) * int(r["aiv_total_cycles"])
        assert cube == pytest.approx(o.cube_cycles, rel=1e-5, abs=2)
        assert vec == pytest.approx(o.vector_cycles, rel=1e-5, abs=2)
        if r["Task Type"] == "AI_CORE":
            util = int(r["aic_total_cycles"]) / (clock * 24 * o.cycles / clock) * 100
            assert float(r["cube_utilization(%)"]) == pytest.approx(util, rel=1e-5)
        assert r["aic_icache_miss_rate"] == "N/A"  # not modelled
    stats = list(csv.DictReader(statistic.open()))
    assert list(stats[0]) == list(OP_STATISTIC)
    by_type = {(s["OP Type"], s["Core Type"]): s for s in stats}
    assert int(by_type[("MatMul", "AI_CORE")]["Count"]) == 3
    assert int(by_type[("Transpose", "AI_VECTOR_CORE")]["Count"]) == 2
    assert sum(float(s["Ratio(%)"]) for s in stats) == pytest.approx(100)


def test_msprof_files_read_back_without_loss(attention, sim, tmp_path) -> None:
    # Both schemas: the 910B's separate cores and the 910's coupled ones (the residual run).
    coupled = tmp_path / "coupled.json"
    write_chrome_trace(sim.result, coupled, "op", graph=sim.graph)
    for trace in (attention[1], coupled):
        first, second = tmp_path / f"{trace.stem}1", tmp_path / f"{trace.stem}2"
        written = write_msprof(trace, first)
        again = write_msprof(read_trace(written[0]), second)
        assert again[0].read_bytes() == written[0].read_bytes()
        # op_statistic read back writes itself again too.
        third = write_msprof(read_trace(written[1]), tmp_path / f"{trace.stem}3")
        assert third[0].read_bytes() == written[1].read_bytes()
        # The fields the summary and diff use survive: names, types, times, cores.
        src, back = read_trace(trace), read_trace(written[0])
        timed = [o for o in sorted(src.ops, key=lambda o: o.start_us) if o.dur_us > 0]
        assert [(o.name, o.op_type) for o in back.ops] == [(o.name, o.op_type) for o in timed]
        for a, b in zip(timed, back.ops, strict=True):
            assert (b.start_us, b.dur_us) == pytest.approx((a.start_us, a.dur_us), abs=1e-6)
    coupled_rows = list(csv.DictReader(written[0].open()))
    assert list(coupled_rows[0])[-len(COUPLED_PIPE) :] == list(COUPLED_PIPE)
    conv = next(r for r in coupled_rows if r["Op Name"] == "conv1")
    mte2, top = float(conv["mte2_ratio"]), max(float(conv["mac_ratio"]), float(conv["vec_ratio"]))
    assert float(conv["memory_bound"]) == pytest.approx(mte2 / top, rel=1e-5)


def test_summary_cli_writes_msprof_format(attention, tmp_path, capsys) -> None:
    out = tmp_path / "prof"
    assert main(["summary", str(attention[1]), "--format", "msprof", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["op_statistic_0.csv", "op_summary_0.csv"]
    assert main(["summary", str(attention[1]), "--format", "msprof"]) == 2
    assert "--output" in capsys.readouterr().err
    # The written profile summarises like a real one.
    res = attention[0]
    rows = op_summary(out / "op_summary_0.csv")
    assert [r["op"] for r in rows] == [o.name for o in res.ops if o.cycles > 0]
    assert rows[0]["device"] == "npu:0" and rows[0]["cores"] == 48  # the Transpose on 48 AIVs


@pytest.mark.parametrize(
    ("text", "where", "needle"),
    [
        ("Op Name,Task Start Time(us),Task Duration(us)\na,1,2\nb,3", ":3:3:", "expected 3"),
        ("Op Name,Task Start Time(us),Task Duration(us)\na,1,fast\n", ":2:3:", "'fast'"),
        ("Op Name,Task Start Time(us),Task Duration(us)\na,N/A,2\n", ":2:2:", "missing"),
        ('Op Name,Task Start Time(us),Task Duration(us)\n"a,1,2\n', ":", "not CSV"),
        ("Name,Value\na,1\n", ":1:1:", "not an msprof"),
        ("", ":1:1:", "empty"),
    ],
)
def test_malformed_csv_is_refused_with_its_place(tmp_path, text, where, needle) -> None:
    path = tmp_path / "op_summary_1.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=needle) as err:
        read_trace(path)
    assert f"{path}{where}" in str(err.value)


def test_truncated_json_profile_names_line_and_column(tmp_path, capsys) -> None:
    text = TRACE_VIEW.read_text()
    cut = tmp_path / "trace_view.json"
    cut.write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match=rf"{cut}:\d+:\d+: not JSON"):
        read_trace(cut)
    assert main(["summary", str(cut)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{cut}:" in err


def test_cells_parse_as_msprof_writes_them() -> None:
    assert parse_number("1736413971558972.912\t") == 1736413971558972.912
    assert parse_number("N/A") is None and parse_number("") is None
    assert parse_number("17") == 17 and isinstance(parse_number("17"), int)
    with pytest.raises(ValueError):
        parse_number("fast")


def test_second_real_kernel_details_reads_every_task_kind() -> None:
    tr = read_trace(KERNEL_DETAILS_910B)
    kinds = {o.task_type for o in tr.ops}
    assert kinds == {"AI_CORE", "AI_VECTOR_CORE", "AI_CPU", "DSA_SQE", "HCCL"}
    hccl = next(o for o in tr.ops if o.task_type == "HCCL")
    assert hccl.cores == 0 and hccl.mechanism == "" and hccl.dur_us == 3360.4
