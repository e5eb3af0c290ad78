"""Crash safety: a sweep killed with SIGKILL part-way loses no finished point, never leaves a
truncated results.csv, and ``--resume`` completes it with every point exactly once."""

from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hetnpu.whatif import Study, run_study
from hetnpu.whatif.store import JOURNAL, RESULTS

ROOT = Path(__file__).resolve().parents[2]
GRID = {"ai_cores": [2, 4, 8, 16, 32], "batch": [1, 2, 4, 8, 16, 32]}
ARGS = ["mlp", "--grid", "ai_cores=2,4,8,16,32", "--grid", "batch=1,2,4,8,16,32"]
SEED = 20260


def _cli(out: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "hetnpu", "sweep", *ARGS, "-o", str(out), *extra],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the kill reaches its pool workers too
    )


def _check_csv(path: Path, header: list[str]) -> int:
    """Rows of a results.csv that must be complete; -1 if it does not exist yet."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return -1
    assert text.endswith("\n"), "results.csv ends mid-line"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == header
    assert all(len(r) == len(header) and r[header.index("status")] == "ok" for r in rows[1:])
    return len(rows) - 1


def _stable_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [
            {k: v for k, v in r.items() if k not in ("sim_wall_s", "sim_cpu_s")}
            for r in csv.DictReader(f)
        ]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    run_study(Study("mlp", grid=GRID), out, workers=1)
    return out / RESULTS


def _trials() -> list:
    rng = random.Random(SEED)
    n = len(GRID["ai_cores"]) * len(GRID["batch"])
    trials = [
        ("points", 1, rng.randint(1, n - 2)),
        ("points", 2, rng.randint(1, n - 2)),
        ("points", 1, rng.randint(1, n - 2)),
        ("seconds", 1, rng.uniform(0.1, 0.6)),  # while starting up: a whole sweep takes ~1 s
        ("after-first", 1, rng.uniform(0.0, 0.05)),  # most likely mid-point or mid-write
    ]
    return [pytest.param(*t, id=f"{t[0]}={t[2]:.3g}-workers={t[1]}") for t in trials]


@pytest.mark.parametrize(("when", "workers", "at"), _trials())
def test_sigkill_then_resume_completes_every_point_once(
    when: str, workers: int, at: float, reference: Path, tmp_path: Path
) -> None:
    header = reference.read_text().splitlines()[0].split(",")
    total = len(_stable_csv(reference))
    out = tmp_path / "sweep"
    proc = _cli(out, "--workers", str(workers))
    journal = out / JOURNAL
    start, first, finished_before_kill = time.monotonic(), None, None
    try:
        while proc.poll() is None and time.monotonic() - start < 120:
            _check_csv(out / RESULTS, header)  # never a truncated file under the final name
            done = journal.read_bytes().count(b"\n") if journal.exists() else 0
            now = time.monotonic()
            if done and first is None:
                first = now
            if (
                (when == "points" and done >= at)
                or (when == "seconds" and now - start >= at)
                or (when == "after-first" and first is not None and now - first >= at)
            ):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                finished_before_kill = done
                break
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    if finished_before_kill is None:
        pytest.fail(f"the sweep ended (rc {proc.returncode}) before the kill at {when}={at}")
    # Nothing a finished point wrote is lost or torn; results.csv is whole if it exists.
    kept = (
        [json.loads(line) for line in journal.read_text().splitlines()] if journal.exists() else []
    )
    assert len(kept) >= finished_before_kill
    assert len(kept) < total, "the kill came after the last point: no resume to test"
    # results.csv follows the journal point by point: at most the last point is missing.
    assert len(kept) - 1 <= max(_check_csv(out / RESULTS, header), 0) <= len(kept)

    resumed = _cli(out, "--workers", str(workers), "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()[-2000:]
    assert f"({total - len(kept)} simulated now, {len(kept)} reused)" in stdout.decode()
    assert _stable_csv(out / RESULTS) == _stable_csv(reference)
    keys = [json.loads(line)["key"] for line in journal.read_text().splitlines()]
    assert len(keys) == total == len(set(keys))  # each point simulated exactly once overall
    assert not list(out.glob(".*.tmp"))


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("trial", range(2))
def test_ctrl_c_stops_the_sweep_and_its_workers_and_resume_finishes_it(
    trial: int, reference: Path, tmp_path: Path
) -> None:
    # Ctrl-C in a terminal signals the whole process group: the pool's workers as well.
    total = len(_stable_csv(reference))
    out = tmp_path / "sweep"
    proc = _cli(out, "--workers", "2")
    journal = out / JOURNAL
    start, sent = time.monotonic(), False
    try:
        while proc.poll() is None and time.monotonic() - start < 120:
            done = journal.read_bytes().count(b"\n") if journal.exists() else 0
            if done >= 1 + trial:
                os.killpg(proc.pid, signal.SIGINT)
                sent = True
                break
            time.sleep(0.002)
        if not sent:
            pytest.fail(f"the sweep ended (rc {proc.returncode}) before the interrupt")
        _, stderr = proc.communicate(timeout=60)  # a hang fails here
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, stderr.decode()[-2000:]
    assert stderr.decode().rstrip().endswith("hetnpu: interrupted")
    deadline = time.monotonic() + 30
    while _group_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(proc.pid), "a worker outlived the interrupted sweep"
    kept = len(journal.read_text().splitlines())
    assert kept < total, "the interrupt came after the last point: no resume to test"

    resumed = _cli(out, "--workers", "2", "--resume")
    stdout, stderr = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, stderr.decode()[-2000:]
    assert f"({total - kept} simulated now, {kept} reused)" in stdout.decode()
    assert _stable_csv(out / RESULTS) == _stable_csv(reference)
