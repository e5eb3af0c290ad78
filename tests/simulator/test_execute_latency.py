"""``model_execute_s``: what one synchronous aclmdlExecute adds to a run timed from the host.

It is no part of the device's cycles (a run inside another, a partition or a loop body, pays it
once at the top, where the host calls), so the simulator leaves it out and the result adds it.
"""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main
from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate


def test_execute_cost_is_added_to_the_host_timed_latency_only(mm_relu_model) -> None:
    graph = load(mm_relu_model, input_shapes={"A": [64, 256]})
    plain = simulate(graph, load_npu("ascend910", {"model_execute_s": 0.0}))
    timed = simulate(graph, load_npu("ascend910", {"model_execute_s": 80e-6}))
    assert timed.cycles == plain.cycles  # the device does the same work
    assert timed.raw_events == plain.raw_events
    assert plain.execute_latency_s == plain.latency_s
    assert timed.execute_s == 80e-6
    assert timed.execute_latency_s == pytest.approx(plain.latency_s + 80e-6, rel=1e-15)
    assert timed.to_summary()["execute_latency_s"] == timed.execute_latency_s


def test_the_calibrated_presets_carry_an_execute_cost() -> None:
    # The 310 and 310P3 rows are timed around aclmdlExecute; the fit gives both chips a cost.
    for chip in ("ascend310", "ascend310p"):
        assert load_npu(chip).model_execute_s > 0
    assert load_npu("ascend910b4").model_execute_s == 0.0


def test_a_negative_execute_cost_is_a_config_error() -> None:
    from hetnpu.errors import ConfigError

    with pytest.raises(ConfigError, match="model_execute_s"):
        load_npu("ascend910", {"model_execute_s": -1e-6})


def test_cli_prints_the_host_timed_latency(mm_relu_model, tmp_path, capsys) -> None:
    args = ["simulate", mm_relu_model, "--chip", "ascend910", "--input-shape", "A=64,256"]
    out = tmp_path / "s.json"
    assert main([*args, "--set", "model_execute_s=80e-6", "--json", str(out)]) == 0
    summary = json.loads(out.read_text())
    assert summary["execute_latency_s"] == pytest.approx(summary["latency_s"] + 80e-6)
    assert "as the host times one aclmdlExecute" in capsys.readouterr().out
    assert main(args) == 0
    assert "aclmdlExecute" not in capsys.readouterr().out


def test_cli_throughput_counts_the_batch_an_input_shape_binds(mm_relu_model, capsys) -> None:
    # --input-shape binds dim 0 to 64 without --batch: 64 inferences per run, not 1.
    args = ["simulate", mm_relu_model, "--chip", "ascend910", "--input-shape", "A=64,256"]
    assert main(args) == 0

    def throughput() -> str:
        out = " ".join(capsys.readouterr().out.split())
        return out[: out.index(" at batch") + len(" at batch 64")]

    shaped = throughput()
    assert shaped.endswith("at batch 64")
    assert main([*args, "--batch", "64"]) == 0
    assert throughput() == shaped  # the same cycles and inferences/s as --batch 64


def test_cli_output_it_cannot_write_is_one_line_and_exit_2(mm_relu_model, tmp_path, capsys):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    out = blocker / "s.json"  # its parent is a file
    args = ["simulate", mm_relu_model, "--chip", "ascend910", "--input-shape", "A=64,256"]
    assert main([*args, "--json", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hetnpu: error: ") and str(out) in err[0]
