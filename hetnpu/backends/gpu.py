"""The GPU backend: onnxruntime's CUDA provider (extra ``gpu``: ``pip install hetnpu[gpu]``)."""

from __future__ import annotations

import onnx

from hetnpu.backends._ort import OrtExecutable
from hetnpu.backends.base import Availability, CompileOptions, Executable
from hetnpu.devices.names import GPU
from hetnpu.errors import BackendUnavailableError

__all__ = ["GpuBackend"]


class GpuBackend:
    """onnxruntime CUDAExecutionProvider on ``device_id``."""

    name = GPU

    def available(self) -> Availability:
        try:
            import onnxruntime as ort
        except ImportError:
            return Availability(False, "onnxruntime is not installed")
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return Availability(
                False,
                "onnxruntime here has no CUDAExecutionProvider: install the extra "
                "`pip install 'hetnpu[gpu]'` (onnxruntime-gpu) "
                "on a machine with an NVIDIA GPU and CUDA",
            )
        return Availability(True)

    def compile(self, model: onnx.ModelProto, options: CompileOptions) -> Executable:
        status = self.available()
        if not status:
            raise BackendUnavailableError(f"gpu: {status.reason}")
        provider = ("CUDAExecutionProvider", {"device_id": options.device_id})
        exe = OrtExecutable(
            model,
            [provider],
            profile=options.profile,
            spinning=bool(options.extra.get("ort_spinning", True)),
        )
        # ORT silently assigns nodes without CUDA kernels to CPU; say where they ran.
        exe.engine = "onnxruntime-cuda"  # type: ignore[attr-defined]
        return exe
