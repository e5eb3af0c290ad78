"""Partitioner benchmarks: plan quality (estimated makespan) and partitioning time.

Run: ``PYTHONPATH=. python benchmarks/partition.py [--chip ascend910] [--graphs 40]``

1. Small random DAGs (4-12 ops, NPU+GPU+CPU): capability and heft against exact, the optimum
   of the estimate every strategy is scored by.
2. The shipped onnx "light" models with an NPU that lacks a few ops (``LACKING`` pinned to the
   CPU, on top of what CANN really refuses, e.g. grouped convolutions): all-CPU vs capability vs
   heft vs exact (where the model is small enough).
3. Partition time of a 10,000-op random DAG (target: under a second).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
import onnx

from hetnpu.errors import ConfigError
from hetnpu.graph import load
from hetnpu.models.synthetic import large_dag, random_dag
from hetnpu.scheduler import default_cost_model, estimate_makespan, partition
from hetnpu.scheduler.placement import MAX_NODES

LIGHT_DIR = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "light")
LACKING = ("LRN", "Softmax", "Concat", "GlobalAveragePool")
"""Ops the benchmark's NPU is taken to lack (pinned to the CPU where a model has them)."""


def small_graphs(costs: object, count: int) -> None:
    ratios: dict[str, list[float]] = {"capability": [], "heft": []}
    for seed in range(count):
        g = load(
            random_dag(
                4 + seed % 9, seed, channels=32, spatial=16, window=3, unsupported_fraction=0.25
            )
        )
        devices = ["npu", "gpu", "cpu"]
        exact = partition(g, devices, strategy="exact", cost_model=costs).estimated_makespan_s
        for strategy, found in ratios.items():
            ms = partition(g, devices, strategy=strategy, cost_model=costs).estimated_makespan_s
            found.append(ms / exact)
    print(f"1. small random DAGs ({count}, 4-12 ops, npu+gpu+cpu): makespan / exact's")
    for strategy, found in ratios.items():
        arr = np.array(found)
        print(
            f"   {strategy:<10} mean {arr.mean():.3f}  median {np.median(arr):.3f}  "
            f"p90 {np.quantile(arr, 0.9):.3f}  max {arr.max():.3f}  "
            f"optimal in {np.mean(arr < 1 + 1e-9):.0%}"
        )


def light_models(costs: object) -> None:
    print("2. shipped light models, npu+cpu, NPU lacking " + ", ".join(LACKING) + " (est. ms)")
    print(
        f"   {'model':<22}{'all-cpu':>9}{'capab.':>9}{'heft':>9}{'exact':>9}"
        f"{'cpu/heft':>9}  fallbacks"
    )
    for file in sorted(f for f in os.listdir(LIGHT_DIR) if f.endswith(".onnx")):
        g = load(os.path.join(LIGHT_DIR, file))
        present = {n.op_type for n in g}
        pins = {op: "cpu" for op in LACKING if op in present} or None
        all_cpu = estimate_makespan(g, {n.name: "cpu" for n in g if not n.is_constant}, costs)
        row = {}
        plans = {}
        for strategy in ("capability", "heft", "exact"):
            try:
                plans[strategy] = partition(
                    g, ["npu", "cpu"], strategy=strategy, affinity=pins, cost_model=costs
                )
                row[strategy] = f"{plans[strategy].estimated_makespan_s * 1e3:9.3f}"
            except ConfigError:
                row[strategy] = f"{'>' + str(MAX_NODES):>9}"
        speedup = all_cpu / plans["heft"].estimated_makespan_s
        print(
            f"   {file[6:-5]:<22}{all_cpu * 1e3:9.3f}{row['capability']}{row['heft']}"
            f"{row['exact']}{speedup:8.1f}x  {len(plans['capability'].fallbacks)}"
        )


def big_graph(chip: str) -> None:
    model = large_dag(10_000, seed=0)
    print("3. partition time, 10,000-op random DAG (load excluded; median of 3)")
    for devices in (["npu", "cpu"], ["npu", "gpu", "cpu"]):
        for strategy in ("capability", "heft"):
            times, stages = [], 0
            for _ in range(3):
                g = load(model)  # fresh graph: no capability answers cached from the last run
                costs = default_cost_model(chip)
                t0 = time.perf_counter()
                plan = partition(g, devices, strategy=strategy, cost_model=costs)
                times.append(time.perf_counter() - t0)
                stages = len(plan.stages)
            print(
                f"   {'+'.join(devices):<12} {strategy:<10} {statistics.median(times):6.3f} s  "
                f"{stages} stages, est. {plan.estimated_makespan_s * 1e3:.2f} ms"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", default="ascend910")
    parser.add_argument("--graphs", type=int, default=40)
    args = parser.parse_args()
    costs = default_cost_model(args.chip)
    small_graphs(costs, args.graphs)
    light_models(costs)
    big_graph(args.chip)


if __name__ == "__main__":
    main()
