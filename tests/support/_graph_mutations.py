"""The graph-wiring, op, attribute and subgraph mutations of :mod:`tests.support.mutations`,
and the helpers they share with it. Each takes a model (mutated in place) and a seeded
``random.Random`` and returns what it changed; :class:`Skip` means the variant drawn does not
fit the model.
"""

from __future__ import annotations

import random

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

__all__ = [
    "Skip",
    "attr_wrong_type",
    "copy_model",
    "cycle",
    "dangling_edge",
    "drop_input",
    "duplicate_output",
    "init_names",
    "rename_input",
    "runtime_inputs",
    "subgraph_missing_outer",
    "unknown_domain",
    "unknown_op",
]

_WEIRD_NAMES = ("", " ", "x y", "a/b:0", "ünïcode", "n" * 300, "0", "input\n")
_TRUE = numpy_helper.from_array(np.array(True))


class Skip(Exception):
    """The chosen variant does not apply to this model; try another."""


def copy_model(model: onnx.ModelProto) -> onnx.ModelProto:
    m = onnx.ModelProto()
    m.CopyFrom(model)
    return m


def init_names(g: onnx.GraphProto) -> set[str]:
    return {t.name for t in g.initializer}


def runtime_inputs(g: onnx.GraphProto) -> list[onnx.ValueInfoProto]:
    inits = init_names(g)
    return [vi for vi in g.input if vi.name not in inits]


def _fresh(rng: random.Random, stem: str) -> str:
    return f"{stem}_{rng.randrange(10**6)}"


def _producers(g: onnx.GraphProto) -> dict[str, int]:
    return {t: i for i, n in enumerate(g.node) for t in n.output if t}


# --- wiring -----------------------------------------------------------------------------------


def _node_with_inputs(g: onnx.GraphProto, rng: random.Random) -> onnx.NodeProto:
    nodes = [n for n in g.node if any(n.input)]
    if not nodes:
        raise Skip
    return rng.choice(nodes)


def _rename_everywhere(g: onnx.GraphProto, old: str, new: str) -> None:
    for vi in [*g.input, *g.output, *g.value_info]:
        if vi.name == old:
            vi.name = new
    for t in g.initializer:
        if t.name == old:
            t.name = new
    for n in g.node:
        for i, t in enumerate(n.input):
            if t == old:
                n.input[i] = new
        for i, t in enumerate(n.output):
            if t == old:
                n.output[i] = new


