"""GoogLeNet (Inception v1) and Inception v3 as torchvision defines them
(``torchvision/models/googlenet.py`` and ``inception.py``), exported the way
``torch.onnx.export`` writes the pretrained models in eval mode.

Every conv is torchvision's ``BasicConv2d``: a bias-free Conv, BatchNormalization with eps 1e-3
and ReLU. The pretrained models set ``transform_input=True``, which re-normalises the input
channel by channel (Gather, Unsqueeze, Mul, Add, Concat), and so do the Ascend ModelZoo exports;
it is on by default here. The auxiliary classifiers run only in training, so an eval export has
none of their nodes or weights.

GoogLeNet: a 7x7/2 stem, 3x3/2 max pools with ``ceil_mode``, 1x1 and 3x3 convs, then nine
Inception modules (1x1; 1x1 → 3x3; 1x1 → 3x3, torchvision's stand-in for the paper's 5x5; 3x3
max pool → 1x1) in three stages, global average pooling and a Gemm.

Inception v3 at 299x299: a stem of five convs and two 3x3/2 max pools, then Mixed_5b-5d
(InceptionA), 6a (InceptionB, reduction), 6b-6e (InceptionC, 1x7 and 7x1 factorised convs),
7a (InceptionD, reduction), 7b-7c (InceptionE, split 1x3/3x1 branches), global average pooling
and a Gemm.

References: Szegedy et al., "Going Deeper with Convolutions", CVPR 2015; Szegedy et al.,
"Rethinking the Inception Architecture for Computer Vision", CVPR 2016.
"""

from __future__ import annotations

import numpy as np
import onnx

from hetnpu.errors import ConfigError
from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import (
    avg_pool,
    conv_out,
    flatten,
    image_model,
    max_pool,
    pool_out,
    scope,
)

__all__ = ["googlenet", "inception_v3"]

BN_EPS = 1e-3  # BasicConv2d's BatchNorm2d(eps=0.001)
# transform_input: ImageNet mean and std of each channel, re-expressed for a (x - 0.5) / 0.5
# input normalisation.
_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)

Pair = int | tuple[int, int]


def _basic(
    b: GraphBuilder,
    x: str,
    path: str,
    cin: int,
    cout: int,
    kernel: Pair,
    stride: int = 1,
    padding: Pair = 0,
) -> str:
    """torchvision's ``BasicConv2d`` at ``path``: Conv (no bias), BN (eps 1e-3), ReLU."""
    at = scope(path)
    y = b.conv(x, f"{at}/conv", f"{path}.conv", cin, cout, kernel, stride, padding=padding)
    y = b.batch_norm(y, f"{at}/bn", f"{path}.bn", cout, epsilon=BN_EPS)
    return b.node("Relu", [y], at)


def _transform_input(b: GraphBuilder, x: str) -> str:
    """``_transform_input``: channel c becomes x[:, c] * std/0.5 + (mean - 0.5)/0.5."""
    axes = b.constant("", np.array([1], np.int64))
    channels = []
    for c, (mean, std) in enumerate(zip(_MEAN, _STD, strict=True)):
        index = b.constant("", np.array(c, np.int64))
        y = b.node("Unsqueeze", [b.node("Gather", [x, index], "", axis=1), axes], "")
        y = b.node("Mul", [y, b.constant("", np.array(std / 0.5, np.float32))], "")
        channels.append(
            b.node("Add", [y, b.constant("", np.array((mean - 0.5) / 0.5, np.float32))], "")
        )
    return b.node("Concat", channels, "", axis=1)


# -- GoogLeNet -------------------------------------------------------------------------------

# Inception modules: (name, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), with the max
# pool ("maxpool3", "maxpool4") that comes before a stage.
GOOGLENET = (
    ("inception3a", 64, 96, 128, 16, 32, 32),
    ("inception3b", 128, 128, 192, 32, 96, 64),
    ("maxpool3", 3),
    ("inception4a", 192, 96, 208, 16, 48, 64),
    ("inception4b", 160, 112, 224, 24, 64, 64),
    ("inception4c", 128, 128, 256, 24, 64, 64),
    ("inception4d", 112, 144, 288, 32, 64, 64),
    ("inception4e", 256, 160, 320, 32, 128, 128),
    ("maxpool4", 2),
    ("inception5a", 256, 160, 320, 32, 128, 128),
    ("inception5b", 384, 192, 384, 48, 128, 128),
)


