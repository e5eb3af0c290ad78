"""Reproducible mutations of ONNX models: every way an exported file can be broken.

A mutation is named by a :class:`MutationSpec` (source model, kind, seed); :func:`mutate`
applies it and returns the mutant's serialized bytes and a one-line account of what was
changed, so a failing case can be replayed from three values. The kinds:

``truncate``, ``bitflip``
    Damage the serialized bytes (a cut anywhere; flipped bits, biased towards the graph's
    structure at both ends of the file rather than the bulk of the weights).
``dim_zero``, ``dim_negative``, ``dim_huge``
    Set one dim to 0, a negative value, or 2^31 (and neighbours): of a graph input, output or
    value_info, of an initializer's ``dims``, of a shape operand (Reshape, Expand,
    ConstantOfShape, Tile...), or of a shape-like attribute (kernel_shape, pads, perm...).
``dtype_swap``
    Change an element type (inputs, outputs, initializers, Cast's ``to``) to any other,
    including UNDEFINED, STRING, complex, float8/4-bit types and values outside the enum.
``rename_input``, ``drop_input``, ``dangling_edge``, ``duplicate_output``, ``cycle``
    Break the graph's wiring.
``unknown_op``, ``unknown_domain``
    Op types and domains no runtime knows, and broken opset imports.
``attr_wrong_type``
    An attribute replaced by one of another type (or whose type field lies).
``subgraph_missing_outer``
    An ``If``/``Loop`` whose body reads an outer-scope value that does not exist (and, as
    a control, bodies that read existing ones).
``stack``
    Two or three of the structural kinds above, one after another.
``none``
    The source unchanged: a control that must succeed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, numpy_helper

from tests.support._graph_mutations import (
    Skip,
    attr_wrong_type,
    copy_model,
    cycle,
    dangling_edge,
    drop_input,
    duplicate_output,
    rename_input,
    runtime_inputs,
    subgraph_missing_outer,
    unknown_domain,
    unknown_op,
)

__all__ = [
    "BYTE_KINDS",
    "HUGE",
    "KINDS",
    "STRUCTURAL_KINDS",
    "MutationSpec",
    "mutate",
    "mutation_specs",
]

HUGE = 2**31
"""The huge dim: one past int32's range, as an exporter's overflowed or sentinel value."""

_HUGE_VALUES = (HUGE, HUGE, HUGE, HUGE - 1, 2**32, 2**40)
_NEGATIVE_VALUES = (-1, -1, -2, -7, -(2**31))
_DTYPES = (*sorted(set(TensorProto.DataType.values())), 99, -3)

# Operands that carry shapes or sizes rather than data: (op_type, input index).
_SHAPE_OPERANDS = frozenset(
    {
        ("Reshape", 1),
        ("Expand", 1),
        ("ConstantOfShape", 0),
        ("Tile", 1),
        ("Slice", 1),
        ("Slice", 2),
        ("Slice", 3),
        ("Slice", 4),
        ("Resize", 3),
        ("Pad", 1),
        ("Unsqueeze", 1),
        ("Squeeze", 1),
        ("ReduceSum", 1),
        ("ReduceMean", 1),
        ("TopK", 1),
        ("Split", 1),
        ("Range", 1),
        ("OneHot", 1),
    }
)
_SHAPE_ATTRS = frozenset(
    {
        "kernel_shape",
        "strides",
        "pads",
        "dilations",
        "perm",
        "axes",
        "shape",
        "output_shape",
        "output_padding",
        "axis",
        "group",
        "split",
        "blocksize",
        "k",
    }
)
_TYPE_ATTRS = frozenset({"to", "dtype"})


@dataclass(frozen=True)
class MutationSpec:
    """One fuzz case: the source model's name, the mutation kind, and the seed of its choices."""

    source: str
    kind: str
    seed: int

    def __str__(self) -> str:
        return f"{self.source}/{self.kind}/{self.seed}"


def _const_tensor(g: onnx.GraphProto, name: str) -> onnx.TensorProto | None:
    """The TensorProto holding the value of ``name`` (an initializer or a Constant's)."""
    for t in g.initializer:
        if t.name == name:
            return t
    for n in g.node:
        if n.op_type == "Constant" and name in n.output:
            for a in n.attribute:
                if a.name == "value" and a.type == AttributeProto.TENSOR:
                    return a.t
    return None


# --- bytes ------------------------------------------------------------------------------------


