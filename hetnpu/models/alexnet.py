"""AlexNet as torchvision defines it (``torchvision/models/alexnet.py``: the "one weird trick"
single-tower variant), exported the way ``torch.onnx.export`` writes it.

Five convs with bias (11x11/4 → 64, 5x5 → 192, 3x3 → 384, 256, 256) each followed by ReLU, 3x3/2
max pools after the first, second and fifth, ``AdaptiveAvgPool2d(6)`` (an AveragePool of kernel 1
at 224x224), Flatten, and Linear(9216, 4096) → ReLU → Linear(4096, 4096) → ReLU →
Linear(4096, classes); the Dropouts vanish in an inference export.

References: Krizhevsky et al., "ImageNet Classification with Deep Convolutional Neural Networks",
NIPS 2012; Krizhevsky, "One weird trick for parallelizing convolutional neural networks", 2014.
"""

from __future__ import annotations

import onnx

from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import (
    adaptive_avg_pool,
    conv_out,
    flatten,
    image_model,
    max_pool,
    pool_out,
    relu,
)

__all__ = ["alexnet"]

# (features index, output channels, kernel, stride, padding, max pool after it)
CONVS = (
    (0, 64, 11, 4, 2, True),
    (3, 192, 5, 1, 2, True),
    (6, 384, 3, 1, 1, False),
    (8, 256, 3, 1, 1, False),
    (10, 256, 3, 1, 1, True),
)
POOLED = 6  # AdaptiveAvgPool2d((6, 6))
HIDDEN = 4096


def alexnet(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``alexnet`` with seeded random weights.

    61,100,840 parameters and 0.714 GMACs at 224x224 (torchvision's ``AlexNet_Weights``).

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 3, image_size, image_size] (float32).
    image_size : int
        Height and width of the input image; the last feature map must be a multiple of 6
        (224 gives 6x6), as ``AdaptiveAvgPool2d(6)`` exports only then.
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
        A size is not a positive integer, or the last feature map is not a multiple of 6.
    """
    check_positive("alexnet", batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y, cin, size = "input", 3, image_size
    for index, cout, kernel, stride, pad, pool in CONVS:
        at, prefix = f"/features/features.{index}", f"features.{index}"
        y = b.conv(y, at, prefix, cin, cout, kernel, stride, padding=pad, bias=True)
        y = relu(b, y, f"/features/features.{index + 1}")
        cin, size = cout, conv_out(size, kernel, stride, pad)
        if pool:
            y = max_pool(b, y, f"/features/features.{index + 2}", 3, 2)
            size = pool_out(size, 3, 2)
    y = flatten(b, adaptive_avg_pool(b, y, "/avgpool", size, POOLED, "alexnet", image_size))
    fc1 = b.gemm(y, "/classifier/classifier.1", "classifier.1", cin * POOLED**2, HIDDEN)
    y = relu(b, fc1, "/classifier/classifier.2")
    fc4 = b.gemm(y, "/classifier/classifier.4", "classifier.4", HIDDEN, HIDDEN)
    y = relu(b, fc4, "/classifier/classifier.5")
    b.gemm(y, "/classifier/classifier.6", "classifier.6", HIDDEN, num_classes, out="logits")
    return image_model(
        b,
        "alexnet",
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="torchvision AlexNet topology with seeded random weights (hetnpu.models)",
    )
