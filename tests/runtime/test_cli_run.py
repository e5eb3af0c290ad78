"""``hetnpu run`` end to end, and its output file under SIGKILL."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time

import numpy as np
import pytest

from hetnpu.cli import main
from hetnpu.traces import check_trace
from tests.runtime._models import big_output, ort_session, small


@pytest.fixture(scope="module")
def mlp_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "mlp.onnx"
    path.write_bytes(small("mlp").SerializeToString())
    return path


def test_run_writes_the_outputs_and_profile(mlp_file, tmp_path, capsys):
    x = np.random.default_rng(3).standard_normal((2, 784)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out, prof = tmp_path / "out.npz", tmp_path / "run.json"
    rc = main(
        [
            "run",
            str(mlp_file),
            "--devices",
            "cpu",
            "--input",
            f"input={tmp_path / 'x.npy'}",
            "-o",
            str(out),
            "--profile",
            str(prof),
        ]
    )
    assert rc == 0
    text = capsys.readouterr().out
    assert "output probabilities: shape [2, 10] float32" in text
    assert "devices: cpu 6 nodes" in text and "wall time: run" in text
    assert "random" not in text
    with np.load(out) as saved:
        assert list(saved) == ["probabilities"]
        ref = ort_session(small("mlp")).run(None, {"input": x})[0]
        np.testing.assert_array_equal(saved["probabilities"], ref)
    check_trace(prof)


def test_missing_inputs_are_seeded_random_and_said_so(mlp_file, tmp_path, capsys):
    outs = []
    for k in range(2):
        assert (
            main(
                ["run", str(mlp_file), "--devices", "sim-npu,cpu", "-o", str(tmp_path / f"{k}.npz")]
            )
            == 0
        )
        with np.load(tmp_path / f"{k}.npz") as saved:
            outs.append(saved["probabilities"])
    text = capsys.readouterr().out
    assert "input input: random [2, 784] float32 (seed 0)" in text
    assert "sim-npu 6 nodes" in text
    np.testing.assert_array_equal(outs[0], outs[1])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--input", "input=/nonexistent.npy"], "--input input: no file '/nonexistent.npy'"),
        (["--input", "bogus"], "--input 'bogus': expected NAME=file.npy"),
        (["--input", "x=X.npy"], "unknown input(s) ['x']"),
        (["--input", "input=BAD.npy"], "input 'input': expected shape [2, 784], got [3, 3]"),
        (["--devices", "tpu"], "unknown device(s) 'tpu'"),
        (["--devices", "gpu", "--no-fallback"], "device 'gpu' is unavailable"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(mlp_file, tmp_path, capsys, args, message):
    np.save(tmp_path / "BAD.npy", np.zeros((3, 3), np.float32))
    np.save(tmp_path / "X.npy", np.zeros((2, 784), np.float32))
    args = [
        a.replace("BAD.npy", str(tmp_path / "BAD.npy")).replace("X.npy", str(tmp_path / "X.npy"))
        for a in args
    ]
    if "--no-fallback" in args and _has_cuda():
        pytest.skip("this machine has CUDA: the GPU is available")
    assert main(["run", str(mlp_file), *args]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("hetnpu: error: ") and message in err[0]
    assert captured.out == ""  # nothing announced (a random input, say) before the refusal


def _has_cuda() -> bool:
    import onnxruntime as ort

    return "CUDAExecutionProvider" in ort.get_available_providers()


TRIALS = 5


def test_sigkill_never_leaves_a_truncated_npz(tmp_path):
    # A 16 MiB output makes the write take a while; each trial kills the process at a random
    # moment around it (after the summary line printed just before writing), fixed seed.
    model = tmp_path / "big.onnx"
    model.write_bytes(big_output().SerializeToString())
    x = np.random.default_rng(0).standard_normal((1, 1 << 22)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "out.npz"
    cmd = [
        sys.executable,
        "-m",
        "hetnpu",
        "run",
        str(model),
        "--input",
        f"x={tmp_path / 'x.npy'}",
        "-o",
        str(out),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    rng = random.Random(1234)
    outcomes = []
    for _ in range(TRIALS):
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("wall time:"):
                break
        time.sleep(rng.uniform(0.0, 0.08))
        proc.kill()
        proc.wait()
        proc.stdout.close()
        if out.exists():
            with np.load(out) as saved:  # complete and loadable, never truncated
                np.testing.assert_array_equal(saved["y"], x * 2)
            outcomes.append("complete")
            out.unlink()
        else:
            outcomes.append("absent")
    print("kill trials:", outcomes)
    assert len(outcomes) == TRIALS
    # No temporary file was ever renamed early: any left over is a hidden temp, not out.npz.
    assert all(p.name.startswith(".out.npz.") for p in tmp_path.iterdir() if "out" in p.name)
