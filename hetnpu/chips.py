"""Ascend chip specs by preset name or TOML file: ``hetnpu.chips.load("ascend910")``.

A thin facade over :mod:`hetnpu.devices.presets` for the NPU presets; CPU and GPU presets
load through :func:`hetnpu.devices.presets.load_cpu` and :func:`~hetnpu.devices.presets.load_gpu`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from hetnpu.devices import presets
from hetnpu.devices.names import NPU
from hetnpu.devices.spec import NpuSpec

__all__ = ["NpuSpec", "load", "names"]


def load(
    name_or_path: str | os.PathLike[str],
    overrides: Mapping[str, str | int | float | tuple[int, ...]] | None = None,
) -> NpuSpec:
    """Load and validate an NPU chip spec.

    Parameters
    ----------
    name_or_path
        A preset name (see :func:`names`) or a path to a TOML file (``"./my_chip.toml"``),
        which may ``inherits = "ascend910"`` and override a few keys.
    overrides
        Spec key → value, as ``--set KEY=VALUE`` gives them (strings are parsed:
        ``{"cube_mkn_fp16": "16,16,16", "hbm_bytes": "2.4e12"}``).

    Returns
    -------
    NpuSpec
        The frozen, validated spec.

    Raises
    ------
    ConfigError
        Naming the file or preset and the offending key.

    Examples
    --------
    >>> from hetnpu import chips
    >>> chips.load("ascend910", overrides={"ai_cores": "16"}).ai_cores
    16
    """
    return presets.load_npu(name_or_path, overrides)


def names() -> list[str]:
    """Names of the packaged NPU chip presets, sorted.

    >>> from hetnpu import chips
    >>> "ascend910" in chips.names()
    True
    """
    return presets.names(NPU)
