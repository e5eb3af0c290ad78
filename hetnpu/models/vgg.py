"""VGG-16 and VGG-19 as torchvision defines them (``torchvision/models/vgg.py``, configurations
"D" and "E", no batch norm), exported the way ``torch.onnx.export`` writes them.

Stacks of 3x3 convs (padding 1, with bias) each followed by ReLU, a 2x2/2 max pool after each of
the five stages, ``AdaptiveAvgPool2d(7)`` (an AveragePool of kernel 1 at 224x224, as the exporter
lowers it), Flatten, and the classifier Linear(25088, 4096) → ReLU → Linear(4096, 4096) → ReLU →
Linear(4096, classes); its Dropouts vanish in an inference export.

Reference: Simonyan and Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015.
"""

from __future__ import annotations

import onnx

from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import adaptive_avg_pool, flatten, image_model, max_pool, relu

__all__ = ["vgg16", "vgg19"]

# torchvision's cfgs "D" and "E": output channels of each 3x3 conv, 0 a 2x2/2 max pool.
CONFIGS: dict[str, tuple[int, ...]] = {
    "vgg16": (64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512, 0),
    "vgg19": (
        *(64, 64, 0, 128, 128, 0),
        *(256, 256, 256, 256, 0, 512, 512, 512, 512, 0, 512, 512, 512, 512, 0),
    ),
}
POOLED = 7  # AdaptiveAvgPool2d((7, 7))
HIDDEN = 4096


def _vgg(
    name: str, batch: int, image_size: int, num_classes: int, seed: int, dynamic_batch: bool
) -> onnx.ModelProto:
    check_positive(name, batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y, cin, size, index = "input", 3, image_size, 0
    for cout in CONFIGS[name]:
        at = f"/features/features.{index}"
        if cout == 0:
            y, size, index = max_pool(b, y, at, 2, 2), size // 2, index + 1
            continue
        y = b.conv(y, at, f"features.{index}", cin, cout, 3, bias=True)
        # make_layers appends Conv2d then ReLU: the ReLU is the next module of `features`.
        y, cin = relu(b, y, f"/features/features.{index + 1}"), cout
        index += 2
    y = flatten(b, adaptive_avg_pool(b, y, "/avgpool", size, POOLED, name, image_size))
    fc0 = b.gemm(y, "/classifier/classifier.0", "classifier.0", cin * POOLED**2, HIDDEN)
    y = relu(b, fc0, "/classifier/classifier.1")
    fc3 = b.gemm(y, "/classifier/classifier.3", "classifier.3", HIDDEN, HIDDEN)
    y = relu(b, fc3, "/classifier/classifier.4")
    b.gemm(y, "/classifier/classifier.6", "classifier.6", HIDDEN, num_classes, out="logits")
    return image_model(
        b,
        name,
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc=f"torchvision {name} topology with seeded random weights (hetnpu.models)",
    )


def vgg16(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``vgg16`` (configuration "D", no batch norm) with seeded weights.

    138,357,544 parameters and 15.47 GMACs at 224x224 (torchvision's ``VGG16_Weights``).

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 3, image_size, image_size] (float32).
    image_size : int
        Height and width of the input image; image_size // 32 must be a multiple of 7 (224,
        448, ...), as ``AdaptiveAvgPool2d(7)`` exports only then.
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
        A size is not a positive integer, or image_size // 32 is not a multiple of 7.
    """
    return _vgg("vgg16", batch, image_size, num_classes, seed, dynamic_batch)


def vgg19(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``vgg19`` (configuration "E", no batch norm) with seeded weights.

    143,667,240 parameters and 19.632 GMACs at 224x224 (torchvision's ``VGG19_Weights``).
    Parameters, returns and raises as for :func:`vgg16`.
    """
    return _vgg("vgg19", batch, image_size, num_classes, seed, dynamic_batch)
