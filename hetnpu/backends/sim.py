"""The simulated NPU backend (``sim-npu``): the NPU's numerics in software.

A stage is first compiled as ATC compiles it: constants and BatchNormalization folded in the
model's float32 (:func:`hetnpu.devices.atc_compile.fold_for_npu`), before anything is cast.
It then runs on onnx's :class:`~onnx.reference.ReferenceEvaluator` with the NPU's arithmetic
swapped in: Cube ops (Conv, MatMul, Gemm) go through the real layout conversions and fractal
matmuls of :mod:`hetnpu.backends.npu_numerics`; every other op is a Vector op, computed exactly
(:mod:`hetnpu.backends.sim_reference`) on inputs rounded to the op's compute dtype, with its
result rounded to it. Which dtype each op computes in is ATC's precision mode
(:mod:`hetnpu.devices.precision_modes`): ``fp16`` (force_fp16) rounds every op, ``fp32``
(must_keep_origin_dtype) none, and the modes ``allow_fp32_to_fp16``, ``force_fp32`` and
``allow_mix_precision`` (with its op lists) round some. This is what validates the layout code
without hardware: a wrong conversion gives a wrong answer.

A float result beyond fp16's range where an op writes fp16 is what the chip's overflow flag
reports: a :class:`NumericOverflowWarning` naming the first node it happened at, or with
``strict=True`` a :class:`NumericOverflowError`. A failure of this module's own code is a
:class:`~hetnpu.errors.BackendFault` naming the node.

Left out: int8 (a quantised model) is not computed numerically, and ops outside onnx's own
domain are computed by onnx's evaluator without rounding.
"""

from __future__ import annotations

import contextvars
import threading
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import onnx
from onnx.reference import ReferenceEvaluator
from onnx.reference.op_run import OpRun
from onnx.reference.ops import load_op

from hetnpu.backends import npu_numerics
from hetnpu.backends.base import Availability, CompileOptions, Executable
from hetnpu.backends.sim_reference import reference_op
from hetnpu.devices.atc_compile import fold_for_npu
from hetnpu.devices.names import SIM_NPU
from hetnpu.devices.precision_modes import (
    NodePrecision,
    PrecisionMode,
    node_precisions,
    precision_mode,
)
from hetnpu.errors import (
    BackendFault,
    ConfigError,
    HetnpuError,
    NumericOverflowError,
    NumericOverflowWarning,
    UnsupportedOpError,
    first_line,
)

__all__ = ["NumericOverflowError", "NumericOverflowWarning", "SimNpuBackend", "SimNpuExecutable"]

PrecisionOf = Callable[[OpRun], NodePrecision]


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


def _node_name(node: onnx.NodeProto) -> str:
    return node.name or node.output[0]


