"""Simulated figures against the published Ascend measurements of the calibration table.

Run: ``python benchmarks/fidelity.py [--table CSV] [--only PATTERN] [--json OUT] [--no-llm]``

Every row hetnpu can simulate is simulated on its chip's preset (calibrated values included)
and printed with the published figure and the ratio simulated/measured; rows it cannot simulate
yet are listed with the reason. Then the mean absolute percentage error (MAPE) and the largest
error, per chip and overall, and the leave-one-model-out error: each calibrated preset value is
refitted without one network's rows, which are then predicted (the honest estimate of the error
on a network the fit never saw; see ``benchmarks/calibrate.py``).

The LLM rows (torchair graph mode on the Atlas 800I A2: ChatGLM3-6B on one 910B4, LLaMA-2-70B
tensor-parallel over eight) are simulated last, by the LLM what-if model
(:mod:`hetnpu.whatif.llm`: prompt 1024 and 1024 generated tokens, the KV cache handled as each
measured script does; see ``benchmarks/_llm_rows.py``) and the multi-NPU one
(:mod:`hetnpu.whatif.parallel_search`: TP 8 on the ``atlas-800i-a2`` topology, HCCL all-reduces).
The 910B4's ``task_launch_s`` is fit on these rows (``benchmarks/calibrate.py --llm``, which
prints their leave-one-model-out error: fit on one network, predict the other); the CNN rows'
leave-one-model-out below does not touch it. ``--no-llm`` skips them (about five minutes).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _llm_rows import llm_rows

from hetnpu.atomic import atomic_write_text
from hetnpu.fidelity import load_table, predict, target
from hetnpu.fidelity.calibrate import leave_one_model_out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=None, help="calibration CSV (default: packaged copy)")
    parser.add_argument("--only", default=None, help="regex on the model column")
    parser.add_argument("--json", default=None, help="write the per-row figures here")
    parser.add_argument("--no-lomo", action="store_true", help="skip leave-one-model-out")
    parser.add_argument("--no-llm", action="store_true", help="skip the LLM rows")
    args = parser.parse_args(argv)

    rows = load_table(args.table)
    if args.only:
        rows = [r for r in rows if re.search(args.only, r.model)]
    preds, skipped = [], []
    t0 = time.perf_counter()
    print(f"{'row':>3}  {'model':<44} {'chip':<6} {'b':>3}  {'simulated':>10} {'measured':>10}"
          f"  {'unit':<6} {'ratio':>6}")  # fmt: skip
    for row in rows:
        t = target(row)
        if isinstance(t, str):
            skipped.append((row, t))
            continue
        p = predict(t)
        preds.append(p)
        print(
            f"{row.index:>3}  {row.model[:44]:<44} {t.preset.removeprefix('ascend'):<6} "
            f"{row.batch:>3}  {p.simulated:>10.1f} {p.measured:>10.1f}  {row.unit:<6} "
            f"{p.ratio:>6.3f}"
        )
    wall = time.perf_counter() - t0
    print(f"\n{len(preds)} rows simulated in {wall:.0f} s; {len(skipped)} not simulated:")
    for why in sorted({w for _, w in skipped}):
        n = sum(1 for _, w in skipped if w == why)
        print(f"  {n:>2} rows: {why}")
    incomplete = [p for p in preds if not p.complete]
    if incomplete:
        print(
            f"{len(incomplete)} rows simulated without some of their ops (kept out of the error):"
        )
        for key in sorted({(p.target.builder, p.untimed) for p in incomplete}):
            idx = [p.target.row.index for p in incomplete if (p.target.builder, p.untimed) == key]
            print(f"  {key[0]:<16} rows {idx}: {', '.join(key[1])} not timed")
    complete = [p for p in preds if p.complete]
    print("\nerror (|simulated - measured| / measured), rows simulated completely:")
    for chip in [*sorted({p.target.preset for p in complete}), "all"] if complete else []:
        errs = [p.error for p in complete if chip in ("all", p.target.preset)]
        print(
            f"  {chip:<11} rows {len(errs):>3}  MAPE {100 * statistics.fmean(errs):6.1f}%  "
            f"max {100 * max(errs):6.1f}%  within 25%: {sum(e <= 0.25 for e in errs)}"
        )
    if not args.no_lomo:
        lomo = leave_one_model_out(preds)
        chip_of = {p.target.row.index: p.target.preset for p in preds}
        for chip in [*sorted({chip_of[i] for i in lomo}), "all"] if lomo else []:
            errs = [e for i, e in lomo.items() if chip in ("all", chip_of[i])]
            print(
                f"  leave-one-model-out {chip:<11} rows {len(errs):>3}  "
                f"MAPE {100 * statistics.fmean(errs):.1f}%  max {100 * max(errs):.1f}%"
            )
    llm = [] if args.no_llm else llm_rows(rows)
    if llm:
        print("\nLLM rows (Atlas 800I A2, torchair graph mode):")
        print(f"{'row':>3}  {'model':<34} {'metric':<26} {'b':>3}  {'simulated':>10} "
              f"{'measured':>10}  {'ratio':>6}")  # fmt: skip
        for row, sim in llm:
            print(f"{row.index:>3}  {row.model[:34]:<34} {row.metric:<26} {row.batch:>3}  "
                  f"{sim:>10.1f} {row.value:>10.1f}  {sim / row.value:>6.3f}")  # fmt: skip
        errs = [abs(sim - r.value) / r.value for r, sim in llm]
        cnn = [p.error for p in complete]
        for name, group in (("LLM rows", errs), ("all rows", cnn + errs)):
            print(
                f"  {name:<11} rows {len(group):>3}  MAPE {100 * statistics.fmean(group):6.1f}%"
                f"  max {100 * max(group):6.1f}%  within 25%: {sum(e <= 0.25 for e in group)}"
            )
    if args.json:
        out = [
            {
                "row": p.target.row.index,
                "model": p.target.row.model,
                "chip": p.target.preset,
                "batch": p.target.row.batch,
                "simulated": p.simulated,
                "measured": p.measured,
                "ratio": p.ratio,
                "untimed": list(p.untimed),
            }
            for p in preds
        ]
        atomic_write_text(Path(args.json), json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
