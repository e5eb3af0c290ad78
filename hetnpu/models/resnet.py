"""The ResNet family as torchvision defines it (``torchvision/models/resnet.py``), exported the way
``torch.onnx.export`` writes it.

A 7x7/2 stem conv + BN + ReLU and a 3x3/2 max pool; four stages of residual blocks, the first
block of stages 2-4 striding by 2 and every shape change taking a 1x1-conv + BN shortcut
(``downsample``); global average pooling, Flatten and a Gemm classifier. Basic blocks (two 3x3
convs) make ResNet-18 and -34; bottlenecks (1x1 → 3x3 → 1x1, expansion 4, the stride on the
3x3: "v1.5") make ResNet-50/101/152, and with a grouped 3x3 ResNeXt. Convs carry no bias.

References: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016; Xie et al.,
"Aggregated Residual Transformations for Deep Neural Networks" (ResNeXt), CVPR 2017.
"""

from __future__ import annotations

from typing import Literal

import onnx

from hetnpu.models._builder import RESIDUAL_GAIN, GraphBuilder, check_positive
from hetnpu.models._layers import flatten, image_model, max_pool, scope

__all__ = ["resnet18", "resnet101", "resnext50_32x4d"]

Block = Literal["basic", "bottleneck"]
EXPANSION: dict[Block, int] = {"basic": 1, "bottleneck": 4}
STAGE_PLANES = (64, 128, 256, 512)


def _basic(b: GraphBuilder, x: str, name: str, cin: int, planes: int, stride: int) -> str:
    at = scope(name)
    y = b.conv(x, f"{at}/conv1", f"{name}.conv1", cin, planes, 3, stride)
    y = b.node("Relu", [b.batch_norm(y, f"{at}/bn1", f"{name}.bn1", planes)], f"{at}/relu")
    y = b.conv(y, f"{at}/conv2", f"{name}.conv2", planes, planes, 3)
    y = b.batch_norm(y, f"{at}/bn2", f"{name}.bn2", planes, gain=RESIDUAL_GAIN)
    shortcut = _downsample(b, x, name, cin, planes, stride)
    return b.node("Relu", [b.node("Add", [y, shortcut], at)], f"{at}/relu_1")


def _bottleneck(
    b: GraphBuilder, x: str, name: str, cin: int, planes: int, stride: int, groups: int, base: int
) -> str:
    at = scope(name)
    # torchvision: width = int(planes * (base_width / 64.0)) * groups.
    width = planes * base // 64 * groups
    cout = planes * EXPANSION["bottleneck"]
    y = b.conv(x, f"{at}/conv1", f"{name}.conv1", cin, width, 1)
    y = b.node("Relu", [b.batch_norm(y, f"{at}/bn1", f"{name}.bn1", width)], f"{at}/relu")
    y = b.conv(y, f"{at}/conv2", f"{name}.conv2", width, width, 3, stride, groups)
    y = b.node("Relu", [b.batch_norm(y, f"{at}/bn2", f"{name}.bn2", width)], f"{at}/relu_1")
    y = b.conv(y, f"{at}/conv3", f"{name}.conv3", width, cout, 1)
    y = b.batch_norm(y, f"{at}/bn3", f"{name}.bn3", cout, gain=RESIDUAL_GAIN)
    shortcut = _downsample(b, x, name, cin, cout, stride)
    return b.node("Relu", [b.node("Add", [y, shortcut], at)], f"{at}/relu_2")


def _downsample(b: GraphBuilder, x: str, name: str, cin: int, cout: int, stride: int) -> str:
    """The identity, or torchvision's ``downsample`` (1x1 conv + BN) where the shape changes."""
    if stride == 1 and cin == cout:
        return x
    ds = f"{scope(name)}/downsample"
    y = b.conv(x, f"{ds}/downsample.0", f"{name}.downsample.0", cin, cout, 1, stride)
    return b.batch_norm(y, f"{ds}/downsample.1", f"{name}.downsample.1", cout)


