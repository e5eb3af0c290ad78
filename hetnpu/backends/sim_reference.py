"""The exact implementation of every ONNX op that sim-npu computes on its Vector unit.

sim-npu takes an op's exact result and rounds it as the NPU does (:mod:`hetnpu.backends.sim`);
this module finds that exact result for any op of onnx's own domain:

- onnx's reference implementation, where it has one and computes what the spec says;
- the op's function body (HardSwish, MeanVarianceNormalization...), evaluated as one op;
- otherwise onnxruntime running the node alone (GlobalLpPool, MaxRoiPool...), so an op the
  reference evaluator lacks is never skipped.

Four reference implementations depart from the spec and are replaced: BatchNormalization
before opset 14 (which treats the ``momentum`` default as training mode), LRN (which normalises
over the batch axis), OneHot (which refuses ``depth`` given as a one-element 1-D tensor,
the spec's other form and what TensorFlow exporters write) and GlobalMaxPool (which, for any
input but 4-D, reduces the wrong axes: over channels and length of an (N, C, L) input).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import helper
from onnx.reference.op_run import OpRun
from onnx.reference.ops import load_op

__all__ = ["reference_op"]


def reference_op(op_type: str, opset: int, ir_version: int) -> type[OpRun]:
    """An :class:`OpRun` class computing ``op_type`` exactly, at ``opset``.

    Raises
    ------
    onnx.defs.SchemaError
        ``op_type`` has no schema at ``opset``.
    """
    from onnx.reference import ReferenceEvaluator

    if op_type == "LRN":
        return _Lrn
    if op_type == "GlobalMaxPool":
        return _GlobalMaxPool
    # Scatter (deprecated at opset 11) is ScatterElements under its old name; the reference
    # evaluator implements only the new one.
    name = "ScatterElements" if op_type == "Scatter" else op_type
    onnx.defs.get_schema(op_type, opset, "")  # an op unknown at this opset raises here
    try:
        base = load_op("", name, opset, evaluator_cls=ReferenceEvaluator)
    except Exception:  # no implementation, or a body that depends on the node's context
        return _onnxruntime_op(opset, ir_version)
    if not isinstance(base, type):  # a function body: a factory of OpFunction instances
        return _function_op(base)
    if op_type == "BatchNormalization" and opset < 14:
        return _inference_batch_norm(base)
    if op_type == "OneHot":
        return _one_hot(base)
    return base


def _function_op(factory: Any) -> type[OpRun]:
    """The op as its function body computes it, in a class the evaluator can subclass."""

    class FunctionBody(OpRun):
        op_domain = ""

        def __init__(
            self, onnx_node: onnx.NodeProto, run_params: dict[str, Any], **kw: Any
        ) -> None:
            super().__init__(onnx_node, run_params, **kw)
            self._body = factory(onnx_node, run_params)

        def _run(self, *args: Any, **kwargs: Any) -> Any:
            return self._body._run(*args, **kwargs)

    return FunctionBody


def _onnxruntime_op(opset: int, ir_version: int) -> type[OpRun]:
    """The op run alone by onnxruntime on its CPU, one session per input signature."""

    class OnnxRuntimeNode(OpRun):
        op_domain = ""

        def _run(self, *args: Any, **kwargs: Any) -> tuple:
            import onnxruntime as ort

            names = [n for n in self.onnx_node.input]
            feeds = {n: a for n, a in zip(names, args, strict=False) if n and a is not None}
            key = tuple((n, a.dtype.str, a.ndim) for n, a in feeds.items())
            cache = self.__dict__.setdefault("_sessions", {})
            sess = cache.get(key)
            if sess is None:
                inputs = [
                    helper.make_tensor_value_info(
                        n, helper.np_dtype_to_tensor_dtype(a.dtype), [None] * a.ndim
                    )
                    for n, a in feeds.items()
                ]
                outputs = [helper.make_empty_tensor_value_info(o) for o in self.onnx_node.output]
                graph = helper.make_graph([self.onnx_node], "node", inputs, outputs)
                model = helper.make_model(
                    graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=ir_version
                )
                opts = ort.SessionOptions()
                opts.log_severity_level = 4
                sess = ort.InferenceSession(
                    model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
                )
                cache[key] = sess
            return tuple(sess.run(None, feeds))

    return OnnxRuntimeNode


def _inference_batch_norm(base: type[OpRun]) -> type[OpRun]:
    """``base`` normalising with the running statistics when the node has only output Y.

    Before opset 14, BatchNormalization's ``momentum`` has a default, and the reference
    implementation takes its presence for training mode, normalising with the batch's own
    statistics. A one-output node is inference (the spec: mean and var are outputs only in
    training), as onnxruntime and the NPU run it.
    """
    from onnx.reference.ops.op_batch_normalization import _batchnorm_test_mode

    def _run(self, x, scale, bias, mean, var, epsilon=None, momentum=None, **kwargs):  # type: ignore[no-untyped-def]
        if len(self.onnx_node.output) == 1:
            eps = 1e-5 if epsilon is None else epsilon
            return (_batchnorm_test_mode(x, scale, bias, mean, var, epsilon=eps),)
        return base._run(self, x, scale, bias, mean, var, epsilon=epsilon, momentum=momentum)

    return type(base.__name__, (base,), {"_run": _run})


def _one_hot(base: type[OpRun]) -> type[OpRun]:
    """``base`` taking ``depth`` as a scalar or a one-element tensor, as the spec allows."""

    def _run(self, indices, depth, values, axis=None):  # type: ignore[no-untyped-def]
        depth = np.asarray(depth).reshape(-1)[0]
        return base._run(self, indices, depth, values, axis=-1 if axis is None else axis)

    return type(base.__name__, (base,), {"_run": _run})


class _GlobalMaxPool(OpRun):
    """The maximum over every spatial axis (2 onwards), each kept with size 1."""

    op_domain = ""

    def _run(self, x):  # type: ignore[no-untyped-def]
        return (np.max(x, axis=tuple(range(2, x.ndim)), keepdims=True),)


class _Lrn(OpRun):
    """LRN across channels, as the spec defines it.

    onnx's reference implementation loops over the batch axis where it means the channel axis,
    so every channel but the first is left unnormalised.
    """

    op_domain = ""

    def _run(self, x, alpha=None, beta=None, bias=None, size=None):  # type: ignore[no-untyped-def]
        alpha = 1e-4 if alpha is None else alpha
        beta = 0.75 if beta is None else beta
        bias = 1.0 if bias is None else bias
        before, after = (size - 1) // 2, -(-(size - 1) // 2)
        square = np.square(x.astype(np.float32))
        # Window sums over channels [c - before, c + after] by a cumulative sum.
        padded = np.pad(square, [(0, 0), (before + 1, after)] + [(0, 0)] * (x.ndim - 2))
        csum = np.cumsum(padded, axis=1)
        window = csum[:, size:] - csum[:, :-size]
        y = x / (bias + (alpha / size) * window) ** beta
        return (y.astype(x.dtype),)
