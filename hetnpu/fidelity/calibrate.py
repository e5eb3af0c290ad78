"""Fitting the calibrated preset values to the calibration table, and the honest error of the
fit: leave-one-model-out.

One value per chip is calibrated: ``task_launch_s``, what CANN's task scheduler takes to start
each kernel of an offline model on the AI cores (graph mode), which no public source gives for
these chips. The simulator charges it before every op that runs as a kernel of its own (a fused
epilogue launches nothing), serially on the op stream, so a run's latency is exactly

    latency(d) = latency(d0) + kernels * (d - d0)

for a launch cost ``d`` against the ``d0`` it was simulated with (in whole cycles per launch):
a fit needs one simulation per row, not one per trial value. A test checks the identity
against a second simulation.

The fit minimises the mean absolute percentage error over a chip's rows (a one-dimensional,
piecewise-smooth problem: a bounded golden-section search on a fine grid's best bracket).
Leave-one-model-out refits each chip without every row of one network (all its batches), then
predicts those rows: the error a user should expect on a network the fit never saw.

What the fitted value stands for: more than the scheduler's gap. Public graph-sink profiles of
the first-generation Ascend 910 (mindspore-ai/mindinsight e97a0b9,
``tests/utils/resource/profiler/PROF_000001_20230818142704322_COJGGGCANRMICFBC/device_0/
timeline/task_time_0_2_*.json``) start each AI Core task 0.11 us (median; p90 0.18 us) after
the previous one on its stream ends, and spend 0.4-1.5 us more inside a task than its cores'
cycles account for. With TransData timed at its profiled rate (``transdata_bytes_per_cycle``)
the 310P3's fit is 1.8 us, near that 0.5-1.6 us; before it was 4.0 us, standing in for the
conversions' missing time. The 910B4's (3.3 us) and the 310's (14.8 us) stay above it, so they
also carry per-kernel costs the simulator leaves out; no public profile of those chips shows
which.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from hetnpu.fidelity.predict import Prediction

__all__ = ["Fit", "fit_launch", "kernels", "leave_one_model_out", "value_at"]

MAX_LAUNCH_S = 50e-6
"""Upper end of the search: a launch cost beyond 50 us per kernel would contradict the A2
statement of about 20 us for a host-launched, full-core kernel (calibration table), which pays
more (host round trip) than a kernel launched by the device's own scheduler."""


@dataclass(frozen=True)
class Fit:
    """A calibrated value for one chip and the rows it was fit on."""

    preset: str
    task_launch_s: float
    rows: tuple[int, ...]
    mape: float


def kernels(pred: Prediction) -> int:
    """Kernels the simulated run launched: every op with instructions on the cores (not
    fused, not constant-folded, not refused, not a reshape in place, not a residual Add timed
    inside its convolution's kernel). A run simulated with no launch cost cannot tell the
    residual Adds apart and counts them."""
    res = pred.result
    if res.launch_cycles:  # the simulator charged each kernel's launch: count those
        return sum(1 for op in res.ops if op.launch_cycles)
    return sum(1 for op in res.ops if op.bound not in ("fused", "zero"))


def value_at(pred: Prediction, launch_s: float) -> float:
    """The row's metric had the run been simulated with ``launch_s`` per kernel (whole
    cycles per launch, as the simulator charges them)."""
    res = pred.result
    row = pred.target.row
    if row.metric == "kernel time":  # launches are not part of a kernel's own time
        return pred.simulated
    per_kernel = round(launch_s * res.clock_hz)
    cycles = res.cycles - res.launch_cycles + kernels(pred) * per_kernel
    latency = cycles / res.clock_hz
    if row.metric == "throughput":
        return row.batch / latency
    return latency * 1e3


def _mape(preds: Sequence[Prediction], launch_s: float) -> float:
    return statistics.fmean(abs(value_at(p, launch_s) - p.measured) / p.measured for p in preds)


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


def fit_launch(preds: Sequence[Prediction]) -> dict[str, Fit]:
    """The launch cost per chip that minimises that chip's MAPE over ``preds``."""
    out = {}
    # A kernel time excludes its launch: such rows say nothing about the launch cost; nor do
    # rows with ops the simulator could not time (their missing work would be fit as launches).
    informative = [p for p in preds if p.target.row.metric != "kernel time" and p.complete]
    for preset in sorted({p.target.preset for p in informative}):
        mine = [p for p in informative if p.target.preset == preset]
        value = _minimise(lambda d, mine=mine: _mape(mine, d), 0.0, MAX_LAUNCH_S)
        out[preset] = Fit(
            preset, value, tuple(sorted(p.target.row.index for p in mine)), _mape(mine, value)
        )
    return out


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
        fits = fit_launch(rest)
        for p in held:
            fit = fits.get(p.target.preset)
            if fit is None:
                continue
            value = value_at(p, fit.task_launch_s)
            errors[p.target.row.index] = abs(value - p.measured) / p.measured
    return errors
