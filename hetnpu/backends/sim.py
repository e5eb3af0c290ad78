"""The simulated NPU backend (``sim-npu``): the NPU's numerics in software.

A stage runs on onnx's :class:`~onnx.reference.ReferenceEvaluator` with the NPU's arithmetic
swapped in: Cube ops (Conv, MatMul, Gemm) go through the real layout conversions and fractal
matmuls of :mod:`hetnpu.backends.npu_numerics`; every other op computes on fp16-rounded inputs
and rounds its result to fp16, as the Vector unit does in fp16 mode. This is what validates the
layout code without hardware: a wrong conversion gives a wrong answer.

In fp16 mode a result beyond fp16's range is what the chip's overflow flag reports: a
:class:`NumericOverflowWarning` naming the first node it happened at, or with ``strict=True`` a
:class:`NumericOverflowError`. ``precision="fp32"`` (ATC's must_keep_origin_dtype) rounds nothing.
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
from hetnpu.devices.names import SIM_NPU
from hetnpu.errors import ConfigError, NumericOverflowError, NumericOverflowWarning

__all__ = ["NumericOverflowError", "NumericOverflowWarning", "SimNpuBackend", "SimNpuExecutable"]

PRECISIONS = ("fp16", "fp32")


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


def _input_cast(name: str) -> onnx.NodeProto:
    """The cast of stage input ``name`` into device memory, as a node for overflow reports."""
    return onnx.helper.make_node("Cast", [name], [name], name=f"input {name}")


def _is_float(value: Any) -> bool:
    return isinstance(value, np.ndarray) and value.dtype.kind == "f"


def _note_overflow(node: onnx.NodeProto, inputs: tuple, before: Any, after: Any) -> None:
    """Record ``node`` if its fp16 result ``after`` left the range, as the overflow flag does.

    ``before`` is the result ahead of the cast to fp16. Flagged: an element finite before the
    cast and not after it (|x| beyond 65504), or a non-finite element computed from inputs that
    were all finite (fp16 arithmetic that overflowed, e.g. Exp, or an invalid operation).
    Non-finite values that came in through the inputs were flagged where they arose.
    """
    if not _is_float(after):
        return
    bad = ~np.isfinite(after)
    if not bad.any():
        return
    log = _overflow.get()
    if log is None or log:
        return
    finite_before = np.isfinite(before) if _is_float(before) else ~bad
    cast_overflow = bool((bad & finite_before).any())
    finite_inputs = all(np.isfinite(x).all() for x in inputs if _is_float(x))
    if not (cast_overflow or finite_inputs):
        return
    worst = (
        float(np.max(np.abs(np.where(finite_before, before, 0))))
        if _is_float(before) and finite_before.any()
        else float("inf")
    )
    log.append((node.name or node.output[0], node.op_type, worst))


def _inference_batch_norm(base: type[OpRun]) -> type[OpRun]:
    """``base`` normalising with the running statistics when the node has only output Y.

    Before opset 14, BatchNormalization's ``momentum`` has a default, and the reference
    implementation takes its presence for training mode, normalising with the batch's own
    statistics. A one-output node is inference (the spec: mean and var are outputs only in
    training), as onnxruntime and the NPU run it.
    """
    from onnx.reference.ops.op_batch_normalization import _batchnorm_test_mode

    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, **kwargs):  # type: ignore[no-untyped-def]
        if len(self.onnx_node.output) == 1:
            eps = 1e-5 if epsilon is None else epsilon
            return (_batchnorm_test_mode(x, scale, bias, mean, var, epsilon=eps),)
        return base._run(self, x, scale, bias, mean, var, epsilon=epsilon, momentum=momentum)

    return type(base.__name__, (base,), {"_run": _run})


class _Lrn(OpRun):
    """LRN across channels, as the spec defines it.

    onnx's reference implementation loops over the batch axis where it means the channel axis,
    so every channel but the first is left unnormalised.
    """

    op_domain = ""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):  # type: ignore[no-untyped-def]
        alpha = 1e-4 if alpha is None else alpha
        beta = 0.75 if beta is None else beta
        bias = 1.0 if bias is None else bias
        before, after = (size - 1) // 2, -(-(size - 1) // 2)
        square = np.square(x.astype(np.float32))
        # Window sums over channels [c - before, c + after] by a cumulative sum.
        padded = np.pad(square, [(0, 0), (before + 1, after)] + [(0, 0)] * (x.ndim - 2))
        csum = np.cumsum(padded, axis=1)
        window = csum[:, size:] - csum[:, :-size]
        y = x / (bias + (alpha / size) * window) ** beta
        return (y.astype(x.dtype),)


def _vector_op(op_type: str, opset: int, precision: str) -> type[OpRun]:
    """The reference ``op_type`` computing on fp16-rounded inputs with an fp16-rounded result.

    The class is named ``op_type`` (the evaluator matches new ops by class name; the reference
    class may be a versioned ``Softmax_1``) and carries the schema of ``opset`` explicitly (a
    class named ``Softmax`` would otherwise get the latest version's defaults).
    """
    # Scatter (deprecated at opset 11) is ScatterElements under its old name; the reference
    # evaluator implements only the new one.
    base = load_op("", "ScatterElements" if op_type == "Scatter" else op_type, opset)
    if op_type == "BatchNormalization" and opset < 14:
        base = _inference_batch_norm(base)
    if op_type == "LRN":
        base = _Lrn

    def run(self: OpRun, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_round(a, precision) for a in args)
        outs = base.run(self, *args, **kwargs)
        rounded = tuple(_round(o, precision) for o in outs)
        for before, after in zip(outs, rounded, strict=True):
            _note_overflow(self.onnx_node, args, before, after)
        return rounded

    schema = onnx.defs.get_schema(op_type, opset, "")
    return type(op_type, (base,), {"run": run, "op_domain": "", "op_schema": schema})


def _cube_ops(precision: str) -> list[type[OpRun]]:
    """Conv, MatMul and Gemm on the Cube, through the NPU's layouts.

    Float operands only: integer MatMul/Conv are not Cube work in fp16/fp32 mode, and run as
    onnx's reference computes them (exactly, as the AI CPU would).
    """

    def finish(self: OpRun, inputs: tuple, acc: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray]:
        # FixPipe casts the fp32 accumulator on its way out of L0C; in fp16 mode that is where
        # a too-large result becomes inf and the overflow flag is set.
        out = npu_numerics.fixpipe(acc, precision)
        _note_overflow(self.onnx_node, inputs, acc, out)
        return (out.astype(dtype, copy=False),)

    def reference(self: OpRun, op_type: str, args: tuple, kwargs: dict) -> tuple:
        ref = load_op("", op_type)
        return ref._run(self, *args, **kwargs)  # type: ignore[call-arg]

    def floats(*arrays: Any) -> bool:
        return all(a is None or _is_float(a) for a in arrays)

    class MatMul(OpRun):
        op_domain = ""

        def _run(self, a, b):  # type: ignore[no-untyped-def]
            if not floats(a, b):
                return reference(self, "MatMul", (a, b), {})
            return finish(self, (a, b), npu_numerics.matmul(a, b, precision), a.dtype)

    class Gemm(OpRun):
        op_domain = ""

        def _run(self, a, b, c=None, alpha=None, beta=None, transA=None, transB=None):  # type: ignore[no-untyped-def]
            if not floats(a, b, c):
                kw = dict(alpha=alpha, beta=beta, transA=transA, transB=transB)
                return reference(self, "Gemm", (a, b, c), kw)
            inputs = (a, b) if c is None else (a, b, c)
            a = a.T if transA else a
            b = b.T if transB else b
            acc = npu_numerics.matmul(a, b, precision)
            if alpha not in (None, 1.0):
                acc = acc * np.float32(alpha)
            if c is not None:
                # C joins the accumulator (as a bias) before the cast out of L0C.
                acc = acc + np.float32(1.0 if beta is None else beta) * _round(c, precision)
            return finish(self, inputs, acc.astype(np.float32, copy=False), a.dtype)

    class Conv(OpRun):
        op_domain = ""

        def _run(  # type: ignore[no-untyped-def]
            self,
            x,
            w,
            b=None,
            auto_pad=None,
            dilations=None,
            group=None,
            kernel_shape=None,
            pads=None,
            strides=None,
        ):
            kw = dict(
                auto_pad=auto_pad,
                dilations=dilations,
                group=group,
                kernel_shape=kernel_shape,
                pads=pads,
                strides=strides,
            )
            if not floats(x, w, b) or x.ndim not in (3, 4):
                # 3-D convolutions (NDC1HWC0) are not modelled: they compute as the Vector would.
                args = (_round(x, precision), _round(w, precision), b)
                return tuple(_round(o, precision) for o in reference(self, "Conv", args, kw))
            inputs = tuple(v for v in (x, w, b) if v is not None)
            one_d = x.ndim == 3
            if one_d:
                # A 1-D convolution is a 2-D one over an (1, W) image, as the NPU runs it.
                x, w = x[:, :, None, :], w[:, :, None, :]
                pads = (0, pads[0], 0, pads[1]) if pads else None
                strides = (1, strides[0]) if strides else None
                dilations = (1, dilations[0]) if dilations else None
            kh, kw_ = w.shape[2:]
            dil = tuple(dilations or (1, 1))
            st = tuple(strides or (1, 1))
            pad = tuple(pads or (0, 0, 0, 0))
            if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
                pad = _same_pads(x.shape[2:], (kh, kw_), st, dil, auto_pad)
            acc = npu_numerics.conv2d(
                x,
                w,
                b,
                strides=(st[0], st[1]),
                pads=(pad[0], pad[1], pad[2], pad[3]),
                dilations=(dil[0], dil[1]),
                group=int(group or 1),
                precision=precision,
            )
            out = finish(self, inputs, acc, x.dtype)[0]
            return (out[:, :, 0, :] if one_d else out,)

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
    return f" (|value| up to {worst:.3g})" if worst > npu_numerics.FP16_MAX else ""


class SimNpuExecutable:
    """A stage compiled for the simulated NPU; ``run`` may be called from several threads."""

    engine = SIM_NPU

    def __init__(self, model: onnx.ModelProto, precision: str, strict: bool) -> None:
        self.precision = precision
        self.strict = strict
        inits = {t.name for t in model.graph.initializer}
        # Inputs backed by an initializer (old IR versions list weights as inputs) are weights.
        self.input_names = tuple(i.name for i in model.graph.input if i.name not in inits)
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
                vector.append(_vector_op(op_type, opset, precision))
            except Exception:
                continue
        self._ref = ReferenceEvaluator(model, new_ops=[*cube, *vector])
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        log: list[tuple[str, str, float]] = []
        # fp32 mode keeps fp32's range: only fp16 mode watches for overflows.
        token = _overflow.set(log if self.precision == "fp16" else None)
        try:
            device_feeds = {}
            for n in self.input_names:
                # The copy into device memory casts to fp16: the first place a value can overflow.
                host = np.asarray(feeds[n])
                device_feeds[n] = _round(host, self.precision)
                _note_overflow(_input_cast(n), (host,), host, device_feeds[n])
            with self._lock:  # the evaluator keeps per-run state on its op objects
                outs = self._ref.run(None, device_feeds)
        finally:
            _overflow.reset(token)
        if log:
            name, op_type, worst = log[0]
            what = (
                f"a result exceeded {npu_numerics.FP16_MAX:.0f}{_magnitude(worst)}"
                if np.isfinite(worst)
                else "it computed inf/NaN from finite inputs"
            )
            msg = (
                f"sim-npu: fp16 overflow first at node {name!r} ({op_type}): {what}; run with "
                "precision='fp32' (ATC --precision_mode=must_keep_origin_dtype) for this model"
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

    name = SIM_NPU

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
