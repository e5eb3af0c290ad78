"""The multi-NPU commands: one line and exit 2 on bad input, figures on good input."""

from __future__ import annotations

import json

import pytest

from hetnpu.cli import main


def test_topologies_lists_the_presets(capsys) -> None:
    assert main(["topologies"]) == 0
    out = capsys.readouterr().out
    assert "atlas-800i-a2:" in out and "RoCE" in out and "SIO" in out


def test_parallel_writes_a_trace_with_the_collectives(tmp_path, capsys) -> None:
    trace = tmp_path / "tp.json"
    assert main(["parallel", "mlp", "--tp", "4", "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "all-reduce mesh" in out
    events = json.loads(trace.read_text())["traceEvents"]
    assert any(e.get("cat") == "collective" for e in events)


def test_fewest_finds_one_chip_for_a_small_model(tmp_path, capsys) -> None:
    out_file = tmp_path / "points.json"
    args = ["fewest", "--model", "llama-2-7b", "--per-token-ms", "1000", "--batch", "1"]
    assert main([*args, "--prompt", "16", "--generated", "16", "-o", str(out_file)]) == 0
    out = capsys.readouterr().out
    assert "fewest: 1 x ascend910b4 (tp 1, pp 1)" in out
    data = json.loads(out_file.read_text())
    assert data["answer"]["chips"] == 1 and len(data["points"]) > 1


def test_fewest_exits_1_when_no_configuration_meets_the_target(tmp_path, capsys) -> None:
    out_file = tmp_path / "points.json"
    args = ["fewest", "--model", "llama-2-7b", "--per-token-ms", "0.001", "--batch", "1"]
    assert main([*args, "--prompt", "16", "--generated", "16", "-o", str(out_file)]) == 1
    assert "no configuration meets the target" in capsys.readouterr().out
    data = json.loads(out_file.read_text())  # the points searched are still written
    assert data["answer"] is None and len(data["points"]) > 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["parallel", "mlp", "--tp", "9"], "has 8 NPUs, fewer than 9"),
        (["parallel", "mlp", "--tp", "2", "--topology", "nope"], "unknown topology 'nope'"),
        (["parallel", "mlp", "--tp", "2", "--pp", "2"], "give one of --tp N or --pp N"),
        (["fewest", "--model", "llama-2-7b", "--batch", "1"], "give exactly one target"),
        (
            ["fewest", "--model", "llama-2-7b", "--batch", "1", "--ttft-ms", "9", "--family", "x"],
            "--family x: its topologies hold none; give --chip",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message, capsys) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_fewest_takes_the_chip_of_the_family_asked(capsys) -> None:
    args = ["fewest", "--model", "llama-2-7b", "--per-token-ms", "1000", "--batch", "1"]
    assert main([*args, "--prompt", "16", "--generated", "16", "--family", "a3"]) == 0
    assert "fewest: 1 x ascend910b (tp 1, pp 1) on atlas-800-a3" in capsys.readouterr().out
