"""Which front end compiled the model the simulator times: ATC's ONNX parser, or torch_npu.

A model converted by ATC (``atc --framework=5``) is limited to the ONNX operators and opsets
CANN's parser accepts (:mod:`hetnpu.devices.capability`). LLMs run on the 910B from PyTorch
instead, through torch_npu and torchair's graph mode (the torchair README's ChatGLM3 and Llama
examples): there the fused kernels (``npu_fusion_attention``, ``npu_rms_norm``,
``npu_rotary_mul``) are called directly and no ONNX parser stands in between. Within
:func:`torch_frontend`, the simulator times every op it has a lowering for, opset-23
``Attention``/``RotaryEmbedding``/``RMSNormalization`` included, and skips ATC's parser rules.

Left out: torch_npu's own operator coverage (an op without a lowering is still unsupported).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["onnx_parser_applies", "torch_frontend"]

_TORCH: ContextVar[bool] = ContextVar("hetnpu_torch_frontend", default=False)


@contextlib.contextmanager
def torch_frontend() -> Iterator[None]:
    """Within the block, simulated models come from torch_npu/torchair, not from ATC."""
    token = _TORCH.set(True)
    try:
        yield
    finally:
        _TORCH.reset(token)


def onnx_parser_applies() -> bool:
    """ATC's ONNX parser rules decide what the NPU runs (outside :func:`torch_frontend`)."""
    return not _TORCH.get()
