"""ONNX in and out: load a model into a :class:`~hetnpu.graph.ir.Graph`, export any set of its
nodes as a standalone model.

Loading runs onnx's own checker and shape inference (strict, with data propagation) after
binding the input shapes the user gives, so every later stage sees static shapes. Everything
that can go wrong with a user's file becomes a :class:`~hetnpu.errors.ModelError` naming the
node or tensor.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

import google.protobuf.message
import networkx as nx
import onnx
from onnx import helper

from hetnpu.errors import ModelError
from hetnpu.graph._check import WEIGHTS_KEY, check_model, infer_shapes
from hetnpu.graph._defaults import spell_out_defaults
from hetnpu.graph._validate import (
    check_initializer_types,
    check_inputs_typed,
    check_omitted_inputs,
    check_windows,
)
from hetnpu.graph.ir import Graph, Node, Tensor, type_kind, type_string

__all__ = ["KNOWN_DOMAINS", "extract", "load", "outer_references"]

KNOWN_DOMAINS = frozenset(
    {"", "ai.onnx", "ai.onnx.ml", "ai.onnx.preview", "ai.onnx.preview.training", "com.microsoft"}
)
"""Op domains some runtime here implements: onnx's own and onnxruntime's contrib ops."""

# Ops whose outputs differ from run to run: never folded into constants.
_NONDETERMINISTIC = frozenset(
    {
        "RandomNormal",
        "RandomUniform",
        "RandomNormalLike",
        "RandomUniformLike",
        "Multinomial",
        "Bernoulli",
        "Dropout",
    }
)

ShapeMap = Mapping[str, Sequence[int]]


def as_graph(source: Graph | str | os.PathLike[str] | bytes | onnx.ModelProto) -> Graph:
    """``source`` itself if it is a loaded :class:`Graph`, else :func:`load` of it."""
    return source if isinstance(source, Graph) else load(source)


def load(
    source: str | os.PathLike[str] | bytes | onnx.ModelProto,
    input_shapes: ShapeMap | None = None,
    *,
    require_static: bool = True,
    allow_empty: bool = False,
) -> Graph:
    """Load, check and shape-infer an ONNX model.

    Parameters
    ----------
    source
        A path to an ``.onnx`` file (external data is found beside it), the serialized bytes,
        or a ``ModelProto`` (copied, never modified).
    input_shapes
        Shapes for graph inputs by name; binds symbolic or unknown dims (and may rebind fixed
        ones, e.g. the batch dim).
    require_static
        Refuse a model whose inputs still have symbolic dims after binding.
    allow_empty
        Accept a dim of 0 in ``input_shapes`` (an empty tensor, which ONNX allows and a session
        may be fed); refused by default, since a simulated run of an empty tensor says nothing.

    Returns
    -------
    Graph

    Raises
    ------
    ModelError
        The file is missing, truncated or not ONNX; an op is unknown or its domain is; the graph
        is cyclic or reads a tensor nothing produces; a shape cannot be bound or inferred.

    Examples
    --------
    >>> from hetnpu import models
    >>> g = load(models.build("mlp", dynamic_batch=True), input_shapes={"input": [8, 784]})
    >>> g.tensors["probabilities"].shape
    (8, 10)
    """
    model, base_dir, where = _read(source)
    try:
        return _load(model, base_dir, where, input_shapes, require_static, allow_empty)
    except UnicodeDecodeError as exc:
        # protobuf accepts a string field with invalid UTF-8 (a flipped bit) when parsing and
        # raises only when the message is next touched, e.g. when a node is renamed.
        bad = exc.object[max(0, exc.start - 16) : exc.end + 16]
        raise ModelError(
            f"{where}: a string in the model is not valid UTF-8 ({exc.reason} in {bad!r})"
        ) from None


def _load(
    model: onnx.ModelProto,
    base_dir: str | None,
    where: str,
    input_shapes: ShapeMap | None,
    require_static: bool,
    allow_empty: bool,
) -> Graph:
    graph = model.graph
    if not graph.node:
        raise ModelError(f"{where}: the graph has no nodes")
    _name_nodes(graph)
    _check_domains(model, where)
    check_omitted_inputs(model, where)
    check_initializer_types(model, where)
    _bind_inputs(graph, input_shapes or {}, where, allow_empty)
    spell_out_defaults(model)
    _sort_nodes(graph, where)
    check_inputs_typed(graph, where, _init_names(graph))
    # Inference first: it fills in graph outputs that exporters left untyped, which the checker
    # would otherwise reject.
    inferred = infer_shapes(model, where)
    check_model(inferred, where, base_dir)
    loaded = _build(inferred, base_dir, where, require_static)
    check_windows(loaded, where)
    return loaded


def _read(source: object) -> tuple[onnx.ModelProto, str | None, str]:
    if isinstance(source, onnx.ModelProto):
        model = onnx.ModelProto()
        model.CopyFrom(source)
        return model, None, f"model {source.graph.name or '<unnamed>'!r}"
    if isinstance(source, bytes | bytearray):
        return _parse(bytes(source), "<bytes>"), None, "<bytes>"
    path = Path(source)  # type: ignore[arg-type]
    where = str(path)
    if not path.is_file():
        raise ModelError(f"{where}: no such file")
    model = _parse(path.read_bytes(), where)
    return model, str(path.parent), where


def _parse(data: bytes, where: str) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (google.protobuf.message.DecodeError, ValueError, RuntimeError) as exc:
        raise ModelError(
            f"{where}: not a valid ONNX model (protobuf parse failed: {exc})"
        ) from None
    if not model.HasField("graph") or model.ir_version <= 0:
        raise ModelError(f"{where}: not an ONNX model (no graph or no ir_version)")
    return model


def _name_nodes(graph: onnx.GraphProto) -> None:
    # Names are how users, plans and traces refer to nodes, so each must exist and be unique.
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        base = node.name or f"{node.op_type}_{i}"
        name, k = base, 1
        while name in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name)
        node.name = name


def _check_domains(model: onnx.ModelProto, where: str) -> None:
    local = {(f.domain, f.name) for f in model.functions}
    for node in model.graph.node:
        if node.domain not in KNOWN_DOMAINS and (node.domain, node.op_type) not in local:
            raise ModelError(
                f"{where}: node {node.name!r} ({node.op_type}) is in the unknown op domain "
                f"{node.domain!r}; known domains: "
                f"{', '.join(repr(d) for d in sorted(KNOWN_DOMAINS))}"
            )


def _bind_inputs(graph: onnx.GraphProto, shapes: ShapeMap, where: str, allow_empty: bool) -> None:
    by_name = {i.name: i for i in graph.input}
    for name, dims in shapes.items():
        vi = by_name.get(name)
        if vi is None:
            runtime = [i.name for i in graph.input if i.name not in _init_names(graph)]
            raise ModelError(f"{where}: no graph input named {name!r}; inputs are {runtime}")
        if type_kind(vi.type) != "tensor":
            raise ModelError(
                f"{where}: input {name!r} is a {type_string(vi.type)}, not a tensor: "
                "it has no shape to bind"
            )
        shape = vi.type.tensor_type.shape
        if vi.type.tensor_type.HasField("shape") and len(shape.dim) != len(dims):
            raise ModelError(
                f"{where}: input {name!r} has rank {len(shape.dim)}, "
                f"but the shape given has {len(dims)} dims: {list(dims)}"
            )
        if any(int(d) < 0 for d in dims) or (not allow_empty and any(int(d) == 0 for d in dims)):
            least = "non-negative" if allow_empty else "positive"
            raise ModelError(f"{where}: input {name!r}: dims must be {least}, got {list(dims)}")
        vi.type.tensor_type.shape.Clear()
        for d in dims:
            vi.type.tensor_type.shape.dim.add().dim_value = int(d)
        # An old declared output/intermediate shape may contradict the rebinding; let inference
        # recompute them.
    if shapes:
        del graph.value_info[:]
        for out in graph.output:
            t = out.type.tensor_type
            if t.HasField("shape"):
                for d in t.shape.dim:
                    d.Clear()


def _init_names(graph: onnx.GraphProto) -> set[str]:
    return {t.name for t in graph.initializer} | {t.values.name for t in graph.sparse_initializer}


def outer_references(node: onnx.NodeProto) -> list[str]:
    """Names that ``node``'s subgraphs read from the enclosing scope, in first-use order."""
    refs: dict[str, None] = {}

    def visit(g: onnx.GraphProto, bound: set[str]) -> None:
        local = set(bound) | {i.name for i in g.input} | _init_names(g)
        for n in g.node:
            for t in n.input:
                if t and t not in local:
                    refs.setdefault(t, None)
            for attr in n.attribute:
                for sub in _subgraphs(attr):
                    visit(sub, local)
            local.update(o for o in n.output if o)

    for attr in node.attribute:
        for sub in _subgraphs(attr):
            visit(sub, set())
    return list(refs)


