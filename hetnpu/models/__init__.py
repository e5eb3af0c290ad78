"""Standard networks built as ONNX with seeded random weights: no downloads, opset 17.

Each builder returns an ``onnx.ModelProto`` that passes
``onnx.checker.check_model(full_check=True)`` and runs in onnxruntime; the same seed gives
byte-identical models. Weights are scaled so that activations stay O(1) at every layer
(He-normal convs and Gemms, calibrated batch norms, BERT's own initialiser), which keeps fp16
NPU runs finite.

>>> import hetnpu.models as models
>>> sorted(models.MODELS)
['bert_base', 'mlp', 'mobilenetv2', 'resnet50']
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
from hetnpu.models.bert import bert_base
from hetnpu.models.mlp import mlp
from hetnpu.models.mobilenetv2 import mobilenetv2
from hetnpu.models.resnet50 import resnet50

__all__ = [
    "DESCRIPTIONS",
    "MODELS",
    "OPSET",
    "bert_base",
    "build",
    "count_params",
    "get",
    "mlp",
    "mobilenetv2",
    "param_count",
    "resnet50",
    "source",
]

MODELS: dict[str, Callable[..., onnx.ModelProto]] = {
    "resnet50": resnet50,
    "mobilenetv2": mobilenetv2,
    "bert_base": bert_base,
    "mlp": mlp,
}
"""Every builder by name; each takes keyword arguments and returns an ``onnx.ModelProto``."""

DESCRIPTIONS: dict[str, str] = {
    "resnet50": "torchvision ResNet-50 v1.5, 224x224 image -> 1000 logits",
    "mobilenetv2": "torchvision MobileNetV2 (width 1.0), 224x224 image -> 1000 logits",
    "bert_base": "BERT-base encoder (12 layers, hidden 768), token ids -> last_hidden_state",
    "mlp": "MLP 784 -> 512 -> 256 -> 10 with Softmax, for fast tests",
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
