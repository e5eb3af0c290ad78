"""What ATC does to a graph before anything is cast to the NPU's dtypes: folding, in fp32.

ATC folds constant subgraphs and BatchNormalization at compile time, in the model's own
float32, and only then casts what remains for fp16 execution. A running variance of 1e8 is
fine in fp32 (its 1/sqrt is 1e-4) but is inf in fp16, so a simulator that cast the model's
constants first would turn the whole output to zeros where the chip is right.

- Constant folding: every node whose inputs are all weights (initializers, or outputs of nodes
  folded before it) is computed once with onnx's reference evaluator and becomes a weight.
- BatchNormalization (inference, one output, constant statistics) becomes the per-channel
  ``scale' = scale / sqrt(var + eps)`` and ``shift' = B - mean * scale'``, computed in float32.
  After a Conv with constant weights whose output only it reads, ``scale'`` and ``shift'`` go into
  the Conv's weights and bias (the fold the simulator already counts as free: a BatchNormalization
  after a Cube op is a fused epilogue in :func:`hetnpu.simulator.prepare.fusion_map`). Anywhere
  else it stays a BatchNormalization node, with the folded values and unit variance
  (``mean = 0``, ``var = 1 - eps``), which computes ``x * scale' + shift'`` like ATC's
  BNInference.

Left out: ATC's other graph fusions (they change speed, not values) and folding into Gemm,
MatMul or ConvTranspose (such a BatchNormalization is folded in place instead).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = ["fold_for_npu"]

# Random generators have no value to fold.
_NOT_FOLDED = frozenset(
    {"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
     "Multinomial"}
)  # fmt: skip


def fold_for_npu(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its constants and BatchNormalizations folded in float32, as ATC does.

    ``model`` itself is left unchanged. Graph inputs, outputs and the names of the nodes that
    remain are kept, so an error or overflow report still names the user's nodes.

    Examples
    --------
    A Conv -> BatchNormalization -> Relu model:

    >>> folded = fold_for_npu(model)  # doctest: +SKIP
    >>> [n.op_type for n in folded.graph.node]  # doctest: +SKIP
    ['Conv', 'Relu']
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    weights = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    nodes = _fold_constants(out, weights)
    nodes = _fold_batch_norms(out, nodes, weights)
    used = {i for n in nodes for i in n.input} | {o.name for o in out.graph.output}
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    del out.graph.initializer[:]
    out.graph.initializer.extend(
        numpy_helper.from_array(v, k) for k, v in weights.items() if k in used
    )
    return out


def _fold_constants(model: onnx.ModelProto, weights: dict[str, np.ndarray]) -> list[onnx.NodeProto]:
    """The graph's nodes less those computable from weights alone, whose outputs join
    ``weights``."""
    from onnx.reference import ReferenceEvaluator

    graph_outputs = {o.name for o in model.graph.output}
    known = set(weights)
    constant, kept = [], []
    # Copies: the caller rewrites nodes (BatchNormalization into a Conv) and then replaces the
    # graph's node list, which would leave references into it dangling.
    every = [_copy(n) for n in model.graph.node]
    for node in every:
        foldable = (
            node.domain in ("", "ai.onnx")
            and node.op_type not in _NOT_FOLDED
            and not any(a.type == onnx.AttributeProto.GRAPH for a in node.attribute)
            and all(i in known for i in node.input if i)
            and not graph_outputs.intersection(node.output)
        )
        if foldable:
            constant.append(node)
            known.update(node.output)
        else:
            kept.append(node)
    needed = sorted({i for n in kept for i in n.input} & (known - set(weights)))
    if not needed:
        return every
    sub = helper.make_model(
        helper.make_graph(
            constant,
            "constants",
            [],
            [helper.make_empty_tensor_value_info(n) for n in needed],
            [numpy_helper.from_array(v, k) for k, v in weights.items()],
        ),
        opset_imports=list(model.opset_import),
        ir_version=model.ir_version,
    )
    try:
        values = ReferenceEvaluator(sub).run(None, {})
    except Exception:  # the evaluator raises plain exceptions of many kinds
        # Unfolded, the nodes still compute the same values at run time, only on the device
        # in its dtype; folding is what ATC does, not what makes the graph correct.
        return every
    # An expansion (ConstantOfShape, Expand, Tile...) can fold into a tensor far larger than the
    # whole model (initializers and Constant nodes); stored as a weight it would multiply the
    # memory the model needs, so such a value is left to be computed at run time by the
    # constant nodes that produce it.
    budget = model.ByteSize()
    big: set[str] = set()
    for name, value in zip(needed, values, strict=True):
        value = np.asarray(value)
        if value.nbytes > budget:
            big.add(name)
        else:
            weights[name] = value
    if not big:
        return kept
    producer = {o: n for n in constant for o in n.output}
    keep: set[int] = set()
    pending = list(big)
    while pending:
        node = producer.get(pending.pop())
        if node is not None and id(node) not in keep:
            keep.add(id(node))
            pending.extend(i for i in node.input if i in producer)
    keep.update(id(n) for n in kept)
    return [n for n in every if id(n) in keep]


def _fold_batch_norms(
    model: onnx.ModelProto, nodes: list[onnx.NodeProto], weights: dict[str, np.ndarray]
) -> list[onnx.NodeProto]:
    graph_outputs = {o.name for o in model.graph.output}
    readers: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            readers[i] = readers.get(i, 0) + 1
    producer = {o: n for n in nodes for o in n.output}
    result: list[onnx.NodeProto] = []
    for node in nodes:
        stats = _bn_stats(node, weights)
        if stats is None:
            result.append(node)
            continue
        scale, shift = stats
        conv = producer.get(node.input[0])
        if (
            conv is not None
            and conv.op_type == "Conv"
            and readers.get(node.input[0]) == 1
            and node.input[0] not in graph_outputs
            and all(i in weights for i in conv.input[1:] if i)
            and conv.input[1] in weights
        ):
            _fold_into_conv(conv, node, scale, shift, weights)
            continue
        result.append(_unit_variance_bn(node, scale, shift, weights))
    return result


def _bn_stats(
    node: onnx.NodeProto, weights: dict[str, np.ndarray]
) -> tuple[np.ndarray, np.ndarray] | None:
    """(scale', shift') of an inference BatchNormalization with constant statistics."""
    if node.op_type != "BatchNormalization" or len(node.output) != 1 or len(node.input) != 5:
        return None
    if not all(i in weights for i in node.input[1:]):
        return None
    scale, bias, mean, var = (weights[i].astype(np.float32) for i in node.input[1:])
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    with np.errstate(divide="ignore", invalid="ignore"):
        s = scale / np.sqrt(var + np.float32(eps))
    return s.astype(np.float32), (bias - mean * s).astype(np.float32)


def _fold_into_conv(
    conv: onnx.NodeProto,
    bn: onnx.NodeProto,
    scale: np.ndarray,
    shift: np.ndarray,
    weights: dict[str, np.ndarray],
) -> None:
    """Rewrite ``conv`` in place to compute ``bn(conv(x))`` and write ``bn``'s output."""
    w = weights[conv.input[1]].astype(np.float32)
    b = (
        weights[conv.input[2]].astype(np.float32)
        if len(conv.input) > 2 and conv.input[2]
        else np.zeros(w.shape[0], np.float32)
    )
    base = conv.name or conv.output[0]
    w_name, b_name = _fresh(f"{base}/bn_folded_W", weights), _fresh(f"{base}/bn_folded_B", weights)
    weights[w_name] = (w * scale.reshape(-1, *([1] * (w.ndim - 1)))).astype(np.float32)
    weights[b_name] = (b * scale + shift).astype(np.float32)
    inputs = [conv.input[0], w_name, b_name]
    del conv.input[:]
    conv.input.extend(inputs)
    conv.output[0] = bn.output[0]


def _unit_variance_bn(
    node: onnx.NodeProto, scale: np.ndarray, shift: np.ndarray, weights: dict[str, np.ndarray]
) -> onnx.NodeProto:
    eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
    base = node.name or node.output[0]
    names = []
    for what, value in (
        ("scale", scale),
        ("shift", shift),
        ("mean", np.zeros_like(scale)),
        ("var", np.full_like(scale, 1 - eps)),
    ):
        name = _fresh(f"{base}/bn_folded_{what}", weights)
        weights[name] = value.astype(np.float32)
        names.append(name)
    folded = onnx.NodeProto()
    folded.CopyFrom(node)
    del folded.input[1:]
    folded.input.extend(names)
    return folded


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def _fresh(name: str, taken: dict[str, np.ndarray]) -> str:
    if name not in taken:
        return name
    k = 1
    while f"{name}_{k}" in taken:
        k += 1
    return f"{name}_{k}"
