"""onnx's ``Backend`` interface over :class:`~hetnpu.session.InferenceSession`.

This lets onnx's own conformance suite (``onnx.backend.test.BackendTest``) run against hetnpu::

    backend = hetnpu.onnx_backend.configured(devices=["sim-npu", "cpu"], precision="fp32")
    onnx.backend.test.BackendTest(backend, __name__)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx.backend.base import Backend, BackendRep

__all__ = ["HetnpuBackend", "HetnpuRep", "configured"]


class HetnpuRep(BackendRep):
    """A prepared model: one session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        names = [i.name for i in self.session.get_inputs()]
        if isinstance(inputs, dict):
            feed = dict(inputs)
        else:
            seq = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
            feed = dict(zip(names, seq, strict=False))
        return tuple(self.session.run(None, feed))


class HetnpuBackend(Backend):
    """Runs models through hetnpu sessions on ``devices``.

    ``devices`` and the session options are class attributes; see :func:`configured`.
    """

    devices: Sequence[str] = ("cpu",)
    session_options: dict[str, Any] = {}  # noqa: RUF012 - replaced per configured subclass

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return True

    @classmethod
    def supports_device(cls, device: str) -> bool:
        # onnx's suite asks for "CPU" or "CUDA"; hetnpu's own device list is the class's.
        return device == "CPU"

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> HetnpuRep:
        from hetnpu.session import InferenceSession

        super().prepare(model, device, **kwargs)
        return HetnpuRep(InferenceSession(model, devices=list(cls.devices), **cls.session_options))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):  # type: ignore[no-untyped-def]
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info=None,
        **kwargs: Any,
    ):  # type: ignore[no-untyped-def]
        raise NotImplementedError("hetnpu runs whole models; onnx's suite uses run_model")


def configured(devices: Sequence[str] = ("cpu",), **session_options: Any) -> type[HetnpuBackend]:
    """A backend class whose sessions use ``devices`` and ``session_options``."""
    name = "HetnpuBackend_" + "_".join(d.replace("-", "") for d in devices)
    return type(
        name,
        (HetnpuBackend,),
        {"devices": tuple(devices), "session_options": dict(session_options)},
    )
