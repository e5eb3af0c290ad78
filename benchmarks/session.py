"""Session overhead against a plain onnxruntime session, and the cost of a CPU<->sim-npu boundary.

1. Overhead: ResNet-50 (224x224), BERT-base (sequence 128) and MobileNetV2 (224x224), batch 1,
   all on the CPU: ``hetnpu.InferenceSession(devices=["cpu"])`` against
   ``onnxruntime.InferenceSession`` with default options, in the same process, runs interleaved
   (alternating which goes first) so that load on the machine hits both alike. Printed: the
   median wall time per run of each and their ratio (target <= 1.05).
2. Boundary: ResNet-50 all on the CPU against the same with one mid-network Relu pinned to
   sim-npu, which adds one CPU->sim-npu->CPU round trip (two crossings, each a copy and a
   TransData NCHW<->NC1HWC0 in fp16). Printed: the wall-time difference, and from the measured
   profile the median time of each crossing's copy and TransData and of the one-op NPU stage.

Usage::

    python benchmarks/session.py [--runs 30] [--models resnet50,bert_base,mobilenetv2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

import hetnpu
from hetnpu import models

SHAPES = {
    "resnet50": {"image_size": 224},
    "bert_base": {"seq_len": 128},
    "mobilenetv2": {"image_size": 224},
}


def _feeds(sess: ort.InferenceSession) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    out = {}
    for arg in sess.get_inputs():
        if arg.type == "tensor(int64)":
            high = 2 if "mask" in arg.name else 1000
            out[arg.name] = rng.integers(0, high, arg.shape).astype(np.int64)
        else:
            out[arg.name] = rng.standard_normal(arg.shape).astype(np.float32)
    return out


def _timed(fn, feeds) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn(None, feeds)
    return time.perf_counter() - t0


def overhead(name: str, runs: int, warmup: int = 3) -> dict[str, float]:
    model = models.build(name, **SHAPES[name])
    plain = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    mine = hetnpu.InferenceSession(model, devices=["cpu"])
    feeds = _feeds(plain)
    for _ in range(warmup):
        plain.run(None, feeds)
        mine.run(None, feeds)
    np.testing.assert_array_equal(plain.run(None, feeds)[0], mine.run(None, feeds)[0])
    t_ort, t_het = [], []
    for k in range(runs):
        if k % 2:
            t_ort.append(_timed(plain.run, feeds))
            t_het.append(_timed(mine.run, feeds))
        else:
            t_het.append(_timed(mine.run, feeds))
            t_ort.append(_timed(plain.run, feeds))
    m_ort, m_het = statistics.median(t_ort), statistics.median(t_het)
    return {"ort_ms": m_ort * 1e3, "hetnpu_ms": m_het * 1e3, "ratio": m_het / m_ort}


def boundary(runs: int, warmup: int = 2) -> dict[str, float]:
    model = models.build("resnet50", image_size=224)
    relus = [n.name for n in model.graph.node if n.op_type == "Relu"]
    pinned = relus[len(relus) // 2]
    cpu = hetnpu.InferenceSession(model, devices=["cpu"])
    split = hetnpu.InferenceSession(model, devices=["cpu", "sim-npu"], affinity={pinned: "sim-npu"})
    # Profiling slows onnxruntime's kernels, so the breakdown comes from a second session.
    profiled = hetnpu.InferenceSession(
        model, devices=["cpu", "sim-npu"], affinity={pinned: "sim-npu"}, profile=True
    )
    stages = [(s.device, len(s.nodes)) for s in split.get_plan().stages]
    assert [d for d, _ in stages] == ["cpu", "sim-npu", "cpu"], stages
    feeds = {"input": np.random.default_rng(0).standard_normal((1, 3, 224, 224), np.float32)}
    for _ in range(warmup):
        cpu.run(None, feeds)
        split.run(None, feeds)
    t_cpu, t_split = [], []
    for _ in range(runs):
        t_cpu.append(_timed(cpu.run, feeds))
        t_split.append(_timed(split.run, feeds))
    for _ in range(runs):
        profiled.run(None, feeds)
    with tempfile.TemporaryDirectory() as tmp:
        path = profiled.end_profiling(Path(tmp) / "split.json")
        events = json.loads(Path(path).read_text())["traceEvents"]
    spans: dict[str, list[float]] = {}
    for e in events:
        if e["ph"] != "X" or e["cat"] not in ("transfer", "transdata", "stage"):
            continue
        if e["cat"] == "stage" and "sim-npu" not in e["name"]:
            continue
        if e["cat"] == "stage":
            key = "sim-npu stage (the Relu)"
        elif e["cat"] == "transdata":
            key = f"TransData {e['args']['src_layout']}->{e['args']['dst_layout']}"
        else:
            key = f"copy {e['name'].split()[0]}"
        spans.setdefault(key, []).append(e["dur"])
    tensor = split.get_plan().transdata[0]
    out = {
        "pinned": pinned,
        "tensor_bytes_fp32": tensor.nbytes,
        "cpu_ms": statistics.median(t_cpu) * 1e3,
        "split_ms": statistics.median(t_split) * 1e3,
    }
    out["delta_ms"] = out["split_ms"] - out["cpu_ms"]
    out["stage + copies + TransData ms"] = sum(statistics.median(v) for v in spans.values()) / 1e3
    out.update({f"{k} us": statistics.median(v) for k, v in sorted(spans.items())})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--models", default="resnet50,bert_base,mobilenetv2")
    parser.add_argument("--no-boundary", action="store_true")
    args = parser.parse_args()
    print(f"onnxruntime {ort.__version__}, {args.runs} interleaved runs, medians")
    print(f"{'model':<12} {'onnxruntime ms':>15} {'hetnpu ms':>10} {'ratio':>7}")
    for name in filter(None, args.models.split(",")):
        r = overhead(name, args.runs)
        print(f"{name:<12} {r['ort_ms']:>15.2f} {r['hetnpu_ms']:>10.2f} {r['ratio']:>7.3f}")
    if not args.no_boundary:
        b = boundary(max(5, args.runs // 3))
        print(f"\nResNet-50 with {b['pinned']} on sim-npu (one CPU->sim-npu->CPU round trip):")
        for k, v in b.items():
            if k != "pinned":
                print(f"  {k:<34} {v:,.2f}" if isinstance(v, float) else f"  {k:<34} {v}")


if __name__ == "__main__":
    main()
