"""ATC's fusions as the simulator applies them: epilogues into Cube ops, and the residual
Add + ReLU of a ResNet block into the convolution's epilogue (TbeConvElemwiseReluFusion)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.prepare import fusion_map, residual_adds


def _block(
    relu_after_add: bool = True,
    skip_is_constant: bool = False,
    shape: tuple[int, int, int, int] = (1, 64, 56, 56),
    residual: bool = True,
):
    """X → conv → bn → add(·, X) → relu: the tail of a ResNet basic block."""
    rng = np.random.default_rng(0)
    c = shape[1]
    inits = [
        numpy_helper.from_array(rng.standard_normal((c, c, 3, 3)).astype(np.float32), "W"),
        *(
            numpy_helper.from_array(np.ones(c, np.float32), n)
            for n in ("scale", "bias", "mean", "var")
        ),
    ]
    skip = "X"
    if skip_is_constant:
        inits.append(numpy_helper.from_array(np.ones(shape, np.float32), "K"))
        skip = "K"
    nodes = [
        helper.make_node("Conv", ["X", "W"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node(
            "BatchNormalization", ["c", "scale", "bias", "mean", "var"], ["b"], name="bn"
        ),
    ]
    out = "b"
    if residual:
        nodes.append(helper.make_node("Add", ["b", skip], ["s"], name="add"))
        out = "s"
    if relu_after_add and residual:
        nodes.append(helper.make_node("Relu", ["s"], ["Y"], name="relu"))
        out = "Y"
    g = helper.make_graph(
        nodes,
        "block",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(shape))],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, list(shape))],
        inits,
    )
    return load(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def test_residual_add_and_its_relu_fold_into_the_convolution() -> None:
    g = _block()
    assert residual_adds(g) == {"add": "b"}  # the conv's (BN-folded) result is not re-read
    assert fusion_map(g) == {"bn": "conv", "relu": "add"}
    tensor = 64 * 56 * 56 * 2  # the residual X in fp16
    # Coupled chips add the residual in the convolution's epilogue: the Add costs nothing of its
    # own, the convolution reads X once more (as the residual) and adds it on the Vector unit.
    ops = {o.name: o for o in simulate(g, "ascend910").ops}
    plain = {o.name: o for o in simulate(_conv_bn(), "ascend910").ops}
    assert ops["add"].bound == "fused" and ops["add"].fused_into == "conv"
    assert ops["relu"].bound == "fused" and ops["relu"].cycles == 0
    assert ops["conv"].gm_bytes - plain["conv"].gm_bytes == tensor
    assert ops["conv"].vector_cycles > plain["conv"].vector_cycles
    # Split chips (910B) write the convolution's result from L0C straight to GM: the Add still
    # reads the residual after it (the sum leaves with the convolution's write; the Add stores
    # a byte per UB tile only, the store that hands its slot back).
    split = {o.name: o for o in simulate(g, "ascend910b").ops}
    assert tensor <= split["add"].gm_bytes <= tensor + 64
    assert split["add"].vector_cycles > 0


def test_the_epilogue_residual_read_overlaps_a_compute_bound_convolution() -> None:
    # 256 channels, 3x3, 28x28, batch 4 on the 310P3: about 56k Cube cycles against a 1.6 MB
    # residual the MTE2 reads meanwhile; the fused kernel takes the convolution's time plus
    # only its last blocks' epilogue.
    shape = (4, 256, 28, 28)
    fused = {o.name: o for o in simulate(_block(shape=shape), "ascend310p").ops}
    plain = {o.name: o for o in simulate(_conv_bn(shape=shape), "ascend310p").ops}
    residual = 4 * 256 * 28 * 28 * 2
    assert fused["conv"].gm_bytes - plain["conv"].gm_bytes == residual
    assert plain["conv"].cycles <= fused["conv"].cycles <= 1.05 * plain["conv"].cycles


def _conv_bn(shape: tuple[int, int, int, int] = (1, 64, 56, 56)):
    """The same convolution and BatchNormalization with no residual Add."""
    return _block(shape=shape, residual=False)


def test_unfused_add_reads_both_inputs() -> None:
    g = _block(skip_is_constant=True)  # a constant second input is not a residual
    assert residual_adds(g) == {}
    # Not the convolution's epilogue: the Add and its ReLU are an elementwise chain of their
    # own (AutomaticUbFusion), one kernel that reads both inputs and writes the ReLU's output.
    assert fusion_map(g) == {"bn": "conv", "relu": "add"}
    ops = {o.name: o for o in simulate(g, "ascend910").ops}
    assert ops["add"].gm_bytes == 3 * 64 * 56 * 56 * 2
    assert ops["relu"].bound == "fused" and ops["relu"].cycles == 0


def test_fusion_makes_the_block_faster() -> None:
    fused = simulate(_block(), "ascend910").cycles
    unfused = simulate(_block(skip_is_constant=True), "ascend910").cycles
    assert fused < unfused
