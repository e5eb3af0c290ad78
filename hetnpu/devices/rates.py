"""The NPU's rates and element sizes at a precision mode, in one place.

Three roofline users read them: the analytical cost model (:mod:`hetnpu.devices.roofline`),
the simulator's per-op floor (:func:`hetnpu.simulator.bounds.roofline_bounds`) and the roofs
a trace is drawn against (:func:`hetnpu.traces.chrome.chip_roof`).

A precision mode says what the NPU computes float tensors in, whatever their ONNX dtype (ATC's
``--precision_mode``, ascend-facts §4.3-4.4): ``fp16``, the default, runs float32 in float16,
``fp32`` keeps 4-byte floats and ``int8`` quantises them to one byte. So an NPU stage at
``fp16`` holds a float32 *and* a float16 tensor as 2 bytes per element; tensors of other dtypes
(indices, masks) keep their own size.

Peaks follow ascend-facts §8: the Cube does one M0·K0·N0 fractal mmad per cycle per core (a
MAC counted as 2 FLOPs, the convention of the 910's published 256 TFLOPS, §2), and each vector
unit one 256-B repeat per cycle (§1.2); split chips run vector work on their AIV cores,
coupled ones on each AI core's own vector unit (§1.9).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from hetnpu.devices.precision_modes import PRECISIONS
from hetnpu.errors import ConfigError

if TYPE_CHECKING:
    from hetnpu.graph.ir import Tensor

__all__ = [
    "ELEMENT_BYTES",
    "PRECISIONS",
    "NpuRates",
    "check_precision",
    "device_dtype",
    "device_itemsize",
    "device_nbytes",
    "element_bytes",
    "is_float",
    "npu_rates",
    "vector_units",
]


ELEMENT_BYTES: Mapping[str, int] = MappingProxyType({"fp16": 2, "fp32": 4, "int8": 1})
"""Bytes of one float element on the NPU (and of one Cube operand) at each precision mode."""

_FLOAT_DTYPE = MappingProxyType({"fp16": "float16", "fp32": "float32", "int8": "int8"})


def check_precision(precision: str) -> str:
    """``precision`` itself if it is a precision mode.

    Raises
    ------
    ConfigError
        Any other value; the message lists the modes.
    """
    if precision not in ELEMENT_BYTES:
        raise ConfigError(f"precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    return precision


def element_bytes(precision: str) -> int:
    """Bytes a float element takes on the NPU at ``precision`` (2, 4 or 1).

    Raises
    ------
    ConfigError
        An unknown precision.
    """
    return ELEMENT_BYTES[check_precision(precision)]


def is_float(dtype: str) -> bool:
    """Whether the NPU holds a tensor of numpy dtype name ``dtype`` at the precision's size."""
    return dtype.startswith("float") or dtype == "bfloat16"


def device_dtype(dtype: str, precision: str) -> str:
    """The numpy dtype name a tensor of ``dtype`` has on the NPU at ``precision``.

    Examples
    --------
    >>> device_dtype("float32", "fp16"), device_dtype("float16", "fp32")
    ('float16', 'float32')
    >>> device_dtype("int64", "fp16")
    'int64'
    """
    return _FLOAT_DTYPE[check_precision(precision)] if is_float(dtype) else dtype


@lru_cache(maxsize=256)
def device_itemsize(dtype: str, precision: str) -> int:
    """Bytes per element of a ``dtype`` tensor on the NPU at ``precision``; 0 for a dtype numpy
    does not know (``"undefined"``), as :attr:`hetnpu.graph.ir.Tensor.itemsize`.

    Examples
    --------
    >>> device_itemsize("float16", "fp16"), device_itemsize("float32", "fp16")
    (2, 2)
    >>> device_itemsize("float16", "fp32"), device_itemsize("int64", "int8")
    (4, 8)
    """
    if is_float(dtype):
        return element_bytes(precision)
    check_precision(precision)
    try:
        return np.dtype(dtype).itemsize
    except TypeError:
        return 0


def device_nbytes(tensor: Tensor, precision: str) -> int | None:
    """Bytes ``tensor`` occupies on the NPU at ``precision`` (unpadded, ND); ``None`` when its
    shape is not fully known."""
    size = tensor.size
    return None if size is None else size * device_itemsize(tensor.dtype, precision)


def vector_units(spec: Any) -> int:
    """Units that run vector work: every AIV core of a split chip, every AI core's own vector
    unit on a coupled one."""
    return int(spec.vector_cores if spec.architecture == "split" else spec.ai_cores)


@dataclass(frozen=True)
class NpuRates:
    """A chip's peak rates at one precision mode (build it with :func:`npu_rates`)."""

    precision: str
    element_bytes: int
    """Bytes of a float element at this precision."""
    clock_hz: float
    cube_cores: int
    cube_macs_per_cycle: int
    """MACs of one fractal mmad, M0·K0·N0 at this precision: one per cycle per core."""
    vector_units: int
    vector_bytes_per_cycle: int
    """Bytes one vector unit processes per cycle (one repeat)."""
    hbm_bytes_per_s: float
    l2_bytes_per_s: float

    @property
    def cube_flops_per_s(self) -> float:
        """Peak Cube FLOP/s over every core (a MAC is 2 FLOPs)."""
        return self.cube_cores * self.cube_macs_per_cycle * 2 * self.clock_hz

    @property
    def vector_lanes(self) -> float:
        """Elements one vector unit processes per cycle."""
        return self.vector_bytes_per_cycle / self.element_bytes

    @property
    def vector_ops_per_s(self) -> float:
        """Peak vector element operations per second over every vector unit."""
        return self.vector_units * self.vector_lanes * self.clock_hz


def npu_rates(spec: Any, precision: str) -> NpuRates:
    """The peak rates of chip ``spec`` (an :class:`~hetnpu.devices.spec.NpuSpec`) at ``precision``.

    Raises
    ------
    ConfigError
        An unknown precision.

    Examples
    --------
    >>> from hetnpu.devices.presets import npu_spec
    >>> r = npu_rates(npu_spec("ascend910"), "fp16")
    >>> r.cube_flops_per_s / 1e12, r.vector_lanes
    (256.0, 128.0)
    """
    m0, k0, n0 = getattr(spec, f"cube_mkn_{check_precision(precision)}")
    return NpuRates(
        precision=precision,
        element_bytes=ELEMENT_BYTES[precision],
        clock_hz=float(spec.clock_hz),
        cube_cores=int(spec.ai_cores),
        cube_macs_per_cycle=m0 * k0 * n0,
        vector_units=vector_units(spec),
        vector_bytes_per_cycle=int(spec.vector_bytes_per_cycle),
        hbm_bytes_per_s=float(spec.hbm_bytes_per_s),
        l2_bytes_per_s=float(spec.l2_bytes_per_s),
    )
