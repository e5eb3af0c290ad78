"""TransData between NCHW and NC1HWC0: public Ascend 910 per-op profiles against the simulator.

Run: ``python benchmarks/transdata.py``

Prints each profiled TransData (hetnpu/fidelity/data/ascend910_transdata.csv) with its measured
time, the rate it implies per block, and its simulated time on the ascend910 preset with the
preset's ``transdata_bytes_per_cycle`` and without it (one Vector pass at the vector rate);
then the median rate (the preset's value) and the mean error of each. The rate is the median
of these very rows, so the error with it is in-sample: it shows how well one rate covers 12 to
2048 channels, both directions and fp16/fp32, not a prediction.
"""

from __future__ import annotations

from hetnpu.devices.presets import load_npu
from hetnpu.fidelity.op_profiles import (
    mean_abs_error,
    simulate_transdata,
    transdata_rate,
    transdata_rows,
)


def main() -> None:
    rows = transdata_rows()
    spec = load_npu("ascend910", {})
    plain = load_npu("ascend910", {"transdata_bytes_per_cycle": None})
    with_rate = [simulate_transdata(r, spec) for r in rows]
    without = [simulate_transdata(r, plain) for r in rows]
    print(
        f"{'profile':20s} {'direction':14s} {'NCHW shape':20s} {'dtype':5s} {'measured':>9s} "
        f"{'B/cyc/blk':>9s} {'sim':>8s} {'ratio':>6s} {'sim(no rate)':>12s} {'ratio':>6s}"
    )
    for a, b in zip(with_rate, without, strict=True):
        r = a.row
        rate = r.rate(spec.clock_hz)
        print(
            f"{r.profile:20s} {r.direction:14s} {r.shape!s:20s} {r.dtype:5s} "
            f"{r.time_us:8.1f}u {rate:9.2f} {a.simulated_us:7.1f}u {a.ratio:6.2f} "
            f"{b.simulated_us:11.1f}u {b.ratio:6.2f}"
        )
    median = transdata_rate(rows, spec.clock_hz)
    print(
        f"\n{len(rows)} ops; median {median:.2f} B of NC1HWC0 data per cycle per block at "
        f"{spec.clock_hz / 1e6:.1f} MHz (preset: {spec.transdata_bytes_per_cycle})"
    )
    print(
        f"mean |sim - measured| / measured: with the rate {mean_abs_error(with_rate):.1%}, "
        f"one Vector pass {mean_abs_error(without):.1%}"
    )


if __name__ == "__main__":
    main()
