"""Attribute defaults written out where onnx's own tools need them spelled."""

from __future__ import annotations

import onnx

__all__ = ["spell_out_defaults"]


def spell_out_defaults(model: onnx.ModelProto) -> None:
    """Write out the default of every attribute that a node of an op defined as an ONNX
    function leaves unset.

    onnx's shape inference expands such an op into its function body without the schema's
    defaults, so a body reading one fails: MeanVarianceNormalization without ``axes`` is
    refused ("One and only one of the attributes 'value', 'value_*' ... must be specified",
    onnx 1.23). The default spelled out means the same to every runtime.
    """
    opsets = {o.domain or "": o.version for o in model.opset_import}
    for node in model.graph.node:
        domain = "" if node.domain == "ai.onnx" else node.domain
        version = opsets.get(domain)
        if version is None:
            continue
        try:
            schema = onnx.defs.get_schema(node.op_type, version, domain)
        except onnx.defs.SchemaError:
            continue  # the domain check or the checker reports an unknown op
        if not schema.has_function:
            continue
        given = {a.name for a in node.attribute}
        for name, attr in sorted(schema.attributes.items()):
            if name in given or not attr.default_value.name:
                continue  # set, or required, or without a default
            default = onnx.AttributeProto()
            default.CopyFrom(attr.default_value)
            default.name = name
            node.attribute.append(default)