def _inception_v1(b: GraphBuilder, x: str, name: str, cin: int, widths: tuple[int, ...]) -> str:
    c1, c3r, c3, c5r, c5, pool = widths
    y1 = _basic(b, x, f"{name}.branch1", cin, c1, 1)
    y2 = _basic(b, x, f"{name}.branch2.0", cin, c3r, 1)
    y2 = _basic(b, y2, f"{name}.branch2.1", c3r, c3, 3, padding=1)
    y3 = _basic(b, x, f"{name}.branch3.0", cin, c5r, 1)
    # torchvision keeps a 3x3 here where the paper has a 5x5, for its pretrained weights.
    y3 = _basic(b, y3, f"{name}.branch3.1", c5r, c5, 3, padding=1)
    y4 = max_pool(b, x, f"{scope(name)}/branch4/branch4.0", 3, 1, 1, ceil_mode=True)
    y4 = _basic(b, y4, f"{name}.branch4.1", cin, pool, 1)
    return b.node("Concat", [y1, y2, y3, y4], scope(name), axis=1)


def googlenet(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
    transform_input: bool = True,
) -> onnx.ModelProto:
    """Build torchvision's ``googlenet`` in eval mode with seeded random weights.

    6,624,904 parameters and 1.498 GMACs at 224x224 (torchvision's ``GoogLeNet_Weights``;
    the count has no auxiliary classifiers, as the eval export has none).

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
    transform_input : bool
        Re-normalise the input as the pretrained model does (torchvision sets it with
        pretrained weights).

    Returns
    -------
    onnx.ModelProto
        An opset-17 model that passes ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    ConfigError
        A size is not a positive integer.
    """
    check_positive("googlenet", batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = _transform_input(b, "input") if transform_input else "input"
    y = _basic(b, y, "conv1", 3, 64, 7, 2, 3)
    y = max_pool(b, y, "/maxpool1", 3, 2, ceil_mode=True)
    y = _basic(b, y, "conv2", 64, 64, 1)
    y = _basic(b, y, "conv3", 64, 192, 3, padding=1)
    y = max_pool(b, y, "/maxpool2", 3, 2, ceil_mode=True)
    cin = 192
    for name, *widths in GOOGLENET:
        if name.startswith("maxpool"):
            y = max_pool(b, y, f"/{name}", widths[0], 2, ceil_mode=True)
            continue
        y = _inception_v1(b, y, name, cin, tuple(widths))
        cin = widths[0] + widths[2] + widths[4] + widths[5]
    y = flatten(b, b.node("GlobalAveragePool", [y], "/avgpool"))
    b.gemm(y, "/fc", "fc", cin, num_classes, out="logits")
    return image_model(
        b,
        "googlenet",
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="torchvision GoogLeNet topology (eval) with seeded random weights (hetnpu.models)",
    )


# -- Inception v3 ----------------------------------------------------------------------------


def _concat(b: GraphBuilder, parts: list[str], name: str) -> str:
    return b.node("Concat", parts, scope(name), axis=1)


def _avg_pool_3x3(b: GraphBuilder, x: str, name: str) -> str:
    """F.avg_pool2d(x, kernel_size=3, stride=1, padding=1) of a branch_pool."""
    return avg_pool(b, x, scope(name), 3, 1, 1)


def _inception_a(b: GraphBuilder, x: str, name: str, cin: int, pool_features: int) -> str:
    y1 = _basic(b, x, f"{name}.branch1x1", cin, 64, 1)
    y5 = _basic(b, x, f"{name}.branch5x5_1", cin, 48, 1)
    y5 = _basic(b, y5, f"{name}.branch5x5_2", 48, 64, 5, padding=2)
    y3 = _basic(b, x, f"{name}.branch3x3dbl_1", cin, 64, 1)
    y3 = _basic(b, y3, f"{name}.branch3x3dbl_2", 64, 96, 3, padding=1)
    y3 = _basic(b, y3, f"{name}.branch3x3dbl_3", 96, 96, 3, padding=1)
    yp = _basic(b, _avg_pool_3x3(b, x, name), f"{name}.branch_pool", cin, pool_features, 1)
    return _concat(b, [y1, y5, y3, yp], name)


def _inception_b(b: GraphBuilder, x: str, name: str, cin: int) -> str:
    y3 = _basic(b, x, f"{name}.branch3x3", cin, 384, 3, 2)
    yd = _basic(b, x, f"{name}.branch3x3dbl_1", cin, 64, 1)
    yd = _basic(b, yd, f"{name}.branch3x3dbl_2", 64, 96, 3, padding=1)
    yd = _basic(b, yd, f"{name}.branch3x3dbl_3", 96, 96, 3, 2)
    yp = max_pool(b, x, scope(name), 3, 2)
    return _concat(b, [y3, yd, yp], name)


def _inception_c(b: GraphBuilder, x: str, name: str, cin: int, c7: int) -> str:
    row, col = ((1, 7), (0, 3)), ((7, 1), (3, 0))  # (kernel, padding) of a 1x7 and a 7x1
    y1 = _basic(b, x, f"{name}.branch1x1", cin, 192, 1)
    y7 = _basic(b, x, f"{name}.branch7x7_1", cin, c7, 1)
    y7 = _basic(b, y7, f"{name}.branch7x7_2", c7, c7, row[0], padding=row[1])
    y7 = _basic(b, y7, f"{name}.branch7x7_3", c7, 192, col[0], padding=col[1])
    yd = _basic(b, x, f"{name}.branch7x7dbl_1", cin, c7, 1)
    for i, (kernel, pad) in enumerate((col, row, col, row), start=2):
        cout = 192 if i == 5 else c7
        yd = _basic(b, yd, f"{name}.branch7x7dbl_{i}", c7, cout, kernel, padding=pad)
    yp = _basic(b, _avg_pool_3x3(b, x, name), f"{name}.branch_pool", cin, 192, 1)
    return _concat(b, [y1, y7, yd, yp], name)


def _inception_d(b: GraphBuilder, x: str, name: str, cin: int) -> str:
    y3 = _basic(b, x, f"{name}.branch3x3_1", cin, 192, 1)
    y3 = _basic(b, y3, f"{name}.branch3x3_2", 192, 320, 3, 2)
    y7 = _basic(b, x, f"{name}.branch7x7x3_1", cin, 192, 1)
    y7 = _basic(b, y7, f"{name}.branch7x7x3_2", 192, 192, (1, 7), padding=(0, 3))
    y7 = _basic(b, y7, f"{name}.branch7x7x3_3", 192, 192, (7, 1), padding=(3, 0))
    y7 = _basic(b, y7, f"{name}.branch7x7x3_4", 192, 192, 3, 2)
    yp = max_pool(b, x, scope(name), 3, 2)
    return _concat(b, [y3, y7, yp], name)


def _inception_e(b: GraphBuilder, x: str, name: str, cin: int) -> str:
    y1 = _basic(b, x, f"{name}.branch1x1", cin, 320, 1)
    y3 = _basic(b, x, f"{name}.branch3x3_1", cin, 384, 1)
    y3 = _concat(
        b,
        [
            _basic(b, y3, f"{name}.branch3x3_2a", 384, 384, (1, 3), padding=(0, 1)),
            _basic(b, y3, f"{name}.branch3x3_2b", 384, 384, (3, 1), padding=(1, 0)),
        ],
        name,
    )
    yd = _basic(b, x, f"{name}.branch3x3dbl_1", cin, 448, 1)
    yd = _basic(b, yd, f"{name}.branch3x3dbl_2", 448, 384, 3, padding=1)
    yd = _concat(
        b,
        [
            _basic(b, yd, f"{name}.branch3x3dbl_3a", 384, 384, (1, 3), padding=(0, 1)),
            _basic(b, yd, f"{name}.branch3x3dbl_3b", 384, 384, (3, 1), padding=(1, 0)),
        ],
        name,
    )
    yp = _basic(b, _avg_pool_3x3(b, x, name), f"{name}.branch_pool", cin, 192, 1)
    return _concat(b, [y1, y3, yd, yp], name)


def _v3_final_size(image_size: int) -> int:
    """Side of Mixed_7c's map: the stem's valid convs and 3x3/2 pools, then two reductions."""
    size = conv_out(conv_out(image_size, 3, 2), 3)  # Conv2d_1a (stride 2), Conv2d_2a
    size = conv_out(pool_out(size, 3, 2), 3)  # maxpool1, Conv2d_4a (2b and 3b keep the size)
    size = pool_out(size, 3, 2)  # maxpool2
    return conv_out(conv_out(size, 3, 2), 3, 2)  # Mixed_6a, Mixed_7a


def inception_v3(
    batch: int = 1,
    image_size: int = 299,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
    transform_input: bool = True,
) -> onnx.ModelProto:
    """Build torchvision's ``inception_v3`` in eval mode with seeded random weights.

    23,834,568 parameters: torchvision's ``Inception_V3_Weights`` lists 27,161,264, which
    include the 3,326,696 of ``AuxLogits``, a training-only branch absent from an eval export.
    5.713 GMACs at 299x299 (the same meta).

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 3, image_size, image_size] (float32).
    image_size : int
        Height and width of the input image, at least 75 (torchvision's ``min_size``).
    num_classes : int
        Width of the output ``logits`` [batch, num_classes].
    seed : int
        Seed of the weights; the same seed gives a byte-identical model.
    dynamic_batch : bool
        Make dim 0 of the input and output the symbolic ``"batch"``.
    transform_input : bool
        Re-normalise the input as the pretrained model does (torchvision sets it with
        pretrained weights, and the Ascend ModelZoo export passes it explicitly).

    Returns
    -------
    onnx.ModelProto
        An opset-17 model that passes ``onnx.checker.check_model(full_check=True)``.

    Raises
    ------
    ConfigError
        A size is not a positive integer, or the image is smaller than 75x75.
    """
    check_positive("inception_v3", batch=batch, image_size=image_size, num_classes=num_classes)
    if _v3_final_size(image_size) < 1:
        raise ConfigError(f"inception_v3: image_size must be at least 75, got {image_size}")
    b = GraphBuilder(seed)
    y = _transform_input(b, "input") if transform_input else "input"
    y = _basic(b, y, "Conv2d_1a_3x3", 3, 32, 3, 2)
    y = _basic(b, y, "Conv2d_2a_3x3", 32, 32, 3)
    y = _basic(b, y, "Conv2d_2b_3x3", 32, 64, 3, padding=1)
    y = max_pool(b, y, "/maxpool1", 3, 2)
    y = _basic(b, y, "Conv2d_3b_1x1", 64, 80, 1)
    y = _basic(b, y, "Conv2d_4a_3x3", 80, 192, 3)
    y = max_pool(b, y, "/maxpool2", 3, 2)
    y = _inception_a(b, y, "Mixed_5b", 192, 32)
    y = _inception_a(b, y, "Mixed_5c", 256, 64)
    y = _inception_a(b, y, "Mixed_5d", 288, 64)
    y = _inception_b(b, y, "Mixed_6a", 288)
    for name, c7 in (("Mixed_6b", 128), ("Mixed_6c", 160), ("Mixed_6d", 160), ("Mixed_6e", 192)):
        y = _inception_c(b, y, name, 768, c7)
    y = _inception_d(b, y, "Mixed_7a", 768)
    y = _inception_e(b, y, "Mixed_7b", 1280)
    y = _inception_e(b, y, "Mixed_7c", 2048)
    y = flatten(b, b.node("GlobalAveragePool", [y], "/avgpool"))
    b.gemm(y, "/fc", "fc", 2048, num_classes, out="logits")
    return image_model(
        b,
        "inception_v3",
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="torchvision Inception v3 topology (eval) with seeded random weights (hetnpu.models)",
    )
