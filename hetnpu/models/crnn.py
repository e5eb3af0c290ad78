"""CRNN, the text recogniser of the Ascend ModelZoo's CRNN_BuiltIn_for_Pytorch, exported the way
``torch.onnx.export`` writes it (opset 11 there, 17 here).

The model is ``crnn.CRNN(32, 1, 37, 256)`` of ``PyTorch/built-in/cv/classification/
CRNN_for_PyTorch/crnn.py`` (Ascend/ModelZoo-PyTorch), which ``ACL_PyTorch/built-in/cv/
CRNN_BuiltIn_for_Pytorch/pth2onnx.py`` exports: a 1x32x100 grey image; seven 3x3 convs with
bias (64, 128, 256, 256, 512, 512 channels, then a 2x2 valid conv to 512), BN after the third,
fifth and seventh, ReLU after each, and max pools 2x2/2, 2x2/2, then twice 2x2 with stride (2, 1)
and padding (0, 1), which leave a 512 x 1 x 26 map; squeezed and permuted to 26 time steps;
two BidirectionalLSTM modules (hidden 256), each made of a forward ``nn.LSTM`` and a second
``nn.LSTM`` run on the time-flipped sequence (a Slice with step -1 before and after it), their
outputs concatenated and projected by a Linear (to 256, then to the 37 classes); LogSoftmax
over the classes. Output [26, batch, 37], time-major.

Reference: Shi, Bai and Yao, "An End-to-End Trainable Neural Network for Image-based Sequence
Recognition and Its Application to Scene Text Recognition", TPAMI 2017.
"""

from __future__ import annotations

import numpy as np
import onnx

from hetnpu.errors import ConfigError
from hetnpu.models._builder import GraphBuilder, check_positive
from hetnpu.models._layers import conv_out, image_model, max_pool, relu, scope

__all__ = ["crnn"]

IMAGE_HEIGHT = 32  # imgH: four halvings and the 2x2 valid conv bring 32 rows to 1
CHANNELS = (64, 128, 256, 256, 512, 512, 512)
BATCH_NORM = (2, 4, 6)  # convRelu(i, batchNormalization=True)
HIDDEN = 256  # nh
CLASSES = 37  # 36 characters and the CTC blank
INT64_MIN_PLUS_1 = -(2**63) + 1  # the "to the start" end of torch.flip's exported Slice


def _pool(b: GraphBuilder, x: str, at: str, tall: bool) -> str:
    """pooling0/1 (MaxPool2d(2, 2)) or, ``tall``, pooling2/3 (kernel 2, stride (2, 1), padding
    (0, 1)), which halve the height and keep the width, plus one."""
    if not tall:
        return max_pool(b, x, at, 2, 2)
    return b.node(
        "MaxPool",
        [x],
        at,
        ceil_mode=0,
        dilations=[1, 1],
        kernel_shape=[2, 2],
        pads=[0, 1, 0, 1],
        strides=[2, 1],
    )


def _flip(b: GraphBuilder, x: str, at: str) -> str:
    """torch.flip(x, [0]) as exported: a Slice of step -1 along the time axis."""
    consts = [np.array([v], np.int64) for v in (-1, INT64_MIN_PLUS_1, 0, -1)]
    return b.node("Slice", [x, *(b.constant(at, c) for c in consts)], at)


def _lstm(b: GraphBuilder, x: str, name: str, fin: int) -> str:
    """A one-layer unidirectional ``nn.LSTM`` on [T, batch, fin]: ONNX LSTM, then Squeeze of its
    num_directions axis. Weights as torch initialises them, U(±1/√hidden) (std 1/√(3·hidden))."""
    std = float(1.0 / np.sqrt(3 * HIDDEN))
    at = scope(name)
    w = b.normal(f"{name}.weight_ih_l0", (1, 4 * HIDDEN, fin), std)
    r = b.normal(f"{name}.weight_hh_l0", (1, 4 * HIDDEN, HIDDEN), std)
    bias = b.normal(f"{name}.bias_l0", (1, 8 * HIDDEN), std)  # bias_ih_l0 then bias_hh_l0
    y = b.node("LSTM", [x, w, r, bias], at, direction="forward", hidden_size=HIDDEN)
    return b.node("Squeeze", [y, b.constant(at, np.array([1], np.int64))], at)