def _truncate(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    if rng.random() < 0.5:
        cut = rng.randrange(len(data))
    else:  # near the end: inputs, outputs and value_info are serialized last
        cut = max(0, len(data) - 1 - rng.randrange(min(len(data), 256)))
    return data[:cut], f"truncated to {cut} of {len(data)} bytes"


def _bitflip(data: bytes, rng: random.Random) -> tuple[bytes, str]:
    buf = bytearray(data)
    flips = rng.choice((1, 1, 2, 3, 8, 32))
    edge = min(len(buf), 4096)
    where = []
    for _ in range(flips):
        r = rng.random()
        if r < 0.4:
            pos = rng.randrange(len(buf))
        elif r < 0.7:
            pos = rng.randrange(edge)
        else:
            pos = len(buf) - 1 - rng.randrange(edge)
        bit = rng.randrange(8)
        buf[pos] ^= 1 << bit
        where.append(f"{pos}:{bit}")
    return bytes(buf), f"flipped bits at byte:bit {', '.join(where[:8])}"


# --- dims -------------------------------------------------------------------------------------


def _dim_targets(g: onnx.GraphProto) -> dict[str, list[tuple]]:
    out: dict[str, list[tuple]] = {}
    for kind, vis in (
        ("input", runtime_inputs(g)),
        ("output", list(g.output)),
        ("value_info", list(g.value_info)),
    ):
        out[kind] = [
            (kind, vi.name, d)
            for vi in vis
            if vi.type.HasField("tensor_type")
            for d in range(len(vi.type.tensor_type.shape.dim))
        ]
    out["initializer"] = [
        ("initializer", t.name, d) for t in g.initializer for d in range(len(t.dims))
    ]
    shape_values = []
    for n in g.node:
        for i, name in enumerate(n.input):
            if (n.op_type, i) in _SHAPE_OPERANDS and name:
                t = _const_tensor(g, name)
                if t is not None and t.data_type in (TensorProto.INT64, TensorProto.INT32):
                    # The element is drawn when applied: an earlier mutation (in a stack) may
                    # have made the dims huge.
                    shape_values.append(("shape_value", name, math.prod(t.dims)))
    out["shape_value"] = shape_values
    attrs = []
    for n in g.node:
        for a in n.attribute:
            if a.name in _SHAPE_ATTRS and a.type == AttributeProto.INTS:
                attrs += [("attribute", n.name, a.name, k) for k in range(len(a.ints))]
            elif a.name in _SHAPE_ATTRS and a.type == AttributeProto.INT:
                attrs.append(("attribute", n.name, a.name, -1))
    out["attribute"] = attrs
    return {k: v for k, v in out.items() if v}


def _set_dim(m: onnx.ModelProto, rng: random.Random, value: int) -> str:
    g = m.graph
    targets = _dim_targets(g)
    if not targets:
        raise Skip
    target = rng.choice(targets[rng.choice(sorted(targets))])
    kind, name = target[0], target[1]
    if kind in ("input", "output", "value_info"):
        vis = {"input": g.input, "output": g.output, "value_info": g.value_info}[kind]
        vi = next(v for v in vis if v.name == name)
        dim = vi.type.tensor_type.shape.dim[target[2]]
        if dim.HasField("dim_value") and dim.dim_value == value:
            raise Skip
        dim.Clear()
        dim.dim_value = value
        return f"{kind} {name!r} dim {target[2]} := {value}"
    if kind == "initializer":
        t = next(t for t in g.initializer if t.name == name)
        if t.dims[target[2]] == value:
            raise Skip
        t.dims[target[2]] = value
        return f"initializer {name!r} dims[{target[2]}] := {value}"
    if kind == "shape_value":
        t = _const_tensor(g, name)
        if t is None or not 0 < target[2] <= 1 << 16:
            raise Skip
        arr = numpy_helper.to_array(t).copy()
        k = rng.randrange(arr.size)
        if arr.reshape(-1)[k] == np.array(value).astype(arr.dtype):
            raise Skip
        arr.reshape(-1)[k] = np.array(value).astype(arr.dtype)
        t.CopyFrom(numpy_helper.from_array(arr, t.name))
        return f"shape operand {name!r}[{k}] := {value}"
    node = next(n for n in g.node if n.name == name)
    attr = next(a for a in node.attribute if a.name == target[2])
    if (attr.i if target[3] < 0 else attr.ints[target[3]]) == value:
        raise Skip
    if target[3] < 0:
        attr.i = value
    else:
        attr.ints[target[3]] = value
    return f"node {name!r} attribute {target[2]}[{target[3]}] := {value}"


# --- types ------------------------------------------------------------------------------------


def _dtype_swap(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    targets: list[tuple[str, object]] = []
    targets += [("input", vi) for vi in runtime_inputs(g) if vi.type.HasField("tensor_type")]
    targets += [("output", vi) for vi in g.output if vi.type.HasField("tensor_type")]
    targets += [("initializer", t) for t in g.initializer]
    targets += [
        ("attribute", (n, a))
        for n in g.node
        for a in n.attribute
        if a.name in _TYPE_ATTRS and a.type == AttributeProto.INT
    ]
    kind, obj = rng.choice(targets)
    new = rng.choice(_DTYPES)
    if kind in ("input", "output"):
        vi = obj
        old = vi.type.tensor_type.elem_type  # type: ignore[attr-defined]
        vi.type.tensor_type.elem_type = new if new != old else 99  # type: ignore[attr-defined]
        return f"{kind} {vi.name!r} elem_type {old} := {vi.type.tensor_type.elem_type}"  # type: ignore[attr-defined]
    if kind == "initializer":
        t = obj
        old = t.data_type  # type: ignore[attr-defined]
        t.data_type = new if new != old else 99  # type: ignore[attr-defined]
        return f"initializer {t.name!r} data_type {old} := {t.data_type}"  # type: ignore[attr-defined]
    node, attr = obj  # type: ignore[misc]
    old = attr.i
    attr.i = new if new != old else 99
    return f"node {node.name!r} attribute {attr.name} {old} := {attr.i}"


_STRUCTURAL: dict[str, Callable[[onnx.ModelProto, random.Random], str]] = {
    "dim_zero": lambda m, r: _set_dim(m, r, 0),
    "dim_negative": lambda m, r: _set_dim(m, r, r.choice(_NEGATIVE_VALUES)),
    "dim_huge": lambda m, r: _set_dim(m, r, r.choice(_HUGE_VALUES)),
    "dtype_swap": _dtype_swap,
    "rename_input": rename_input,
    "drop_input": drop_input,
    "dangling_edge": dangling_edge,
    "duplicate_output": duplicate_output,
    "cycle": cycle,
    "unknown_op": unknown_op,
    "unknown_domain": unknown_domain,
    "attr_wrong_type": attr_wrong_type,
    "subgraph_missing_outer": subgraph_missing_outer,
}

STRUCTURAL_KINDS: tuple[str, ...] = tuple(_STRUCTURAL)
BYTE_KINDS: tuple[str, ...] = ("truncate", "bitflip")
KINDS: tuple[str, ...] = (*BYTE_KINDS, *STRUCTURAL_KINDS, "stack", "none")
"""Every mutation kind, in a fixed order."""


def _apply(m: onnx.ModelProto, kind: str, rng: random.Random) -> str:
    # A variant that does not fit the model falls back to others of the same kind, then to a
    # dangling edge, which fits any model with an edge.
    for _ in range(8):
        try:
            return _STRUCTURAL[kind](m, rng)
        except (Skip, IndexError, ValueError):  # ValueError: data that no longer fits dims
            continue
    return dangling_edge(m, rng)


def mutation_specs(sources: Sequence[str], kinds: Sequence[str] = KINDS) -> Any:
    """A hypothesis strategy of :class:`MutationSpec` over ``sources`` and ``kinds``.

    hypothesis is a test dependency, imported only here.
    """
    from hypothesis import strategies as st

    return st.builds(
        MutationSpec,
        source=st.sampled_from(list(sources)),
        kind=st.sampled_from(list(kinds)),
        seed=st.integers(0, 2**32 - 1),
    )


def mutate(model: onnx.ModelProto, data: bytes, kind: str, seed: int) -> tuple[bytes, str]:
    """Apply mutation ``kind`` with choices drawn from ``seed``.

    Parameters
    ----------
    model
        The source model (not modified).
    data
        ``model`` serialized (passed in so that big sources are serialized once).
    kind
        One of :data:`KINDS`.
    seed
        Seeds every choice; the same (model, kind, seed) gives the same bytes.

    Returns
    -------
    tuple[bytes, str]
        The mutant's serialized bytes and what was changed.
    """
    rng = random.Random(seed)
    if kind == "none":
        return data, "unchanged"
    if kind == "truncate":
        return _truncate(data, rng)
    if kind == "bitflip":
        return _bitflip(data, rng)
    m = copy_model(model)
    if kind == "stack":
        kinds = rng.sample(STRUCTURAL_KINDS, rng.choice((2, 2, 3)))
        what = "; ".join(f"{k}: {_apply(m, k, rng)}" for k in kinds)
    elif kind in _STRUCTURAL:
        what = _apply(m, kind, rng)
    else:
        raise ValueError(f"unknown mutation kind {kind!r}; kinds are {', '.join(KINDS)}")
    return m.SerializeToString(), what