def _subgraphs(attr: onnx.AttributeProto) -> list[onnx.GraphProto]:
    if attr.type == onnx.AttributeProto.GRAPH:
        return [attr.g]
    if attr.type == onnx.AttributeProto.GRAPHS:
        return list(attr.graphs)
    return []


def _sort_nodes(graph: onnx.GraphProto, where: str) -> None:
    # ONNX requires sorted nodes; exporters do not always comply, and a cycle deserves a message
    # naming its nodes rather than the checker's "not topologically sorted".
    producer: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for t in node.output:
            if t:
                if t in producer:
                    other = graph.node[producer[t]].name
                    raise ModelError(
                        f"{where}: tensor {t!r} is produced twice, by {other!r} and {node.name!r}"
                    )
                producer[t] = i
    dag = nx.DiGraph()
    dag.add_nodes_from(range(len(graph.node)))
    for i, node in enumerate(graph.node):
        for t in [*node.input, *outer_references(node)]:
            j = producer.get(t)
            if j is not None:
                dag.add_edge(j, i)
    try:
        order = list(nx.lexicographical_topological_sort(dag))
    except nx.NetworkXUnfeasible:
        cycle = nx.find_cycle(dag)
        names = " -> ".join(graph.node[a].name for a, _ in cycle)
        raise ModelError(
            f"{where}: the graph has a cycle: {names} -> {graph.node[cycle[0][0]].name}"
        ) from None
    if order != list(range(len(graph.node))):
        nodes = [graph.node[i] for i in order]
        sorted_nodes = []
        for n in nodes:
            copy = onnx.NodeProto()
            copy.CopyFrom(n)
            sorted_nodes.append(copy)
        del graph.node[:]
        graph.node.extend(sorted_nodes)


