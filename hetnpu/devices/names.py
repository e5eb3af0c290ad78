"""The names of devices, in one place: what ``--devices`` accepts, which kind each is, and the
list order users write them in.

``npu`` is an Ascend NPU through AscendCL, ``sim-npu`` the simulated one (NPU numerics, simulator
timings), ``gpu`` onnxruntime's CUDA provider and ``cpu`` onnxruntime's CPU provider, which is
also the host: graph inputs start there and outputs end there. A ``sim-npu`` is an NPU in every
question of capability and cost.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from hetnpu.errors import ConfigError

__all__ = [
    "CPU",
    "DEFAULT_DEVICES",
    "DESCRIPTIONS",
    "DEVICES",
    "DEVICE_KINDS",
    "GPU",
    "HOST",
    "NPU",
    "NPU_DEVICES",
    "SIM_NPU",
    "device_kind",
    "is_npu",
    "parse_devices",
]

NPU, SIM_NPU, GPU, CPU = "npu", "sim-npu", "gpu", "cpu"

DEVICES = (NPU, SIM_NPU, GPU, CPU)
"""Every device name hetnpu accepts, in its usual order of preference."""

DEVICE_KINDS = (NPU, GPU, CPU)
"""What a device is, for capability and cost: ``sim-npu`` is of kind ``npu``."""

NPU_DEVICES = frozenset({NPU, SIM_NPU})

HOST = CPU
"""Where graph inputs are at the start and outputs must be at the end."""

DEFAULT_DEVICES = (NPU, CPU)
"""The devices a model is partitioned over when the caller names none."""

DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        NPU: "a real Ascend NPU through AscendCL (needs `acl` and a device)",
        SIM_NPU: "the simulated Ascend NPU (NPU numerics, simulator timings)",
        CPU: "the host CPU (onnxruntime CPUExecutionProvider)",
        GPU: "an NVIDIA GPU (onnxruntime CUDAExecutionProvider, extra `gpu`)",
    }
)
"""One line on each device, for listings (``hetnpu devices``)."""

_KIND = {NPU: NPU, SIM_NPU: NPU, GPU: GPU, CPU: CPU}


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
