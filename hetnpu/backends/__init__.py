"""Backends that execute plan stages, one module each, found by device name.

Each module is imported only when its device is asked for, so an optional dependency (CUDA,
the CANN toolkit's ``acl``) never breaks ``import hetnpu``.
"""

from __future__ import annotations

import importlib

from hetnpu.backends.base import Availability, Backend, CompileOptions, Executable
from hetnpu.errors import ConfigError

__all__ = ["DEVICES", "Availability", "Backend", "CompileOptions", "Executable", "get_backend"]

DEVICES: dict[str, tuple[str, str]] = {
    "cpu": ("hetnpu.backends.cpu", "CpuBackend"),
    "gpu": ("hetnpu.backends.gpu", "GpuBackend"),
    "sim-npu": ("hetnpu.backends.sim", "SimNpuBackend"),
    "npu": ("hetnpu.backends.ascend", "AscendBackend"),
}
"""Device name -> (module, class) of the backend that runs it."""


def get_backend(device: str, **kwargs: object) -> Backend:
    """A new backend instance for ``device``; ``kwargs`` go to its constructor."""
    try:
        module, cls = DEVICES[device]
    except KeyError:
        raise ConfigError(
            f"unknown device {device!r}; known devices: {', '.join(DEVICES)}"
        ) from None
    return getattr(importlib.import_module(module), cls)(**kwargs)