def rename_input(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    variant = rng.randrange(4)
    inputs = runtime_inputs(g)
    if variant == 0 and inputs:
        vi = rng.choice(inputs)
        old, vi.name = vi.name, _fresh(rng, "renamed")
        return f"graph input {old!r} renamed {vi.name!r}, consumers not"
    if variant == 1 and inputs:
        vi = rng.choice(inputs)
        new = rng.choice([*_WEIRD_NAMES, g.node[0].output[0], *(t.name for t in g.initializer[:1])])
        old = vi.name
        _rename_everywhere(g, old, new)
        return f"graph input {old!r} renamed {new!r} everywhere"
    if variant == 2 and g.initializer:
        t = rng.choice(list(g.initializer))
        old, t.name = t.name, _fresh(rng, "renamed")
        for vi in g.input:
            if vi.name == old:
                vi.name = t.name
        return f"initializer {old!r} renamed {t.name!r}, consumers not"
    node = _node_with_inputs(g, rng)
    k = rng.choice([i for i, t in enumerate(node.input) if t])
    old, node.input[k] = node.input[k], rng.choice(_WEIRD_NAMES[1:])
    return f"node {node.name!r} input {k} {old!r} := {node.input[k]!r}"


def drop_input(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    variant = rng.randrange(4)
    inputs = runtime_inputs(g)
    if variant == 0 and inputs:
        vi = rng.choice(inputs)
        g.input.remove(vi)
        return f"graph input {vi.name!r} dropped"
    if variant == 1 and g.initializer:
        t = rng.choice(list(g.initializer))
        name = t.name
        g.initializer.remove(t)
        return f"initializer {name!r} dropped"
    node = _node_with_inputs(g, rng)
    k = rng.choice([i for i, t in enumerate(node.input) if t])
    name = node.input[k]
    if variant == 2:
        del node.input[k]
        return f"node {node.name!r} input {k} ({name!r}) removed"
    node.input[k] = ""
    return f"node {node.name!r} input {k} ({name!r}) marked omitted"


def dangling_edge(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    variant = rng.randrange(3)
    if variant == 0:
        node = _node_with_inputs(g, rng)
        k = rng.choice([i for i, t in enumerate(node.input) if t])
        node.input[k] = _fresh(rng, "dangling")
        return f"node {node.name!r} input {k} := {node.input[k]!r} (nothing produces it)"
    if variant == 1:
        vi = g.output.add()
        vi.CopyFrom(g.output[0])
        vi.name = _fresh(rng, "dangling_out")
        return f"graph output {vi.name!r} added (nothing produces it)"
    node = rng.choice(list(g.node))
    k = rng.randrange(len(node.output)) if node.output else None
    if k is None:
        raise Skip
    old, node.output[k] = node.output[k], _fresh(rng, "orphan")
    return f"node {node.name!r} output {old!r} renamed {node.output[k]!r}, consumers not"


def duplicate_output(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    variant = rng.randrange(4)
    if variant == 0 and len(g.node) >= 2:
        i, j = rng.sample(range(len(g.node)), 2)
        a, b = g.node[i], g.node[j]
        if not a.output or not b.output:
            raise Skip
        old, b.output[0] = b.output[0], a.output[0]
        return f"node {b.name!r} output {old!r} := {a.output[0]!r}, which {a.name!r} produces"
    if variant == 1:
        vi = g.output.add()
        vi.CopyFrom(rng.choice(list(g.output)[:-1]))
        return f"graph output {vi.name!r} listed twice"
    if variant == 2:
        node = rng.choice(list(g.node))
        names = [vi.name for vi in g.input] + [t.name for t in g.initializer]
        if not node.output or not names:
            raise Skip
        old, node.output[0] = node.output[0], rng.choice(names)
        return f"node {node.name!r} output {old!r} := {node.output[0]!r}, an input/initializer"
    node = rng.choice(list(g.node))
    if not node.output:
        raise Skip
    node.output.append(node.output[0])
    return f"node {node.name!r} lists output {node.output[0]!r} twice"


def cycle(m: onnx.ModelProto, rng: random.Random) -> str:
    g = m.graph
    candidates = [i for i, n in enumerate(g.node) if any(n.input)]
    if not candidates:
        raise Skip
    i = rng.choice(candidates)
    j = rng.randrange(i, len(g.node))
    a, b = g.node[i], g.node[j]
    if not b.output:
        raise Skip
    k = rng.choice([x for x, t in enumerate(a.input) if t])
    a.input[k] = b.output[0]
    if i == j:
        return f"node {a.name!r} reads its own output {b.output[0]!r}"
    return f"node {a.name!r} input {k} := {b.output[0]!r}, produced later by {b.name!r}"


# --- ops, domains, attributes -------------------------------------------------------------------


def unknown_op(m: onnx.ModelProto, rng: random.Random) -> str:
    node = rng.choice(list(m.graph.node))
    old = node.op_type
    node.op_type = rng.choice(
        ["NoSuchOp", "Conv2D", "conv", "", "Relu6", "If", "Loop", "Scan", f"Op{rng.randrange(99)}"]
    )
    return f"node {node.name!r} op_type {old!r} := {node.op_type!r}"


def unknown_domain(m: onnx.ModelProto, rng: random.Random) -> str:
    variant = rng.randrange(3)
    if variant == 0:
        node = rng.choice(list(m.graph.node))
        node.domain = rng.choice(["com.example", "org.pytorch.aten", "ai.onnx.ml", "com.microsoft"])
        if rng.random() < 0.5:
            m.opset_import.append(helper.make_opsetid(node.domain, 1))
        return f"node {node.name!r} ({node.op_type}) domain := {node.domain!r}"
    if variant == 1:
        op = next((o for o in m.opset_import if o.domain in ("", "ai.onnx")), None)
        if op is None:
            raise Skip
        old, op.version = op.version, rng.choice([0, 1, -1, 10**6, 999])
        return f"default opset version {old} := {op.version}"
    del m.opset_import[:]
    return "every opset import removed"


def _wrong_attribute(name: str, rng: random.Random) -> AttributeProto:
    choice = rng.randrange(8)
    if choice == 0:
        return helper.make_attribute(name, 1.5)
    if choice == 1:
        return helper.make_attribute(name, 7)
    if choice == 2:
        return helper.make_attribute(name, "x")
    if choice == 3:
        return helper.make_attribute(name, [0.5, 2.0])
    if choice == 4:
        return helper.make_attribute(name, numpy_helper.from_array(np.zeros(3, np.float32)))
    if choice == 5:
        return helper.make_attribute(name, helper.make_graph([], "empty", [], []))
    if choice == 6:  # the type field lies about the payload
        return AttributeProto(name=name, type=AttributeProto.INT, f=2.0)
    return AttributeProto(name=name, type=AttributeProto.INTS)


def attr_wrong_type(m: onnx.ModelProto, rng: random.Random) -> str:
    nodes = [n for n in m.graph.node if n.attribute]
    if nodes and rng.random() < 0.8:
        node = rng.choice(nodes)
        k = rng.randrange(len(node.attribute))
        old = node.attribute[k]
        new = _wrong_attribute(old.name, rng)
        if new.type == old.type and new.type != AttributeProto.INT:
            new = AttributeProto(name=old.name, type=AttributeProto.UNDEFINED)
        node.attribute[k].CopyFrom(new)
        return f"node {node.name!r} attribute {old.name!r} type {old.type} := {new.type}"
    node = rng.choice(list(m.graph.node))
    node.attribute.append(_wrong_attribute("no_such_attribute", rng))
    return f"node {node.name!r} gets unknown attribute 'no_such_attribute'"


def subgraph_missing_outer(m: onnx.ModelProto, rng: random.Random) -> str:
    """Route one edge through an If (or Loop) whose body reads an outer value."""
    g = m.graph
    consumer_idx = [i for i, n in enumerate(g.node) if any(n.input)]
    if not consumer_idx:
        raise Skip
    ci = rng.choice(consumer_idx)
    consumer = g.node[ci]
    k = rng.choice([x for x, t in enumerate(consumer.input) if t])
    x = consumer.input[k]
    valid = rng.random() < 0.25
    missing = x if valid else _fresh(rng, "missing_outer")
    tag = rng.randrange(10**6)
    y = f"via_subgraph_{tag}"

    def body(name: str, read: str, extra_in: list[onnx.ValueInfoProto]) -> onnx.GraphProto:
        out = f"{name}_out"
        nodes = [helper.make_node("Identity", [read], [out], name=f"{name}_identity")]
        if rng.random() < 0.3 and not valid:  # nest the bad reference one level deeper
            inner = helper.make_graph(
                [helper.make_node("Identity", [read], [f"{name}_deep"])],
                f"{name}_inner",
                [],
                [helper.make_tensor_value_info(f"{name}_deep", TensorProto.UNDEFINED, None)],
            )
            cond = f"{name}_c"
            nodes = [
                helper.make_node("Constant", [], [cond], value=_TRUE),
                helper.make_node(
                    "If", [cond], [out], then_branch=inner, else_branch=inner, name=f"{name}_if"
                ),
            ]
        outs = [helper.make_tensor_value_info(out, TensorProto.UNDEFINED, None)]
        if extra_in:  # a Loop body also carries its condition out
            cond_out = f"{name}_cond_out"
            nodes.append(helper.make_node("Identity", [extra_in[1].name], [cond_out]))
            outs = [helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []), *outs]
        return helper.make_graph(nodes, name, extra_in, outs)

    cond_name = f"cond_{tag}"
    new_nodes = [helper.make_node("Constant", [], [cond_name], value=_TRUE, name=f"c_{tag}")]
    if rng.random() < 0.7:
        then_g = body(f"then_{tag}", missing, [])
        else_g = body(f"else_{tag}", x, [])
        new_nodes.append(
            helper.make_node(
                "If", [cond_name], [y], then_branch=then_g, else_branch=else_g, name=f"if_{tag}"
            )
        )
        what = "If"
    else:
        trip = f"trip_{tag}"
        new_nodes.append(
            helper.make_node(
                "Constant", [], [trip], value=numpy_helper.from_array(np.array(1, np.int64))
            )
        )
        loop_in = [
            helper.make_tensor_value_info(f"i_{tag}", TensorProto.INT64, []),
            helper.make_tensor_value_info(f"cin_{tag}", TensorProto.BOOL, []),
        ]
        loop_body = body(f"body_{tag}", missing, loop_in)
        # A Loop's per-iteration outputs are scan outputs: stacked, so one extra leading dim.
        new_nodes.append(
            helper.make_node("Loop", [trip, cond_name], [y], body=loop_body, name=f"loop_{tag}")
        )
        what = "Loop"
    consumer.input[k] = y
    for offset, n in enumerate(new_nodes):
        g.node.insert(ci + offset, n)
    state = "an existing" if valid else "a missing"
    return f"{what} inserted before {consumer.name!r} reading {state} outer value {missing!r}"
