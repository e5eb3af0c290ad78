"""``hetnpu partition`` through ``hetnpu.cli.main``."""

from __future__ import annotations

import json

import onnx
import pytest

from hetnpu.cli import main
from hetnpu.models.synthetic import random_dag
from tests.conftest import LIGHT_DIR


@pytest.fixture()
def model_path(tmp_path):
    path = tmp_path / "dag.onnx"
    onnx.save(random_dag(16, seed=7, unsupported_fraction=0.3), path)
    return path


def test_partition_prints_a_summary(model_path, capsys):
    assert main(["partition", str(model_path), "--devices", "npu,cpu"]) == 0
    out = capsys.readouterr().out
    for part in (
        "stages (",
        "transfers (",
        "TransData inserted (",
        "fallbacks (",
        "estimated makespan:",
    ):
        assert part in out
    assert "CastLike runs on no listed accelerator" in out
    assert "over PCIe 4.0 x16" in out  # the chip preset's host link names the transfers


def test_partition_writes_the_plan(model_path, tmp_path, capsys):
    out_dir = tmp_path / "plan"
    code = main(
        [
            "partition",
            str(model_path),
            "--devices",
            "npu,gpu,cpu",
            "--strategy",
            "heft",
            "-o",
            str(out_dir),
        ]
    )
    assert code == 0
    plan = json.loads((out_dir / "plan.json").read_text())
    assert plan["strategy"] == "heft"
    stages = sorted(p.name for p in out_dir.glob("stage_*.onnx"))
    assert stages == sorted(f"stage_{s['id']}_{s['device']}.onnx" for s in plan["stages"])
    for p in out_dir.glob("stage_*.onnx"):
        onnx.checker.check_model(onnx.load(p))
    dot = (out_dir / "partition.dot").read_text()
    assert dot.startswith("digraph") and dot.count("stage ") == len(plan["stages"])
    page = (out_dir / "partition.html").read_text()
    assert "<svg" in page and "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert not list(out_dir.glob(".*.tmp"))


def test_partition_affinity_and_min_stage_size(tmp_path, capsys):
    path = LIGHT_DIR / "light_zfnet512.onnx"
    assert (
        main(
            [
                "partition",
                str(path),
                "--devices",
                "npu,cpu",
                "--affinity",
                "Softmax=cpu",
                "--affinity",
                "LRN=cpu",
                "--min-stage-size",
                "3",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert plan["strategy"] == "affinity"
    for stage in plan["stages"]:
        assert stage["device"] == "cpu" or len(stage["nodes"]) >= 3


def test_bad_device_is_one_line_and_exit_2(model_path, capsys):
    assert main(["partition", str(model_path), "--devices", "npu,tpu"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("hetnpu: error: unknown device(s) 'tpu'; known devices:")


def test_no_fallback_is_exit_2(model_path, capsys):
    assert main(["partition", str(model_path), "--devices", "npu", "--no-fallback"]) == 2
    err = capsys.readouterr().err
    assert "fallback is off" in err and "CastLike" in err
