"""Real profile excerpts (``fixtures/``, sources in ``fixtures/README.md``) and the model a
simulation compares them with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FIXTURES = Path(__file__).parent / "fixtures"
KERNEL_DETAILS_A2 = FIXTURES / "kernel_details_a2.csv"
KERNEL_DETAILS_910B = FIXTURES / "kernel_details_910b.csv"
OP_SUMMARY_COUPLED = FIXTURES / "op_summary_coupled.csv"
OP_STATISTIC = FIXTURES / "op_statistic.csv"
TRACE_VIEW = FIXTURES / "trace_view.json"


def attention_block() -> onnx.ModelProto:
    """The attention ops of ``kernel_details_910b.csv`` with the shapes its rows record
    (12 heads of 1024 tokens, head size 512; then the 4096 x 1536 x 12288 projection), under
    ONNX names and types: Transpose, MatMul (BatchMatMul), Mul, Softmax (ScaledMaskedSoftmax),
    MatMul (BatchMatMul), Transpose, MatMul. Mask and dropout are left out."""
    f16 = TensorProto.FLOAT16
    scale = numpy_helper.from_array(np.array(0.125, np.float16), "scale")
    w = numpy_helper.from_array(np.zeros((1536, 12288), np.float16), "W")
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], name="k_transpose", perm=[1, 2, 0]),
        helper.make_node("MatMul", ["q", "kt"], ["s"], name="scores"),
        helper.make_node("Mul", ["s", "scale"], ["ss"], name="scaled"),
        helper.make_node("Softmax", ["ss"], ["p"], name="probs", axis=-1),
        helper.make_node("MatMul", ["p", "v"], ["ctx"], name="context"),
        helper.make_node("Transpose", ["ctx"], ["out"], name="ctx_transpose", perm=[1, 0, 2]),
        helper.make_node("MatMul", ["x", "W"], ["y"], name="proj"),
    ]
    graph = helper.make_graph(
        nodes,
        "attention_block",
        [
            helper.make_tensor_value_info("q", f16, [12, 1024, 512]),
            helper.make_tensor_value_info("k", f16, [1024, 12, 512]),
            helper.make_tensor_value_info("v", f16, [12, 1024, 512]),
            helper.make_tensor_value_info("x", f16, [4096, 1536]),
        ],
        [
            helper.make_tensor_value_info("out", f16, [1024, 12, 512]),
            helper.make_tensor_value_info("y", f16, [4096, 12288]),
        ],
        [scale, w],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
