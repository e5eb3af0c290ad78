"""ResNet-50 v1.5 as torchvision defines it, exported the way ``torch.onnx.export`` writes it.

Bottleneck blocks (1x1 → 3x3 → 1x1, expansion 4) with the stride on the 3x3 conv (v1.5), a
1x1-conv + BN shortcut where the shape changes, Conv without bias followed by
BatchNormalization, then global average pooling, Flatten and a Gemm classifier:
25,557,032 parameters and about 4.1 GMACs at 224x224, as torchvision publishes. The layers are
:mod:`hetnpu.models.resnet`'s, which builds the rest of the family.
"""

from __future__ import annotations

import onnx

from hetnpu.models.resnet import build_resnet

__all__ = ["resnet50"]


def resnet50(
    batch: int = 1,
    image_size: int = 224,
    num_classes: int = 1000,
    seed: int = 0,
    dynamic_batch: bool = False,
) -> onnx.ModelProto:
    """Build ResNet-50 v1.5 with seeded, well-scaled random weights.

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

    Examples
    --------
    >>> from hetnpu.models import count_params
    >>> count_params(resnet50())
    25557032
    """
    return build_resnet(
        "resnet50",
        "bottleneck",
        (3, 4, 6, 3),
        batch=batch,
        image_size=image_size,
        num_classes=num_classes,
        seed=seed,
        dynamic_batch=dynamic_batch,
        doc="torchvision ResNet-50 v1.5 topology with seeded random weights (hetnpu.models)",
    )
