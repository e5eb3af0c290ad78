"""An :class:`~hetnpu.backends.base.Executable` over an onnxruntime session.

CPU and GPU share it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx

__all__ = ["OrtExecutable"]


class OrtExecutable:
    """One onnxruntime ``InferenceSession``; its ``run`` is thread-safe, as ORT's is."""

    def __init__(
        self,
        model: onnx.ModelProto,
        providers: Sequence[str | tuple[str, dict]],
        *,
        profile: bool = False,
        optimize: bool = True,
    ) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if profile:
            opts.enable_profiling = True
        self.session = ort.InferenceSession(
            model.SerializeToString(), opts, providers=list(providers)
        )
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, outs, strict=True))

    def end_profiling(self) -> str | None:
        """Stop ORT's profiler and return the JSON file it wrote (None if not profiling)."""
        path = self.session.end_profiling()
        return path or None

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
