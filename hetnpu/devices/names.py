"""The names of devices, in one place: what ``--devices`` accepts, which kind each is, and the
list order users write them in.

``npu`` is an Ascend NPU through AscendCL, ``sim-npu`` the simulated one (NPU numerics, simulator
timings), ``gpu`` onnxruntime's CUDA provider and ``cpu`` onnxruntime's CPU provider, which is
also the host: graph inputs start there and outputs end there. A ``sim-npu`` is an NPU in every
question of capability and cost.
"""

from __future__ import annotations

from hetnpu.errors import ConfigError

__all__ = [
    "DEVICES",
    "DEVICE_KINDS",
    "HOST",
    "NPU_DEVICES",
    "device_kind",
    "is_npu",
    "parse_devices",
]

DEVICES = ("npu", "sim-npu", "gpu", "cpu")
"""Every device name hetnpu accepts, in its usual order of preference."""

DEVICE_KINDS = ("npu", "gpu", "cpu")
"""What a device is, for capability and cost: ``sim-npu`` is of kind ``npu``."""

NPU_DEVICES = frozenset({"npu", "sim-npu"})

HOST = "cpu"
"""Where graph inputs are at the start and outputs must be at the end."""

_KIND = {"npu": "npu", "sim-npu": "npu", "gpu": "gpu", "cpu": "cpu"}


def device_kind(device: str) -> str:
    """The kind of ``device``.

    Raises
    ------
    ConfigError
        ``device`` is no device name.

    Examples
    --------
    >>> device_kind("sim-npu")
    'npu'
    """
    try:
        return _KIND[device]
    except KeyError:
        known = ", ".join(DEVICES)
        raise ConfigError(f"unknown device {device!r}; known devices: {known}") from None


def is_npu(device: str) -> bool:
    """Whether ``device`` is an NPU, real or simulated."""
    return device in NPU_DEVICES


def parse_devices(devices: str | tuple[str, ...] | list[str]) -> list[str]:
    """A device list from ``"npu,cpu"`` or a sequence, names checked, order kept.

    Raises
    ------
    ConfigError
        An unknown name (all of them are listed), or an empty list.

    Examples
    --------
    >>> parse_devices(" sim-npu, cpu ")
    ['sim-npu', 'cpu']
    """
    names = [d.strip() for d in devices.split(",")] if isinstance(devices, str) else list(devices)
    names = [d for d in names if d]
    unknown = [d for d in names if d not in _KIND]
    if unknown:
        shown = ", ".join(map(repr, unknown))
        raise ConfigError(f"unknown device(s) {shown}; known devices: {', '.join(DEVICES)}")
    if not names:
        raise ConfigError(f"no devices given; known devices: {', '.join(DEVICES)}")
    return names
