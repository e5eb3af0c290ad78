"""hetnpu: run ONNX models across CPU, GPU and Ascend NPUs, and simulate the NPU cycle by cycle.

The public API is re-exported here lazily, so ``import hetnpu`` stays cheap (no onnxruntime,
SimPy or pydantic until they are needed)::

    import hetnpu
    g = hetnpu.load("model.onnx", input_shapes={"x": [1, 3, 224, 224]})
    chip = hetnpu.chips.load("ascend910")
    res = hetnpu.simulate(g, chip)
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load": ("hetnpu.graph", "load"),
    "extract": ("hetnpu.graph", "extract"),
    "Graph": ("hetnpu.graph", "Graph"),
    "simulate": ("hetnpu.simulator", "simulate"),
    "partition": ("hetnpu.api", "partition"),
    "simulate_system": ("hetnpu.api", "simulate_system"),
    "InferenceSession": ("hetnpu.runtime", "InferenceSession"),
    "chips": ("hetnpu.chips", None),
    "models": ("hetnpu.models", None),
    "traces": ("hetnpu.traces", None),
    "errors": ("hetnpu.errors", None),
    "HetnpuError": ("hetnpu.errors", "HetnpuError"),
}

__all__ = [*sorted(_LAZY), "__version__"]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'hetnpu' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
