"""Helpers of the numerics tests: models that expose their activations, and inputs for them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

FP16_MAX = float(np.finfo(np.float16).max)


def with_activations(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose every float32 node output is also a graph output.

    Outputs come in node order, so the first one beyond a threshold is the first op to exceed it.
    """
    inferred = onnx.shape_inference.infer_shapes(model)
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    infos = {vi.name: vi for vi in inferred.graph.value_info}
    known = {o.name for o in probe.graph.output}
    for node in model.graph.node:
        for out in node.output:
            vi = infos.get(out)
            if (
                vi is not None
                and out not in known
                and vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
                and node.op_type not in ("Constant", "ConstantOfShape")
            ):
                probe.graph.output.append(vi)
                known.add(out)
    return probe


def producers(model: onnx.ModelProto) -> dict[str, onnx.NodeProto]:
    return {o: n for n in model.graph.node for o in n.output}


def ramp_feeds(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """The inputs onnx's own backend suite feeds a light model: ``arange(n) / n``."""
    inits = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        shape = [d.dim_value or 1 for d in vi.type.tensor_type.shape.dim]
        n = int(np.prod(shape))
        feeds[vi.name] = (np.arange(n).reshape(shape) / n).astype(np.float32)
    return feeds


def light_model(light_dir: Path, name: str) -> onnx.ModelProto:
    return onnx.load(light_dir / f"{name}.onnx")


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| / max |want| (both as float64)."""
    got64, want64 = got.astype(np.float64), want.astype(np.float64)
    scale = float(np.max(np.abs(want64))) if want64.size else 0.0
    err = float(np.max(np.abs(got64 - want64))) if want64.size else 0.0
    return err / scale if scale > 0 else err


def fp16_rounded(model: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``model`` whose float32 weights are rounded to fp16 (kept as float32).

    What the NPU holds after ATC converts the weights, before it computes anything.
    """
    from onnx import numpy_helper

    out = onnx.ModelProto()
    out.CopyFrom(model)
    for i, t in enumerate(out.graph.initializer):
        if t.data_type == onnx.TensorProto.FLOAT:
            arr = numpy_helper.to_array(t).astype(np.float16).astype(np.float32)
            out.graph.initializer[i].CopyFrom(numpy_helper.from_array(arr, t.name))
    return out
