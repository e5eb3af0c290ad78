"""The simulated NPU backend (``sim-npu``): the NPU's numerics in software.

A stage runs on onnx's :class:`~onnx.reference.ReferenceEvaluator` with the NPU's arithmetic
swapped in: Cube ops (Conv, MatMul, Gemm) go through the real layout conversions and fractal
matmuls of :mod:`hetnpu.backends.npu_numerics`; every other op computes on fp16-rounded inputs
and rounds its result to fp16, as the Vector unit does in fp16 mode. This is what validates the
layout code without hardware: a wrong conversion gives a wrong answer.

In fp16 mode a result beyond fp16's range is what the chip's overflow flag reports: a
:class:`NumericOverflowWarning` naming the first node it happened at, or with ``strict=True`` a
:class:`NumericOverflowError`. ``precision="fp32"`` (ATC's force_fp32) rounds nothing.
"""

from __future__ import annotations

import contextvars
import threading
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops import load_op

from hetnpu.backends import npu_numerics
from hetnpu.backends.base import Availability, CompileOptions, Executable
from hetnpu.errors import ConfigError, HetnpuError

__all__ = ["NumericOverflowError", "NumericOverflowWarning", "SimNpuBackend", "SimNpuExecutable"]

PRECISIONS = ("fp16", "fp32")


class NumericOverflowWarning(UserWarning):
    """An NPU op's fp16 result left fp16's range (|x| > 65504)."""


class NumericOverflowError(HetnpuError):
    """As :class:`NumericOverflowWarning`, raised instead when the session is strict."""


# The first overflow of the run in progress: (node name, op type, largest magnitude).
_overflow: contextvars.ContextVar[list[tuple[str, str, float]] | None] = contextvars.ContextVar(
    "hetnpu_sim_overflow", default=None
)


def _round(value: Any, precision: str) -> Any:
    """Round a float32/float64 tensor to fp16 (kept as float32), leave anything else."""
    if precision != "fp16" or not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        return value
    with np.errstate(over="ignore"):
        return value.astype(np.float16).astype(value.dtype)


def _note_overflow(node: onnx.NodeProto, before: Any, after: Any) -> None:
    if not isinstance(after, np.ndarray) or after.dtype.kind != "f":
        return
    bad = ~np.isfinite(after)
    if not bad.any():
        return
    log = _overflow.get()
    if log is None or log:
        return
    finite_before = np.isfinite(before) if isinstance(before, np.ndarray) else bad
    worst = (
        float(np.nanmax(np.abs(np.where(finite_before, before, 0))))
        if finite_before.any()
        else float("inf")
    )
    log.append((node.name, node.op_type, worst))


def _vector_op(base: type[OpRun], precision: str) -> type[OpRun]:
    """``base`` (a reference op) computing on fp16-rounded inputs with an fp16-rounded result."""

    def run(self: OpRun, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_round(a, precision) for a in args)
        outs = base.run(self, *args, **kwargs)
        rounded = tuple(_round(o, precision) for o in outs)
        for before, after in zip(outs, rounded, strict=True):
            _note_overflow(self.onnx_node, before, after)
        return rounded

    return type(base.__name__, (base,), {"run": run, "op_domain": ""})


def _cube_ops(precision: str) -> list[type[OpRun]]:
    """Conv, MatMul and Gemm on the Cube, through the NPU's layouts."""

    def finish(self: OpRun, result: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray]:
        # ``result`` left L0C through the fp16 cast already; an overflow there is an inf now.
        out = result.astype(dtype)
        _note_overflow(self.onnx_node, out, out)
        return (out,)

    class MatMul(OpRun):
        op_domain = ""

        def _run(self, a, b):  # type: ignore[no-untyped-def]
            return finish(self, npu_numerics.matmul(a, b, precision), a.dtype)

    class Gemm(OpRun):
        op_domain = ""

        def _run(self, a, b, c=None, alpha=None, beta=None, transA=None, transB=None):  # type: ignore[no-untyped-def]
            a = a.T if transA else a
            b = b.T if transB else b
            y = npu_numerics.matmul(a, b, precision).astype(np.float32)
            if alpha not in (None, 1.0):
                y = y * np.float32(alpha)
            if c is not None:
                y = y + np.float32(1.0 if beta is None else beta) * _round(c, precision)
            return finish(self, _round(y, precision), a.dtype)

    class Conv(OpRun):
        op_domain = ""

        def _run(
            self,
            x,
            w,
            b=None,
            auto_pad=None,
            dilations=None,
            group=None,  # type: ignore[no-untyped-def]
            kernel_shape=None,
            pads=None,
            strides=None,
        ):
            if x.ndim != 4:
                # Only 2-D convolutions use the 5HD path here; others compute as the Vector would.
                ref = load_op("", "Conv")
                return tuple(
                    _round(o, precision)
                    for o in ref._run(  # type: ignore[call-arg]
                        self,
                        _round(x, precision),
                        _round(w, precision),
                        b,
                        auto_pad=auto_pad,
                        dilations=dilations,
                        group=group,
                        kernel_shape=kernel_shape,
                        pads=pads,
                        strides=strides,
                    )
                )
            kh, kw = w.shape[2:]
            dil = tuple(dilations or (1, 1))
            st = tuple(strides or (1, 1))
            pad = tuple(pads or (0, 0, 0, 0))
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                pad = _same_pads(x.shape[2:], (kh, kw), st, dil, auto_pad)
            y = npu_numerics.conv2d(
                x,
                w,
                b,
                strides=st,
                pads=(pad[0], pad[1], pad[2], pad[3]),
                dilations=dil,
                group=int(group or 1),
                precision=precision,
            )
            return finish(self, y, x.dtype)

    return [MatMul, Gemm, Conv]


