"""Why the rows beyond 25% stay there: DDR traffic and batch curves, simulated against measured.

Run: ``python benchmarks/fidelity_gaps.py [--threshold 0.25] [--table CSV]``

For every network with a row of the calibration table whose simulated figure is off by more
than the threshold, all of that network's rows on that chip are simulated (presets as
calibrated, as in ``benchmarks/fidelity.py``) and printed with:

- the measured device time (the row's time less the chip's ``model_execute_s``, which the
  host-timed rows include) and the simulated one;
- the DDR bytes the simulated schedule moves, and the bytes the measured device time allows at
  the preset's DDR rate (``hbm_bytes_per_s``);
- the least DDR traffic of any op-by-op schedule that keeps whole tensors in L2, as the
  simulator's L2 does: the weights read once, and every activation larger than L2 written once
  and read once by each kernel that reads it (kernels as the simulator fuses them; an op that
  reads part of an input, a Gather or Slice, only the bytes it writes). Where even
  that exceeds what the measured time allows, no such schedule reaches the row at that DDR
  rate: the chip must reuse parts of tensors larger than its L2, or sustain more bandwidth;
- the change of throughput from the batch before, measured and simulated, which shows where a
  measured curve falls and the simulated one does not;
- for a kernel-time row, the fraction of the Cube's peak the measured and the simulated kernel
  reach.
"""

from __future__ import annotations

import argparse
import functools
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hetnpu.fidelity import load_table, predict, target
from hetnpu.fidelity.predict import Prediction, target_graph
from hetnpu.graph import Graph
from hetnpu.graph.opfamilies import PARTIAL_READ_OPS
from hetnpu.simulator.prepare import device_nbytes
from hetnpu.simulator.result import SimResult
from hetnpu.simulator.tiler import precision_info


def whole_tensor_floor(graph: Graph, res: SimResult) -> int:
    """Least DDR bytes of an op-by-op run of ``graph`` that keeps whole tensors in L2, its
    kernels as ``res`` (an fp16 simulation of it) fused them (see the module docstring).

    A kernel reads each tensor from outside it once, however many of its nodes read it; an op
    that reads only part of an input (Gather, Slice...: ``PARTIAL_READ_OPS``) needs at most as
    many bytes as it writes; a weight is read once, at the most any one kernel needs of it."""
    prec, l2 = precision_info("fp16"), res.spec.l2_bytes
    size = functools.cache(lambda t: device_nbytes(graph, t, prec))
    kernels: dict[str, list[str]] = defaultdict(list)
    for op in res.ops:
        if op.bound != "zero" and op.name in graph.nodes:
            kernels[op.fused_into or op.name].append(op.name)
    weights: dict[str, int] = {}
    moved = 0
    for members in kernels.values():
        nodes = [graph.node(m) for m in members]
        made = {t for n in nodes for t in n.outputs if t}
        needs: dict[str, int] = {}  # outside tensor -> bytes this kernel must read of it
        for n in nodes:
            out = sum(size(t) for t in n.outputs if t)
            for t in n.inputs:
                if t and t not in made:
                    need = min(size(t), out) if n.op_type in PARTIAL_READ_OPS else size(t)
                    needs[t] = max(needs.get(t, 0), need)
        for t, need in needs.items():
            if graph.is_initializer(t):
                weights[t] = max(weights.get(t, 0), need)
            elif size(t) > l2:
                moved += need
        for t in made:
            outside = t in graph.outputs or any(c.name not in members for c in graph.consumers(t))
            if outside and size(t) > l2:
                moved += size(t)
    return moved + sum(weights.values())


def _device_time(pred: Prediction) -> float:
    """The measured row's time on the device (s): a host-timed row less ``model_execute_s``."""
    row, spec = pred.target.row, pred.result.spec
    if row.metric == "throughput":
        return row.batch / pred.measured - spec.model_execute_s
    if row.metric == "kernel time":
        return pred.measured * 1e-6
    return pred.measured * 1e-3 - spec.model_execute_s


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="calibration CSV (default: packaged copy)")
    parser.add_argument("--threshold", type=float, default=0.25, help="relative error (0.25)")
    args = parser.parse_args(argv)

    targets = [t for row in load_table(args.table) if not isinstance(t := target(row), str)]
    preds = {t.row.index: predict(t) for t in targets}
    gaps = {
        (p.target.model_key, p.target.preset)
        for p in preds.values()
        if p.complete and p.error > args.threshold
    }
    if not gaps:
        print(f"no row is off by more than {args.threshold:.0%}")
        return 0
    for key, preset in sorted(gaps):
        rows = sorted(
            (p for p in preds.values()
             if (p.target.model_key, p.target.preset) == (key, preset)),
            key=lambda p: p.target.row.batch,
        )  # fmt: skip
        spec = rows[0].result.spec
        print(f"\n{rows[0].target.row.model} on {preset} (DDR {spec.hbm_bytes_per_s / 1e9:.1f} "
              f"GB/s, L2 {spec.l2_bytes / 2**20:.0f} MiB)")  # fmt: skip
        print(f"{'row':>4} {'b':>3} {'ratio':>6} {'dev ms meas':>11} {'sim':>7} "
              f"{'DDR GB sim':>10} {'allowed':>8} {'floor':>7} "
              f"{'d tput meas':>11} {'sim':>6}")  # fmt: skip
        before = None
        for p in rows:
            row, res = p.target.row, p.result
            t_meas = _device_time(p)
            # A kernel's operands are its inputs: no activation goes through DDR between ops.
            floor = f"{'-':>7}"
            if row.metric != "kernel time":
                floor = f"{whole_tensor_floor(target_graph(p.target), res) / 1e9:>7.3f}"
            mark = " !" if p.error > args.threshold else ""
            step = ""
            if before is not None and row.metric == "throughput":
                step = (f"{p.measured / before.measured - 1:>+11.0%} "
                        f"{p.simulated / before.simulated - 1:>+6.0%}")  # fmt: skip
            print(f"{row.index:>4} {row.batch:>3} {p.ratio:>6.3f} {t_meas * 1e3:>11.3f} "
                  f"{res.latency_s * 1e3:>7.3f} {res.hbm_bytes / 1e9:>10.3f} "
                  f"{t_meas * spec.hbm_bytes_per_s / 1e9:>8.3f} {floor} "
                  f"{step}{mark}")  # fmt: skip
            if row.metric == "kernel time":
                peak = spec.peak_flops("fp16") / 2  # MACs per second
                macs = sum(op.macs for op in res.ops)
                print(f"     Cube peak reached: measured {macs / t_meas / peak:.0%}, simulated "
                      f"{macs / (p.simulated * 1e-6) / peak:.0%}")  # fmt: skip
            before = p
    print(
        "\nratio: simulated / measured (throughput, or kernel time); dev ms: the device's time "
        "(a host-timed row less model_execute_s); DDR GB allowed: what the measured device "
        "time moves at the preset's DDR rate; floor: the least DDR traffic of an op-by-op "
        "run keeping whole tensors in L2; d tput: throughput change from the batch before."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
