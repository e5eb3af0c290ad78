"""Standard networks built as ONNX with seeded random weights: no downloads, opset 17.

Each builder returns an ``onnx.ModelProto`` that passes
``onnx.checker.check_model(full_check=True)`` and runs in onnxruntime; the same seed gives
byte-identical models. Weights are scaled so that activations stay O(1) at every layer
(He-normal convs and Gemms, calibrated batch norms, BERT's own initialiser), which keeps fp16
NPU runs finite.

The networks of the simulator's calibration table (``hetnpu/fidelity/data/calibration.csv``)
are here as their measured graphs were defined: torchvision's classifiers, the Ascend ModelZoo's
MobileNetV1, ShuffleNet V1, CRNN and YOLOv4 ports, and BERT-base with a SQuAD head. Each module
names the definition it follows.

>>> import hetnpu.models as models
>>> sorted(models.MODELS)[:6]
['alexnet', 'bert_base', 'bert_squad', 'crnn', 'densenet121', 'googlenet']
>>> m = models.build("mlp", batch=4)
>>> models.count_params(m)
535818
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from typing import Any

import onnx

from hetnpu.errors import ConfigError
from hetnpu.models._builder import OPSET, count_params, shapes_only
from hetnpu.models.alexnet import alexnet
from hetnpu.models.bert import bert_base, bert_squad
from hetnpu.models.crnn import crnn
from hetnpu.models.decoder import build_decoder
from hetnpu.models.densenet import densenet121
from hetnpu.models.inception import googlenet, inception_v3
from hetnpu.models.mlp import mlp
from hetnpu.models.mobilenetv1 import mobilenet_v1
from hetnpu.models.mobilenetv2 import mobilenetv2
from hetnpu.models.resnet import resnet18, resnet101, resnext50_32x4d
from hetnpu.models.resnet50 import resnet50
from hetnpu.models.shufflenet import shufflenet_v1, shufflenet_v2_x1_0
from hetnpu.models.squeezenet import squeezenet1_1
from hetnpu.models.vgg import vgg16, vgg19
from hetnpu.models.yolov4 import yolov4

__all__ = [
    "DESCRIPTIONS",
    "MODELS",
    "OPSET",
    "alexnet",
    "bert_base",
    "bert_squad",
    "build",
    "build_decoder",
    "count_params",
    "crnn",
    "densenet121",
    "get",
    "googlenet",
    "inception_v3",
    "mlp",
    "mobilenet_v1",
    "mobilenetv2",
    "param_count",
    "resnet18",
    "resnet50",
    "resnet101",
    "resnext50_32x4d",
    "shapes_only",
    "shufflenet_v1",
    "shufflenet_v2_x1_0",
    "source",
    "squeezenet1_1",
    "vgg16",
    "vgg19",
    "yolov4",
]

MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet50": resnet50,
    "mobilenetv2": mobilenetv2,
    "bert_base": bert_base,
    "mlp": mlp,
    "resnet18": resnet18,
    "resnet101": resnet101,
    "resnext50_32x4d": resnext50_32x4d,
    "densenet121": densenet121,
    "vgg16": vgg16,
    "vgg19": vgg19,
    "alexnet": alexnet,
    "googlenet": googlenet,
    "inception_v3": inception_v3,
    "mobilenet_v1": mobilenet_v1,
    "shufflenet_v2_x1_0": shufflenet_v2_x1_0,
    "shufflenet_v1": shufflenet_v1,
    "squeezenet1_1": squeezenet1_1,
    "crnn": crnn,
    "yolov4": yolov4,
    "bert_squad": bert_squad,
}
"""Every builder by name; each takes keyword arguments and returns an ``onnx.ModelProto``."""

DESCRIPTIONS: dict[str, str] = {
    "resnet50": "torchvision ResNet-50 v1.5, 224x224 image -> 1000 logits",
    "mobilenetv2": "torchvision MobileNetV2 (width 1.0), 224x224 image -> 1000 logits",
    "bert_base": "BERT-base encoder (12 layers, hidden 768), token ids -> last_hidden_state",
    "mlp": "MLP 784 -> 512 -> 256 -> 10 with Softmax, for fast tests",
    "resnet18": "torchvision ResNet-18, 224x224 image -> 1000 logits",
    "resnet101": "torchvision ResNet-101 v1.5, 224x224 image -> 1000 logits",
    "resnext50_32x4d": "torchvision ResNeXt-50 32x4d, 224x224 image -> 1000 logits",
    "densenet121": "torchvision DenseNet-121, 224x224 image -> 1000 logits",
    "vgg16": "torchvision VGG-16 (no BN), 224x224 image -> 1000 logits",
    "vgg19": "torchvision VGG-19 (no BN), 224x224 image -> 1000 logits",
    "alexnet": "torchvision AlexNet, 224x224 image -> 1000 logits",
    "googlenet": "torchvision GoogLeNet (eval, transform_input), 224x224 image -> 1000 logits",
    "inception_v3": "torchvision Inception v3 (eval, transform_input), 299x299 -> 1000 logits",
    "mobilenet_v1": "MobileNetV1 1.0 (Ascend ModelZoo port), 224x224 image -> 1000 logits",
    "shufflenet_v2_x1_0": "torchvision ShuffleNet V2 x1.0, 224x224 image -> 1000 logits",
    "shufflenet_v1": "ShuffleNet V1 1.0x g=3 (Megvii), 224x224 image -> 1000 logits",
    "squeezenet1_1": "torchvision SqueezeNet 1.1, 224x224 image -> 1000 logits",
    "crnn": "CRNN text recogniser (Ascend ModelZoo), 1x32x100 -> 26 x 37 log-probs",
    "yolov4": "YOLOv4 (pytorch-YOLOv4, Ascend export), 608x608 -> three 255-channel head maps",
    "bert_squad": "BERT-base for SQuAD, 3 int64 token inputs -> start/end logits",
}


def get(name: str) -> Callable[..., onnx.ModelProto]:
    """The builder registered as ``name``.

    Raises
    ------
    ConfigError
        ``name`` is not a key of :data:`MODELS`; the message lists the known ones.
    """
    try:
        return MODELS[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; known models: {', '.join(sorted(MODELS))}"
        ) from None


def build(name: str, **kwargs: Any) -> onnx.ModelProto:
    """Build the model registered as ``name``.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS`.
    **kwargs
        Passed to the builder (``batch``, ``seed``, ``dynamic_batch``, ...).

    Returns
    -------
    onnx.ModelProto

    Raises
    ------
    ConfigError
        ``name`` is not a known model, a keyword does not apply to it, or a size is invalid.
    """
    builder = get(name)
    accepted = inspect.signature(builder).parameters
    for key in kwargs:
        if key not in accepted:
            raise ConfigError(
                f"model {name!r} takes no option {key!r}; it takes {', '.join(accepted)}"
            )
    return builder(**kwargs)


def source(model: str, **kwargs: Any) -> str | onnx.ModelProto:
    """What a command's MODEL argument names: an existing file as its path, else a model of
    :data:`MODELS` built with ``kwargs``, else the path unchanged (so the loader names the
    missing file).

    Raises
    ------
    ConfigError
        A model name with a keyword that does not apply to it, or an invalid size.
    """
    if os.path.exists(model) or model not in MODELS:
        return model
    return build(model, **kwargs)


def param_count(name: str, **kwargs: Any) -> int:
    """Parameters of ``build(name, **kwargs)``, found from shapes alone (no weights drawn).

    >>> param_count("resnet50")
    25557032
    """
    with shapes_only():
        return count_params(build(name, **kwargs))
