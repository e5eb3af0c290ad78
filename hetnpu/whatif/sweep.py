"""Run a what-if study: every point simulated, locally or on a Dask cluster, resumable.

Every point is validated first (its chip built, its run parameters and input shapes checked,
the model loaded once per distinct shape), so a bad key or value fails the whole sweep before
any simulation. Points then run through the ``concurrent.futures.Executor`` interface: a local
process pool by default, ``dask.distributed``'s executor when a scheduler address is given, or
this process when ``workers=1``. Each finished point is appended durably to the journal
(:mod:`hetnpu.whatif.store`), then ``results.csv`` is replaced atomically, so an interrupted
sweep loses nothing and ``resume=True`` runs only what is missing. A point's key hashes the
model's bytes, the point's resolved chip spec and its run parameters.
"""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hetnpu.errors import ConfigError, HetnpuError
from hetnpu.whatif import store
from hetnpu.whatif.grid import Study, is_run_key, normalise_run_value, point_key
from hetnpu.whatif.worker import ModelRef, Task, load_graph, resolve_model, run_task, shapes_key

_BROKEN_HINT = (
    " (worker processes re-import the script that started the sweep: put the call under"
    " `if __name__ == '__main__':`, or pass workers=1)"
)

__all__ = ["PreparedSweep", "SweepResult", "prepare", "run_study", "run_sweep"]

Progress = Callable[[int, int, dict[str, Any] | None], None]
"""``progress(done, total, row)``: once with ``row=None`` before any point runs, then after each."""

_CONNECT_TIMEOUT_S = 10.0  # how long a --scheduler address may take to answer
# results.csv is rewritten whole after every point; past this many rows, at most once every
# _CSV_INTERVAL_S (the journal keeps every point regardless) so large sweeps do
# not spend their time rewriting it.
_CSV_EVERY_POINT_ROWS = 500
_CSV_INTERVAL_S = 1.0


@dataclass(frozen=True)
class PreparedSweep:
    """A validated study: each point with its key and its simulation task."""

    study: Study
    points: list[dict[str, Any]]
    keys: list[str]
    tasks: list[Task]
    cost: list[float]
    params: list[str]


@dataclass(frozen=True)
class SweepResult:
    """Rows of a finished (or partly finished) sweep, one per point, in the study's order."""

    rows: list[dict[str, Any]]
    params: list[str]
    out_dir: Path | None
    computed: int
    """Points simulated by this call (the rest came from the journal)."""
    wall_s: float

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "ok"]