def _tensor_from_type(name: str, type_proto: onnx.TypeProto | None, is_constant: bool) -> Tensor:
    kind = type_kind(type_proto)
    if type_proto is not None and kind != "tensor":
        kept = onnx.TypeProto()
        kept.CopyFrom(type_proto)
        return Tensor(name, None, "undefined", 0, is_constant, kind=kind, type_proto=kept)
    if type_proto is None or not type_proto.HasField("tensor_type"):
        return Tensor(name, None, "undefined", 0, is_constant)
    tt = type_proto.tensor_type
    elem = tt.elem_type
    try:
        dtype = helper.tensor_dtype_to_np_dtype(elem).name if elem else "undefined"
    except KeyError:
        dtype = "undefined"
    if not tt.HasField("shape"):
        return Tensor(name, None, dtype, elem, is_constant)
    dims: list[int | None] = []
    symbols: list[str | None] = []
    for d in tt.shape.dim:
        if d.HasField("dim_value") and d.dim_value >= 0:
            dims.append(d.dim_value)
            symbols.append(None)
        else:
            dims.append(None)
            symbols.append(d.dim_param or None)
    return Tensor(name, tuple(dims), dtype, elem, is_constant, tuple(symbols))


def _build(model: onnx.ModelProto, base_dir: str | None, where: str, require_static: bool) -> Graph:
    g = model.graph
    inits = _init_names(g)
    types: dict[str, onnx.TypeProto] = {}
    for vi in [*g.input, *g.value_info, *g.output]:
        types[vi.name] = vi.type
    for init in g.initializer:
        types.setdefault(init.name, helper.make_tensor_type_proto(init.data_type, list(init.dims)))
    runtime_inputs = tuple(i.name for i in g.input if i.name not in inits)
    if require_static:
        for name in runtime_inputs:
            t = _tensor_from_type(name, types.get(name), False)
            if t.is_tensor and not t.is_static:
                bad = [
                    f"dim {k} ({s or '?'})"
                    for k, (d, s) in enumerate(zip(t.shape or (), t.symbols, strict=False))
                    if d is None
                ] or ["its rank"]
                raise ModelError(
                    f"{where}: input {name!r} has an unbound {', '.join(bad)}; "
                    f"bind it with input_shapes={{{name!r}: [...]}} "
                    f"or --input-shape {name}=d0,d1,..."
                )

    constant: set[str] = set(inits)
    nodes: list[Node] = []
    known = set(inits) | {i.name for i in g.input}
    for index, proto in enumerate(g.node):
        implicit = tuple(outer_references(proto))
        for t in [*proto.input, *implicit]:
            if t and t not in known:
                raise ModelError(
                    f"{where}: node {proto.name!r} ({proto.op_type}) reads tensor {t!r}, "
                    "which no node, input or initializer provides"
                )
        explicit = [t for t in proto.input if t]
        is_const = (
            proto.op_type not in _NONDETERMINISTIC
            and not implicit
            and not any(
                a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
                for a in proto.attribute
            )
            and (proto.op_type == "Constant" or bool(explicit))
            and all(t in constant for t in explicit)
        )
        if is_const:
            constant.update(t for t in proto.output if t)
        known.update(t for t in proto.output if t)
        nodes.append(
            Node(
                name=proto.name,
                op_type=proto.op_type,
                domain=proto.domain,
                inputs=tuple(proto.input),
                outputs=tuple(proto.output),
                attrs=MappingProxyType(
                    {a.name: helper.get_attribute_value(a) for a in proto.attribute}
                ),
                implicit_inputs=implicit,
                index=index,
                is_constant=is_const,
                proto=proto,
            )
        )
    for out in g.output:
        if out.name not in known:
            raise ModelError(f"{where}: graph output {out.name!r} is produced by no node")

    tensors: dict[str, Tensor] = {}
    for name in [*runtime_inputs, *inits, *(t for n in nodes for t in n.outputs if t)]:
        tensors[name] = _tensor_from_type(name, types.get(name), name in constant)
    return Graph(
        model,
        nodes,
        tensors,
        inputs=runtime_inputs,
        outputs=tuple(o.name for o in g.output),
        base_dir=base_dir,
    )


