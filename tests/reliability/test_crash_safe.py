"""``hetnpu simulate --trace`` killed with SIGKILL at random points never leaves a truncated trace.

The trace is streamed to a temporary file renamed over the target at the end. SIGKILL gives the
process no chance to clean up, so the only guarantee is the rename's atomicity: at any instant
the final name holds nothing, the previous complete trace, or the new complete one. The trace
of a model is deterministic, so "complete" is checked byte for byte against an uninterrupted
run, not merely as parseable JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import onnx
import pytest

from hetnpu import models

SEED = 20261130


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("crash") / "mobilenetv2.onnx"
    onnx.save(models.build("mobilenetv2", image_size=160), str(path))
    return path


def _command(model: Path, trace: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hetnpu",
        "simulate",
        str(model),
        "--chip",
        "ascend910",
        "--trace",
        str(trace),
        "--trace-level",
        "instr",
    ]


def _temps(folder: Path, trace: Path) -> list[Path]:
    return sorted(folder.glob(f".{trace.name}.*.tmp"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    return env


def _written(folder: Path, trace: Path) -> int:
    sizes = []
    for tmp in _temps(folder, trace):
        with contextlib.suppress(FileNotFoundError):  # renamed into place meanwhile
            sizes.append(tmp.stat().st_size)
    return max(sizes, default=-1)


def _kill_at(cmd: list[str], folder: Path, trace: Path, mode: str, point: float) -> str:
    """Start ``cmd`` and SIGKILL it ``point`` s after start (``mode == "uniform"``), or once the
    temporary trace holds ``point`` bytes (``mode == "write"``); say where the kill landed."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env(), cwd=folder
    )
    start = time.monotonic()
    if mode == "write":
        while _written(folder, trace) < point and proc.poll() is None:
            time.sleep(0.001)
    else:
        while time.monotonic() - start < point and proc.poll() is None:
            time.sleep(0.002)
    writing = bool(_temps(folder, trace))
    finished = proc.poll() is not None
    if not finished:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    if finished:
        assert proc.returncode == 0
        return "completed"
    return "during write" if writing else "before write"


def test_sigkill_never_leaves_a_truncated_trace(model_file: Path, tmp_path: Path) -> None:
    ref = tmp_path / "ref.json"
    t0 = time.monotonic()
    subprocess.run(_command(model_file, ref), check=True, capture_output=True, env=_env())
    duration = time.monotonic() - t0
    reference = ref.read_bytes()
    assert json.loads(reference)["traceEvents"]

    rng = random.Random(SEED)
    landed: list[str] = []
    for trial in range(8):
        folder = tmp_path / f"trial{trial}"
        folder.mkdir()
        trace = folder / "t.json"
        previous = trial % 2 == 1
        if previous:  # a complete trace from an earlier run is already there
            trace.write_bytes(reference)
        mode = "write" if trial % 4 < 2 else "uniform"
        if mode == "write":  # somewhere inside the stream of events, by bytes written
            point = rng.uniform(0.02, 0.9) * len(reference)
        else:
            point = rng.uniform(0.1, duration)
        landed.append(_kill_at(_command(model_file, trace), folder, trace, mode, point))
        if trace.exists():
            data = trace.read_bytes()
            assert data == reference, f"trial {trial} ({landed[-1]}): t.json is not complete"
            json.loads(data)
        else:
            assert not previous, f"trial {trial}: the previous complete t.json was lost"
            assert landed[-1] != "completed"
        # SIGKILL leaves the temporary file behind (nothing can remove it); it never carries
        # the final name, which is all a reader looks at.
        for tmp in _temps(folder, trace):
            assert tmp.name != trace.name
    print(f"SIGKILL trials (seed {SEED}): {landed}")
    # The point of the test is the write window: the kills aimed at it must have landed in it.
    assert landed.count("during write") >= 4, landed
