"""Fuzz campaign: mutate ONNX models and run each mutant through load, partition, simulate and
InferenceSession, in a worker process with a time bound and a memory cap.

    python benchmarks/fuzz.py --cases 10000 --seed 1
    python benchmarks/fuzz.py --cases 10000 --time-budget 900   # stop after 15 minutes
    python benchmarks/fuzz.py --replay light_squeezenet/dim_huge/123

Prints counts per outcome (``ok``, the first error's class, or ``bug:<kind>``), per error class
over all stages, and every distinct bug (foreign exception, vague message, hang, crash, memory)
with the case that reproduces it (``source/kind/seed``, replayable with ``--replay``).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

# The test tooling lives with the tests, beside this folder.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.support.mutations import KINDS, MutationSpec
from tests.support.pipeline import ALL_SOURCES, SOURCES, FuzzConfig, summarize
from tests.support.runner import FuzzRunner


def _specs(n: int, seed: int, sources: list[str], kinds: list[str]) -> list[MutationSpec]:
    rng = random.Random(seed)
    return [
        MutationSpec(rng.choice(sources), rng.choice(kinds), rng.randrange(2**32)) for _ in range(n)
    ]


def _parse_spec(text: str) -> MutationSpec:
    source, kind, seed = text.rsplit("/", 2)
    return MutationSpec(source, kind, int(seed))


def _table(title: str, counts: dict[str, int], total: int) -> None:
    print(f"\n{title}")
    width = max((len(k) for k in counts), default=10)
    for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {key:<{width}}  {n:>7}  {n / total:6.1%}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sources", default=",".join(ALL_SOURCES), help="comma-separated names")
    ap.add_argument("--kinds", default=",".join(KINDS), help="comma-separated mutation kinds")
    ap.add_argument("--time-budget", type=float, default=None, help="stop after this many s")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds before a case hangs")
    ap.add_argument("--max-events", type=int, default=500_000)
    ap.add_argument("--replay", action="append", default=[], help="source/kind/seed to rerun")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every bug as found")
    args = ap.parse_args(argv)

    sources = [s for s in args.sources.split(",") if s]
    unknown = [s for s in sources if s not in SOURCES]
    if unknown:
        ap.error(f"unknown sources {unknown}; known: {', '.join(SOURCES)}")
    specs = (
        [_parse_spec(r) for r in args.replay]
        if args.replay
        else _specs(args.cases, args.seed, sources, [k for k in args.kinds.split(",") if k])
    )
    config = FuzzConfig(case_timeout_s=args.timeout, max_events=args.max_events)
    results = []
    t0 = time.perf_counter()
    with FuzzRunner(config) as runner:
        for i, spec in enumerate(specs):
            if args.time_budget is not None and time.perf_counter() - t0 > args.time_budget:
                print(f"time budget of {args.time_budget:.0f} s reached after {i} cases")
                break
            res = runner.run(spec)
            results.append(res)
            if res.bugs and (args.verbose or args.replay):
                print(res.describe(), flush=True)
            if args.replay:
                for s in res.stages:
                    print(f"  {s.stage:<22} {s.status:<8} {s.error} {s.message[:160]}")
            if (i + 1) % 100 == 0:
                rate = (i + 1) / (time.perf_counter() - t0)
                print(f"{i + 1} cases, {rate:.1f} cases/s", file=sys.stderr, flush=True)
        restarts = runner.restarts
    wall = time.perf_counter() - t0
    n = len(results)
    if not n:
        return 0
    summary = summarize(results)
    print(
        f"\n{n} cases in {wall:.0f} s ({n / wall:.2f} cases/s), seed {args.seed}, "
        f"{len(sources)} sources, worker restarts {restarts}"
    )
    _table("outcome per case (first failing stage)", summary["outcomes"], n)
    stage_total = sum(summary["errors"].values()) or 1
    _table("HetnpuError classes over all stages", summary["errors"], stage_total)
    per_kind: dict[str, int] = {}
    for r in results:
        per_kind[f"{r.spec.kind}: {r.outcome}"] = per_kind.get(f"{r.spec.kind}: {r.outcome}", 0) + 1
    _table("mutation kind: outcome", per_kind, n)
    bugs = summary["bugs"]
    print(f"\nbugs: {len(bugs)} distinct, {sum(c for c, _ in bugs.values())} stage failures")
    for (stage, kind, frame), (count, example) in sorted(bugs.items(), key=lambda kv: -kv[1][0]):
        first = next(s for s in example.stages if s.status == "bug")
        print(f"- {count}x {stage}: {kind} at {frame}")
        print(f"    e.g. {example.spec} ({example.what[:160]})")
        print(f"    {first.message[:240]}")
    return 1 if bugs else 0


if __name__ == "__main__":
    sys.exit(main())
