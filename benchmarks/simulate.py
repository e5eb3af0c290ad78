"""Simulator speed and fidelity figures.

Run: ``python benchmarks/simulate.py [--quick]``

Prints, for ResNet-50 (batch 1 and 8), MobileNetV2 and BERT-base (seq 128) on ascend910: wall
time (first run, lowering included, and a second run with lowered programs cached), SimPy events
processed and events/s, next to raw SimPy throughput (a loop of bare timeouts) measured in the
same run; then simulated ResNet-50 throughput and catlass GEMM times against the published
figures of ascend-facts §6 (it has no published BERT figure for any Ascend chip).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import onnx
import simpy
from onnx import TensorProto, helper

from hetnpu import chips
from hetnpu.graph import load
from hetnpu.simulator import simulate

LIGHT = Path(os.path.dirname(onnx.__file__)) / "backend" / "test" / "data" / "light"


def raw_simpy_rate(n: int = 400_000) -> float:
    """Events per second of SimPy itself: one process yielding bare timeouts."""
    env = simpy.Environment()

    def proc(env: simpy.Environment):
        for _ in range(n):
            yield env.timeout(1)

    env.process(proc(env))
    t = time.perf_counter()
    env.run()
    return n / (time.perf_counter() - t)


def build(name: str, batch: int, seq_len: int = 128) -> tuple[Any, str]:
    """A model from hetnpu.models, or onnx's light ResNet-50 (same graph) if that is missing."""
    try:
        from hetnpu import models

        if not hasattr(models, "build"):
            raise ImportError("hetnpu.models.build is not available yet")
        kwargs = {"seq_len": seq_len} if name == "bert_base" else {}
        return load(models.build(name, batch=batch, **kwargs)), "hetnpu.models"
    except ImportError:
        if name != "resnet50":
            raise
        g = load(LIGHT / "light_resnet50.onnx", input_shapes={"gpu_0/data_0": [batch, 3, 224, 224]})
        return g, "onnx light_resnet50"


def bench(name: str, batch: int, chip: str, precision: str = "fp16") -> dict[str, Any]:
    graph, source = build(name, batch)
    spec = chips.load(chip)
    cold = simulate(graph, spec, precision=precision)
    warm = simulate(graph, spec, precision=precision)
    return {
        "model": name,
        "batch": batch,
        "chip": chip,
        "source": source,
        "cold_s": cold.wall_s,
        "warm_s": warm.wall_s,
        "events": warm.events,
        "events_per_s": warm.events / warm.wall_s,
        "cold_events_per_s": cold.events / cold.wall_s,
        "latency_ms": warm.latency_s * 1e3,
        "throughput": batch / warm.latency_s,
        "cube": warm.unit_busy.get("CUBE", 0.0),
        "unsupported": len(warm.unsupported),
        "result": warm,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="ResNet-50 batch 1 only")
    args = parser.parse_args()
    raw = raw_simpy_rate()
    print(f"raw SimPy: {raw:,.0f} events/s (bare timeouts, one process)")
    cases = [("resnet50", 1), ("resnet50", 8), ("mobilenetv2", 1), ("bert_base", 1)]
    if args.quick:
        cases = cases[:1]
    print(
        f"{'model':12} {'bs':>3} {'cold s':>7} {'warm s':>7} {'events':>9} {'ev/s':>10} "
        f"{'vs raw':>6} {'sim ms':>8} {'items/s':>9} {'cube':>5}  source"
    )
    for name, batch in cases:
        try:
            r = bench(name, batch, "ascend910")
        except ImportError as exc:
            print(f"{name:12} {batch:>3}  skipped: {exc}")
            continue
        print(
            f"{name:12} {batch:>3} {r['cold_s']:7.3f} {r['warm_s']:7.3f} {r['events']:9,} "
            f"{r['events_per_s']:10,.0f} {r['events_per_s'] / raw:6.2f} {r['latency_ms']:8.3f} "
            f"{r['throughput']:9,.0f} {r['cube']:5.1%}  {r['source']}"
        )
    if args.quick:
        return
    gemms()
    print("\nResNet-50 against published figures (ascend-facts §6):")
    published = [
        # (chip, batch, img/s, what, source)
        ("ascend310p", 64, 4250.0, "inference, FP16 om, bs64, Ascend 310P3", "[MZ-R50]"),
        ("ascend910", 256, 2170.0, "training, 8x910 bs256/chip, 118 ms/step", "[MS-R50]"),
    ]
    for chip, batch, figure, what, src in published:
        try:
            r = bench("resnet50", batch, chip)
        except Exception as exc:
            print(f"  {chip} bs{batch}: not simulated ({type(exc).__name__}: {exc})")
            continue
        sim = r["throughput"]
        # Training does forward + backward (about 3x the forward MACs) per image.
        comparable = sim / 3 if what.startswith("training") else sim
        print(
            f"  {chip} bs{batch}: simulated {sim:,.0f} img/s inference"
            f"{f' (~{comparable:,.0f} training-equivalent)' if comparable != sim else ''}; "
            f"published {figure:,.0f} ({what}) {src}; ratio {comparable / figure:.2f} "
            f"[sim {r['cold_s']:.1f} s, {r['events']:,} events]"
        )


def gemm_graph(m: int, k: int, n: int) -> Any:
    """fp16 ``A[m,k] @ B[k,n]``, the shape of a catlass example."""
    a = helper.make_tensor_value_info("A", TensorProto.FLOAT16, [m, k])
    b = helper.make_tensor_value_info("B", TensorProto.FLOAT16, [k, n])
    c = helper.make_tensor_value_info("C", TensorProto.FLOAT16, [m, n])
    g = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"], name="mm")], "gemm", [a, b], [c]
    )
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def gemms() -> None:
    print("\ncatlass GEMMs on 910B-class chips (ascend-facts §6 [CAT-TUNE][CAT-OPT]):")
    cases = [
        # (m, k, n, AIC cores, published best us, what)
        (1024, 6144, 576, 20, 48.6, "06_optimized_matmul, tuned tile"),
        (160, 2048, 6144, 20, 35.3, "B in zN, swizzle<4,1>"),
        (20, 16384, 6144, 20, 139.6, "B in zN, tile 32x320x128"),
    ]
    for m, k, n, cores, pub, what in cases:
        spec = chips.load("ascend910b", overrides={"ai_cores": cores, "vector_cores": 2 * cores})
        r = simulate(gemm_graph(m, k, n), spec)
        us = r.latency_s * 1e6
        tflops = 2 * m * k * n / r.latency_s / 1e12
        print(
            f"  M{m} K{k} N{n} on {cores} AIC: simulated {us:7.1f} us ({tflops:5.1f} TFLOPS); "
            f"published {pub} us ({what}); ratio sim/published {us / pub:.2f}"
        )


if __name__ == "__main__":
    main()