def _guarded(run: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` with a failure of its own code reported as a :class:`BackendFault` at the node."""

    def guarded(self: OpRun, *args: Any, **kwargs: Any) -> Any:
        try:
            return run(self, *args, **kwargs)
        except (NumericOverflowError, BackendFault):
            raise
        except Exception as exc:  # numpy, the evaluator, even our layouts' InputError: our fault
            node = self.onnx_node
            raise BackendFault(
                f"sim-npu: node {_node_name(node)!r} ({node.op_type}) failed: "
                f"{type(exc).__name__}: {first_line(exc)}",
                node=_node_name(node),
            ) from exc

    return guarded


def _vector_op(op_type: str, opset: int, ir_version: int, precision_of: PrecisionOf) -> type[OpRun]:
    """``op_type`` computing on inputs rounded to its compute dtype, its result rounded to it.

    The class is named ``op_type`` (the evaluator matches new ops by class name; the reference
    class may be a versioned ``Softmax_1``) and carries the schema of ``opset`` explicitly (a
    class named ``Softmax`` would otherwise get the latest version's defaults).
    """
    base = reference_op(op_type, opset, ir_version)

    def run(self: OpRun, *args: Any, **kwargs: Any) -> Any:
        prec = precision_of(self)
        args = tuple(_round(a, prec.inputs) for a in args)
        outs = base.run(self, *args, **kwargs)
        rounded = tuple(_round(o, prec.output) for o in outs)
        if prec.output == "fp16":
            for before, after in zip(outs, rounded, strict=True):
                _note_overflow(self.onnx_node, args, before, after)
        return rounded

    schema = onnx.defs.get_schema(op_type, opset, "")
    return type(op_type, (base,), {"run": _guarded(run), "op_domain": "", "op_schema": schema})


def _cube_ops(precision_of: PrecisionOf) -> list[type[OpRun]]:
    """Conv, MatMul and Gemm on the Cube, through the NPU's layouts.

    Each takes its operands in its :class:`NodePrecision`'s ``inputs`` dtype and writes its
    ``output`` dtype (force_fp32 mode: fp16 in, fp32 out). Float operands only: integer
    MatMul/Conv are not Cube work in fp16/fp32 mode, and run as onnx's reference computes them
    (exactly, as the AI CPU would).
    """

    def finish(self: OpRun, inputs: tuple, acc: np.ndarray, dtype: np.dtype) -> tuple[np.ndarray]:
        # FixPipe casts the fp32 accumulator on its way out of L0C; in fp16 that is where a
        # too-large result becomes inf and the overflow flag is set.
        out_precision = precision_of(self).output
        out = npu_numerics.fixpipe(acc, out_precision)
        if out_precision == "fp16":
            _note_overflow(self.onnx_node, inputs, acc, out)
        return (out.astype(dtype, copy=False),)

    def reference(self: OpRun, op_type: str, args: tuple, kwargs: dict) -> tuple:
        ref = load_op("", op_type)
        return ref._run(self, *args, **kwargs)  # type: ignore[call-arg]

    def floats(*arrays: Any) -> bool:
        return all(a is None or _is_float(a) for a in arrays)

    guarded_run = _guarded(OpRun.run)

    class MatMul(OpRun):
        op_domain = ""
        run = guarded_run

        def _run(self, a, b):  # type: ignore[no-untyped-def]
            if not floats(a, b):
                return reference(self, "MatMul", (a, b), {})
            acc = npu_numerics.matmul(a, b, precision_of(self).inputs)
            return finish(self, (a, b), acc, a.dtype)

    class Gemm(OpRun):
        op_domain = ""
        run = guarded_run

        def _run(self, a, b, c=None, alpha=None, beta=None, transA=None, transB=None):  # type: ignore[no-untyped-def]
            if not floats(a, b, c):
                kw = dict(alpha=alpha, beta=beta, transA=transA, transB=transB)
                return reference(self, "Gemm", (a, b, c), kw)
            precision = precision_of(self).inputs
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
        run = guarded_run

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
            precision = precision_of(self).inputs
            if not floats(x, w, b) or x.ndim not in (3, 4):
                # 3-D convolutions (NDC1HWC0) are not modelled: they compute as the Vector would.
                args = (_round(x, precision), _round(w, precision), b)
                outs = reference(self, "Conv", args, kw)
                return tuple(_round(o, precision_of(self).output) for o in outs)
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
    """A stage compiled for the simulated NPU; ``run`` may be called from several threads.

    ``mode`` is the ATC precision mode the stage computes in; ``precisions`` what each node
    computes in under it (keyed by the node's first output).
    """

    engine = SIM_NPU

    def __init__(self, model: onnx.ModelProto, mode: PrecisionMode, strict: bool) -> None:
        self.mode = mode
        self.strict = strict
        inits = {t.name for t in model.graph.initializer}
        # Inputs backed by an initializer (old IR versions list weights as inputs) are weights.
        self.input_names = tuple(i.name for i in model.graph.input if i.name not in inits)
        self.output_names = tuple(o.name for o in model.graph.output)
        self._out_dtypes = {
            o.name: onnx.helper.tensor_dtype_to_np_dtype(o.type.tensor_type.elem_type)
            for o in model.graph.output
        }
        model = fold_for_npu(model)
        self.precisions = node_precisions(model.graph.node, mode)
        # Stage inputs enter device memory in fp16 only where every op computes in it.
        self._input_precision = "fp16" if mode.vector == "fp16" else "fp32"
        default = NodePrecision(self._input_precision, self._input_precision)

        def precision_of(op: OpRun) -> NodePrecision:
            outputs = op.onnx_node.output
            return self.precisions.get(outputs[0], default) if outputs else default

        opset = {o.domain or "": o.version for o in model.opset_import}.get("", 1)
        cube = _cube_ops(precision_of)
        cube_names = {c.__name__ for c in cube}
        vector = []
        for op_type in sorted({n.op_type for n in model.graph.node if n.domain in ("", "ai.onnx")}):
            if op_type in cube_names:
                continue
            try:
                vector.append(_vector_op(op_type, opset, model.ir_version, precision_of))
            except onnx.defs.SchemaError:
                node = next(n for n in model.graph.node if n.op_type == op_type)
                raise UnsupportedOpError(
                    f"sim-npu: node {_node_name(node)!r}: {op_type} has no schema at opset "
                    f"{opset}, so its NPU numerics cannot be computed"
                ) from None
        try:
            self._ref = ReferenceEvaluator(model, new_ops=[*cube, *vector])
        except Exception as exc:  # the evaluator raises plain exceptions of many kinds
            raise BackendFault(
                f"sim-npu: the stage cannot be prepared: {type(exc).__name__}: {first_line(exc)}"
            ) from exc
        self._lock = threading.Lock()

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        log: list[tuple[str, str, float]] = []
        # Only an fp16 result can overflow fp16's range; each op checks its own (fp32 mode
        # has none to check).
        watch = self.mode.name != "must_keep_origin_dtype"
        token = _overflow.set(log if watch else None)
        try:
            device_feeds = {}
            for n in self.input_names:
                # The copy into device memory casts to fp16: the first place a value can overflow.
                host = np.asarray(feeds[n])
                device_feeds[n] = _round(host, self._input_precision)
                _note_overflow(_input_cast(n), (host,), host, device_feeds[n])
            with self._lock:  # the evaluator keeps per-run state on its op objects
                try:
                    outs = self._ref.run(None, device_feeds)
                except HetnpuError:
                    raise
                except Exception as exc:  # raised outside any op of ours
                    raise BackendFault(f"sim-npu: {type(exc).__name__}: {first_line(exc)}") from exc
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
    """The NPU's numerics in software (no hardware needed).

    Parameters
    ----------
    strict : bool
        Raise :class:`NumericOverflowError` on an fp16 overflow instead of warning.
    precision_mode : str, optional
        An ATC ``--precision_mode`` (:data:`hetnpu.devices.precision_modes.ATC_MODES`) that
        overrides the session's ``precision`` for this backend's numerics, e.g.
        ``backend_options={"sim-npu": {"precision_mode": "allow_mix_precision"}}``. The
        session's ``precision`` still sets the casts of tensors crossing a stage boundary
        (its TransData): ``precision="fp32"`` keeps the dtype each op wrote.
    modify_mixlist : mapping, optional
        ATC's ``--modify_mixlist`` JSON, for ``allow_mix_precision``.
    """

    name = SIM_NPU

    def __init__(
        self,
        strict: bool = False,
        precision_mode: str | None = None,
        modify_mixlist: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.strict = strict
        self.precision_mode = precision_mode
        self.modify_mixlist = modify_mixlist
        if precision_mode is not None:
            self._mode(precision_mode)  # a bad name fails here, not at the first compile

    def available(self) -> Availability:
        return Availability(True)

    def _mode(self, name: str) -> PrecisionMode:
        if name == "int8":
            raise ConfigError(
                "sim-npu: precision 'int8' is not simulated numerically (a quantised model); "
                "choose fp16, fp32 or an ATC precision mode"
            )
        mode = precision_mode(name)
        return mode.modify_mixlist(self.modify_mixlist) if self.modify_mixlist else mode

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        mode = self._mode(self.precision_mode or options.precision)
        return SimNpuExecutable(model, mode, self.strict)
