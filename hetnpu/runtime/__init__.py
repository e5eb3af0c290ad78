"""Running a model for real: the ORT-style session, the executor of its plans, and onnx's
backend interface over the session.

- :mod:`~hetnpu.runtime.session`: :class:`InferenceSession`, onnxruntime's API over a
  partitioned plan;
- :mod:`~hetnpu.runtime.executor`: :class:`PlanExecutor`, one plan's stages compiled on their
  backends and run in dependency order with the transfers and layout conversions between them;
- :mod:`~hetnpu.runtime.onnx_backend`: ``onnx.backend.base.Backend`` over the session, so
  onnx's conformance suite runs against it.
"""

from __future__ import annotations

from hetnpu.runtime.executor import PlanExecutor
from hetnpu.runtime.session import DeviceFallbackWarning, InferenceSession, NodeArg

__all__ = ["DeviceFallbackWarning", "InferenceSession", "NodeArg", "PlanExecutor"]
