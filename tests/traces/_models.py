"""A small Conv → Relu → Conv → Mul model and its simulation, shared by the trace tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hetnpu import chips
from hetnpu.graph import Graph, load
from hetnpu.simulator import SimResult, simulate


def residual_model() -> onnx.ModelProto:
    """conv1 → relu (fused into conv1) → conv2 → mul(conv2, relu): three timed ops, and the
    data edges conv1→conv2, conv2→mul and conv1→mul (through the fused relu). A Mul, not a
    residual Add: the Add would be added in conv2's epilogue (no op of its own)."""
    rng = np.random.default_rng(0)
    w1 = numpy_helper.from_array(rng.standard_normal((32, 16, 3, 3)).astype(np.float32), "W1")
    w2 = numpy_helper.from_array(rng.standard_normal((32, 32, 3, 3)).astype(np.float32), "W2")
    pads = {"pads": [1, 1, 1, 1]}
    nodes = [
        helper.make_node("Conv", ["X", "W1"], ["c1"], name="conv1", **pads),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "W2"], ["c2"], name="conv2", **pads),
        helper.make_node("Mul", ["c2", "r1"], ["Y"], name="mul"),
    ]
    graph = helper.make_graph(
        nodes,
        "residual",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 16, 56, 56])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 32, 56, 56])],
        [w1, w2],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@dataclass(frozen=True)
class Run:
    graph: Graph
    spec: Any
    result: SimResult


def run(**overrides: Any) -> Run:
    """Simulate the residual model on ascend910 with chip-field ``overrides``."""
    spec = chips.load("ascend910", overrides=overrides or None)
    graph = load(residual_model())
    return Run(graph, spec, simulate(graph, spec, trace_level="instr"))


def runtime_like_trace() -> dict:
    """The runtime profile's shape: a process per device, X events per stage, op, transfer."""
    meta = []
    for pid, dev in ((1, "cpu"), (2, "sim-npu")):
        meta.append(
            {"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": dev}}
        )
        for tid, lane in ((1, "stage"), (2, "ops"), (3, "transfers")):
            meta.append(
                {"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": lane}}
            )

    def x(pid: int, tid: int, cat: str, name: str, ts: float, dur: float) -> dict:
        return {
            "ph": "X",
            "cat": cat,
            "name": name,
            "pid": pid,
            "tid": tid,
            "ts": ts,
            "dur": dur,
            "args": {"op_type": "Conv" if cat == "op" else ""},
        }

    spans = [
        x(1, 1, "stage", "stage0", 0, 10),
        x(1, 2, "op", "conv1", 0, 6),
        x(1, 2, "op", "relu1", 6, 4),
        x(1, 3, "transfer", "r1 cpu->npu", 10, 2),
        x(2, 1, "stage", "stage1", 12, 8),
        x(2, 2, "op", "conv2", 12, 5),
        x(2, 2, "op", "mul", 17, 3),
    ]
    return {"traceEvents": meta + spans, "otherData": {"generator": "hetnpu.runtime"}}
