"""ATC's fusions as the simulator applies them: epilogues into Cube ops, and the residual
Add + ReLU of a ResNet block into the convolution's epilogue (TbeConvElemwiseReluFusion)."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.prepare import conv_residuals, fusion_map, residual_adds
from tests.support.graphs import float_graph


def _block(
    relu_after_add: bool = True,
    skip_is_constant: bool = False,
    shape: tuple[int, int, int, int] = (1, 64, 56, 56),
    residual: bool = True,
    kernel: int = 3,
):
    """X → conv → bn → add(·, X) → relu: the tail of a ResNet basic block."""
    rng = np.random.default_rng(0)
    c = shape[1]
    inits = [
        numpy_helper.from_array(
            rng.standard_normal((c, c, kernel, kernel)).astype(np.float32), "W"
        ),
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
        helper.make_node("Conv", ["X", "W"], ["c"], name="conv", pads=[kernel // 2] * 4),
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


def _conv_bn(shape: tuple[int, int, int, int] = (1, 64, 56, 56), kernel: int = 3):
    """The same convolution and BatchNormalization with no residual Add."""
    return _block(shape=shape, residual=False, kernel=kernel)


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


def _downsample_block():
    """X → conv_a → Add(conv_a, conv_down(X)): a ResNet downsample block's tail, with the
    main-path convolution before the downsample one (as torchvision builds it)."""
    rng = np.random.default_rng(0)
    c = 32
    inits = [
        numpy_helper.from_array(rng.standard_normal((c, c, 3, 3)).astype(np.float32), "Wa"),
        numpy_helper.from_array(rng.standard_normal((c, c, 1, 1)).astype(np.float32), "Wd"),
    ]
    nodes = [
        helper.make_node("Conv", ["X", "Wa"], ["a"], name="conv_a", pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["X", "Wd"], ["d"], name="conv_down"),
        helper.make_node("Add", ["a", "d"], ["Y"], name="add"),
    ]
    shape = [1, c, 28, 28]
    return float_graph(nodes, [("X", shape)], [("Y", shape)], inits, "down")


def test_an_add_of_two_convolutions_fuses_into_the_later_one() -> None:
    # The downsample convolution runs last, so it adds the main path's output, which exists by
    # then; the main-path convolution could not read a residual not yet computed.
    g = _downsample_block()
    assert residual_adds(g) == {"add": "d"}
    assert conv_residuals(g, residual_adds(g)) == {"conv_down": ("add", "a")}
    ops = {o.name: o for o in simulate(g, "ascend310p").ops}
    assert ops["add"].fused_into == "conv_down"
    # conv_a's output is in L2 when conv_down reads it: conv_down moves no more HBM bytes than
    # its weights (X is resident too).
    assert ops["conv_down"].hbm_bytes <= 32 * 32 * 2


def test_an_add_of_a_tensor_to_itself_is_no_residual() -> None:
    w = numpy_helper.from_array(np.ones((16, 16, 1, 1), np.float32), "W")
    nodes = [
        helper.make_node("Conv", ["X", "W"], ["c"], name="conv"),
        helper.make_node("Add", ["c", "c"], ["Y"], name="double"),
    ]
    g = float_graph(nodes, [("X", [1, 16, 8, 8])], [("Y", [1, 16, 8, 8])], [w])
    assert residual_adds(g) == {}
    ops = {o.name: o for o in simulate(g, "ascend310p").ops}
    assert ops["double"].fused_into is None and ops["double"].cycles > 0


def test_the_epilogue_waits_for_its_residual_and_the_load_for_a_free_slot() -> None:
    # Memory-bound, the residual from HBM: its loads are slower than the Cube's blocks, so an
    # epilogue that did not wait for them would start before they end.
    res = simulate(_conv_plus_input([4, 256, 56, 56], True), "ascend310p", trace_level="instr")
    conv = next(o for o in res.ops if o.name == "conv")
    core = conv.cores[0][0]

    def spans(name: str) -> list[tuple[int, int]]:
        return [
            (s, e)
            for c, _u, s, e, n, i, _b in res.raw_events
            if c == core and n == name and i == conv.index
        ]

    loads, adds, stores = spans("mte2.load_residual"), spans("vec.l0c_to_ub"), spans("mte3.store")
    assert len(loads) == len(adds) == len(stores) > 2
    slots = 2  # the L0C/UB ping-pong of a double-buffered run
    for i, (start, end) in enumerate(loads):
        assert adds[i][0] >= end  # the add takes the residual once it is in UB
        if i >= slots:
            assert start >= stores[i - slots][1]  # the slot's last output has left UB


def _conv_plus_input(shape: list[int], residual: bool):
    """A 1x1 convolution, plus (``residual``) a second network input added to its output:
    a residual in HBM, not in L2."""
    c = shape[1]
    w = numpy_helper.from_array(np.zeros((c, c, 1, 1), np.float32), "W")
    vi = helper.make_tensor_value_info
    nodes = [helper.make_node("Conv", ["X", "W"], ["c"], name="conv")]
    inputs = [vi("X", TensorProto.FLOAT, shape)]
    out = "c"
    if residual:
        nodes.append(helper.make_node("Add", ["c", "R"], ["Y"], name="add"))
        inputs.append(vi("R", TensorProto.FLOAT, shape))
        out = "Y"
    graph = helper.make_graph(nodes, "g", inputs, [vi(out, TensorProto.FLOAT, shape)], [w])
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_a_memory_bound_convolution_pays_for_its_residual() -> None:
    # A 1x1 convolution over 256 channels at 56x56, batch 8: its 12.8 MB output already keeps
    # the HBM bus busy, so reading a 12.8 MB residual from HBM as well takes longer.
    shape = [8, 256, 56, 56]
    fused = {o.name: o for o in simulate(_conv_plus_input(shape, True), "ascend310p").ops}
    plain = {o.name: o for o in simulate(_conv_plus_input(shape, False), "ascend310p").ops}
    assert fused["add"].fused_into == "conv" and fused["conv"].bound == "memory"
    residual = 8 * 256 * 56 * 56 * 2
    assert fused["conv"].hbm_bytes - plain["conv"].hbm_bytes >= residual
    # No faster than its HBM bytes over the bus: the residual's read is not hidden.
    spec = load_npu("ascend310p", {})
    bus = spec.hbm_bytes_per_s / spec.clock_hz
    assert fused["conv"].cycles >= fused["conv"].hbm_bytes / bus
    assert fused["conv"].cycles - plain["conv"].cycles >= 0.25 * residual / bus
