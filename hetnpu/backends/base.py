"""The contract every backend keeps: one module per backend, one class, a small interface.

A backend compiles one plan stage (a standalone ONNX model) into an :class:`Executable` and
runs it on numpy feeds. ``acl``, CUDA and other heavy or optional modules are imported only
inside their own backend, lazily, so that ``import hetnpu`` never fails for want of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import onnx

__all__ = ["Availability", "Backend", "CompileOptions", "Executable"]


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, what to install or fix."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class CompileOptions:
    """Options a session passes to every backend's ``compile``."""

    precision: str = "fp16"
    """NPU precision mode: "fp16" (ATC force_fp16), "fp32" (must_keep_origin_dtype) or "int8"."""
    device_id: int = 0
    cache_dir: str | None = None
    """Where compiled artifacts (e.g. .om files) are cached, keyed by model hash."""
    profile: bool = False
    extra: Mapping[str, object] = field(default_factory=dict)
    """Backend-specific settings; ``ort_spinning`` (bool, default True) lets onnxruntime's
    pool threads spin between runs, which the session turns off when a plan has several
    stages."""


@runtime_checkable
class Executable(Protocol):
    """A compiled stage, ready to run many times (and from several threads)."""

    input_names: tuple[str, ...]
    output_names: tuple[str, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run on ``feeds`` (name -> array); return every output by name."""
        ...

    def close(self) -> None:
        """Release every resource the executable holds; safe to call twice."""
        ...


@runtime_checkable
class Backend(Protocol):
    """One kind of device that can execute stages."""

    name: str

    def available(self) -> Availability:
        """Can this backend run here? Cheap, never raises."""
        ...

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        """Prepare ``model`` (a plan stage) to run; raise BackendUnavailableError if unavailable."""
        ...
