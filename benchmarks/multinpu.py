"""LLaMA-2-70B on 8 × 910B (Atlas 800I A2, tensor parallel 8): simulated against the published
prefill and decode latencies of the calibration table, and the "fewest 910B" search.

Run: ``python benchmarks/multinpu.py [--table CSV] [--workers N] [--skip-prefill] [--moe-only]``

How a row is simulated (:mod:`hetnpu.whatif.parallel_search`): one rank's TP-8 shard (8
query heads, 1 K/V head, FFN 3584, LM head 4000 columns) is timed by the single-NPU LLM model
(:mod:`hetnpu.whatif.llm`, the fused graph simulated cycle by cycle on the 910B preset, one
layer replayed for the 80).
Each layer adds two all-reduces of the fp16 hidden state [batch, tokens, 8192] over the 8
NPUs, timed as HCCL's Mesh algorithm on the HCCS full mesh (two steps, each α + n/8·β on every
pair link at once: cann-hccl docs/Mesh.md; link figures from msmodeling's A2 interconnect,
``hetnpu/devices/presets/topologies/atlas-800i-a2.toml``). Decode is timed at the mean cache
length of the run (1024 prompt + 512); prefill runs the 1024-token prompt of every sequence.

Then the same search for Mixtral-8x7B (an MoE model, 8 experts of which each token takes 2):
every TP x PP split is tried with its experts split by TP (ep 1) and whole over the TP group
(ep = tp: attention under TP with a reduce-scatter and an all-gather, the experts reached by an
all-to-all dispatch and combine, as vllm-ascend's all-to-all MoE runs them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hetnpu.devices.topology import load_topology
from hetnpu.fidelity.table import Row, load_table
from hetnpu.simulator.collectives import choose_algorithm, closed_form_s, simulate_collective
from hetnpu.whatif.parallel_search import _context, fewest_chips, layer_time, step_point

MODEL, CHIP, TOPOLOGY, TP = "llama-2-70b", "ascend910b4", "atlas-800i-a2", 8
MOE_MODEL, MOE_TARGET_MS, MOE_BATCH = "mixtral-8x7b", 50.0, 16
PROMPT, GENERATED = 1024, 1024


def _rows(table: Path | None) -> list[Row]:
    return [r for r in load_table(table) if "LLaMA-2-70B" in r.model]


def _collectives(topo) -> None:
    ranks = topo.device_names()[:TP]
    hccs = topo.levels[0].link
    print(
        f"\nCollectives: all-reduce over {TP} NPUs, {choose_algorithm('all-reduce', ranks, topo)}"
        f" on {hccs.name}: α = {hccs.latency_s * 1e6:.2f} us, per pair link "
        f"{hccs.bytes_per_s / 1e9:.1f} GB/s x {hccs.efficiency} efficiency"
    )
    print(f"  {'batch':>5} {'phase':>7} {'bytes':>11} {'closed form us':>15} {'simulated us':>13}")
    for batch in (1, 16, 48):
        for phase, tokens in (("decode", 1), ("prefill", PROMPT)):
            n = batch * tokens * 8192 * 2
            sim = simulate_collective("all-reduce", ranks, n, topo).duration_s
            closed = closed_form_s("all-reduce", ranks, n, topo)
            print(f"  {batch:>5} {phase:>7} {n:>11} {closed * 1e6:15.2f} {sim * 1e6:13.2f}")


def _reuse_error() -> None:
    """A 4-layer TP-8 shard simulated whole (every layer) against 4 x layer + rest."""
    from hetnpu.devices.presets import npu_spec
    from hetnpu.whatif.llm import phase_time
    from hetnpu.whatif.shard_time import shard as _shard

    kv = _context(PROMPT, GENERATED)
    part = layer_time(MODEL, CHIP, TP, "decode", 16, 1, kv)
    shard = _shard(MODEL, TP).with_layers(4)
    whole = phase_time(
        shard, npu_spec(CHIP), "fp16", phase="decode", batch=16, seq=1, kv_len=kv, replay=False
    ).seconds
    reused = 4 * part.layer_s + part.rest_s
    print(
        f"\nLayer reuse (decode, batch 16): 4-layer shard simulated whole {whole * 1e3:.4f} ms, "
        f"as 4 x layer + rest {reused * 1e3:.4f} ms ({(reused / whole - 1) * 100:+.2f} %)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=Path, default=None, help="default: the packaged copy")
    parser.add_argument("--workers", type=int, default=2, help="processes for the search")
    parser.add_argument("--skip-prefill", action="store_true", help="decode rows only")
    parser.add_argument("--moe-only", action="store_true", help="only the Mixtral EP search")
    args = parser.parse_args(argv)
    if args.moe_only:
        _moe_fewest(args.workers)
        return 0
    topo = load_topology(TOPOLOGY)
    rows = _rows(args.table)
    table = args.table.name if args.table else "calibration.csv"
    print(f"LLaMA-2-70B, {TP} x 910B ({topo.description}), TP {TP}; table {table}")
    print(f"  {'metric':<26} {'batch':>5} {'measured ms':>12} {'simulated ms':>13} {'ratio':>6}")
    ratios = []
    for r in rows:
        prefill = r.metric.startswith("prefill")
        if prefill and args.skip_prefill:
            continue
        batch = r.batch
        t0 = time.perf_counter()
        phase = ("prefill",) if prefill else ("decode",)
        p = step_point(
            MODEL, CHIP, topo, TP, 1, batch, prompt=PROMPT, generated=GENERATED, phases=phase
        )
        sim = p.ttft_ms if prefill else p.per_token_ms
        measured = r.value
        ratios.append(sim / measured)
        wall = time.perf_counter() - t0
        print(
            f"  {r.metric:<26} {batch:>5} {measured:12.1f} {sim:13.1f} {sim / measured:6.2f}"
            f"   (all-reduces {p.allreduce_ms:.2f} ms; {wall:.1f} s to simulate)"
        )
    if ratios:
        mape = sum(abs(x - 1) for x in ratios) / len(ratios) * 100
        print(f"  mean |simulated/measured - 1| = {mape:.1f} % over {len(ratios)} rows")
    _collectives(topo)
    _reuse_error()
    print("\nFewest 910B for LLaMA-2-70B at <= 50 ms/token, batch 16 (family a2):")
    res = fewest_chips(MODEL, CHIP, "per_token_ms", 50.0, 16, workers=args.workers)
    for p in res.points:
        mark = "*" if p == res.answer else " "
        figure = f"{p.per_token_ms:8.2f} ms/token" if p.fits else p.note
        print(f" {mark} {p.chips:>3} chips  tp {p.tp:>2} pp {p.pp:>2}  {figure}")
    a = res.answer
    answer = (
        "none" if a is None else f"{a.chips} x 910B (tp {a.tp}, pp {a.pp}), {a.per_token_ms:.1f} ms"
    )
    print(f"answer: {answer}; search wall time {res.wall_s:.1f} s (target <= 120 s)")
    _moe_fewest(args.workers)
    return 0


def _moe_fewest(workers: int) -> None:
    """Fewest 910B4 for Mixtral-8x7B, with expert parallelism among the splits tried."""
    print(
        f"\nFewest 910B for Mixtral-8x7B at <= {MOE_TARGET_MS:g} ms/token, batch {MOE_BATCH} "
        "(family a2, TP x PP x EP):"
    )
    res = fewest_chips(MOE_MODEL, CHIP, "per_token_ms", MOE_TARGET_MS, MOE_BATCH, workers=workers)
    print(f"  {'':1} {'chips':>5} {'tp':>3} {'pp':>3} {'ep':>3} {'GB/chip':>8}  figures")
    for p in res.points:
        mark = "*" if p == res.answer else " "
        if p.fits:
            comm = f"TP collectives {p.allreduce_ms:.2f} ms"
            if p.alltoall_ms is not None:
                comm += f", all-to-alls {p.alltoall_ms:.2f} ms"
            figure = f"{p.per_token_ms:8.2f} ms/token ({comm}) {p.note}"
        else:
            figure = p.note
        split = f"{p.chips:>5} {p.tp:>3} {p.pp:>3} {p.ep:>3} {p.hbm_per_chip / 1e9:8.1f}"
        print(f"  {mark} {split}  {figure}")
    a = res.answer
    answer = (
        "none"
        if a is None
        else f"{a.chips} x 910B4 (tp {a.tp}, pp {a.pp}, ep {a.ep}), {a.per_token_ms:.1f} ms"
    )
    print(f"answer: {answer}; search wall time {res.wall_s:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
