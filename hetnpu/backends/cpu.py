"""The CPU backend: onnxruntime's CPU provider, and onnx's ReferenceEvaluator for what it lacks.

onnxruntime has no kernel for some ops, opset versions and dtypes (new ops arrive in onnx
before ORT implements them). Such a stage runs on :class:`onnx.reference.ReferenceEvaluator`
instead, so the CPU device runs everything either can; the executable's ``engine`` says which.
A stage goes to the evaluator when onnxruntime rejects it at load time, when its inputs or
outputs have a dtype onnxruntime's Python API cannot pass (the ``ml_dtypes`` ones: bfloat16,
float8, float4, int4...), when onnxruntime fails it at run time and the evaluator does not, or
when it holds a node whose onnxruntime kernel departs from the ONNX spec
(:func:`~hetnpu.devices.capability.cpu.ort_departure`: DFT/STFT accuracy, Resize's
align_corners with scales, Attention's masked scores); the whole stage then runs on the
evaluator, which is slower. The ``ai.onnx.preview`` ops onnxruntime lacks (FlexAttention) and
ImageDecoder (whose reference implementation needs the ``image`` extra, Pillow) run there too.

Values that are no tensors pass through as onnxruntime gives them: a sequence as a list of
arrays, an empty optional as ``None``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np
import onnx

from hetnpu.backends._ort import OrtExecutable
from hetnpu.backends.base import Availability, CompileOptions, Executable
from hetnpu.devices.capability.cpu import ort_departure
from hetnpu.devices.names import CPU
from hetnpu.errors import BackendUnavailableError, first_line

__all__ = ["CpuBackend", "ReferenceExecutable"]


class ReferenceExecutable:
    """A stage run by onnx's reference evaluator (slow, but implements every standard op)."""

    engine = "onnx-reference"

    def __init__(self, model: onnx.ModelProto) -> None:
        from onnx.reference import ReferenceEvaluator

        self._ref = ReferenceEvaluator(model)
        # The evaluator keeps per-run state on its op objects: one run at a time.
        self._lock = threading.Lock()
        self.input_names = tuple(i.name for i in model.graph.input)
        self.output_names = tuple(o.name for o in model.graph.output)
        self._name = model.graph.name

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            try:
                outs = self._ref.run(None, {n: feeds[n] for n in self.input_names})
            except ImportError as exc:
                # Some reference ops import their library when run: ImageDecoder needs Pillow.
                raise BackendUnavailableError(
                    f"cpu: stage {self._name!r} needs a package that is not installed "
                    f"({first_line(exc)}); ImageDecoder's comes with hetnpu's 'image' extra: "
                    "pip install 'hetnpu[image]'"
                ) from None
        return {n: _as_value(v) for n, v in zip(self.output_names, outs, strict=True)}

    def close(self) -> None:
        self._ref = None  # type: ignore[assignment]


class CpuBackend:
    """onnxruntime CPUExecutionProvider, falling back to onnx's ReferenceEvaluator per stage."""

    name = CPU

    def available(self) -> Availability:
        return Availability(True)

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        from onnxruntime.capi.onnxruntime_pybind11_state import (
            Fail,
            InvalidGraph,
            NotImplemented,
        )

        if _has_unpassable_io(model):
            return ReferenceExecutable(model)
        if any(ort_departure(node) for node in model.graph.node):
            # Should the evaluator refuse the stage, onnxruntime's near-miss beats no result.
            with contextlib.suppress(Exception):
                return ReferenceExecutable(model)
        try:
            return _RetryOnReference(
                OrtExecutable(
                    model,
                    ["CPUExecutionProvider"],
                    profile=options.profile,
                    spinning=bool(options.extra.get("ort_spinning", True)),
                ),
                model,
            )
        except (NotImplemented, InvalidGraph, Fail) as ort_error:
            try:
                return ReferenceExecutable(model)
            except Exception as ref_error:  # the evaluator raises plain exceptions of many kinds
                raise BackendUnavailableError(
                    f"cpu: neither onnxruntime ({first_line(ort_error)}) nor onnx's reference "
                    f"evaluator ({first_line(ref_error)}) can run stage {model.graph.name!r}"
                ) from None


class _RetryOnReference:
    """An onnxruntime stage that, should onnxruntime fail a run, retries it on the reference
    evaluator and stays there if that succeeds; if both fail, onnxruntime's error stands."""

    def __init__(self, ort: OrtExecutable, model: onnx.ModelProto) -> None:
        self._ort = ort
        self._model = model
        self._ref: ReferenceExecutable | None = None
        self.input_names = ort.input_names
        self.output_names = ort.output_names

    @property
    def engine(self) -> str:
        return "onnx-reference" if self._ref is not None else "onnxruntime"

    def __getattr__(self, name: str):  # profiling hooks and the like belong to onnxruntime's
        return getattr(self._ort, name)

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if self._ref is not None:
            return self._ref.run(feeds)
        try:
            return self._ort.run(feeds)
        except Exception as ort_error:
            if _is_allocation_failure(ort_error):
                raise  # numpy would need the same memory again, and more
            try:
                ref = ReferenceExecutable(self._model)
                outs = ref.run(feeds)
            except Exception:
                raise ort_error from None
            self._ref = ref
            return outs

    def close(self) -> None:
        if self._ref is not None:
            self._ref.close()
        close = getattr(self._ort, "close", None)
        if close is not None:
            close()


def _as_value(value: Any) -> Any:
    """A tensor as an array (the evaluator may return numpy scalars); a sequence as a list of
    arrays and an empty optional as ``None``, as onnxruntime returns them."""
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return [_as_value(v) for v in value]
    return np.asarray(value)


def _is_allocation_failure(exc: BaseException) -> bool:
    text = str(exc)
    return (
        "bad_alloc" in text or "Failed to allocate memory" in text or isinstance(exc, MemoryError)
    )


def _has_unpassable_io(model: onnx.ModelProto) -> bool:
    """Does a graph input or output have a dtype onnxruntime's Python API cannot take or give
    (numpy has no such dtype; onnx maps it to an ``ml_dtypes`` type)?"""
    for vi in (*model.graph.input, *model.graph.output):
        t = vi.type.tensor_type
        if not vi.type.HasField("tensor_type") or not t.elem_type:
            continue
        try:
            dtype = onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)
        except (KeyError, ValueError):
            continue
        if dtype.type.__module__.startswith("ml_dtypes"):
            return True
    return False