def _same_pads(spatial, kernel, strides, dilations, mode):  # type: ignore[no-untyped-def]
    pads_begin, pads_end = [], []
    for size, k, s, d in zip(spatial, kernel, strides, dilations, strict=True):
        out = -(-size // s)
        total = max(0, (out - 1) * s + (k - 1) * d + 1 - size)
        small, big = total // 2, total - total // 2
        pads_begin.append(big if mode == "SAME_LOWER" else small)
        pads_end.append(small if mode == "SAME_LOWER" else big)
    return (pads_begin[0], pads_begin[1], pads_end[0], pads_end[1])


def _magnitude(worst: float) -> str:
    return (
        f" (|value| up to {worst:.3g})"
        if np.isfinite(worst) and worst > npu_numerics.FP16_MAX
        else ""
    )


class SimNpuExecutable:
    """A stage compiled for the simulated NPU; ``run`` may be called from several threads."""

    engine = "sim-npu"

    def __init__(self, model: onnx.ModelProto, precision: str, strict: bool) -> None:
        self.precision = precision
        self.strict = strict
        self.input_names = tuple(i.name for i in model.graph.input)
        self.output_names = tuple(o.name for o in model.graph.output)
        self._out_dtypes = {
            o.name: onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type)
            for o in model.graph.output
        }
        opset = {o.domain or "": o.version for o in model.opset_import}.get("", 1)
        cube = _cube_ops(precision)
        cube_names = {c.__name__ for c in cube}
        vector = []
        for op_type in sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}):
            if op_type in cube_names:
                continue
            try:
                vector.append(_vector_op(load_op("", op_type, opset), precision))
            except Exception:
                continue
        self._ref = ReferenceEvaluator(model, new_ops=[*cube, *vector])
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        log: list[tuple[str, str, float]] = []
        token = _overflow.set(log)
        try:
            with self._lock:  # the evaluator keeps per-run state on its op objects
                outs = self._ref.run(
                    None,
                    {n: _round(np.asarray(feeds[n]), self.precision) for n in self.input_names},
                )
        finally:
            _overflow.reset(token)
        if log:
            name, op_type, worst = log[0]
            msg = (
                f"sim-npu: fp16 overflow first at node {name!r} ({op_type}): a result exceeded "
                f"{npu_numerics.FP16_MAX:.0f}{_magnitude(worst)}; run with precision='fp32' "
                "(ATC --precision_mode=force_fp32) for this model"
            )
            if self.strict:
                raise NumericOverflowError(msg)
            warnings.warn(msg, NumericOverflowWarning, stacklevel=2)
        return {
            n: np.asarray(v).astype(self._out_dtypes.get(n, np.asarray(v).dtype), copy=False)
            for n, v in zip(self.output_names, outs, strict=True)
        }

    def close(self) -> None:
        self._ref = None  # type: ignore[assignment]


class SimNpuBackend:
    """The NPU's numerics in software (no hardware needed)."""

    name = "sim-npu"

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict

    def available(self) -> Availability:
        return Availability(True)

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        if options.precision not in PRECISIONS:
            raise ConfigError(
                f"sim-npu: precision {options.precision!r} is not simulated numerically; "
                f"choose one of {', '.join(PRECISIONS)}"
            )
        return SimNpuExecutable(model, options.precision, self.strict)
