"""Simulating a calibration row: the model the row measured, on the chip it was measured on,
read back as the row's metric.

A model is built weight-free (:func:`hetnpu.models.shapes_only`: the simulator needs shapes
only) and loaded once per (builder, batch, options); every chip variant of a fit reuses it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import onnx
from onnx import TensorProto, helper

from hetnpu.devices.presets import load_npu
from hetnpu.fidelity.table import Row, Target, target
from hetnpu.graph import Graph, load
from hetnpu.simulator import SimResult, simulate

__all__ = ["Prediction", "matmul_model", "predict", "predict_table", "target_graph"]


@dataclass(frozen=True)
class Prediction:
    """A row's simulated figure next to the published one."""

    target: Target
    simulated: float
    """In the row's unit (img/s, seq/s, us)."""
    result: SimResult

    @property
    def untimed(self) -> tuple[str, ...]:
        """Op types the simulator could not time in this model (CANN's list refuses them, or
        no lowering exists): a row with any is simulated too fast by their work, so it is
        kept out of the fit and of the headline error."""
        return tuple(sorted({u.op_type for u in self.result.unsupported}))

    @property
    def complete(self) -> bool:
        return not self.untimed

    @property
    def measured(self) -> float:
        return self.target.row.value

    @property
    def ratio(self) -> float:
        """simulated / measured."""
        return self.simulated / self.measured

    @property
    def error(self) -> float:
        """|simulated - measured| / measured."""
        return abs(self.simulated - self.measured) / self.measured


def matmul_model(m: int, n: int, k: int) -> onnx.ModelProto:
    """C = A·B with A (m, k) and B (k, n) both inputs, as a GEMM kernel benchmark times it."""
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["A", "B"], ["C"], name="gemm")],
        f"gemm_{m}x{n}x{k}",
        [
            helper.make_tensor_value_info("A", TensorProto.FLOAT16, [m, k]),
            helper.make_tensor_value_info("B", TensorProto.FLOAT16, [k, n]),
        ],
        [helper.make_tensor_value_info("C", TensorProto.FLOAT16, [m, n])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


@functools.lru_cache(maxsize=64)
def _graph(builder: str, batch: int, options: tuple[tuple[str, Any], ...]) -> Graph:
    from hetnpu import models

    opts = dict(options)
    if builder == "matmul":
        return load(matmul_model(**opts))
    with models.shapes_only():
        return load(models.build(builder, batch=batch, **opts))


def target_graph(target: Target) -> Graph:
    """The loaded model of ``target`` (cached)."""
    return _graph(target.builder, target.row.batch, tuple(sorted(target.options.items())))


def predict(target: Target, overrides: Mapping[str, Any] | None = None) -> Prediction:
    """Simulate ``target`` on its preset (with spec ``overrides``) and read the row's metric."""
    spec = load_npu(target.preset, dict(overrides or {}))
    res = simulate(target_graph(target), spec, precision="fp16")
    row = target.row
    # A model's throughput and latency rows are timed from the host, one synchronous
    # aclmdlExecute each (ais_bench and CANN's benchmark tool): the device's time plus the
    # preset's model_execute_s.
    if row.metric == "throughput":
        value = row.batch / res.execute_latency_s
    elif row.metric == "kernel time" and row.unit == "us":
        # msprof's task duration: the kernel on the cores, its launch not included.
        value = (res.cycles - res.launch_cycles) / res.clock_hz * 1e6
    elif row.metric == "latency" and row.unit == "ms":
        value = res.execute_latency_s * 1e3
    else:
        raise ValueError(f"row {row.index}: no reading of metric {row.metric!r} in {row.unit!r}")
    return Prediction(target, value, res)


def predict_table(rows: Sequence[Row]) -> tuple[list[Prediction], list[tuple[Row, str]]]:
    """Every row simulated that can be, and the others with the reason they cannot."""
    preds, skipped = [], []
    for row in rows:
        t = target(row)
        if isinstance(t, str):
            skipped.append((row, t))
        else:
            preds.append(predict(t))
    return preds, skipped
