"""ResNet-50 v1.5 as torchvision defines it, exported the way ``torch.onnx.export`` writes it.

Bottleneck blocks (1x1 → 3x3 → 1x1, expansion 4) with the stride on the 3x3 conv (v1.5), a
1x1-conv + BN shortcut where the shape changes, Conv without bias followed by
BatchNormalization, then global average pooling, Flatten and a Gemm classifier:
25,557,032 parameters and about 4.1 GMACs at 224x224, as torchvision publishes.
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

__all__ = ["resnet50"]

# (blocks, bottleneck width, stride of the stage's first block) for layer1..layer4.
STAGES = ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))
EXPANSION = 4


def _bottleneck(b: GraphBuilder, x: str, name: str, cin: int, width: int, stride: int) -> str:
    scope = "/" + "/".join([name.split(".")[0], name])
    cout = width * EXPANSION
    y = b.conv(x, f"{scope}/conv1", f"{name}.conv1", cin, width, 1)
    y = b.node("Relu", [b.batch_norm(y, f"{scope}/bn1", f"{name}.bn1", width)], f"{scope}/relu")
    y = b.conv(y, f"{scope}/conv2", f"{name}.conv2", width, width, 3, stride)
    y = b.node("Relu", [b.batch_norm(y, f"{scope}/bn2", f"{name}.bn2", width)], f"{scope}/relu_1")
    y = b.conv(y, f"{scope}/conv3", f"{name}.conv3", width, cout, 1)
    y = b.batch_norm(y, f"{scope}/bn3", f"{name}.bn3", cout, gain=RESIDUAL_GAIN)
    shortcut = x
    if stride != 1 or cin != cout:
        ds = f"{scope}/downsample"
        shortcut = b.conv(x, f"{ds}/downsample.0", f"{name}.downsample.0", cin, cout, 1, stride)
        shortcut = b.batch_norm(shortcut, f"{ds}/downsample.1", f"{name}.downsample.1", cout)
    return b.node("Relu", [b.node("Add", [y, shortcut], scope)], f"{scope}/relu_2")


def resnet50(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build ResNet-50 v1.5 with seeded, well-scaled random weights.

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
    >>> count_params(resnet50())
    25557032
    """
    check_positive("resnet50", batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = b.conv("input", "/conv1", "conv1", 3, 64, 7, 2)
    y = b.node("Relu", [b.batch_norm(y, "/bn1", "bn1", 64)], "/relu")
    y = b.node(
        "MaxPool",
        [y],
        "/maxpool",
        ceil_mode=0,
        dilations=[1, 1],
        kernel_shape=[3, 3],
        pads=[1, 1, 1, 1],
        strides=[2, 2],
    )
    cin = 64
    for layer, (blocks, width, stride) in enumerate(STAGES, start=1):
        for i in range(blocks):
            y = _bottleneck(b, y, f"layer{layer}.{i}", cin, width, stride if i == 0 else 1)
            cin = width * EXPANSION
    y = b.node("GlobalAveragePool", [y], "/avgpool")
    y = b.node("Flatten", [y], "", axis=1)
    b.gemm(y, "/fc", "fc", cin, num_classes, out="logits")
    calib = (calibration_batch(image_size), 3, image_size, image_size)
    return b.model(
        "resnet50",
        [io("input", FLOAT, [batch, 3, image_size, image_size], dynamic_batch)],
        [io("logits", FLOAT, [batch, num_classes], dynamic_batch)],
        "torchvision ResNet-50 v1.5 topology with seeded random weights (hetnpu.models)",
        calibration={"input": b.rng.standard_normal(calib, dtype=np.float32)},
    )