def build_resnet(
    name: str,
    block: Block,
    layers: tuple[int, int, int, int],
    *,
    batch: int,
    image_size: int,
    num_classes: int,
    seed: int,
    dynamic_batch: bool,
    groups: int = 1,
    width_per_group: int = 64,
    doc: str | None = None,
) -> onnx.ModelProto:
    """torchvision's ``ResNet(block, layers, groups=..., width_per_group=...)``.

    Parameters
    ----------
    name : str
        The graph's name (``resnet50``, ...).
    block : {"basic", "bottleneck"}
        ``BasicBlock`` or ``Bottleneck``.
    layers : tuple of 4 ints
        Blocks per stage.
    batch, image_size, num_classes, seed, dynamic_batch
        As for :func:`resnet18`.
    groups, width_per_group : int
        ResNeXt's cardinality and bottleneck width (1 and 64 are plain ResNet); bottlenecks
        only.
    doc : str, optional
        The graph's doc string.

    Returns
    -------
    onnx.ModelProto
        Input ``input`` [batch, 3, image_size, image_size]; output ``logits`` [batch,
        num_classes].
    """
    check_positive(name, batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = b.conv("input", "/conv1", "conv1", 3, 64, 7, 2)
    y = b.node("Relu", [b.batch_norm(y, "/bn1", "bn1", 64)], "/relu")
    y = max_pool(b, y, "/maxpool", 3, 2, 1)
    cin = 64
    for layer, (blocks, planes) in enumerate(zip(layers, STAGE_PLANES, strict=True), start=1):
        for i in range(blocks):
            stride = 2 if i == 0 and layer > 1 else 1
            path = f"layer{layer}.{i}"
            if block == "basic":
                y = _basic(b, y, path, cin, planes, stride)
            else:
                y = _bottleneck(b, y, path, cin, planes, stride, groups, width_per_group)
            cin = planes * EXPANSION[block]
    y = flatten(b, b.node("GlobalAveragePool", [y], "/avgpool"))
    b.gemm(y, "/fc", "fc", cin, num_classes, out="logits")
    return image_model(
        b,
        name,
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc=doc or f"torchvision {name} topology with seeded random weights (hetnpu.models)",
    )


def resnet18(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``resnet18`` (basic blocks, 2-2-2-2) with seeded random weights.

    11,689,512 parameters and 1.814 GMACs at 224x224 (torchvision's ``ResNet18_Weights``
    meta, whose "GFLOPS" are multiply-accumulates).

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
    return build_resnet(
        "resnet18",
        "basic",
        (2, 2, 2, 2),
        batch=batch,
        image_size=image_size,
        num_classes=num_classes,
        seed=seed,
        dynamic_batch=dynamic_batch,
    )


def resnet101(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``resnet101`` (v1.5 bottlenecks, 3-4-23-3) with seeded random weights.

    44,549,160 parameters and 7.801 GMACs at 224x224 (torchvision's ``ResNet101_Weights``).
    Parameters, returns and raises as for :func:`resnet18`.
    """
    return build_resnet(
        "resnet101",
        "bottleneck",
        (3, 4, 23, 3),
        batch=batch,
        image_size=image_size,
        num_classes=num_classes,
        seed=seed,
        dynamic_batch=dynamic_batch,
    )


def resnext50_32x4d(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``resnext50_32x4d`` (3-4-6-3 bottlenecks, 32 groups of width 4).

    The 3x3 conv of each bottleneck is a Conv with ``group=32`` and twice the ResNet-50 width.
    25,028,904 parameters and 4.23 GMACs at 224x224 (torchvision's
    ``ResNeXt50_32X4D_Weights``). Parameters, returns and raises as for :func:`resnet18`.
    """
    return build_resnet(
        "resnext50_32x4d",
        "bottleneck",
        (3, 4, 6, 3),
        batch=batch,
        image_size=image_size,
        num_classes=num_classes,
        seed=seed,
        dynamic_batch=dynamic_batch,
        groups=32,
        width_per_group=4,
    )
