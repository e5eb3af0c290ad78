"""Fitting the calibrated preset values to the calibration table, and the honest error of the
fit: leave-one-model-out.

Two fixed costs are calibrated, which no public source gives for these chips:

- ``task_launch_s``, per chip: what CANN's task scheduler takes to start each kernel of an
  offline model on the AI cores (graph mode). The simulator charges it before every op that
  runs as a kernel of its own (a fused epilogue launches nothing), serially on the op stream.
- ``model_execute_s``, one value for CANN's runtime: what one synchronous ``aclmdlExecute``
  takes beyond the model's tasks (the host's call into the runtime, the model-run command to
  the task scheduler, the completion back to the host). The table's model rows are timed that
  way: ais_bench's "NPU compute time" is the host's wall clock around ``aclmdlExecute``
  (``ModelInferenceProcessor::Execute`` in the ait benchmark backend, mjlovesz/sync-ait
  3634187, ``ait/components/benchmark/backend/base/module/ModelInfer/
  ModelInferenceProcessor.cpp``), and CANN's benchmark tool reports the same interface time.
  The device's cycles leave it out; :attr:`~hetnpu.simulator.SimResult.execute_latency_s`
  adds it.

So a row's latency is exactly

    latency(d, e) = latency(d0, 0) + kernels * (d - d0) + e

for a launch cost ``d`` against the ``d0`` it was simulated with (in whole cycles per launch)
and an execute cost ``e``: a fit needs one simulation per row, not one per trial value. A test
checks the identity against a second simulation.

The fit minimises the mean absolute percentage error: for a trial execute cost, each chip's
launch cost minimises that chip's MAPE (a bounded golden-section search on a fine grid's best
bracket), and the same search over the execute cost minimises the MAPE over every chip's rows,
bounded by the shortest measured latency (of which it is a part). Leave-one-model-out refits
both without every row of one network (all its batches), then predicts those rows: the error a
user should expect on a network the fit never saw.

Why a second value: a per-kernel cost alone cannot fit networks of few kernels and of many at
once (on the 310P3, ResNet-18 at batch 1 wanted 3 us more per kernel, ResNet-101 2 us less); a
per-execute cost is the same for both. Why one execute cost for every chip: it is the
runtime's and the host's, not the AI cores'; and fit per chip, the 310's seven rows cannot
tell it from the launch cost (its leave-one-model-out error is about 10%, against 7.0% with
the value shared).

What the fitted launch cost stands for: more than the scheduler's gap. Public graph-sink
profiles of the first-generation Ascend 910 (mindspore-ai/mindinsight e97a0b9,
``tests/utils/resource/profiler/PROF_000001_20230818142704322_COJGGGCANRMICFBC/device_0/
timeline/task_time_0_2_*.json``) start each AI Core task 0.11 us (median; p90 0.18 us) after
the previous one on its stream ends, and spend 0.4-1.5 us more inside a task than its cores'
cycles account for: the 310P3's fit sits in that range. The 310's (about 14 us) stays far
above it, so it also carries per-kernel costs the simulator leaves out; no public profile of
that chip shows which.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from hetnpu.fidelity.predict import Prediction

__all__ = ["Fit", "fit_overheads", "kernels", "leave_one_model_out", "value_at"]

MAX_LAUNCH_S = 50e-6
"""Upper end of the launch search: a launch cost beyond 50 us per kernel would contradict the
A2 statement of about 20 us for a host-launched, full-core kernel (calibration table), which
pays more (host round trip) than a kernel launched by the device's own scheduler."""


@dataclass(frozen=True)
class Fit:
    """The calibrated values for one chip and the rows they were fit on."""

    preset: str
    task_launch_s: float
    model_execute_s: float
    rows: tuple[int, ...]
    """The chip's rows: what ``task_launch_s`` was fit on."""
    execute_rows: tuple[int, ...]
    """Every chip's rows: ``model_execute_s`` is one value for CANN's runtime, fit on all."""
    mape: float
    """The chip's rows' MAPE at the fit."""
    execute_mape: float
    """Every chip's rows' MAPE at the fit."""


def kernels(pred: Prediction) -> int:
    """Kernels the simulated run launched: every op with instructions on the cores (not
    fused, not constant-folded, not refused, not a reshape in place, not a residual Add timed
    inside its convolution's kernel). A run simulated with no launch cost cannot tell the
    residual Adds apart and counts them."""
    res = pred.result
    if res.launch_cycles:  # the simulator charged each kernel's launch: count those
        return sum(1 for op in res.ops if op.launch_cycles)
    return sum(1 for op in res.ops if op.bound not in ("fused", "zero"))


def value_at(pred: Prediction, launch_s: float, execute_s: float) -> float:
    """The row's metric had the run been simulated with ``launch_s`` per kernel (whole
    cycles per launch, as the simulator charges them) and ``execute_s`` per execute."""
    return float(_Rows([pred]).values(launch_s, execute_s)[0])


