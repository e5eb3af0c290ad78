"""An :class:`~hetnpu.backends.base.Executable` over an onnxruntime session.

CPU and GPU share it. With ``profile=True`` onnxruntime's own profiler records every kernel;
:meth:`OrtExecutable.profile_events` stops it and returns the events it recorded, so that the
session can place them on its measured timeline.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx

from hetnpu.errors import BackendUnavailableError, first_line

__all__ = ["OrtExecutable"]


class OrtExecutable:
    """One onnxruntime ``InferenceSession``; its ``run`` is thread-safe, as ORT's is."""

    engine = "onnxruntime"

    def __init__(
        self,
        model: onnx.ModelProto,
        providers: Sequence[str | tuple[str, dict]],
        *,
        profile: bool = False,
        optimize: bool = True,
        spinning: bool = True,
    ) -> None:
        import onnxruntime as ort
        from onnxruntime.capi.onnxruntime_pybind11_state import RuntimeException

        opts = ort.SessionOptions()
        opts.log_severity_level = 4  # failures reach the caller as exceptions; no log lines
        if not optimize:
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        if not spinning:
            # Between two of a plan's stages other engines run; ORT's pool threads spinning for
            # their next task would only take the cores from them.
            opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
            opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self._profile_dir: str | None = None
        if profile:
            # ORT writes its profile where the prefix points, at end_profiling; a private
            # directory keeps it out of the user's working directory.
            self._profile_dir = tempfile.mkdtemp(prefix="hetnpu_ort_profile_")
            opts.enable_profiling = True
            opts.profile_file_prefix = os.path.join(self._profile_dir, "stage")
        try:
            self.session = ort.InferenceSession(
                model.SerializeToString(), opts, providers=list(providers)
            )
        except RuntimeException as exc:  # e.g. std::bad_alloc while planning the session
            raise BackendUnavailableError(
                f"onnxruntime could not create a session for stage {model.graph.name!r}: "
                f"{first_line(exc, 'runtime error')}"
            ) from None
        self.input_names = tuple(i.name for i in self.session.get_inputs())
        self.output_names = tuple(o.name for o in self.session.get_outputs())

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        outs = self.session.run(None, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, outs, strict=True))

    def end_profiling(self) -> str | None:
        """Stop ORT's profiler and return the JSON file it wrote (None if not profiling)."""
        if self._profile_dir is None or self.session is None:
            return None
        path = self.session.end_profiling()
        return path or None

    def profile_events(self) -> list[dict[str, Any]]:
        """Stop ORT's profiler and return its events (empty when not profiling).

        Profiling ends here, as onnxruntime's ``end_profiling`` ends it: later runs are not
        recorded. The profile file is read and deleted.
        """
        path = self.end_profiling()
        events: list[dict[str, Any]] = []
        if path:
            try:
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                events = [e for e in data if isinstance(e, dict)] if isinstance(data, list) else []
            except (OSError, json.JSONDecodeError):
                events = []
        self._remove_profile_dir()
        return events

    def _remove_profile_dir(self) -> None:
        if self._profile_dir is not None:
            shutil.rmtree(self._profile_dir, ignore_errors=True)
            self._profile_dir = None

    def close(self) -> None:
        with contextlib.suppress(Exception):  # ORT may refuse a second end_profiling
            if self._profile_dir is not None and self.session is not None:
                self.session.end_profiling()
        self._remove_profile_dir()
        self.session = None  # type: ignore[assignment]