def _bidirectional(b: GraphBuilder, x: str, index: int, fin: int, fout: int, steps: int) -> str:
    name = f"rnn.{index}"
    at = f"/rnn/{name}"
    fw = _lstm(b, x, f"{name}.fw_rnn", fin)
    bw = _flip(b, _lstm(b, _flip(b, x, at), f"{name}.bw_rnn", fin), at)
    y = b.node("Concat", [fw, bw], at, axis=2)
    # recurrent.view(T * b, h), embedding, output.view(T, b, -1)
    y = b.node("Reshape", [y, b.constant(at, np.array([-1, 2 * HIDDEN], np.int64))], at)
    y = b.gemm(y, f"{at}/embedding", f"{name}.embedding", 2 * HIDDEN, fout)
    return b.node("Reshape", [y, b.constant(at, np.array([steps, -1, fout], np.int64))], at)


def crnn(
    batch: int = 1,
    width: int = 100,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build the Ascend ModelZoo CRNN (``CRNN(32, 1, 37, 256)``) with seeded random weights.

    8,331,301 parameters, which the paper gives as 8.3M. The MACs have no published figure:
    about 0.70 G at 32x100, 0.63 G of them in the convs.

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, 1, 32, width] (float32).
    width : int
        Width of the image; the model reads width // 4 + 1 time steps (26 for 100).
    seed : int
        Seed of the weights; the same seed gives a byte-identical model.
    dynamic_batch : bool
        Make the batch dims of the input and output the symbolic ``"batch"``.

    Returns
    -------
    onnx.ModelProto
        Output ``log_probs`` [steps, batch, 37]: log-softmaxed class scores per time step.

    Raises
    ------
    ConfigError
        A size is not a positive integer, or width is under 4 (two 2x2/2 pools leave no column).
    """
    check_positive("crnn", batch=batch, width=width)
    if width < 4:
        raise ConfigError(f"crnn: width must be at least 4, got {width}")
    b = GraphBuilder(seed)
    y, cin, w, module = "input", 1, width, 0
    for i, cout in enumerate(CHANNELS):
        kernel, pad = (2, 0) if i == 6 else (3, 1)
        conv = f"cnn.conv{i}"
        y = b.conv(y, f"/cnn/{conv}", conv, cin, cout, kernel, padding=pad, bias=True)
        if i in BATCH_NORM:
            y = b.batch_norm(y, f"/cnn/cnn.batchnorm{i}", f"cnn.batchnorm{i}", cout)
        y, cin, w = relu(b, y, f"/cnn/cnn.relu{i}"), cout, conv_out(w, kernel, 1, pad)
        if i in (0, 1, 3, 5):
            tall = i >= 3
            y = _pool(b, y, f"/cnn/cnn.pooling{module}", tall)
            w, module = (w + 1 if tall else w // 2), module + 1
    # squeeze(2), then [b, c, w] → [w, b, c]
    y = b.node("Squeeze", [y, b.constant("", np.array([2], np.int64))], "")
    y = b.node("Transpose", [y], "", perm=[2, 0, 1])
    y = _bidirectional(b, y, 0, cin, HIDDEN, w)
    y = _bidirectional(b, y, 1, HIDDEN, CLASSES, w)
    b.node("LogSoftmax", [y], "", out="log_probs", axis=2)
    return image_model(
        b,
        "crnn",
        batch=batch,
        image_size=(IMAGE_HEIGHT, width),
        channels=1,
        outputs=[("log_probs", [w, "batch", CLASSES])],
        dynamic_batch=dynamic_batch,
        doc="CRNN (Ascend ModelZoo CRNN_for_PyTorch) with seeded random weights",
    )
