"""YOLOv4 as Tianxiaomo/pytorch-YOLOv4 defines it (``models.py``), with the changes the Ascend
ModelZoo's Yolov4_for_Pytorch makes before exporting it, exported the way ``torch.onnx.export``
writes it.

``Yolov4(n_classes=80, inference=False)``, as ``yolov4.patch`` of
``ACL_PyTorch/built-in/cv/Yolov4_for_Pytorch`` (Ascend/ModelZoo-PyTorch) sets it: the graph ends
at the three raw head maps (``feature_map_1`` to ``_3``, 255 = 3 x (5 + 80) channels at strides
8, 16 and 32), with no box decoding; and its ``dy_resize.py`` rewrites each upsampling as a
nearest-neighbour Resize by scales (1, 1, 2, 2).

Every conv but the three head outputs is ``Conv_Bn_Activation``: a bias-free Conv, BN and Mish
(x · tanh(softplus(x)), exported as Softplus, Tanh and Mul) in the CSPDarknet53 backbone, or
LeakyReLU(0.1) in the neck and head. The backbone: a 3x3 conv to 32 channels, then five
cross-stage-partial stages (a 3x3/2 conv, two 1x1 splits, residual blocks of a 1x1 and a 3x3
conv on one of them, a 1x1 conv, concatenation with the other, a 1x1 conv) with 1, 2, 8, 8 and
4 residual blocks. The neck: SPP (5, 9 and 13 max pools of stride 1, concatenated with their
input) and a PANet of upsampling, concatenation and 1x1/3x3 conv stacks. The head: a 3x3 conv and
a 1x1 conv with bias per scale, the larger scales fed down by 3x3/2 convs.

Reference: Bochkovskiy, Wang and Liao, "YOLOv4: Optimal Speed and Accuracy of Object
Detection", 2020 (the network of darknet's ``cfg/yolov4.cfg``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import onnx

from hetnpu.errors import ConfigError
from hetnpu.models._builder import RESIDUAL_GAIN, GraphBuilder, check_positive
from hetnpu.models._layers import image_model, max_pool, scope

__all__ = ["yolov4"]

Act = Literal["mish", "leaky", "linear"]
LEAKY_SLOPE = 0.1
NUM_ANCHORS = 3  # anchors per scale
STRIDE = 32  # the coarsest head's stride: the image side must be a multiple of it
# CSP stages after the stem: (input channels, output channels, residual blocks).
STAGES = ((64, 128, 2), (128, 256, 8), (256, 512, 8), (512, 1024, 4))
CALIBRATION_SIZE = 320


class _Net:
    """The builder plus the Resize scales every upsampling shares."""

    def __init__(self, seed: int) -> None:
        self.b = GraphBuilder(seed)
        self.scales = self.b.constant("", np.array([1.0, 1.0, 2.0, 2.0], np.float32))

    def cba(
        self,
        x: str,
        path: str,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        act: Act = "mish",
        gain: float = 1.0,
    ) -> str:
        """``Conv_Bn_Activation`` at ``path``: ``conv.0`` the Conv, ``conv.1`` its BN (with bias
        and no BN for ``linear``), ``conv.2`` the activation."""
        b = self.b
        conv, bn = f"{path}.conv.0", f"{path}.conv.1"
        pad = (kernel - 1) // 2
        linear = act == "linear"
        y = b.conv(x, scope(conv), conv, cin, cout, kernel, stride, padding=pad, bias=linear)
        if linear:
            return y
        y = b.batch_norm(y, scope(bn), bn, cout, gain)
        at = scope(f"{path}.conv.2")
        if act == "leaky":
            return b.node("LeakyRelu", [y], at, alpha=LEAKY_SLOPE)
        # Mish.forward: x * tanh(softplus(x))
        t = b.node("Tanh", [b.node("Softplus", [y], at)], at)
        return b.node("Mul", [y, t], at)

    def upsample(self, x: str, at: str) -> str:
        """Nearest-neighbour x2, as dy_resize.py writes it (asymmetric, floor)."""
        return self.b.node(
            "Resize",
            [x, "", self.scales],
            at,
            coordinate_transformation_mode="asymmetric",
            mode="nearest",
            nearest_mode="floor",
        )

    def concat(self, parts: list[str], at: str) -> str:
        return self.b.node("Concat", parts, at, axis=1)

    def res_blocks(self, x: str, path: str, ch: int, blocks: int) -> str:
        """``ResBlock(ch, nblocks)``: x + 3x3(1x1(x)), ``blocks`` times."""
        for i in range(blocks):
            one = f"{path}.module_list.{i}"
            h = self.cba(x, f"{one}.0", ch, ch, 1)
            h = self.cba(h, f"{one}.1", ch, ch, 3, gain=RESIDUAL_GAIN)
            x = self.b.node("Add", [x, h], scope(path))
        return x

    def stage(self, x: str, name: str, cin: int, cout: int, blocks: int) -> str:
        """``DownSample2`` to ``DownSample5``: a cross-stage-partial stage."""
        half = cout // 2
        x1 = self.cba(x, f"{name}.conv1", cin, cout, 3, 2)
        x2 = self.cba(x1, f"{name}.conv2", cout, half, 1)
        x3 = self.cba(x1, f"{name}.conv3", cout, half, 1)
        r = self.res_blocks(x3, f"{name}.resblock", half, blocks)
        x4 = self.cba(r, f"{name}.conv4", half, half, 1)
        return self.cba(self.concat([x4, x2], scope(name)), f"{name}.conv5", cout, cout, 1)


def _backbone(net: _Net) -> tuple[str, str, str]:
    """down1 to down5; returns (d3, d4, d5), the maps at strides 8, 16 and 32."""
    x1 = net.cba("input", "down1.conv1", 3, 32, 3)
    x2 = net.cba(x1, "down1.conv2", 32, 64, 3, 2)
    x3 = net.cba(x2, "down1.conv3", 64, 64, 1)
    x4 = net.cba(x2, "down1.conv4", 64, 64, 1)
    x5 = net.cba(x4, "down1.conv5", 64, 32, 1)
    x6 = net.cba(x5, "down1.conv6", 32, 64, 3, gain=RESIDUAL_GAIN)
    x6 = net.b.node("Add", [x6, x4], "/down1")
    x7 = net.cba(x6, "down1.conv7", 64, 64, 1)
    d = net.cba(net.concat([x7, x3], "/down1"), "down1.conv8", 128, 64, 1)
    maps = []
    for i, (cin, cout, blocks) in enumerate(STAGES, start=2):
        d = net.stage(d, f"down{i}", cin, cout, blocks)
        maps.append(d)
    return maps[1], maps[2], maps[3]


def _neck(net: _Net, d5: str, d4: str, d3: str) -> tuple[str, str, str]:
    """``Neck``: SPP and the top-down path; returns (x20, x13, x6)."""

    def leaky(x: str, i: int, cin: int, cout: int, k: int) -> str:
        return net.cba(x, f"neck.conv{i}", cin, cout, k, act="leaky")

    x3 = leaky(leaky(leaky(d5, 1, 1024, 512, 1), 2, 512, 1024, 3), 3, 1024, 512, 1)
    pools = [max_pool(net.b, x3, f"/neck/maxpool{i}", k, 1, k // 2) for i, k in ((1, 5), (2, 9))]
    pools.append(max_pool(net.b, x3, "/neck/maxpool3", 13, 1, 6))
    spp = net.concat([pools[2], pools[1], pools[0], x3], "/neck")
    x6 = leaky(leaky(leaky(spp, 4, 2048, 512, 1), 5, 512, 1024, 3), 6, 1024, 512, 1)
    up = net.upsample(leaky(x6, 7, 512, 256, 1), "/neck/upsample1")
    x = net.concat([leaky(d4, 8, 512, 256, 1), up], "/neck")
    x = leaky(leaky(x, 9, 512, 256, 1), 10, 256, 512, 3)
    x13 = leaky(leaky(leaky(x, 11, 512, 256, 1), 12, 256, 512, 3), 13, 512, 256, 1)
    up = net.upsample(leaky(x13, 14, 256, 128, 1), "/neck/upsample2")
    x = net.concat([leaky(d3, 15, 256, 128, 1), up], "/neck")
    x = leaky(leaky(x, 16, 256, 128, 1), 17, 128, 256, 3)
    x20 = leaky(leaky(leaky(x, 18, 256, 128, 1), 19, 128, 256, 3), 20, 256, 128, 1)
    return x20, x13, x6


def _head(net: _Net, x20: str, x13: str, x6: str, out_ch: int) -> None:
    """``Yolov4Head`` without the YOLO layers: writes feature_map_1, _2 and _3."""

    def conv(x: str, i: int, cin: int, cout: int, k: int, stride: int = 1) -> str:
        return net.cba(x, f"head.conv{i}", cin, cout, k, stride, act="leaky")

    def out(x: str, i: int, cin: int, name: str) -> None:
        conv_name = f"head.conv{i}.conv.0"
        w = net.b.kaiming(f"{conv_name}.weight", (out_ch, cin, 1, 1), cin)
        bias = net.b.normal(f"{conv_name}.bias", (out_ch,), 0.01)
        net.b.node(
            "Conv",
            [x, w, bias],
            scope(conv_name),
            out=name,
            dilations=[1, 1],
            group=1,
            kernel_shape=[1, 1],
            pads=[0, 0, 0, 0],
            strides=[1, 1],
        )

    out(conv(x20, 1, 128, 256, 3), 2, 256, "feature_map_1")
    x = net.concat([conv(x20, 3, 128, 256, 3, 2), x13], "/head")
    x = conv(conv(conv(x, 4, 512, 256, 1), 5, 256, 512, 3), 6, 512, 256, 1)
    x8 = conv(conv(x, 7, 256, 512, 3), 8, 512, 256, 1)
    out(conv(x8, 9, 256, 512, 3), 10, 512, "feature_map_2")
    x = net.concat([conv(x8, 11, 256, 512, 3, 2), x6], "/head")
    x = conv(conv(conv(x, 12, 1024, 512, 1), 13, 512, 1024, 3), 14, 1024, 512, 1)
    x = conv(conv(conv(x, 15, 512, 1024, 3), 16, 1024, 512, 1), 17, 512, 1024, 3)
    out(x, 18, 1024, "feature_map_3")


def yolov4(
    batch: int = 1,
    image_size: int = 608,
    num_classes: int = 80,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build YOLOv4 (Tianxiaomo/pytorch-YOLOv4, Ascend ModelZoo export) with seeded weights.

    64,363,101 parameters with 80 classes, as the darknet model has (its yolov4.weights holds
    64,429,405 floats: these and 66,304 BN running statistics). 64.3 GMACs at 608x608, which
    darknet reports as 128.5 BFLOPs (it counts 2 FLOPs per multiply-accumulate).

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 3, image_size, image_size] (float32).
    image_size : int
        Height and width of the input image, a multiple of 32.
    num_classes : int
        Classes per anchor; each head map has 3 x (5 + num_classes) channels.
    seed : int
        Seed of the weights; the same seed gives a byte-identical model.
    dynamic_batch : bool
        Make dim 0 of the input and outputs the symbolic ``"batch"``.

    Returns
    -------
    onnx.ModelProto
        Outputs ``feature_map_1``, ``_2`` and ``_3`` [batch, 3 x (5 + num_classes), s, s] for
        s = image_size / 8, / 16 and / 32.

    Raises
    ------
    ConfigError
        A size is not a positive integer, or image_size is not a multiple of 32.
    """
    check_positive("yolov4", batch=batch, image_size=image_size, num_classes=num_classes)
    if image_size % STRIDE:
        raise ConfigError(f"yolov4: image_size must be a multiple of 32, got {image_size}")
    out_ch = NUM_ANCHORS * (5 + num_classes)
    net = _Net(seed)
    d3, d4, d5 = _backbone(net)
    _head(net, *_neck(net, d5, d4, d3), out_ch)
    return image_model(
        net.b,
        "yolov4",
        batch=batch,
        image_size=image_size,
        outputs=[
            (f"feature_map_{i}", ["batch", out_ch, image_size // s, image_size // s])
            for i, s in ((1, 8), (2, 16), (3, 32))
        ],
        dynamic_batch=dynamic_batch,
        doc="YOLOv4 (Tianxiaomo/pytorch-YOLOv4, Ascend ModelZoo export) with seeded weights",
        # BN statistics are per channel and the network is fully convolutional: a smaller
        # image measures the same scales at a fraction of a 608x608 run's time and memory.
        calibration_size=min(image_size, CALIBRATION_SIZE),
    )
