"""MobileNetV2 (width 1.0) as torchvision defines it, exported the way ``torch.onnx.export`` does.

Inverted residual blocks: 1x1 expansion, 3x3 depthwise conv (a Conv with ``group`` equal to
its channels) and a linear 1x1 projection, each followed by BatchNormalization, with ReLU6 as
``Clip(0, 6)``; a residual Add where stride is 1 and the width is unchanged. 3,504,872
parameters, as torchvision publishes.
"""

from __future__ import annotations

import numpy as np
import onnx

from hetnpu.models._builder import (
    FLOAT,
    RESIDUAL_GAIN,
    GraphBuilder,
    calibration_batch,
    check_positive,
    io,
)

__all__ = ["mobilenetv2"]

# (expansion t, output channels c, repeats n, first stride s), torchvision's table.
SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


class _Net:
    """The builder plus the two Clip bounds every ReLU6 shares."""

    def __init__(self, seed: int) -> None:
        self.b = GraphBuilder(seed)
        self.lo = self.b.constant("", np.array(0.0, np.float32))
        self.hi = self.b.constant("", np.array(6.0, np.float32))

    def conv_bn(
        self,
        x: str,
        path: list[str],
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        group: int = 1,
        relu6: bool = True,
        gain: float = 1.0,
    ) -> str:
        """torchvision's ``Conv2dNormActivation`` at ``path`` (children .0 conv, .1 BN, .2 ReLU6).

        ``gain`` scales the BN's gamma (see :meth:`GraphBuilder.batch_norm`).

        Without ``relu6`` it is the projection's bare conv (``path``) and BN (the next index).
        """
        b = self.b
        name = ".".join(path)
        scope = _scope(path)
        if relu6:
            y = b.conv(x, f"{scope}/{name}.0", f"{name}.0", cin, cout, kernel, stride, group)
            y = b.batch_norm(y, f"{scope}/{name}.1", f"{name}.1", cout, gain)
            return b.node("Clip", [y, self.lo, self.hi], f"{scope}/{name}.2")
        parent, index = path[:-1], int(path[-1])
        bn_name = ".".join([*parent, str(index + 1)])
        parent_scope = _scope(parent)
        y = b.conv(x, f"{parent_scope}/{name}", name, cin, cout, kernel, stride, group)
        return b.batch_norm(y, f"{parent_scope}/{bn_name}", bn_name, cout, gain)


def _scope(path: list[str]) -> str:
    """``["features", "2", "conv"]`` → ``/features/features.2/features.2.conv``."""
    return "".join("/" + ".".join(path[: i + 1]) for i in range(len(path)))


def _inverted_residual(
    net: _Net, x: str, index: int, cin: int, cout: int, stride: int, expand: int
) -> str:
    hidden = cin * expand
    block = ["features", str(index)]
    y, i = x, 0
    if expand != 1:
        y = net.conv_bn(y, [*block, "conv", "0"], cin, hidden, 1)
        i = 1
    y = net.conv_bn(y, [*block, "conv", str(i)], hidden, hidden, 3, stride, group=hidden)
    residual = stride == 1 and cin == cout
    gain = RESIDUAL_GAIN if residual else 1.0
    y = net.conv_bn(y, [*block, "conv", str(i + 1)], hidden, cout, 1, relu6=False, gain=gain)
    if residual:
        y = net.b.node("Add", [x, y], _scope(block))
    return y


def mobilenetv2(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build MobileNetV2 (width 1.0) with seeded, well-scaled random weights.

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 3, image_size, image_size] (float32).
    image_size : int
        Height and width of the input image.
    num_classes : int
        Width of the output ``logits`` [batch, num_classes].
    seed : int
        Seed of the weights; the same seed gives a byte-identical model.
    dynamic_batch : bool
        Make dim 0 of the input and output the symbolic ``"batch"``.

    Returns
    -------
    onnx.ModelProto
        An opset-17 model that passes ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    ConfigError
        A size is not a positive integer.

    Examples
    --------
    >>> from hetnpu.models import count_params
    >>> count_params(mobilenetv2())
    3504872
    """
    check_positive("mobilenetv2", batch=batch, image_size=image_size, num_classes=num_classes)
    net = _Net(seed)
    y = net.conv_bn("input", ["features", "0"], 3, STEM_CHANNELS, 3, 2)
    cin, index = STEM_CHANNELS, 1
    for expand, cout, repeats, stride in SETTINGS:
        for r in range(repeats):
            y = _inverted_residual(net, y, index, cin, cout, stride if r == 0 else 1, expand)
            cin, index = cout, index + 1
    y = net.conv_bn(y, ["features", str(index)], cin, LAST_CHANNELS, 1)
    b = net.b
    y = b.node("GlobalAveragePool", [y], "")
    y = b.node("Flatten", [y], "", axis=1)
    # classifier.0 is Dropout, which an inference export drops.
    b.gemm(y, "/classifier/classifier.1", "classifier.1", LAST_CHANNELS, num_classes, out="logits")
    calib = (calibration_batch(image_size), 3, image_size, image_size)
    return b.model(
        "mobilenetv2",
        [io("input", FLOAT, [batch, 3, image_size, image_size], dynamic_batch)],
        [io("logits", FLOAT, [batch, num_classes], dynamic_batch)],
        "torchvision MobileNetV2 (width 1.0) topology with seeded random weights (hetnpu.models)",
        calibration={"input": b.rng.standard_normal(calib, dtype=np.float32)},
    )
