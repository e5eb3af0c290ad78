"""ShuffleNet V2 (x1.0, torchvision) and ShuffleNet V1 (1.0x, groups 3, Megvii's definition),
exported the way ``torch.onnx.export`` writes them.

V2 (``torchvision/models/shufflenetv2.py``): a 3x3/2 conv + BN + ReLU and a 3x3/2 max pool;
stages of 4, 8 and 4 units at 116, 232 and 464 channels; a unit splits its input in two
(``chunk``: a Split) and runs one half through 1x1 conv → 3x3 depthwise conv → 1x1 conv (each
with BN, the 1x1s with ReLU), or at stride 2 runs the whole input through that branch and
through a depthwise + 1x1 branch; the halves are concatenated and channel-shuffled (Reshape,
Transpose, Reshape); a 1x1 conv to 1024, ReduceMean over H and W, and a Gemm.

V1 (``ShuffleNetV1/network.py`` and ``blocks.py`` of github.com/megvii-model/ShuffleNet-Series,
the code ``ACL_PyTorch/contrib/cv/classfication/Shufflenetv1`` of Ascend/ModelZoo-PyTorch
exports): a 3x3/2 conv to 24 channels + BN + ReLU, a 3x3/2 max pool, stages of 4, 8 and 4 units
at 240, 480 and 960 channels. A unit is a grouped 1x1 conv (not grouped in the very first unit)
to a quarter of the output width + BN + ReLU, a 3x3 depthwise conv + BN, a channel shuffle, a
grouped 1x1 conv + BN; then ReLU(x + branch), or at stride 2 the concatenation of a 3x3/2
average pool of x with ReLU(branch). ``AvgPool2d(7)``, a view to [-1, 960] and a bias-free
Linear (a MatMul) close it.

References: Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", ECCV 2018; Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural
Network for Mobile Devices", CVPR 2018.
"""

from __future__ import annotations

import numpy as np
import onnx

from hetnpu.models._builder import RESIDUAL_GAIN, GraphBuilder, check_positive
from hetnpu.models._layers import avg_pool, conv_out, image_model, max_pool, relu, scope, split

__all__ = ["shufflenet_v1", "shufflenet_v2_x1_0"]

V2_REPEATS = (4, 8, 4)
V2_CHANNELS = (24, 116, 232, 464, 1024)  # stages_out_channels of shufflenet_v2_x1_0

V1_REPEATS = (4, 8, 4)
V1_CHANNELS = (24, 240, 480, 960)  # stage_out_channels[1:] for model_size "1.0x", group 3
V1_GROUPS = 3
V1_IMAGE_SIZE = 224  # AvgPool2d(7) then view(-1, 960): the definition is for 224x224 only


def _shuffle(b: GraphBuilder, x: str, at: str, dims: tuple[int, int, int, int]) -> str:
    """View as [n, a, b, h, w], swap a and b, view back: a channel shuffle as exported.

    ``dims`` is (a, b, h, w), a·b the channels; the batch is -1 in both views so that the same
    graph serves any batch.
    """
    a, c, h, w = dims
    split = b.node("Reshape", [x, b.constant(at, np.array([-1, a, c, h, w], np.int64))], at)
    t = b.node("Transpose", [split], at, perm=[0, 2, 1, 3, 4])
    return b.node("Reshape", [t, b.constant(at, np.array([-1, a * c, h, w], np.int64))], at)


# -- ShuffleNet V2 ---------------------------------------------------------------------------


def _cbr(
    b: GraphBuilder,
    x: str,
    name: str,
    index: int,
    cin: int,
    cout: int,
    kernel: int,
    stride: int = 1,
    group: int = 1,
    act: bool = True,
    gain: float = 1.0,
) -> str:
    """Conv at ``{name}.{index}``, its BN at index + 1 and, with ``act``, ReLU at index + 2."""
    conv, bn, act_at = (f"{name}.{index + i}" for i in range(3))
    y = b.conv(x, scope(conv), conv, cin, cout, kernel, stride, group)
    y = b.batch_norm(y, scope(bn), bn, cout, gain)
    return relu(b, y, scope(act_at)) if act else y


def _v2_unit(
    b: GraphBuilder, x: str, name: str, cin: int, cout: int, stride: int, size: int
) -> str:
    half = cout // 2
    at = scope(name)
    if stride == 1:
        # x.chunk(2, dim=1): one half passes through untouched.
        left, rest = split(b, x, at, [half, half], axis=1)
        into = half
    else:
        y = _cbr(b, x, f"{name}.branch1", 0, cin, cin, 3, stride, cin, act=False)
        left = _cbr(b, y, f"{name}.branch1", 2, cin, half, 1)
        rest, into = x, cin
    y = _cbr(b, rest, f"{name}.branch2", 0, into, half, 1)
    y = _cbr(b, y, f"{name}.branch2", 3, half, half, 3, stride, half, act=False)
    y = _cbr(b, y, f"{name}.branch2", 5, half, half, 1)
    y = b.node("Concat", [left, y], at, axis=1)
    out = conv_out(size, 3, stride, 1)
    return _shuffle(b, y, at, (2, half, out, out))


