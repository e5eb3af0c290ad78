"""MobileNetV1 (width 1.0, 224x224) as the Ascend ModelZoo port defines it, exported the way
``torch.onnx.export`` writes it.

The network of ``ACL_PyTorch/contrib/cv/classfication/MobileNet-v1/mobilenet-v1_pth2onnx.py``
(Ascend/ModelZoo-PyTorch), which is the paper's Table 1: a 3x3/2 conv to 32 channels, then 13
depthwise-separable blocks (3x3 depthwise conv + BN + ReLU, 1x1 pointwise conv + BN + ReLU),
``AvgPool2d(7)``, a view to [-1, 1024] and Linear(1024, classes). Convs carry no bias.

Reference: Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", 2017 (Table 1).
"""

from __future__ import annotations

import numpy as np
import onnx

from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import avg_pool, image_model, relu

__all__ = ["mobilenet_v1"]

IMAGE_SIZE = 224  # AvgPool2d(7) then view(-1, 1024): the definition is for 224x224 only
STEM = 32
# (output channels, stride) of the 13 depthwise-separable blocks.
BLOCKS = (
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    *((512, 1),) * 5,
    (1024, 2),
    (1024, 1),
)


def _conv_bn_relu(
    b: GraphBuilder, x: str, path: str, index: int, cin: int, cout: int, k: int, s: int, g: int
) -> str:
    """``Conv2d`` at ``{path}.{index}``, its BN at index + 1, ReLU at index + 2."""
    at = f"/model/{path}"
    y = b.conv(x, f"{at}/{path}.{index}", f"{path}.{index}", cin, cout, k, s, g)
    y = b.batch_norm(y, f"{at}/{path}.{index + 1}", f"{path}.{index + 1}", cout)
    return relu(b, y, f"{at}/{path}.{index + 2}")


def mobilenet_v1(
    batch: int = 1,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build MobileNetV1 1.0-224 with seeded random weights.

    4,231,976 parameters and 569 million multiply-adds (the paper: 4.2 million parameters,
    569 million mult-adds). The input is fixed at 224x224: the definition's ``AvgPool2d(7)`` and
    ``view(-1, 1024)`` hold for that size only.

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 3, 224, 224] (float32).
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
    """
    check_positive("mobilenet_v1", batch=batch, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = _conv_bn_relu(b, "input", "model.0", 0, 3, STEM, 3, 2, 1)
    cin = STEM
    for i, (cout, stride) in enumerate(BLOCKS, start=1):
        y = _conv_bn_relu(b, y, f"model.{i}", 0, cin, cin, 3, stride, cin)
        y = _conv_bn_relu(b, y, f"model.{i}", 3, cin, cout, 1, 1, 1)
        cin = cout
    y = avg_pool(b, y, f"/model/model.{len(BLOCKS) + 1}", 7, 7)
    # x.view(-1, 1024): a Reshape, as the exporter writes a view.
    y = b.node("Reshape", [y, b.constant("", np.array([-1, cin], np.int64))], "")
    b.gemm(y, "/fc", "fc", cin, num_classes, out="logits")
    return image_model(
        b,
        "mobilenet_v1",
        batch=batch,
        image_size=IMAGE_SIZE,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="MobileNetV1 1.0-224 (Ascend ModelZoo port) with seeded random weights",
    )
