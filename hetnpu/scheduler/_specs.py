"""Device specs for the default cost model: the chip the user names and the generic host
CPU and GPU presets."""

from __future__ import annotations

import functools
import os
from typing import Any

__all__ = ["host_specs", "npu_spec"]

CPU_PRESET = "cpu_x86"
GPU_PRESET = "gpu_datacentre"


def npu_spec(chip: Any) -> Any:
    """``chip`` itself if it is a spec, else the preset or TOML file it names."""
    if isinstance(chip, str | os.PathLike):
        from hetnpu import chips

        return chips.load(chip)
    return chip


@functools.cache
def host_specs() -> tuple[Any, Any]:
    """(CpuSpec, GpuSpec) of the generic presets."""
    from hetnpu.devices.presets import load_cpu, load_gpu

    return load_cpu(CPU_PRESET), load_gpu(GPU_PRESET)
