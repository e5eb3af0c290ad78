"""DenseNet-121 as torchvision defines it (``torchvision/models/densenet.py``), exported the way
``torch.onnx.export`` writes it.

A 7x7/2 stem conv, BN, ReLU and 3x3/2 max pool; four dense blocks of 6, 12, 24 and 16 layers,
each layer BN → ReLU → 1x1 conv (to 4 x 32 channels) → BN → ReLU → 3x3 conv (32 new channels)
reading the concatenation of every earlier feature map of its block; between blocks a
transition (BN, ReLU, 1x1 conv halving the channels, 2x2/2 average pool); a final BN and ReLU,
global average pooling and a Gemm classifier. Every layer's ``torch.cat`` is its own Concat
node, as in the export, so the memory traffic of the dense connections is in the graph.

Reference: Huang et al., "Densely Connected Convolutional Networks", CVPR 2017.
"""

from __future__ import annotations

import onnx

from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import avg_pool, flatten, image_model, max_pool, relu, scope

__all__ = ["densenet121"]

GROWTH = 32
BLOCKS = (6, 12, 24, 16)
INIT_FEATURES = 64
BN_SIZE = 4  # the bottleneck's 1x1 conv widens to BN_SIZE * GROWTH channels


def _norm_relu_conv(
    b: GraphBuilder, x: str, path: str, index: str, cin: int, cout: int, kernel: int
) -> str:
    """``norm{index}`` → ``relu{index}`` → ``conv{index}`` of a dense layer or transition."""
    at = scope(path)
    y = b.batch_norm(x, f"{at}/norm{index}", f"{path}.norm{index}", cin)
    y = relu(b, y, f"{at}/relu{index}")
    return b.conv(y, f"{at}/conv{index}", f"{path}.conv{index}", cin, cout, kernel)


def _dense_block(b: GraphBuilder, x: str, block: int, layers: int, cin: int) -> tuple[str, int]:
    features = [x]
    for i in range(1, layers + 1):
        path = f"features.denseblock{block}.denselayer{i}"
        width = cin + (i - 1) * GROWTH
        # _DenseLayer.bn_function: torch.cat(inputs, 1) of every earlier map (one map for the
        # first layer, which the exporter passes through as it is).
        y = b.node("Concat", features, scope(path), axis=1) if len(features) > 1 else x
        y = _norm_relu_conv(b, y, path, "1", width, BN_SIZE * GROWTH, 1)
        y = _norm_relu_conv(b, y, path, "2", BN_SIZE * GROWTH, GROWTH, 3)
        features.append(y)
    out = b.node("Concat", features, scope(f"features.denseblock{block}"), axis=1)
    return out, cin + layers * GROWTH


def densenet121(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``densenet121`` (growth 32, blocks 6-12-24-16) with seeded weights.

    7,978,856 parameters and 2.834 GMACs at 224x224 (torchvision's ``DenseNet121_Weights``).

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
    check_positive("densenet121", batch=batch, image_size=image_size, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = b.conv("input", "/features/conv0", "features.conv0", 3, INIT_FEATURES, 7, 2)
    y = b.batch_norm(y, "/features/norm0", "features.norm0", INIT_FEATURES)
    y = max_pool(b, relu(b, y, "/features/relu0"), "/features/pool0", 3, 2, 1)
    channels = INIT_FEATURES
    for block, layers in enumerate(BLOCKS, start=1):
        y, channels = _dense_block(b, y, block, layers, channels)
        if block < len(BLOCKS):
            path = f"features.transition{block}"
            y = _norm_relu_conv(b, y, path, "", channels, channels // 2, 1)
            channels //= 2
            y = avg_pool(b, y, f"{scope(path)}/pool", 2, 2)
    y = b.batch_norm(y, "/features/norm5", "features.norm5", channels)
    # DenseNet.forward: F.relu, adaptive_avg_pool2d(1), flatten, classifier.
    y = flatten(b, b.node("GlobalAveragePool", [relu(b, y, "")], ""))
    b.gemm(y, "/classifier", "classifier", channels, num_classes, out="logits")
    return image_model(
        b,
        "densenet121",
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="torchvision DenseNet-121 topology with seeded random weights (hetnpu.models)",
    )
