"""Backends that execute plan stages, one module each, found by device name.

Each module is imported only when its device is asked for, so an optional dependency (CUDA,
the CANN toolkit's ``acl``) never breaks ``import hetnpu``.
"""

from __future__ import annotations

import importlib

from hetnpu.backends.base import Availability, Backend, CompileOptions, Executable
from hetnpu.devices.names import CPU, GPU, NPU, SIM_NPU, parse_devices

__all__ = ["DEVICES", "Availability", "Backend", "CompileOptions", "Executable", "get_backend"]

DEVICES: dict[str, tuple[str, str]] = {
    NPU: ("hetnpu.backends.ascend", "AscendBackend"),
    SIM_NPU: ("hetnpu.backends.sim", "SimNpuBackend"),
    GPU: ("hetnpu.backends.gpu", "GpuBackend"),
    CPU: ("hetnpu.backends.cpu", "CpuBackend"),
}
"""Device name -> (module, class) of the backend that runs it."""


def get_backend(device: str, **kwargs: object) -> Backend:
    """A new backend instance for ``device``; ``kwargs`` go to its constructor."""
    (name,) = parse_devices([device])
    module, cls = DEVICES[name]
    return getattr(importlib.import_module(module), cls)(**kwargs)
