"""The names of devices, in one place: what ``--devices`` accepts, which kind each is, and the
list order users write them in.

``npu`` is an Ascend NPU through AscendCL, ``sim-npu`` the simulated one (NPU numerics, simulator
timings), ``gpu`` onnxruntime's CUDA provider and ``cpu`` onnxruntime's CPU provider, which is
also the host: graph inputs start there and outputs end there. A ``sim-npu`` is an NPU in every
question of capability and cost.

NPUs are addressed one by one as ``npu:N`` / ``sim-npu:N`` (``npu:0`` … ``npu:7`` on an 8-NPU
server); the bare name is device 0's alias as far as kind and backend go, and a topology
(:mod:`hetnpu.devices.topology`) says which links join addressed devices.
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
    "base_device",
    "device_index",
    "device_kind",
    "is_known_device",
    "is_npu",
    "parse_devices",
]

NPU, SIM_NPU, GPU, CPU = "npu", "sim-npu", "gpu", "cpu"

DEVICES = (NPU, SIM_NPU, GPU, CPU)
"""Every device name hetnpu accepts, in its usual order of preference."""

DEVICE_KINDS = (NPU, GPU, CPU)
"""What a device is, for capability and cost: ``sim-npu`` is of kind ``npu``."""


class _NpuNames(frozenset[str]):
    """``npu`` and ``sim-npu``; membership also holds for their addressed forms (``npu:3``)."""

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and frozenset.__contains__(self, base_device(name))


NPU_DEVICES: frozenset[str] = _NpuNames({NPU, SIM_NPU})

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


def base_device(device: str) -> str:
    """``device`` without its index: ``"npu:3"`` -> ``"npu"`` (unknown names pass through).

    Examples
    --------
    >>> base_device("sim-npu:2"), base_device("cpu")
    ('sim-npu', 'cpu')
    """
    base, sep, index = device.partition(":")
    if sep and base in (NPU, SIM_NPU) and index.isdigit():
        return base
    return device


def device_index(device: str) -> int | None:
    """The ``N`` of an addressed NPU ``npu:N`` / ``sim-npu:N``; ``None`` for bare names."""
    base, sep, index = device.partition(":")
    if sep and base in (NPU, SIM_NPU) and index.isdigit():
        return int(index)
    return None


def is_known_device(device: str) -> bool:
    """Whether ``device`` is a device name, bare or addressed (``npu:N``)."""
    return base_device(device) in _KIND


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
        return _KIND[base_device(device)]
    except KeyError:
        known = ", ".join(DEVICES)
        raise ConfigError(
            f"unknown device {device!r}; known devices: {known} (NPUs also as npu:N, sim-npu:N)"
        ) from None


def is_npu(device: str) -> bool:
    """Whether ``device`` is an NPU, real or simulated."""
    return base_device(device) in (NPU, SIM_NPU)


def parse_devices(devices: str | tuple[str, ...] | list[str]) -> list[str]:
    """A device list from ``"npu,cpu"`` or a sequence, names checked, order kept.

    Raises
    ------
    ConfigError
        An unknown name (all of them are listed), an empty list, or one device named twice.

    Examples
    --------
    >>> parse_devices(" sim-npu, cpu ")
    ['sim-npu', 'cpu']
    >>> parse_devices("sim-npu:0,sim-npu:1,cpu")
    ['sim-npu:0', 'sim-npu:1', 'cpu']
    """
    names = [d.strip() for d in devices.split(",")] if isinstance(devices, str) else list(devices)
    names = [d for d in names if d]
    unknown = [d for d in names if not is_known_device(d)]
    if unknown:
        shown = ", ".join(map(repr, unknown))
        raise ConfigError(
            f"unknown device(s) {shown}; known devices: {', '.join(DEVICES)} "
            "(NPUs also as npu:N, sim-npu:N)"
        )
    if not names:
        raise ConfigError(f"no devices given; known devices: {', '.join(DEVICES)}")
    addressed = [d for d in names if device_index(d) is not None]
    twice = sorted({d for d in addressed if addressed.count(d) > 1})
    if twice:
        raise ConfigError(f"device(s) {', '.join(map(repr, twice))} listed more than once")
    return names