def _digest(ref: ModelRef) -> str:
    h = hashlib.sha256()
    if ref.kind == "file":
        with open(ref.source, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    else:
        from hetnpu.whatif.worker import model_source

        h.update(model_source(ref).SerializeToString(deterministic=True))
    return h.hexdigest()


def _shapes(key_values: Mapping[str, Any], graph: Any, batch: int | None) -> dict | None:
    """The input shapes a point binds (``shape``/``shape.NAME`` first, then ``batch``)."""
    inputs = list(graph.inputs)
    shapes: dict[str, list[int]] = {}
    for key, value in key_values.items():
        if key == "shape":
            if len(inputs) != 1:
                raise ConfigError(
                    f"shape: the model has {len(inputs)} inputs ({', '.join(inputs)}); "
                    "use shape.INPUT"
                )
            name = inputs[0]
        elif key.startswith("shape."):
            name = key[len("shape.") :]
            if name not in inputs:
                raise ConfigError(
                    f"{key}: the model has no input {name!r} (inputs: {', '.join(inputs)})"
                )
        else:
            continue
        shapes[name] = [int(d) for d in value.split("x")]
    if batch is not None:
        for name in inputs:
            dims = list(shapes.get(name) or graph.tensors[name].shape or ())
            if not dims:
                raise ConfigError(f"batch: input {name!r} has no batch dimension")
            shapes[name] = [batch, *dims[1:]]
    return shapes or None


def prepare(study: Study) -> PreparedSweep:
    """Validate every point of ``study`` and resolve it into a task, or raise ConfigError.

    Nothing is simulated here; the model is loaded once per distinct input shape so that a
    shape it cannot take fails now, naming the key.
    """
    from hetnpu import chips

    points = study.points()
    ref = resolve_model(study.model)
    if ref.kind == "llm":
        from hetnpu.whatif.llm_sweep import prepare_points

        return PreparedSweep(study, *prepare_points(study, ref, points), study.params)
    base = chips.load(study.chip)
    digest = _digest(ref)
    probe = load_graph(ref, None) if ref.kind == "zoo" else None
    if probe is None:
        from hetnpu.graph import load

        probe = load(ref.source, require_static=False)
    specs: dict[str, Any] = {}
    checked: set[Any] = set()
    keys, tasks, cost = [], [], []
    for i, point in enumerate(points):
        where = f"sweep point {i + 1} of {len(points)} ({_describe(point)})"
        try:
            run = {k: normalise_run_value(k, v) for k, v in point.items() if is_run_key(k)}
            overrides = {k: _spec_value(v) for k, v in point.items() if not is_run_key(k)}
            memo = repr(sorted(overrides.items()))
            if memo not in specs:
                specs[memo] = chips.load(study.chip, overrides=overrides) if overrides else base
            spec = specs[memo]
            shapes = shapes_key(_shapes(run, probe, run.get("batch")))
            system = "strategy" in run or "devices" in run
            if system and "double_buffer" in run:
                raise ConfigError(
                    "double_buffer: applies to chip simulation only, not with strategy/devices"
                )
            if shapes not in checked:
                try:
                    load_graph(ref, shapes)
                except HetnpuError as exc:
                    name = next((k for k in run if k.startswith("shape") or k == "batch"), "")
                    raise ConfigError(f"{name or 'model'}: {exc}") from None
                checked.add(shapes)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        batch = run.get("batch") or (shapes[0][1][0] if shapes else probe.batch)
        tasks.append(
            Task(
                model=ref,
                spec=spec,
                shapes=shapes,
                precision=run.get("precision", "fp16"),
                double_buffer=run.get("double_buffer", True),
                strategy=run.get("strategy") if system else None,
                devices=tuple(run["devices"].split("+")) if "devices" in run else None,
                batch=batch,
            )
        )
        keys.append(point_key(digest, spec.model_dump_json(), {**run, "shapes": shapes}))
        points[i] = {**point, **run}
        # Resources a point spends relative to the base chip (2.0 for the base itself).
        cost.append(spec.ai_cores / base.ai_cores + spec.hbm_bytes_per_s / base.hbm_bytes_per_s)
    return PreparedSweep(study, points, keys, tasks, cost, study.params)


def _spec_value(value: Any) -> Any:
    # Tuple-valued fields (cube_mkn_fp16) are written 16x32x16 in a sweep, since "," separates
    # the sweep's values; the spec parser itself takes lists or "16,32,16".
    if isinstance(value, str) and "x" in value:
        parts = value.lower().split("x")
        if all(p.strip().isdigit() for p in parts):
            return tuple(int(p) for p in parts)
    return value


def _describe(point: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


@contextlib.contextmanager
def _executor(
    workers: int | None, scheduler: str | None, given: Executor | None
) -> Iterator[Executor | None]:
    if given is not None:
        yield given
        return
    if scheduler is not None:
        try:
            from dask.distributed import Client
        except ImportError:
            raise ConfigError(
                "--scheduler needs dask.distributed: pip install 'hetnpu[dist]'"
            ) from None
        try:
            client = Client(scheduler, timeout=f"{_CONNECT_TIMEOUT_S}s")
        except (OSError, TimeoutError, ValueError) as exc:
            raise ConfigError(f"--scheduler {scheduler}: cannot reach it: {exc}") from None
        try:
            # pure=False: identical points are still separate tasks, each with its own row.
            yield client.get_executor(pure=False)
        finally:
            client.close()
        return
    if workers is not None and workers < 1:
        raise ConfigError(f"workers: expected a positive integer, got {workers}")
    if workers == 1:
        yield None  # this process, in order: the reference the parallel runs must match
        return
    # forkserver: workers start from a clean server process (no inherited threads or locks)
    # with hetnpu preloaded, instead of re-importing everything as spawn does.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["hetnpu.whatif.worker", "hetnpu.simulator"])
    pool = ProcessPoolExecutor(
        max_workers=workers or os.cpu_count() or 1, mp_context=ctx, initializer=_ignore_sigint
    )
    try:
        yield pool
    except BaseException:
        # Interrupted (Ctrl-C) or failed: the finished points are in the journal, so the
        # running ones are stopped rather than waited for. The pool's own thread then finds
        # its workers gone and fails every pending future (none may be cancelled first: on
        # Python 3.11 that thread raises on a cancelled one). ProcessPoolExecutor names its
        # workers only privately.
        for proc in list((getattr(pool, "_processes", None) or {}).values()):
            proc.terminate()
        pool.shutdown(wait=True)
        raise
    else:
        pool.shutdown(wait=True, cancel_futures=True)


def _abandon(futures: Iterable[Future], pool: Executor, given: Executor | None) -> None:
    """Cancel the pending ``futures`` of an interrupted or failed run, unless they belong to a
    process pool :func:`_executor` made: that one terminates its workers, and its own thread
    then fails every pending future (cancelling one first makes that thread raise on Python
    3.11)."""
    if given is None and isinstance(pool, ProcessPoolExecutor):
        return
    for fut in futures:
        fut.cancel()


def _ignore_sigint() -> None:
    """A pool worker's initializer: Ctrl-C reaches the whole process group, and a worker it
    interrupted inside the task queue's lock would leave the other workers, and the pool's
    shutdown, waiting on that lock for ever. The main process alone handles it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _prior(journal: store.Journal, keys: set[str]) -> dict[str, dict[str, Any]]:
    # Last record of each key wins; failed points run again.
    done: dict[str, dict[str, Any]] = {}
    for rec in journal.read():
        if rec["key"] in keys:
            done[rec["key"]] = rec
    return {k: r for k, r in done.items() if r.get("result", {}).get("status") == "ok"}


def run_study(
    study: Study | PreparedSweep,
    out_dir: str | os.PathLike[str] | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: Executor | None = None,
    resume: bool = False,
    progress: Progress | None = None,
) -> SweepResult:
    """Simulate every point of ``study``.

    Parameters
    ----------
    study
        A :class:`Study`, or one already validated by :func:`prepare`.
    out_dir
        Where ``points.jsonl`` and ``results.csv`` go; ``None`` keeps results in memory only.
    workers
        Local processes (default: all cores); 1 runs in this process, in order.
    scheduler
        A ``dask.distributed`` scheduler address (``tcp://host:8786``); needs the ``dist``
        extra, and the model file must be readable by the workers (or be a model name).
    executor
        Any ``concurrent.futures.Executor`` (overrides ``workers`` and ``scheduler``).
    resume
        Reuse the points already finished in ``out_dir`` (failed ones run again).
    progress
        See :data:`Progress`.

    Returns
    -------
    SweepResult

    Raises
    ------
    ConfigError
        A bad key or value in any point (before anything runs), an ``out_dir`` holding another
        sweep without ``resume``, or an unreachable scheduler.
    """
    t_start = time.perf_counter()
    prep = study if isinstance(study, PreparedSweep) else prepare(study)
    out = Path(out_dir) if out_dir is not None else None
    with contextlib.ExitStack() as stack:
        journal = None
        if out is not None:
            stack.enter_context(store.lock(out))
            journal = store.Journal(out)
            stack.callback(journal.close)
            if journal.exists() and not resume:
                raise ConfigError(
                    f"{out} already holds a sweep: resume it (--resume, resume=True) or "
                    "write to another directory (-o, out_dir=)"
                )
        cached = _prior(journal, set(prep.keys)) if journal is not None and resume else {}
        results = {k: rec["result"] for k, rec in cached.items()}
        todo = list(dict.fromkeys(k for k in prep.keys if k not in results))
        task_of = dict(zip(prep.keys, prep.tasks, strict=True))
        point_of = dict(zip(prep.keys, prep.points, strict=True))
        cost_of = dict(zip(prep.keys, prep.cost, strict=True))
        total = len(set(prep.keys))
        last_csv = 0.0

        def rows() -> list[dict[str, Any]]:
            return [
                _row(k, p, c, results[k])
                for k, p, c in zip(prep.keys, prep.points, prep.cost, strict=True)
                if k in results
            ]

        def finish(key: str, result: dict[str, Any]) -> None:
            nonlocal last_csv
            results[key] = result
            if journal is not None and out is not None:
                journal.append({"key": key, "point": point_of[key], "result": result})
                now = time.monotonic()
                if (
                    len(results) <= _CSV_EVERY_POINT_ROWS
                    or now - last_csv >= _CSV_INTERVAL_S
                    or len(results) == total
                ):
                    store.write_csv(out / store.RESULTS, rows(), prep.params)
                    last_csv = now
            if progress is not None:
                progress(len(results), total, _row(key, point_of[key], cost_of[key], result))

        if progress is not None:
            progress(len(results), total, None)
        if todo:
            with _executor(workers, scheduler, executor) as pool:
                if pool is None:
                    for key in todo:
                        finish(key, run_task(task_of[key]))
                else:
                    futures: dict[Future, str] = {
                        pool.submit(run_task, task_of[key]): key for key in todo
                    }
                    try:
                        for fut in as_completed(futures):
                            try:
                                result = fut.result()
                            except Exception as exc:  # the worker itself died or was lost
                                result = {
                                    "status": "error",
                                    "error": f"worker failed: {type(exc).__name__}: {exc}"
                                    + _BROKEN_HINT * isinstance(exc, BrokenProcessPool),
                                }
                            finish(futures[fut], result)
                    except BaseException:
                        _abandon(futures, pool, executor)
                        raise
        final = rows()
        if out is not None:
            store.write_csv(out / store.RESULTS, final, prep.params)
    return SweepResult(final, prep.params, out, len(todo), time.perf_counter() - t_start)


def _row(key: str, point: dict[str, Any], cost: float, result: dict[str, Any]) -> dict[str, Any]:
    row = {"key": key, **point, "status": result.get("status", "error")}
    if row["status"] == "ok":
        row["cost_proxy"] = cost
    row.update((k, v) for k, v in result.items() if k != "status")
    row.setdefault("error", "")
    return row


def run_sweep(
    model: str | os.PathLike[str],
    chip: str = "ascend910",
    *,
    grid: Mapping[str, Sequence[Any]] | None = None,
    zipped: Mapping[str, Sequence[Any]] | None = None,
    fixed: Mapping[str, Any] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: Executor | None = None,
    resume: bool = False,
) -> list[dict[str, Any]]:
    """Simulate ``model`` at every point of a grid and return one row per point.

    Examples
    --------
    >>> rows = run_sweep("mlp", grid={"ai_cores": [8, 32]}, workers=1)
    >>> [r["ai_cores"] for r in rows], rows[1]["latency_s"] < rows[0]["latency_s"]
    ([8, 32], True)
    """
    study = Study(
        model=os.fspath(model), chip=chip, grid=grid or {}, zipped=zipped or {}, fixed=fixed or {}
    )
    return run_study(
        study, out_dir, workers=workers, scheduler=scheduler, executor=executor, resume=resume
    ).rows
