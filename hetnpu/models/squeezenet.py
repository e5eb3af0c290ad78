"""SqueezeNet 1.1 as torchvision defines it (``torchvision/models/squeezenet.py``), exported the
way ``torch.onnx.export`` writes it.

A 3x3/2 conv (64 channels, no padding) + ReLU, then Fire modules between 3x3/2 max pools with
``ceil_mode=True``; each Fire is a 1x1 "squeeze" conv + ReLU feeding a 1x1 and a 3x3 "expand"
conv (each + ReLU) whose outputs are concatenated. The classifier is a 1x1 conv to the classes,
ReLU and global average pooling (its Dropout vanishes in an inference export). Every conv has a
bias; there is no batch norm.

Reference: Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", 2016; v1.1 from github.com/forresti/SqueezeNet (SqueezeNet_v1.1).
"""

from __future__ import annotations

import onnx

from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import image_model, max_pool, relu

__all__ = ["squeezenet1_1"]

# features: (index, squeeze, expand1x1, expand3x3) of each Fire, 0-squeeze a 3x3/2 ceil max pool.
FEATURES = (
    (2, 0, 0, 0),
    (3, 16, 64, 64),
    (4, 16, 64, 64),
    (5, 0, 0, 0),
    (6, 32, 128, 128),
    (7, 32, 128, 128),
    (8, 0, 0, 0),
    (9, 48, 192, 192),
    (10, 48, 192, 192),
    (11, 64, 256, 256),
    (12, 64, 256, 256),
)


def _fire(b: GraphBuilder, x: str, index: int, cin: int, squeeze: int, e1: int, e3: int) -> str:
    name = f"features.{index}"
    at = f"/features/{name}"
    s = b.conv(x, f"{at}/squeeze", f"{name}.squeeze", cin, squeeze, 1, bias=True)
    s = relu(b, s, f"{at}/squeeze_activation")
    y1 = b.conv(s, f"{at}/expand1x1", f"{name}.expand1x1", squeeze, e1, 1, bias=True)
    y3 = b.conv(s, f"{at}/expand3x3", f"{name}.expand3x3", squeeze, e3, 3, bias=True)
    y1 = relu(b, y1, f"{at}/expand1x1_activation")
    y3 = relu(b, y3, f"{at}/expand3x3_activation")
    return b.node("Concat", [y1, y3], at, axis=1)


def squeezenet1_1(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``squeezenet1_1`` with seeded random weights.

    1,235,496 parameters and 0.349 GMACs at 224x224 (torchvision's ``SqueezeNet1_1_Weights``).

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
    """
    check_positive("squeezenet1_1", batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = b.conv("input", "/features/features.0", "features.0", 3, 64, 3, 2, padding=0, bias=True)
    y, cin = relu(b, y, "/features/features.1"), 64
    for index, squeeze, e1, e3 in FEATURES:
        if squeeze == 0:
            y = max_pool(b, y, f"/features/features.{index}", 3, 2, ceil_mode=True)
        else:
            y, cin = _fire(b, y, index, cin, squeeze, e1, e3), e1 + e3
    at = "/classifier/classifier.1"
    y = b.conv(y, at, "classifier.1", cin, num_classes, 1, bias=True)
    y = relu(b, y, "/classifier/classifier.2")
    y = b.node("GlobalAveragePool", [y], "/classifier/classifier.3")
    b.node("Flatten", [y], "", out="logits", axis=1)
    return image_model(
        b,
        "squeezenet1_1",
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="torchvision SqueezeNet 1.1 topology with seeded random weights (hetnpu.models)",
    )
