"""Running sweeps: validation before any work, rows against the simulator, failures, resume,
the local pool against sequential runs, results.csv and report.html."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

from hetnpu import chips
from hetnpu.cli import main
from hetnpu.errors import ConfigError
from hetnpu.graph import load
from hetnpu.models import build
from hetnpu.simulator import simulate
from hetnpu.whatif import Study, run_study, run_sweep
from hetnpu.whatif.report import pareto_front, render_report
from hetnpu.whatif.store import JOURNAL, RESULTS

GRID = {"ai_cores": [8, 32], "hbm_bytes_per_s": [0.6e12, 1.2e12], "batch": [1, 8]}


@pytest.mark.parametrize(
    ("grid", "named"),
    [
        ({"ai_cores": [8, 16, 0]}, "ai_cores"),
        ({"ai_cores": [8], "l1_bytes": [1 << 20, "1MB"]}, "l1_bytes"),
        ({"ai_cores": [8], "cores": [4]}, "'cores'"),
        ({"batch": [1, -2]}, "batch"),
        ({"shape.input": ["1x784", "1x700"]}, "shape.input"),
        ({"shape.image": ["1x784"]}, "shape.image"),
        ({"precision": ["fp16", "bf16"]}, "precision"),
        ({"strategy": ["heft"], "double_buffer": [True]}, "double_buffer"),
    ],
)
def test_bad_point_fails_whole_sweep_before_any_simulation(
    grid: dict, named: str, tmp_path: Path, count_sims: list[int]
) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        run_study(Study("mlp", grid=grid), tmp_path / "out", workers=1)
    assert count_sims[0] == 0
    assert not (tmp_path / "out" / JOURNAL).exists()
    assert not (tmp_path / "out" / RESULTS).exists()


def test_cli_bad_value_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["sweep", "mlp", "--grid", "ai_cores=8,0", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "ai_cores" in err and err.startswith("hetnpu: error:")
    assert not (tmp_path / "o").exists()


def test_rows_match_direct_simulation(tmp_path: Path, stable) -> None:
    rows = run_sweep("mlp", "ascend910", grid=GRID, out_dir=tmp_path, workers=1)
    assert len(rows) == 8 and all(r["status"] == "ok" for r in rows)
    base = chips.load("ascend910")
    proto = build("mlp")
    for r in rows[::3]:
        spec = chips.load(
            "ascend910",
            overrides={"ai_cores": r["ai_cores"], "hbm_bytes_per_s": r["hbm_bytes_per_s"]},
        )
        res = simulate(load(proto, input_shapes={"input": [r["batch"], 784]}), spec)
        assert r["cycles"] == res.cycles
        assert r["latency_s"] == pytest.approx(res.cycles / spec.clock_hz)
        assert r["throughput_per_s"] == pytest.approx(r["batch"] / r["latency_s"])
        assert r["hbm_traffic_bytes"] == res.hbm_bytes
        assert r["busy_cube"] == pytest.approx(res.unit_busy["CUBE"])
        assert r["cost_proxy"] == pytest.approx(
            r["ai_cores"] / base.ai_cores + r["hbm_bytes_per_s"] / base.hbm_bytes_per_s
        )
    # More cores never slow the memory-bound MLP down; a bigger batch moves more bytes.
    by = {(r["ai_cores"], r["hbm_bytes_per_s"], r["batch"]): r for r in rows}
    assert by[(32, 1.2e12, 8)]["cycles"] <= by[(8, 1.2e12, 8)]["cycles"]
    assert by[(8, 0.6e12, 8)]["hbm_traffic_bytes"] > by[(8, 0.6e12, 1)]["hbm_traffic_bytes"]
    # A second identical run is bit-for-bit the same (determinism).
    again = run_sweep("mlp", "ascend910", grid=GRID, workers=1)
    assert stable(again) == stable(rows)


def test_results_csv_columns_and_values(tmp_path: Path) -> None:
    res = run_study(Study("mlp", grid=GRID, fixed={"precision": "fp16"}), tmp_path, workers=1)
    with open(tmp_path / RESULTS, newline="") as f:
        reader = csv.DictReader(f)
        table = list(reader)
        header = reader.fieldnames or []
    assert header[:5] == ["key", "precision", "ai_cores", "hbm_bytes_per_s", "batch"]
    needed = [
        "status", "cycles", "latency_s", "throughput_per_s", "cost_proxy", "bound",
        "hbm_traffic_bytes", "busy_cube", "busy_vector", "busy_mte2", "busy_mte3", "error",
    ]  # fmt: skip
    assert all(c in header for c in needed)
    assert header[-1] == "error"
    assert len(table) == 8 and len({r["key"] for r in table}) == 8
    for line, row in zip(table, res.rows, strict=True):
        assert int(line["cycles"]) == row["cycles"]
        assert float(line["latency_s"]) == row["latency_s"]
        assert line["bound"] in ("compute", "memory", "latency")


def test_failing_point_is_recorded_and_others_finish(tmp_path: Path) -> None:
    # 64 B of Unified Buffer holds no Cube tile: that point's simulation raises ScheduleError.
    res = run_study(Study("mlp", grid={"ub_bytes": [262144, 64, 131072]}), tmp_path, workers=1)
    assert [r["status"] for r in res.rows] == ["ok", "error", "ok"]
    assert res.rows[1]["error"].startswith("ScheduleError:")
    assert res.rows[0]["cycles"] > 0 and res.rows[2]["cycles"] > 0
    lines = [json.loads(x) for x in (tmp_path / JOURNAL).read_text().splitlines()]
    assert len(lines) == 3 and sum(x["result"]["status"] == "error" for x in lines) == 1
    with open(tmp_path / RESULTS, newline="") as f:
        table = list(csv.DictReader(f))
    assert table[1]["status"] == "error" and "fits" in table[1]["error"]


def test_resume_skips_finished_points_and_reruns_failed(
    tmp_path: Path, count_sims: list[int], stable
) -> None:
    first = run_study(
        Study("mlp", grid={"ai_cores": [8, 16], "ub_bytes": [262144, 64]}), tmp_path, workers=1
    )
    assert count_sims[0] == 4 and len(first.failed) == 2
    with pytest.raises(ConfigError, match="--resume"):
        run_study(Study("mlp", grid={"ai_cores": [8]}), tmp_path, workers=1)
    grown = Study("mlp", grid={"ai_cores": [8, 16, 32], "ub_bytes": [262144, 64]})
    second = run_study(grown, tmp_path, workers=1, resume=True)
    # One new ok point, one new failing point, and the two failed ones again.
    assert count_sims[0] == 4 + 4 and second.computed == 4
    third = run_study(grown, tmp_path, workers=1, resume=True)
    assert count_sims[0] == 8 + 3  # only the failing ones run again
    assert stable(third.rows) == stable(second.rows)
    assert stable(second.rows[:2]) == stable(first.rows[:2])
    with open(tmp_path / RESULTS, newline="") as f:
        keys = [r["key"] for r in csv.DictReader(f)]
    assert len(keys) == 6 == len(set(keys))


def test_local_pool_matches_sequential(tmp_path: Path, stable) -> None:
    study = Study("mlp", grid=GRID, zipped={"precision": ["fp16", "int8"]})
    seq = run_study(study, tmp_path / "seq", workers=1)
    pool = run_study(study, tmp_path / "pool", workers=2)
    assert len(seq.rows) == 16
    assert stable(pool.rows) == stable(seq.rows)
    assert (tmp_path / "seq" / RESULTS).read_text().count("\n") == 17


def test_strategy_and_devices_time_the_whole_system(stable) -> None:
    rows = run_sweep(
        "mlp", grid={"devices": ["npu+cpu", "cpu"], "strategy": ["capability", "heft"]}, workers=1
    )
    assert [r["devices"] for r in rows] == ["npu+cpu", "npu+cpu", "cpu", "cpu"]
    npu, cpu = rows[0], rows[2]
    assert npu["cycles"] > 0 and npu["stages"] >= 1 and npu["hbm_traffic_bytes"] > 0
    assert cpu["cycles"] == 0 and cpu["bound"] == "host" and cpu["latency_s"] > 0
    # The system's makespan includes the host transfers the chip-only timing leaves out.
    chip_only = run_sweep("mlp", workers=1)[0]
    assert npu["latency_s"] > chip_only["latency_s"] and npu["cycles"] == chip_only["cycles"]


def test_report_contains_the_plot_data(tmp_path: Path) -> None:
    res = run_study(Study("mlp", grid={**GRID, "ub_bytes": [262144, 64]}), tmp_path, workers=1)
    page = render_report(res.rows, res.params, "t")
    assert '<script src="http' not in page  # self-contained: plotly is inlined
    assert page.count("Plotly.newPlot") == 3  # sensitivity, heatmap, Pareto
    data = json.loads(re.search(r'id="sweep-data">(.*?)</script>', page, re.S).group(1))
    assert [d["key"] for d in data] == [r["key"] for r in res.rows]
    ok = [r for r in res.rows if r["status"] == "ok"]
    front = pareto_front(ok, "cost_proxy", "latency_s")
    for r in ok:  # nothing beats a front point on both axes
        for f in front:
            assert not (r["cost_proxy"] <= f["cost_proxy"] and r["latency_s"] < f["latency_s"])
    # The Pareto trace carries the front's latencies in ms.
    for f in front:
        assert json.dumps(f["latency_s"] * 1e3) in page
    assert "Failed points" in page and "ScheduleError" in page


def test_cli_writes_csv_and_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "s"
    argv = ["sweep", "mlp", "--grid", "ai_cores=8,16", "--set", "batch=2", "--workers", "1"]
    assert main([*argv, "-o", str(out)]) == 0
    assert "2 of 2 points ok (2 simulated now, 0 reused)" in capsys.readouterr().out
    assert (out / "report.html").stat().st_size > 100_000
    assert main([*argv, "-o", str(out), "--resume"]) == 0
    assert "(0 simulated now, 2 reused)" in capsys.readouterr().out
    # A failed point makes the command exit 1 (through click's own exit handling).
    from typer.testing import CliRunner

    from hetnpu.cli.app import app

    res = CliRunner().invoke(app, [*argv, "--grid", "ub_bytes=64", "-o", str(tmp_path / "f")])
    assert res.exit_code == 1 and "0 of 2 points ok" in res.output


def test_torn_journal_line_is_dropped_and_its_point_rerun(
    tmp_path: Path, count_sims: list[int], stable
) -> None:
    study = Study("mlp", grid={"ai_cores": [8, 16, 32]})
    full = run_study(study, tmp_path, workers=1)
    journal = tmp_path / JOURNAL
    lines = journal.read_text().splitlines(keepends=True)
    # A power loss mid-append: the last record is cut short.
    journal.write_text(lines[0] + lines[1] + lines[2][: len(lines[2]) // 2])
    resumed = run_study(study, tmp_path, workers=1, resume=True)
    assert count_sims[0] == 3 + 1 and resumed.computed == 1
    assert stable(resumed.rows) == stable(full.rows)
    records = [json.loads(x) for x in journal.read_text().splitlines()]
    assert [r["key"] for r in records] == [r["key"] for r in full.rows]


def test_two_sweeps_never_share_a_folder(tmp_path: Path) -> None:
    from hetnpu.whatif.store import lock

    with lock(tmp_path), pytest.raises(ConfigError, match="another sweep"):
        run_study(Study("mlp", grid={"ai_cores": [8]}), tmp_path, workers=1)


def test_tuple_spec_fields_are_written_with_x() -> None:
    rows = run_sweep("mlp", grid={"cube_mkn_fp16": ["16x16x16", "32x16x32"]}, workers=1)
    assert [r["cube_mkn_fp16"] for r in rows] == ["16x16x16", "32x16x32"]
    spec = chips.load("ascend910", overrides={"cube_mkn_fp16": (32, 16, 32)})
    assert rows[1]["cycles"] == simulate(load(build("mlp")), spec).cycles
    with pytest.raises(ConfigError, match="cube_mkn_fp16"):
        run_sweep("mlp", grid={"cube_mkn_fp16": ["16x17x16"]}, workers=1)


def test_rows_carry_the_host_timed_latency_of_the_chip_and_of_each_point() -> None:
    # model_execute_s is a sweepable field like any other: each point pays its own.
    rows = run_sweep("mlp", "ascend310p", grid={"model_execute_s": [0.0, 50e-6]}, workers=1)
    assert rows[0]["latency_s"] == rows[1]["latency_s"]  # the device's work is the same
    assert rows[0]["execute_latency_s"] == rows[0]["latency_s"]
    assert rows[1]["execute_latency_s"] == pytest.approx(rows[1]["latency_s"] + 50e-6, rel=1e-12)
