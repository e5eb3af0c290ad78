"""Layers and bookkeeping that several image-model builders share, over :class:`GraphBuilder`.

Everything here writes what ``torch.onnx.export`` writes for the torch module it names: pooling
with torch's padding and ``ceil_mode``, ``AdaptiveAvgPool2d`` as the exporter lowers it, and
scope names in the exporter's style, so that every builder's graph reads like a real export.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import helper

from hetnpu.errors import ConfigError
from hetnpu.models._builder import FLOAT, GraphBuilder, calibration_batch, io

__all__ = [
    "adaptive_avg_pool",
    "avg_pool",
    "conv_out",
    "flatten",
    "image_model",
    "max_pool",
    "pool_out",
    "relu",
    "scope",
    "split",
]


def scope(path: str) -> str:
    """The exporter's scope of the module at ``path``: ``layer1.0.conv1`` →
    ``/layer1/layer1.0/conv1``, ``features.0`` → ``/features/features.0``.

    A numeric child (an item of a ``Sequential`` or ``ModuleList``) keeps its parent's name in
    front, as the exporter writes it.
    """
    parts: list[str] = []
    for name in path.split("."):
        parts.append(f"{parts[-1]}.{name}" if name.isdigit() and parts else name)
    return "".join(f"/{p}" for p in parts)


def conv_out(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output height (or width) of a convolution, as torch computes it."""
    return (size + 2 * padding - kernel) // stride + 1


def pool_out(size: int, kernel: int, stride: int, padding: int = 0, ceil_mode: bool = False) -> int:
    """Output height (or width) of a torch pooling layer, ``ceil_mode`` included.

    With ``ceil_mode`` the last window must start inside the input or its left padding (torch's
    rule, which ONNX's ``ceil_mode`` follows too).
    """
    if not ceil_mode:
        return (size + 2 * padding - kernel) // stride + 1
    out = math.ceil((size + 2 * padding - kernel) / stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out


def relu(b: GraphBuilder, x: str, at: str) -> str:
    """``torch.nn.ReLU`` at scope ``at``."""
    return b.node("Relu", [x], at)


def max_pool(
    b: GraphBuilder,
    x: str,
    at: str,
    kernel: int,
    stride: int,
    padding: int = 0,
    ceil_mode: bool = False,
) -> str:
    """``torch.nn.MaxPool2d`` (square kernel)."""
    return b.node(
        "MaxPool",
        [x],
        at,
        ceil_mode=int(ceil_mode),
        dilations=[1, 1],
        kernel_shape=[kernel, kernel],
        pads=[padding] * 4,
        strides=[stride, stride],
    )


def avg_pool(
    b: GraphBuilder,
    x: str,
    at: str,
    kernel: int,
    stride: int,
    padding: int = 0,
    ceil_mode: bool = False,
) -> str:
    """``torch.nn.AvgPool2d`` with torch's default ``count_include_pad=True``."""
    return b.node(
        "AveragePool",
        [x],
        at,
        ceil_mode=int(ceil_mode),
        count_include_pad=1,
        kernel_shape=[kernel, kernel],
        pads=[padding] * 4,
        strides=[stride, stride],
    )


def adaptive_avg_pool(
    b: GraphBuilder, x: str, at: str, size: int, out: int, model: str, image_size: int
) -> str:
    """``torch.nn.AdaptiveAvgPool2d(out)`` on a ``size`` x ``size`` map, lowered as the exporter
    lowers it: ``GlobalAveragePool`` for a 1x1 output, else an ``AveragePool`` whose kernel and
    stride are size // out (the exporter cannot lower a size that ``out`` does not divide).

    Raises
    ------
    ConfigError
        ``out`` does not divide ``size``: name the model and the image size that caused it.
    """
    if out == 1:
        return b.node("GlobalAveragePool", [x], at)
    if size % out:
        raise ConfigError(
            f"{model}: image_size {image_size} leaves a {size}x{size} map, which "
            f"AdaptiveAvgPool2d({out}) cannot export; choose a size that gives a multiple of {out}"
        )
    k = size // out
    return avg_pool(b, x, at, k, k)


def split(b: GraphBuilder, x: str, at: str, sizes: Sequence[int], axis: int) -> list[str]:
    """``Split`` of ``x`` into pieces of ``sizes`` along ``axis`` (what ``chunk`` and ``split``
    export to); the outputs in order."""
    first = b.node("Split", [x, b.constant(at, np.array(sizes, np.int64))], at, axis=axis)
    node = b.nodes[-1]
    rest = [f"{node.name}_output_{i}" for i in range(1, len(sizes))]
    node.output.extend(rest)
    return [first, *rest]


def flatten(b: GraphBuilder, x: str, at: str = "") -> str:
    """``torch.flatten(x, 1)``."""
    return b.node("Flatten", [x], at, axis=1)


def image_model(
    b: GraphBuilder,
    name: str,
    *,
    batch: int,
    image_size: int | tuple[int, int],
    outputs: Sequence[tuple[str, Sequence[int | str]]],
    dynamic_batch: bool,
    doc: str,
    channels: int = 3,
    calibration_size: int | None = None,
) -> onnx.ModelProto:
    """Wrap an image network whose float input is ``input`` [batch, channels, H, W].

    ``outputs`` are (name, dims), where the dim written ``"batch"`` is the batch: the given
    ``batch``, or the symbolic ``"batch"`` with ``dynamic_batch``. Batch norms are calibrated
    on seeded N(0, 1) images, ``calibration_size`` square if given, else of the model's size.
    """
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    ch, cw = (h, w) if calibration_size is None else (calibration_size, calibration_size)
    calib = (calibration_batch(min(ch, cw)), channels, ch, cw)
    batch_dim: int | str = "batch" if dynamic_batch else batch
    outs = [
        helper.make_tensor_value_info(o, FLOAT, [batch_dim if d == "batch" else d for d in dims])
        for o, dims in outputs
    ]
    return b.model(
        name,
        [io("input", FLOAT, [batch, channels, h, w], dynamic_batch)],
        outs,
        doc,
        calibration={"input": b.rng.standard_normal(calib, dtype=np.float32)},
    )
