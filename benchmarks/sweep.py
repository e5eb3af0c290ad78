"""What-if sweep speed: a 64-point ResNet-50 sweep on ascend910, and kill/resume trials.

Run: ``python benchmarks/sweep.py [--workers 2] [--dask] [--kill-trials 10]``

Prints, for one 64-point study (ai_cores × hbm_bytes_per_s × batch × precision ×
double_buffer over ``hetnpu.models.build("resnet50")`` saved as an .onnx file):

- validation time (every point checked, the model hashed and loaded once per input shape);
- wall time in this process (``workers=1``), in a process pool of 1 and of N workers (and a
  dask.distributed LocalCluster of N workers with ``--dask``), the speed-up of N workers over
  1, and the parallel efficiency (summed simulation time / (N × wall));
- per-point overhead beyond the simulation itself: (N × sweep wall − Σ simulate wall) / points,
  where a point's simulate wall (and CPU) time is measured around the simulator call in the
  worker; CPU well below wall means other processes were using the cores;
- the wall time of ``--resume`` on the finished sweep (nothing to simulate).

With ``--kill-trials N`` it also SIGKILLs N CLI sweeps (MLP, 30 points) at random moments
(fixed seed: after k points, a random delay after the first point, or during start-up) and
resumes each, printing how many points the journal kept, how many rows results.csv had, and
whether the resumed results equal an uninterrupted run with every point exactly once.

Figures depend on the machine's load: the script prints the load average next to them.
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import onnx

from hetnpu.whatif import Study, prepare, run_study
from hetnpu.whatif.store import JOURNAL, RESULTS

ROOT = Path(__file__).resolve().parents[1]
GRID = {
    "ai_cores": [8, 16, 24, 32],
    "hbm_bytes_per_s": [0.6e12, 1.2e12],
    "batch": [1, 4],
    "precision": ["fp16", "int8"],
    "double_buffer": [True, False],
}


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _timed(label: str, study: Study, out: Path, points: int, **kw: Any) -> float:
    prep = prepare(study)
    t = time.perf_counter()
    res = run_study(prep, out, **kw)
    wall = time.perf_counter() - t
    ok = [r for r in res.rows if r["status"] == "ok"]
    sim = sum(r["sim_wall_s"] for r in ok)
    cpu = sum(r["sim_cpu_s"] for r in ok)
    workers = kw.get("workers") or 1
    print(
        f"{label:<26} wall {wall:6.2f} s  Σ simulate {sim:6.2f} s (CPU {cpu:6.2f} s)  "
        f"overhead/point {(wall * workers - sim) / points * 1e3:6.1f} ms  "
        f"efficiency {sim / (workers * wall):4.0%}  failed {len(res.failed)}  load {_load()}"
    )
    return wall


def bench_sweep(workers: int, use_dask: bool) -> None:
    from hetnpu import models

    tmp = Path(tempfile.mkdtemp(prefix="hetnpu-sweep-bench-"))
    model = tmp / "resnet50.onnx"
    onnx.save(models.build("resnet50"), model)
    study = Study(str(model), "ascend910", grid=GRID)
    n = len(study.points())
    print(f"ResNet-50 ({model.stat().st_size / 1e6:.0f} MB .onnx) on ascend910, {n} points")
    print(f"machine: {os.cpu_count()} CPUs, load average {_load()} (shared machine)")
    t = time.perf_counter()
    prepare(study)
    print(
        f"validation of {n} points (hash, load per shape, build specs): "
        f"{time.perf_counter() - t:.2f} s"
    )
    serial = _timed("workers=1 (this process)", study, tmp / "serial", n, workers=1)
    # The same start method as the sweep's own pool: a pool forked from this process (which
    # holds the loaded model and has run simulations) left the later pools' workers slower.
    ctx = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool1:
        one = _timed("process pool of 1", study, tmp / "pool1", n, executor=pool1)
    many = _timed(f"process pool of {workers}", study, tmp / "pool", n, workers=workers)
    print(
        f"speed-up of {workers} workers: {one / many:.2f}x over a pool of 1, "
        f"{serial / many:.2f}x over this process"
    )
    if use_dask:
        from distributed import LocalCluster

        with LocalCluster(
            n_workers=workers, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster:
            d = _timed(
                f"dask LocalCluster({workers})",
                study,
                tmp / "dask",
                n,
                scheduler=cluster.scheduler_address,
                workers=workers,
            )
        print(f"dask speed-up over a pool of 1: {one / d:.2f}x")
    t = time.perf_counter()
    res = run_study(prepare(study), tmp / "serial", resume=True)
    print(
        f"--resume of the finished sweep: {time.perf_counter() - t:.2f} s "
        f"({res.computed} simulated)"
    )
    shutil.rmtree(tmp)


def _stable(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return [
            {k: v for k, v in r.items() if k not in ("sim_wall_s", "sim_cpu_s")}
            for r in csv.DictReader(f)
        ]


def bench_kill(trials: int, seed: int) -> None:
    grid = ["--grid", "ai_cores=2,4,8,16,32", "--grid", "batch=1,2,4,8,16,32"]
    tmp = Path(tempfile.mkdtemp(prefix="hetnpu-kill-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ref = tmp / "ref"
    run_study(
        Study("mlp", grid={"ai_cores": [2, 4, 8, 16, 32], "batch": [1, 2, 4, 8, 16, 32]}),
        ref,
        workers=1,
    )
    expected = _stable(ref / RESULTS)
    rng = random.Random(seed)
    print(f"\nkill/resume: {trials} trials, MLP, {len(expected)} points, seed {seed}")
    print(
        f"{'trial':>5} {'workers':>7} {'kill when':>16} {'killed':>6} {'kept':>5} "
        f"{'csv rows':>8} {'resumed':>7} {'exact once':>10} {'equal':>5}"
    )
    for i in range(trials):
        workers = rng.choice([1, 2])
        # Half the kills after k finished points, half a random delay after the first one
        # (mid-simulation or mid-write), a few during start-up.
        mode = rng.choice(["points", "after-first", "after-first", "startup"])
        at = {
            "points": lambda: rng.randint(1, len(expected) - 1),
            "after-first": lambda: rng.uniform(0.0, 0.1),
            "startup": lambda: rng.uniform(0.1, 1.0),
        }[mode]()
        out = tmp / f"t{i}"
        journal = out / JOURNAL
        cmd = [sys.executable, "-m", "hetnpu", "sweep", "mlp", *grid, "-o", str(out)]
        proc = subprocess.Popen(
            [*cmd, "--workers", str(workers)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        start, first, killed = time.monotonic(), None, False
        while proc.poll() is None:
            done = journal.read_bytes().count(b"\n") if journal.exists() else 0
            now = time.monotonic()
            first = first if first is not None or not done else now
            if (
                (mode == "points" and done >= at)
                or (mode == "startup" and now - start >= at)
                or (mode == "after-first" and first is not None and now - first >= at)
            ):
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
            time.sleep(0.002)
        proc.wait()
        kept = len(journal.read_text().splitlines()) if journal.exists() else 0
        rows = len(_stable(out / RESULTS)) if (out / RESULTS).exists() else 0
        done_run = subprocess.run(
            [*cmd, "--workers", str(workers), "--resume"], env=env, capture_output=True
        )
        keys = [json.loads(x)["key"] for x in journal.read_text().splitlines()]
        once = len(keys) == len(set(keys)) == len(expected)
        equal = done_run.returncode == 0 and _stable(out / RESULTS) == expected
        when = f"{mode}={at:.3g}"
        print(
            f"{i:>5} {workers:>7} {when:>16} {killed!s:>6} {kept:>5} {rows:>8} "
            f"{len(expected) - kept:>7} {once!s:>10} {equal!s:>5}"
        )
    shutil.rmtree(tmp)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--dask", action="store_true", help="also time a dask LocalCluster")
    ap.add_argument("--kill-trials", type=int, default=0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--no-sweep", action="store_true", help="only the kill/resume trials")
    args = ap.parse_args()
    if not args.no_sweep:
        bench_sweep(args.workers, args.dask)
    if args.kill_trials:
        bench_kill(args.kill_trials, args.seed)


if __name__ == "__main__":
    main()
