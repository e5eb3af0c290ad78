"""Per-op measurements from public Ascend profiles, next to the simulator's time for each op.

One table so far, ``data/ascend910_transdata.csv``: every TransData between NCHW and NC1HWC0
of more than 4 channels and at least 4 MiB of NC1HWC0 data in the public per-op profiles of
a first-generation Ascend 910 (repository Huawei-Performance-Model/Ascend-910B, which does not
name the chip; block_dim 30 in every AI Core op suggests a 30-core variant):
``aicore_intermediate_0_detail.csv`` gives each task's time, ``<model>.csv`` its shapes,
formats and block_dim. The median rate of those ops is the presets'
``transdata_bytes_per_cycle`` (:func:`transdata_rate`); :func:`simulate_transdata` times each
on a chip preset.

Left out: the profiles' other ops. Their convolutions are training kernels fused with a
BatchNorm reduction (``FusionOp_Conv2D_BNTrainingReduce``), unlike an inference convolution,
and the clock of the profiled chip is not given.
"""

from __future__ import annotations

import csv
import math
import statistics
from dataclasses import dataclass
from importlib import resources
from typing import Any

from onnx import TensorProto, helper

from hetnpu.devices.layouts import padded_nbytes
from hetnpu.graph import load
from hetnpu.simulator import simulate

__all__ = [
    "OpTime",
    "TransDataRow",
    "mean_abs_error",
    "simulate_transdata",
    "transdata_rate",
    "transdata_rows",
]

_TO_5HD = "NCHW->NC1HWC0"
_NUMPY = {"fp16": "float16", "fp32": "float32"}


@dataclass(frozen=True)
class TransDataRow:
    """One profiled TransData."""

    profile: str
    op: str
    direction: str
    """``NCHW->NC1HWC0`` or ``NC1HWC0->NCHW``."""
    shape: tuple[int, int, int, int]
    """The NCHW side's shape."""
    dtype: str
    block_dim: int
    time_us: float

    @property
    def nc1hwc0_bytes(self) -> int:
        """Bytes of the NC1HWC0 side (channels padded to C0)."""
        return padded_nbytes(self.shape, "NC1HWC0", _NUMPY[self.dtype])

    def rate(self, clock_hz: float) -> float:
        """Bytes of NC1HWC0 data each block converted per cycle at ``clock_hz``."""
        return self.nc1hwc0_bytes / (self.time_us * 1e-6 * clock_hz * self.block_dim)


@dataclass(frozen=True)
class OpTime:
    """A profiled op's measured time next to its simulated one."""

    row: TransDataRow
    simulated_us: float

    @property
    def ratio(self) -> float:
        """simulated / measured."""
        return self.simulated_us / self.row.time_us


def transdata_rows() -> list[TransDataRow]:
    """The packaged table of profiled TransData ops."""
    text = resources.files("hetnpu.fidelity").joinpath("data/ascend910_transdata.csv").read_text()
    rows = []
    for r in csv.DictReader(text.splitlines()):
        shape = (int(r["n"]), int(r["c"]), int(r["h"]), int(r["w"]))
        rows.append(
            TransDataRow(
                r["profile"],
                r["op"],
                r["direction"],
                shape,
                r["dtype"],
                int(r["block_dim"]),
                float(r["time_us"]),
            )
        )
    return rows


def transdata_rate(rows: list[TransDataRow], clock_hz: float) -> float:
    """The median bytes of NC1HWC0 data each block converted per cycle at ``clock_hz``."""
    return statistics.median(r.rate(clock_hz) for r in rows)


def simulate_transdata(row: TransDataRow, spec: Any) -> OpTime:
    """``row``'s TransData as the simulator times it on ``spec``: a network input converted for
    a convolution (into NC1HWC0), or a convolution's output converted for a Transpose (out of
    it), with the same NCHW shape and dtype."""
    n, c, h, w = row.shape
    elem = TensorProto.FLOAT16 if row.dtype == "fp16" else TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    if row.direction == _TO_5HD:
        x_shape, cin, cout = list(row.shape), c, 16
        tail = []
    else:
        x_shape, cin, cout = [n, 16, h, w], 16, c
        tail = [helper.make_node("Transpose", ["y"], ["z"], perm=[0, 1, 3, 2], name="t")]
    weight = helper.make_tensor("w", elem, [cout, cin, 1, 1], [0.0] * (cout * cin))
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1], name="conv")]
    graph = helper.make_graph(
        nodes + tail,
        "transdata",
        [vi("x", elem, x_shape)],
        [vi("z" if tail else "y", elem, None)],
        initializer=[weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    res = simulate(load(model), spec, precision=row.dtype)
    conv_input = "x" if row.direction == _TO_5HD else "y"
    ops = [o for o in res.ops if o.op_type == "TransData" and conv_input in o.name.split(":")]
    if len(ops) != 1:
        raise RuntimeError(f"{row.op}: expected one TransData of {conv_input!r}, got {len(ops)}")
    return OpTime(row, ops[0].cycles / res.clock_hz * 1e6)


def mean_abs_error(times: list[OpTime]) -> float:
    """Mean |simulated - measured| / measured."""
    return statistics.fmean(abs(t.ratio - 1) for t in times) if times else math.nan