class _Rows:
    """A chip's rows as arrays, so that a trial (launch, execute) pair costs one numpy pass."""

    def __init__(self, preds: Sequence[Prediction]) -> None:
        self.preds = list(preds)
        res = [p.result for p in self.preds]
        self.clock = np.array([r.clock_hz for r in res])
        self.base = np.array([r.cycles - r.launch_cycles for r in res], dtype=float)
        self.kernels = np.array([kernels(p) for p in self.preds], dtype=float)
        rows = [p.target.row for p in self.preds]
        self.kernel_time = np.array([r.metric == "kernel time" for r in rows])
        self.throughput = np.array([r.metric == "throughput" for r in rows])
        self.batch = np.array([r.batch for r in rows], dtype=float)
        self.measured = np.array([p.measured for p in self.preds])
        self.simulated = np.array([p.simulated for p in self.preds])

    def values(self, launch_s: float, execute_s: float) -> np.ndarray:
        per_kernel = np.round(launch_s * self.clock)
        latency = (self.base + self.kernels * per_kernel) / self.clock + execute_s
        host = np.where(self.throughput, self.batch / latency, latency * 1e3)
        # A kernel time excludes its launch and the host: the simulated figure stands.
        return np.where(self.kernel_time, self.simulated, host)

    def mape(self, launch_s: float, execute_s: float) -> float:
        v = self.values(launch_s, execute_s)
        return float(np.mean(np.abs(v - self.measured) / self.measured))

    def shortest_latency_s(self) -> float:
        """The least measured host-timed latency among the rows (seconds)."""
        lat = np.where(self.throughput, self.batch / self.measured, self.measured * 1e-3)
        return float(lat[~self.kernel_time].min())


def _minimise(f: Callable[[float], float], lo: float, hi: float) -> float:
    grid = [lo + (hi - lo) * i / 200 for i in range(201)]
    best = min(range(len(grid)), key=lambda i: (f(grid[i]), i))
    a, b = grid[max(best - 1, 0)], grid[min(best + 1, len(grid) - 1)]
    golden = 0.6180339887498949
    for _ in range(60):
        c, d = b - golden * (b - a), a + golden * (b - a)
        if f(c) <= f(d):
            b = d
        else:
            a = c
    x = (a + b) / 2
    return x if f(x) <= f(grid[best]) else grid[best]


def fit_overheads(preds: Sequence[Prediction]) -> dict[str, Fit]:
    """Each chip's launch cost and the one execute cost that minimise the rows' MAPE over
    ``preds``: for a trial execute cost, each chip's launch cost minimises that chip's MAPE,
    and the execute cost minimises the MAPE over every chip's rows."""
    # A kernel time excludes its launch and the host: such rows say nothing about either; nor
    # do rows with ops the simulator could not time (their missing work would be fit as
    # launches).
    informative = [p for p in preds if p.target.row.metric != "kernel time" and p.complete]
    chips = {
        preset: _Rows([p for p in informative if p.target.preset == preset])
        for preset in sorted({p.target.preset for p in informative})
    }
    if not chips:
        return {}
    launch_at: dict[tuple[str, float], float] = {}

    def launch(preset: str, execute: float) -> float:
        if (preset, execute) not in launch_at:
            rows = chips[preset]
            launch_at[preset, execute] = _minimise(
                lambda d: rows.mape(d, execute), 0.0, MAX_LAUNCH_S
            )
        return launch_at[preset, execute]

    def overall(execute: float) -> float:
        total = sum(len(r.preds) * r.mape(launch(c, execute), execute) for c, r in chips.items())
        return total / sum(len(r.preds) for r in chips.values())

    # The execute cost is part of every row's time: at most the shortest measured latency.
    execute = _minimise(overall, 0.0, min(r.shortest_latency_s() for r in chips.values()))
    every = tuple(sorted(p.target.row.index for p in informative))
    return {
        preset: Fit(
            preset,
            launch(preset, execute),
            execute,
            tuple(sorted(p.target.row.index for p in rows.preds)),
            every,
            rows.mape(launch(preset, execute), execute),
            overall(execute),
        )
        for preset, rows in chips.items()
    }


def leave_one_model_out(preds: Iterable[Prediction]) -> dict[int, float]:
    """Row index -> relative error when the row's network was left out of the fit (rows
    simulated completely only).

    A chip whose only network is the one left out keeps no fit, and its rows are not scored:
    nothing would be left to fit on.
    """
    preds = [p for p in preds if p.complete]
    errors: dict[int, float] = {}
    for key in sorted({p.target.model_key for p in preds}):
        held = [p for p in preds if p.target.model_key == key]
        rest = [p for p in preds if p.target.model_key != key]
        fits = fit_overheads(rest)
        for p in held:
            fit = fits.get(p.target.preset)
            if fit is None:
                continue
            value = value_at(p, fit.task_launch_s, fit.model_execute_s)
            errors[p.target.row.index] = abs(value - p.measured) / p.measured
    return errors
