"""A sweep or search that stops part-way (Ctrl-C, an error in the main process) stops its work:
the pool it made loses its workers at once and says nothing of its own; a pool the caller gave
keeps running only what had started, the rest cancelled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pytest

from hetnpu.whatif import Study, run_study

ROOT = Path(__file__).resolve().parents[2]
GRID = {"ai_cores": [2, 4, 8, 16, 32], "batch": [1, 2, 4, 8, 16, 32]}


class Stop(Exception):
    pass


def _stop_at_first(done: int, total: int, row: object) -> None:
    if done:
        raise Stop


def test_an_error_in_the_main_process_ends_the_pool_it_made(tmp_path, capfd) -> None:
    import multiprocessing

    before = {p.pid for p in multiprocessing.active_children()}
    with pytest.raises(Stop):
        run_study(Study("mlp", grid=GRID), tmp_path, workers=2, progress=_stop_at_first)
    # Its workers are gone (terminated, not waited for), and its own thread raised nothing.
    left = [p for p in multiprocessing.active_children() if p.pid not in before]
    assert not [p for p in left if p.is_alive()]
    assert "Exception in thread" not in capfd.readouterr().err


class _Recording(ProcessPoolExecutor):
    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.futures: list[Future] = []

    def submit(self, fn, /, *args, **kwargs):
        fut = super().submit(fn, *args, **kwargs)
        self.futures.append(fut)
        return fut


def test_a_pool_the_caller_gave_has_its_pending_points_cancelled(tmp_path) -> None:
    pool = _Recording()
    try:
        with pytest.raises(Stop):
            run_study(Study("mlp", grid=GRID), tmp_path, executor=pool, progress=_stop_at_first)
        assert len(pool.futures) == 30
        # Only those already handed to a worker (the pool queues a few ahead) may finish;
        # nothing else is left queued.
        assert all(f.cancelled() or f.running() or f.done() for f in pool.futures)
        assert sum(f.cancelled() for f in pool.futures) >= 20
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def test_ctrl_c_during_a_fewest_search_is_one_line_and_status_130() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # A search of about a minute on two processes: the interrupt lands in it.
    args = ["fewest", "--model", "llama-2-70b", "--chip", "ascend910b4", "--ttft-ms", "200",
            "--batch", "16", "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "hetnpu", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # Ctrl-C reaches the whole group: the workers too
    )
    try:
        time.sleep(8)
        assert proc.poll() is None, "the search ended before the interrupt"
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130
    assert err.decode().strip().splitlines()[-1:] == ["hetnpu: interrupted"]
    assert "Traceback" not in err.decode()