def shufflenet_v2_x1_0(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build torchvision's ``shufflenet_v2_x1_0`` with seeded random weights.

    2,278,604 parameters and 0.145 GMACs at 224x224 (torchvision's
    ``ShuffleNet_V2_X1_0_Weights``).

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
    check_positive(
        "shufflenet_v2_x1_0", batch=batch, image_size=image_size, num_classes=num_classes
    )
    b = GraphBuilder(seed)
    y = _cbr(b, "input", "conv1", 0, 3, V2_CHANNELS[0], 3, 2)
    size = conv_out(image_size, 3, 2, 1)
    y = max_pool(b, y, "/maxpool", 3, 2, 1)
    size = conv_out(size, 3, 2, 1)
    cin = V2_CHANNELS[0]
    for stage, (repeats, cout) in enumerate(zip(V2_REPEATS, V2_CHANNELS[1:4], strict=True), 2):
        for i in range(repeats):
            stride = 2 if i == 0 else 1
            y = _v2_unit(b, y, f"stage{stage}.{i}", cin, cout, stride, size)
            size, cin = conv_out(size, 3, stride, 1), cout
    y = _cbr(b, y, "conv5", 0, cin, V2_CHANNELS[4], 1)
    # x.mean([2, 3]): ReduceMean over H and W, keepdims 0.
    y = b.node("ReduceMean", [y], "", axes=[2, 3], keepdims=0)
    b.gemm(y, "/fc", "fc", V2_CHANNELS[4], num_classes, out="logits")
    return image_model(
        b,
        "shufflenet_v2_x1_0",
        batch=batch,
        image_size=image_size,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="torchvision ShuffleNet V2 x1.0 topology with seeded random weights (hetnpu.models)",
    )


# -- ShuffleNet V1 ---------------------------------------------------------------------------


def _v1_unit(
    b: GraphBuilder, x: str, index: int, cin: int, cout: int, stride: int, size: int, first: bool
) -> str:
    name = f"features.{index}"
    at = f"/features/{name}"
    mid = cout // 4
    outputs = cout - cin if stride == 2 else cout
    g = V1_GROUPS
    main1, main2 = f"{name}.branch_main_1", f"{name}.branch_main_2"
    y = b.conv(x, f"{at}/branch_main_1/{main1}.0", f"{main1}.0", cin, mid, 1, 1, 1 if first else g)
    y = b.batch_norm(y, f"{at}/branch_main_1/{main1}.1", f"{main1}.1", mid)
    y = relu(b, y, f"{at}/branch_main_1/{main1}.2")
    y = b.conv(y, f"{at}/branch_main_1/{main1}.3", f"{main1}.3", mid, mid, 3, stride, mid)
    y = b.batch_norm(y, f"{at}/branch_main_1/{main1}.4", f"{main1}.4", mid)
    out = conv_out(size, 3, stride, 1)
    # channel_shuffle: reshape(n, c // g, g, h, w), permute(0, 2, 1, 3, 4), reshape(n, c, h, w).
    y = _shuffle(b, y, at, (mid // g, g, out, out))
    y = b.conv(y, f"{at}/branch_main_2/{main2}.0", f"{main2}.0", mid, outputs, 1, 1, g)
    gain = RESIDUAL_GAIN if stride == 1 else 1.0
    y = b.batch_norm(y, f"{at}/branch_main_2/{main2}.1", f"{main2}.1", outputs, gain)
    if stride == 1:
        return relu(b, b.node("Add", [y, x], at), at)
    proj = avg_pool(b, x, f"{at}/branch_proj", 3, 2, 1)
    return b.node("Concat", [proj, relu(b, y, at)], at, axis=1)


def shufflenet_v1(
    batch: int = 1,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build ShuffleNet V1 1.0x with 3 groups (Megvii's definition) with seeded random weights.

    1,864,728 parameters; the definition's repository publishes 1.9M parameters and 138M
    FLOPs (multiply-adds), the paper 140 MFLOPs. The input is fixed at 224x224: the
    definition's ``AvgPool2d(7)`` and ``view(-1, 960)`` hold for that size only.

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
    check_positive("shufflenet_v1", batch=batch, num_classes=num_classes)
    b = GraphBuilder(seed)
    y = b.conv("input", "/first_conv/first_conv.0", "first_conv.0", 3, V1_CHANNELS[0], 3, 2)
    y = b.batch_norm(y, "/first_conv/first_conv.1", "first_conv.1", V1_CHANNELS[0])
    y = relu(b, y, "/first_conv/first_conv.2")
    y = max_pool(b, y, "/maxpool", 3, 2, 1)
    size = conv_out(conv_out(V1_IMAGE_SIZE, 3, 2, 1), 3, 2, 1)
    cin, index = V1_CHANNELS[0], 0
    for stage, (repeats, cout) in enumerate(zip(V1_REPEATS, V1_CHANNELS[1:], strict=True)):
        for i in range(repeats):
            stride = 2 if i == 0 else 1
            first = stage == 0 and i == 0
            y = _v1_unit(b, y, index, cin, cout, stride, size, first)
            size, cin, index = conv_out(size, 3, stride, 1), cout, index + 1
    y = avg_pool(b, y, "/globalpool", 7, 7)
    y = b.node("Reshape", [y, b.constant("", np.array([-1, cin], np.int64))], "")
    # Linear(960, classes, bias=False) exports as a MatMul by the transposed weight.
    w = b.kaiming("classifier.0.weight", (cin, num_classes), cin)
    b.node("MatMul", [y, w], "/classifier/classifier.0", out="logits")
    return image_model(
        b,
        "shufflenet_v1",
        batch=batch,
        image_size=V1_IMAGE_SIZE,
        outputs=[("logits", ["batch", num_classes])],
        dynamic_batch=dynamic_batch,
        doc="ShuffleNet V1 1.0x g=3 (megvii-model/ShuffleNet-Series) with seeded random weights",
    )