def extract(graph: Graph, node_names: Iterable[str], name: str | None = None) -> onnx.ModelProto:
    """Export a set of nodes as a standalone, checker-valid model.

    Its inputs are the tensors the set reads but does not produce (initializers it reads are
    carried along, with external data loaded); its outputs are the tensors it produces that
    nodes outside the set, or the graph's outputs, read. Opsets and local functions are the
    original ones.

    Parameters
    ----------
    graph
        The loaded graph.
    node_names
        Any subset of ``graph.nodes``; order does not matter.
    name
        The exported graph's name (default: the original's with a suffix).

    Raises
    ------
    ModelError
        A name is not a node of ``graph``, or the set is empty.
    """
    members = set(node_names)
    unknown = sorted(members - set(graph.nodes))
    if unknown:
        raise ModelError(
            f"extract: no such node(s) {unknown[:5]} in graph {graph.model.graph.name!r}"
        )
    if not members:
        raise ModelError("extract: the node set is empty")
    nodes = [n for n in graph if n.name in members]
    produced = {t for n in nodes for t in n.outputs if t}
    graph_outputs = set(graph.outputs)

    inputs: dict[str, None] = {}
    initializers: list[onnx.TensorProto] = []
    for n in nodes:
        for t in n.all_inputs:
            if t in produced or t in inputs:
                continue
            inputs[t] = None
    for t in list(inputs):
        if graph.is_initializer(t):
            initializers.append(graph.initializer(t))  # type: ignore[arg-type]
            del inputs[t]

    outputs: list[str] = []
    for n in nodes:
        for t in n.outputs:
            if not t:
                continue
            if t in graph_outputs or any(c.name not in members for c in graph.consumers(t)):
                outputs.append(t)
    if not outputs:
        # A set whose results nobody reads (dead code) still needs an output to be a model.
        outputs = [t for t in nodes[-1].outputs if t]

    def value_info(t: str) -> onnx.ValueInfoProto:
        tensor = graph.tensors[t]
        if tensor.type_proto is not None:
            return helper.make_value_info(t, tensor.type_proto)
        if tensor.shape is None:
            return helper.make_tensor_value_info(t, tensor.elem_type, None)
        dims = [
            d if d is not None else (s or None)
            for d, s in zip(
                tensor.shape, tensor.symbols or (None,) * len(tensor.shape), strict=True
            )
        ]
        return helper.make_tensor_value_info(t, tensor.elem_type, dims)

    internal = [
        value_info(t)
        for t in produced
        if t not in outputs
        and graph.tensors.get(t) is not None
        and (graph.tensors[t].elem_type or graph.tensors[t].type_proto is not None)
    ]
    internal.sort(key=lambda v: v.name)
    sub = helper.make_graph(
        [n.proto for n in nodes],
        name or f"{graph.model.graph.name}_part",
        [value_info(t) for t in inputs],
        [value_info(t) for t in outputs],
        initializer=initializers,
        value_info=internal,
    )
    model = helper.make_model(
        sub,
        opset_imports=list(graph.model.opset_import),
        producer_name="hetnpu",
        functions=list(graph.model.functions),
    )
    # IR < 4 demands every initializer also be a graph input; newer IRs do not.
    model.ir_version = max(graph.model.ir_version, 4)
    # A part of a weight-free model is weight-free too (its dims-only weights stay legal).
    model.metadata_props.extend(p for p in graph.model.metadata_props if p.key == WEIGHTS_KEY)
    return model
