"""ATC's fusions of a MatMul with what follows it, as the simulator applies them:
the bias Add (MatMulBiasAddFusionPass), one or two elementwise ops after it
(TbeBatchMatmulElementWiseFusionPass: a scale Div, a mask or residual Add) and the
Reshape + Transpose of attention heads (Matmul/BatchMatmulConfusiontransposeUbFusion)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.prepare import (
    bias_add_input,
    fusion_map,
    kernel_aliases,
    matmul_ub_fusion,
    residual_adds,
)

S, H, HEADS = 128, 256, 4


def _attention_block(bias: bool = True):
    """X → MatMul(W) [+ b] → Reshape → Transpose (heads), the scores Q·Kᵀ / 8 + mask, and
    a dense MatMul [+ b] with the residual X added."""
    rng = np.random.default_rng(0)
    d = H // HEADS
    inits = [
        numpy_helper.from_array(rng.standard_normal((H, H)).astype(np.float32), "W"),
        numpy_helper.from_array(rng.standard_normal((H, H)).astype(np.float32), "W2"),
        numpy_helper.from_array(np.zeros(H, np.float32), "b"),
        numpy_helper.from_array(np.zeros(H, np.float32), "b2"),
        numpy_helper.from_array(np.array([1, S, HEADS, d], np.int64), "shape"),
        numpy_helper.from_array(np.array(8.0, np.float32), "scale"),
    ]
    q = "q_b" if bias else "q"
    dense = "o_b" if bias else "o"
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["q"], name="q_mm"),
        *([helper.make_node("Add", ["q", "b"], ["q_b"], name="q_bias")] if bias else []),
        helper.make_node("Reshape", [q, "shape"], ["q_r"], name="q_reshape"),
        helper.make_node("Transpose", ["q_r"], ["q_t"], name="q_tr", perm=[0, 2, 1, 3]),
        helper.make_node("Transpose", ["q_r"], ["k_t"], name="k_tr", perm=[0, 2, 3, 1]),
        helper.make_node("MatMul", ["q_t", "k_t"], ["s"], name="scores"),
        helper.make_node("Div", ["s", "scale"], ["s_d"], name="scale_div"),
        helper.make_node("Add", ["s_d", "M"], ["s_m"], name="mask_add"),
        helper.make_node("Softmax", ["s_m"], ["P"], name="softmax", axis=-1),
        helper.make_node("MatMul", ["X", "W2"], ["o"], name="dense"),
        *([helper.make_node("Add", ["o", "b2"], ["o_b"], name="dense_bias")] if bias else []),
        helper.make_node("Add", [dense, "X"], ["Y"], name="residual"),
    ]
    g = helper.make_graph(
        nodes,
        "attention",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, S, H]),
            helper.make_tensor_value_info("M", TensorProto.FLOAT, [1, 1, 1, S]),
        ],
        [
            helper.make_tensor_value_info("P", TensorProto.FLOAT, [1, HEADS, S, S]),
            helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, S, H]),
        ],
        inits,
    )
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_bias_add_folds_into_its_matmul() -> None:
    g = _attention_block()
    assert bias_add_input(g, g.nodes["q_bias"]) == "q"
    assert bias_add_input(g, g.nodes["dense_bias"]) == "o"
    assert bias_add_input(g, g.nodes["residual"]) is None  # a second input, not a 1-D bias
    fused = fusion_map(g)
    assert fused["q_bias"] == "q_mm" and fused["dense_bias"] == "dense"


def test_scale_mask_residual_and_head_transpose_fold_into_the_matmul_kernels() -> None:
    g = _attention_block()
    const_epi, second, transposes = matmul_ub_fusion(g)
    assert const_epi == {"scale_div": "s"}
    assert second == {"mask_add": "s_d", "residual": "o_b"}
    # q_r feeds two Transposes: neither is the MatMul's only consumer, so neither folds.
    assert transposes == {}
    assert residual_adds(g) == {"mask_add": "s_d", "residual": "o_b"}
    fused = fusion_map(g)
    assert fused["scale_div"] == "scores"
    # The kernels write the fused results under the MatMul's output name.
    alias = kernel_aliases(g, fused, residual_adds(g))
    assert alias["s_d"] == "s" and alias["s_m"] == "s" and alias["o_b"] == "o"


def test_the_heads_transpose_folds_when_the_matmul_feeds_only_it() -> None:
    g2 = _single_transpose()
    _, _, transposes = matmul_ub_fusion(g2)
    assert transposes == {"tr": "m_b"}
    assert fusion_map(g2)["tr"] == "mm"
    ops = {o.name: o for o in simulate(g2, "ascend310p").ops}
    assert ops["tr"].bound == "fused" and ops["tr"].cycles == 0


def _single_transpose():
    rng = np.random.default_rng(1)
    inits = [
        numpy_helper.from_array(rng.standard_normal((H, H)).astype(np.float32), "W"),
        numpy_helper.from_array(np.zeros(H, np.float32), "b"),
        numpy_helper.from_array(np.array([1, S, HEADS, H // HEADS], np.int64), "shape"),
    ]
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["m"], name="mm"),
        helper.make_node("Add", ["b", "m"], ["m_b"], name="bias"),  # bias first: still a bias
        helper.make_node("Reshape", ["m_b", "shape"], ["r"], name="reshape"),
        helper.make_node("Transpose", ["r"], ["Y"], name="tr", perm=[0, 2, 1, 3]),
    ]
    g = helper.make_graph(
        nodes,
        "heads",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, S, H])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, HEADS, S, H // HEADS])],
        inits,
    )
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_fused_kernels_launch_less_and_run_faster() -> None:
    fused = simulate(_attention_block(bias=True), "ascend310p")
    ops = {o.name: o for o in fused.ops}
    for name in ("q_bias", "dense_bias", "scale_div"):
        assert ops[name].bound == "fused" and ops[name].cycles == 0
    # The mask and residual Adds run inside their MatMul's kernel: no launch, no write.
    assert ops["mask_add"].launch_cycles == 0 and ops["residual"].launch_cycles == 0
    # A bias costs its MatMul nothing extra: the biased block takes the unbiased one's time.
    plain = simulate(_attention_block(bias=False), "ascend310p")
    assert fused.launch_cycles == plain.launch_cycles
    assert abs(fused.cycles - plain.cycles) <= 0.02 * plain.cycles


def test_split_chips_keep_the_bias_fusion_but_not_the_ub_fusions() -> None:
    g = _attention_block()
    assert matmul_ub_fusion(g, ub=False) == ({}, {}, {})
    assert residual_adds(g, ub=False) == {}
    fused = fusion_map(g)
    ops = {o.name: o for o in simulate(g, "ascend910b").ops}
    assert ops["q_bias"].bound == "fused" and fused["q_bias"] == "q_mm"
    assert ops["scale_div"].bound != "fused"
    # The residual Add is its own kernel: it reads both inputs and writes the sum (fp16).
    assert ops["residual"].gm_bytes == 3 * S * H * 2
