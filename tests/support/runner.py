"""Run fuzz cases in a worker process with a time bound and a memory cap.

The worker's address space is capped (``RLIMIT_AS``) so that a huge dim that allocates fails
fast instead of exhausting the machine; a case that outlives its time bound, or a worker that
dies, is reported as a bug stage (``hang``, ``crash``) and the worker is replaced.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from multiprocessing.connection import Connection
from typing import Any

from tests.support.mutations import MutationSpec
from tests.support.pipeline import (
    CI_SOURCES,
    CaseResult,
    FuzzConfig,
    StageOutcome,
    classify,
    run_case,
)

__all__ = ["FuzzRunner"]


def _vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _limit_memory(extra: int) -> None:
    import ctypes
    import resource

    with contextlib.suppress(OSError, AttributeError):
        # Each thread's malloc arena reserves 64 MiB of address space; two arenas keep the
        # cap about real allocations rather than thread count.
        ctypes.CDLL("libc.so.6").mallopt(-8, 2)  # M_ARENA_MAX
    limit = _vm_size() + extra
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _worker(conn: Connection, config: FuzzConfig) -> None:
    import onnxruntime

    # Broken models make onnxruntime log every refusal to stderr before raising; the
    # exception is what the case records.
    onnxruntime.set_default_logger_severity(4)
    # A throwaway case imports everything (onnxruntime, the backends) and starts the thread
    # pools before the memory cap, which should bound what cases allocate, not start-up.
    run_case(MutationSpec(CI_SOURCES[0], "none", 0), config)
    _limit_memory(config.memory_limit_bytes)
    conn.send(("ready", None))
    while True:
        spec = conn.recv()
        if spec is None:
            return
        try:
            result = run_case(spec, config, lambda stage: conn.send(("stage", stage)))
        except Exception as exc:  # in the harness itself (e.g. building a source)
            result = CaseResult(spec, "harness failure", (classify("harness", exc, 0.0),))
        conn.send(("done", result))


class FuzzRunner:
    """Runs cases in a worker process with a time bound and a memory cap.

    Use as a context manager; :meth:`run` returns a :class:`CaseResult` for every case, with
    hangs and crashes reported as bug stages (the worker is then replaced).
    """

    def __init__(self, config: FuzzConfig | None = None) -> None:
        self.config = config or FuzzConfig()
        self._ctx = multiprocessing.get_context("spawn")
        self._proc: Any = None
        self._conn: Connection | None = None
        self.restarts = 0

    def __enter__(self) -> FuzzRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        proc = self._ctx.Process(target=_worker, args=(child, self.config), daemon=True)
        proc.start()
        child.close()
        if not parent.poll(300):
            proc.kill()
            raise RuntimeError("fuzz worker did not start within 300 s")
        parent.recv()
        self._proc, self._conn = proc, parent

    def _stop(self, kill: bool) -> None:
        proc, conn = self._proc, self._conn
        self._proc = self._conn = None
        if proc is None:
            return
        if kill:
            proc.kill()
        else:
            with contextlib.suppress(OSError):
                conn.send(None)  # type: ignore[union-attr]
        proc.join(10)
        if proc.is_alive():
            proc.kill()
            proc.join()
        conn.close()  # type: ignore[union-attr]

    def close(self) -> None:
        self._stop(kill=False)

    def run(self, spec: MutationSpec) -> CaseResult:
        """Run one case; never raises for anything the case does."""
        if self._proc is None:
            self._start()
        conn = self._conn
        assert conn is not None
        started = time.monotonic()
        deadline = started + self.config.case_timeout_s
        stage = "mutate"
        try:
            conn.send(spec)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not conn.poll(left):
                    why = f"no result after {self.config.case_timeout_s:.0f} s"
                    return self._lost(spec, stage, "hang", why, started)
                kind, payload = conn.recv()
                if kind == "done":
                    return payload
                stage = payload
        except (EOFError, OSError):
            self._proc.join(5)
            code = self._proc.exitcode
            return self._lost(spec, stage, "crash", f"worker died (exit code {code})", started)

    def _lost(self, spec: MutationSpec, stage: str, bug: str, why: str, t0: float) -> CaseResult:
        """The result of a case that took the worker with it; the worker is replaced."""
        self._stop(kill=True)
        self.restarts += 1
        outcome = StageOutcome(
            stage, "bug", bug, f"{why} in {stage}", seconds=time.monotonic() - t0, bug=bug
        )
        return CaseResult(spec, "", (outcome,))
