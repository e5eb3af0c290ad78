"""A small multilayer perceptron: Gemm + Relu layers and a Softmax, for fast tests."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import onnx

from hetnpu.models._builder import FLOAT, GraphBuilder, check_positive, io

__all__ = ["mlp"]


def mlp(
    batch: int = 1,
    in_features: int = 784,
    hidden: Sequence[int] = (512, 256),
    num_classes: int = 10,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build an MLP ``in_features → *hidden → num_classes`` with He-normal weights.

    Parameters
    ----------
    batch : int
        Batch size of the input ``input`` [batch, in_features] (float32).
    in_features : int
        Width of the input.
    hidden : sequence of int
        Widths of the hidden layers, each a Gemm followed by Relu (``fc1``, ``fc2``, ...).
    num_classes : int
        Width of the output ``probabilities`` [batch, num_classes], a Softmax over classes.
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
    widths = [in_features, *hidden, num_classes]
    check_positive("mlp", batch=batch, num_classes=num_classes, in_features=in_features)
    check_positive("mlp", **{f"hidden[{i}]": w for i, w in enumerate(hidden)})
    b = GraphBuilder(seed)
    y = "input"
    for i, (fin, fout) in enumerate(itertools.pairwise(widths), start=1):
        y = b.gemm(y, f"/fc{i}", f"fc{i}", fin, fout)
        if i < len(widths) - 1:
            y = b.node("Relu", [y], f"/relu{i}")
    b.node("Softmax", [y], "/softmax", out="probabilities", axis=-1)
    return b.model(
        "mlp",
        [io("input", FLOAT, [batch, in_features], dynamic_batch)],
        [io("probabilities", FLOAT, [batch, num_classes], dynamic_batch)],
        f"MLP {' -> '.join(map(str, widths))} with seeded random weights (hetnpu.models)",
    )
