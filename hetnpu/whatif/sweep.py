"""Run a what-if study: every point simulated, locally or on a Dask cluster, resumable.

Points run through the ``concurrent.futures.Executor`` interface: a local process pool by
default, or ``dask.distributed``'s executor when a scheduler address is given. Each finished
point is written at once, atomically, to ``OUT/points/<key>.json`` (its key hashes the model,
the chip and the point), and ``OUT/results.csv`` is rewritten atomically after every point, so
an interrupted sweep loses nothing and ``resume=True`` runs only what is missing.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import multiprocessing
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hetnpu.atomic import atomic_write_text
from hetnpu.errors import ConfigError, HetnpuError
from hetnpu.whatif.grid import RUN_KEYS, Study, point_key

__all__ = ["SweepResult", "run_study", "simulate_point", "validate_points"]

PRECISIONS = ("fp16", "fp32", "int8")


@dataclass(frozen=True)
class SweepResult:
    """Rows of a finished (or partly finished) sweep, one per point, in the study's order."""

    rows: list[dict[str, Any]]
    out_dir: Path | None
    computed: int
    """Points simulated by this call (the rest came from the cache)."""
    wall_s: float

    @property
    def failed(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r["status"] != "ok"]


def _split(point: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    run = {k: v for k, v in point.items() if k in RUN_KEYS}
    chip = {k: v for k, v in point.items() if k not in RUN_KEYS}
    return run, chip


def validate_points(study: Study, points: list[dict[str, Any]]) -> None:
    """Build every point's chip and check its run keys; raise on the first bad one, naming it."""
    from hetnpu import chips

    for i, point in enumerate(points):
        run, overrides = _split(point)
        where = f"sweep point {i} {point}"
        try:
            chips.load(study.chip, overrides=overrides)
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None
        batch = run.get("batch", 1)
        if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
            raise ConfigError(f"{where}: batch must be a positive integer, got {batch!r}")
        if run.get("precision", "fp16") not in PRECISIONS:
            raise ConfigError(
                f"{where}: precision must be one of {PRECISIONS}, got {run['precision']!r}"
            )
        if not isinstance(run.get("double_buffer", True), bool):
            raise ConfigError(f"{where}: double_buffer must be true or false")


def _model_digest(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def simulate_point(model: str, chip: str, point: dict[str, Any]) -> dict[str, Any]:
    """Simulate one point; return its metrics. Runs in a worker process (must be picklable)."""
    from hetnpu import chips
    from hetnpu.graph import load
    from hetnpu.simulator import simulate

    run, overrides = _split(point)
    spec = chips.load(chip, overrides=overrides)
    shapes = None
    if "batch" in run:
        probe = load(model, require_static=False)
        shapes = {n: [run["batch"], *(probe.tensors[n].shape or ())[1:]] for n in probe.inputs}
    graph = load(model, input_shapes=shapes)
    t0 = time.perf_counter()
    res = simulate(
        graph,
        spec,
        precision=run.get("precision", "fp16"),
        double_buffer=run.get("double_buffer", True),
    )
    summary = res.to_summary()
    batch = run.get("batch", 1)
    metrics: dict[str, Any] = {
        "cycles": summary["cycles"],
        "latency_s": summary["latency_s"],
        "throughput_per_s": batch / summary["latency_s"] if summary["latency_s"] else 0.0,
        "hbm_bytes": summary["hbm_bytes"],
        "hbm_bytes_per_s_achieved": summary["hbm_bytes"] / summary["latency_s"]
        if summary["latency_s"]
        else 0.0,
        "events": summary["events"],
        "sim_wall_s": time.perf_counter() - t0,
        "ai_cores": spec.ai_cores,
        "hbm_bytes_per_s": spec.hbm_bytes_per_s,
        "peak_fp16_flops": spec.peak_flops("fp16"),
    }
    for unit, busy in sorted(summary["unit_busy"].items()):
        metrics[f"busy_{unit.lower()}"] = busy
    return metrics


def _run_one(model: str, chip: str, point: dict[str, Any]) -> dict[str, Any]:
    # Failures are results: one bad point must not stop the others.
    try:
        return {"status": "ok", "error": "", **simulate_point(model, chip, point)}
    except HetnpuError as exc:
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
    except Exception as exc:
        return {"status": "error", "error": f"internal {type(exc).__name__}: {exc}"}


def _write_csv(path: Path, rows: list[dict[str, Any]], params: list[str]) -> None:
    metric_keys: list[str] = []
    for r in rows:
        for k in r:
            if k not in params and k not in ("key", "status", "error") and k not in metric_keys:
                metric_keys.append(k)
    columns = ["key", *params, "status", *metric_keys, "error"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def run_study(
    study: Study,
    out_dir: str | Path | None = None,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    executor: Executor | None = None,
    resume: bool = False,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> SweepResult:
    """Simulate every point of ``study``.

    Parameters
    ----------
    out_dir
        Where points, ``results.csv`` and the report go; ``None`` keeps results in memory only.
    workers
        Local processes (default: all cores); 1 runs in this process, sequentially.
    scheduler
        A ``dask.distributed`` scheduler address (``tcp://host:8786``); needs the ``dist`` extra.
    executor
        Any ``concurrent.futures.Executor`` (overrides ``workers`` and ``scheduler``).
    resume
        Reuse points already finished in ``out_dir`` (failed ones run again).
    progress
        Called as ``progress(done, total, row)`` after each point.
    """
    t_start = time.perf_counter()
    if not Path(study.model).is_file():
        raise ConfigError(f"sweep model {study.model!r}: no such file")
    points = study.points()
    validate_points(study, points)
    digest = _model_digest(study.model)
    keys = [point_key(digest, study.chip, p) for p in points]
    params = list(dict.fromkeys(k for p in points for k in p))
    out = Path(out_dir) if out_dir is not None else None
    cache_dir = out / "points" if out is not None else None
    rows: dict[str, dict[str, Any]] = {}
    if out is not None and cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        if not resume and any(cache_dir.glob("*.json")):
            raise ConfigError(
                f"{out} already holds a sweep; pass --resume to finish it or choose another -o"
            )
        if resume:
            for key in keys:
                f = cache_dir / f"{key}.json"
                if f.is_file():
                    row = json.loads(f.read_text())
                    if row.get("status") == "ok":
                        rows[key] = row
    todo = [(k, p) for k, p in zip(keys, points, strict=True) if k not in rows]
    total, done = len(points), len(rows)

    def finish(key: str, point: dict[str, Any], result: dict[str, Any]) -> None:
        nonlocal done
        row = {"key": key, **point, **result}
        rows[key] = row
        done += 1
        if cache_dir is not None and out is not None:
            atomic_write_text(cache_dir / f"{key}.json", json.dumps(row, sort_keys=True))
            _write_csv(out / "results.csv", [rows[k] for k in keys if k in rows], params)
        if progress is not None:
            progress(done, total, row)

    if todo:
        own_pool: Executor | None = None
        client = None
        if executor is None and scheduler is not None:
            try:
                from dask.distributed import Client
            except ImportError:
                raise ConfigError(
                    "--scheduler needs dask.distributed: pip install 'hetnpu[dist]'"
                ) from None
            try:
                client = Client(scheduler, timeout="10s")
            except OSError as exc:
                raise ConfigError(
                    f"cannot reach the dask scheduler at {scheduler}: {exc}"
                ) from None
            executor = client.get_executor()
        if executor is None and (workers or 0) != 1:
            own_pool = executor = ProcessPoolExecutor(
                max_workers=workers or None, mp_context=multiprocessing.get_context("spawn")
            )
        try:
            if executor is None:
                for key, point in todo:
                    finish(key, point, _run_one(study.model, study.chip, point))
            else:
                futures: dict[Future, tuple[str, dict[str, Any]]] = {
                    executor.submit(_run_one, study.model, study.chip, point): (key, point)
                    for key, point in todo
                }
                try:
                    for fut in as_completed(futures):
                        key, point = futures[fut]
                        finish(key, point, fut.result())
                except BaseException:
                    for fut in futures:
                        fut.cancel()
                    raise
        finally:
            if own_pool is not None:
                own_pool.shutdown(wait=True, cancel_futures=True)
            if client is not None:
                client.close()
    ordered = [rows[k] for k in keys if k in rows]
    if out is not None:
        _write_csv(out / "results.csv", ordered, params)
    return SweepResult(ordered, out, len(todo), time.perf_counter() - t_start)
