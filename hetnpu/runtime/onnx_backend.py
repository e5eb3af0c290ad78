"""onnx's ``Backend`` interface over :class:`~hetnpu.runtime.session.InferenceSession`.

This lets onnx's own conformance suite (``onnx.backend.test.BackendTest``) run against hetnpu::

    backend = hetnpu.runtime.onnx_backend.configured(devices=["sim-npu", "cpu"], precision="fp32")
    onnx.backend.test.BackendTest(backend, __name__)
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.backend.base import Backend, BackendRep

__all__ = ["HetnpuBackend", "HetnpuRep", "configured"]


class HetnpuRep(BackendRep):
    """A prepared model: one session."""

    def __init__(self, session: Any) -> None:
        self.session = session

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        """Run on ``inputs``: a dict by name, or a sequence in the order of the model's inputs."""
        names = [i.name for i in self.session.get_inputs()]
        if isinstance(inputs, dict):
            feed = dict(inputs)
        else:
            seq = list(inputs) if isinstance(inputs, list | tuple) else [inputs]
            feed = dict(zip(names, seq, strict=False))
        # onnx's suite feeds 0-d values as numpy scalars (np.float32(2.0)); they are tensors.
        feed = {k: np.asarray(v) if isinstance(v, np.generic) else v for k, v in feed.items()}
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
        from hetnpu.runtime.session import InferenceSession

        super().prepare(model, device, **kwargs)
        options = dict(cls.session_options)
        if "chip" not in options:
            # The default chip, loaded once rather than once per model.
            options["chip"] = _default_chip()
        return HetnpuRep(InferenceSession(model, devices=list(cls.devices), **options))

    @classmethod
    def run_model(cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any):  # type: ignore[no-untyped-def]
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple[Any, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, ...]:
        """Run one node: it becomes a one-node model whose inputs are typed from ``inputs``."""
        super().run_node(node, inputs, device=device, outputs_info=outputs_info, **kwargs)
        names = [n for n in node.input if n]
        arrays = (
            [np.asarray(inputs[n]) for n in names]
            if isinstance(inputs, dict)
            else [np.asarray(v) for v in inputs]
        )
        graph_inputs = [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
            for n, a in zip(names, arrays, strict=True)
        ]
        opset = int(kwargs.get("opset_version", onnx.defs.onnx_opset_version()))
        probe = helper.make_model(
            helper.make_graph([node], "node", graph_inputs, []),
            opset_imports=[helper.make_opsetid(node.domain or "", opset)],
        )
        inferred = {vi.name: vi for vi in onnx.shape_inference.infer_shapes(probe).graph.value_info}
        outputs = []
        for i, name in enumerate(o for o in node.output if o):
            if outputs_info is not None:
                dtype, shape = outputs_info[i]
                elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
                outputs.append(helper.make_tensor_value_info(name, elem, shape))
            elif name in inferred:
                outputs.append(inferred[name])
            else:
                outputs.append(helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
        model = helper.make_model(
            helper.make_graph([node], "node", graph_inputs, outputs),
            opset_imports=list(probe.opset_import),
        )
        return cls.prepare(model, device).run(dict(zip(names, arrays, strict=True)))


@functools.cache
def _default_chip() -> Any:
    from hetnpu import chips

    return chips.load("ascend910")


def configured(devices: Sequence[str] = ("cpu",), **session_options: Any) -> type[HetnpuBackend]:
    """A backend class whose sessions use ``devices`` and ``session_options``."""
    name = "HetnpuBackend_" + "_".join(d.replace("-", "") for d in devices)
    return type(
        name,
        (HetnpuBackend,),
        {"devices": tuple(devices), "session_options": dict(session_options)},
    )
