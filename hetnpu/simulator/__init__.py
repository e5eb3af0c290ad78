"""A cycle-level SimPy model of the Ascend Da Vinci AI core and chip that times ONNX models.

Modules: :mod:`~hetnpu.simulator.isa` (instructions and their closed-form durations),
:mod:`~hetnpu.simulator.tiler` (tiles that fit the buffers), :mod:`~hetnpu.simulator.lowering`
(ops to per-core programs), :mod:`~hetnpu.simulator.core` (a core's units as pipes on SimPy events),
:mod:`~hetnpu.simulator.chip` (cores, shared HBM/L2, the op stream) and
:mod:`~hetnpu.simulator.result` (:class:`SimResult`).

Left out everywhere: numerics (see the ``sim-npu`` backend), power, multi-chip links, and the
host side (data transfer to the device, launch overhead); each module lists its own omissions.
"""

from hetnpu.simulator.chip import simulate
from hetnpu.simulator.result import OpRecord, SimResult, UnsupportedOp

__all__ = ["OpRecord", "SimResult", "UnsupportedOp", "simulate"]
