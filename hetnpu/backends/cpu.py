"""The CPU backend: onnxruntime's CPU provider, and onnx's ReferenceEvaluator for what it lacks.

onnxruntime has no kernel for some ops, opset versions and dtypes (new ops arrive in onnx
before ORT implements them). Such a stage runs on :class:`onnx.reference.ReferenceEvaluator`
instead, so the CPU device runs everything either can; the executable's ``engine`` says which.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import numpy as np
import onnx

from hetnpu.backends._ort import OrtExecutable
from hetnpu.backends.base import Availability, CompileOptions, Executable
from hetnpu.errors import BackendUnavailableError

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

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        with self._lock:
            outs = self._ref.run(None, {n: feeds[n] for n in self.input_names})
        return {n: np.asarray(v) for n, v in zip(self.output_names, outs, strict=True)}

    def close(self) -> None:
        self._ref = None  # type: ignore[assignment]


class CpuBackend:
    """onnxruntime CPUExecutionProvider, falling back to onnx's ReferenceEvaluator per stage."""

    name = "cpu"

    def available(self) -> Availability:
        return Availability(True)

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        from onnxruntime.capi.onnxruntime_pybind11_state import (
            Fail,
            InvalidGraph,
            NotImplemented,
        )

        try:
            return OrtExecutable(
                model,
                ["CPUExecutionProvider"],
                profile=options.profile,
                spinning=bool(options.extra.get("ort_spinning", True)),
            )
        except (NotImplemented, InvalidGraph, Fail) as ort_error:
            try:
                return ReferenceExecutable(model)
            except Exception as ref_error:  # the evaluator raises plain exceptions of many kinds
                raise BackendUnavailableError(
                    f"cpu: neither onnxruntime ({_first_line(ort_error)}) nor onnx's reference "
                    f"evaluator ({_first_line(ref_error)}) can run stage {model.graph.name!r}"
                ) from None


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
