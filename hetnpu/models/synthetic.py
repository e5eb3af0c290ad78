"""Seeded random ONNX DAGs for partitioner tests and benchmarks.

A random DAG mixes ops an accelerator runs (1x1 convolutions, element-wise maths) with ops
it may lack (``unsupported_ops``), and, like onnx's shipped "light" models, feeds some ops a
``ConstantOfShape`` over an initializer, which folds away at compile time. Every tensor has
the same 4-D shape, so any op can read any earlier tensor and the graph's shape is decided by
the seed alone. The models pass ``onnx.checker`` and run in onnxruntime.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["DEFAULT_UNSUPPORTED", "large_dag", "random_dag"]

OPSET = 17

_UNARY = ("Relu", "Sigmoid", "Tanh", "Abs", "Neg")
_BINARY = ("Add", "Mul", "Sub", "Max")

DEFAULT_UNSUPPORTED: tuple[str, ...] = ("CastLike", "Hardmax")
"""Shape-preserving ops some device lacks: CANN's ONNX parser and onnxruntime's CUDA kernels
have no ``CastLike`` (emitted here as ``CastLike(t, t)``), the CUDA kernels no ``Hardmax``."""


def random_dag(
    n_nodes: int,
    seed: int = 0,
    *,
    channels: int = 8,
    spatial: int = 4,
    unsupported_ops: Sequence[str] = DEFAULT_UNSUPPORTED,
    unsupported_fraction: float = 0.15,
    conv_fraction: float = 0.2,
    constant_fraction: float = 0.15,
    window: int = 6,
    name: str | None = None,
) -> onnx.ModelProto:
    """A random DAG of ``n_nodes`` compute ops (plus the constant producers some of them read).

    Parameters
    ----------
    n_nodes
        Number of non-constant ops.
    seed
        Seed of every random choice and weight: equal seeds give equal models.
    channels, spatial
        Every activation has shape ``(1, channels, spatial, spatial)``.
    unsupported_ops
        Unary ops drawn with probability ``unsupported_fraction``: the ops a test's accelerator
        cannot run.
    conv_fraction
        Probability of a 1x1 ``Conv`` (its weight an initializer).
    constant_fraction
        Probability that a binary op's second operand is a folded ``ConstantOfShape``.
    window
        Each op reads among the ``window`` most recent tensors: small windows give deep, narrow
        graphs; large ones wide graphs.
    name
        Graph name (default ``random_dag_<n>_<seed>``).

    Returns
    -------
    onnx.ModelProto
        Checker-valid; inputs ``x``; outputs every tensor no op reads.
    """
    if n_nodes < 1:
        raise ValueError(f"n_nodes must be positive, got {n_nodes}")
    rng = np.random.default_rng(seed)
    shape = [1, channels, spatial, spatial]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = [
        numpy_helper.from_array(np.array(shape, dtype=np.int64), "act_shape")
    ]
    tensors = ["x"]
    consumed: set[str] = set()

    def pick() -> str:
        lo = max(0, len(tensors) - window)
        t = tensors[int(rng.integers(lo, len(tensors)))]
        consumed.add(t)
        return t

    for i in range(n_nodes):
        block = f"/block{i // 8}"
        out = f"{block}/t{i}"
        r = rng.random()
        if r < unsupported_fraction and unsupported_ops:
            op = str(rng.choice(list(unsupported_ops)))
            a = pick()
            ins = [a, a] if op == "CastLike" else [a]
            nodes.append(helper.make_node(op, ins, [out], name=f"{block}/{op}_{i}"))
        elif r < unsupported_fraction + conv_fraction:
            w = f"w{i}"
            weight = rng.normal(0, 1 / np.sqrt(channels), (channels, channels, 1, 1))
            inits.append(numpy_helper.from_array(weight.astype(np.float32), w))
            nodes.append(helper.make_node("Conv", [pick(), w], [out], name=f"{block}/Conv_{i}"))
        elif rng.random() < 0.5:
            op = str(rng.choice(_BINARY))
            a = pick()
            if rng.random() < constant_fraction:
                const = f"{block}/c{i}"
                fill = [float(rng.uniform(0.5, 1.5))]
                value = helper.make_tensor("value", TensorProto.FLOAT, [1], fill)
                nodes.append(
                    helper.make_node(
                        "ConstantOfShape",
                        ["act_shape"],
                        [const],
                        name=f"{block}/ConstantOfShape_{i}",
                        value=value,
                    )
                )
                b = const
            else:
                b = pick()
            nodes.append(helper.make_node(op, [a, b], [out], name=f"{block}/{op}_{i}"))
        else:
            op = str(rng.choice(_UNARY))
            nodes.append(helper.make_node(op, [pick()], [out], name=f"{block}/{op}_{i}"))
        tensors.append(out)

    sinks = [t for t in tensors[1:] if t not in consumed]
    graph = helper.make_graph(
        nodes,
        name or f"random_dag_{n_nodes}_{seed}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(t, TensorProto.FLOAT, shape) for t in sinks],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="hetnpu.models"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def large_dag(n_nodes: int = 10_000, seed: int = 0, **kwargs: object) -> onnx.ModelProto:
    """A large random DAG (10,000 ops by default) for partitioning-time benchmarks.

    Same generator as :func:`random_dag`, with a wider window so the graph has parallel
    branches as real networks do; ``kwargs`` override :func:`random_dag`'s options.
    """
    options: dict[str, object] = {"window": 16, "channels": 16, "spatial": 8}
    options.update(kwargs)
    return random_dag(n_nodes, seed, name=f"large_dag_{n_nodes}_{seed}", **options)  # type: ignore[arg-type]
