"""GE's ConcatNotaskPass: a Concat whose inputs can be written in place in its output runs no
task (mirror-cann/ge ``compiler/graph/passes/memory_optimize/concat_notask_pass.cc``).

In NC1HWC0 a channel Concat is in place only at batch 1 with every input's channels a
multiple of C0 (16 for fp16); a producer's output joins one such Concat at most.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate
from hetnpu.simulator.formats import format_plan
from hetnpu.simulator.notask import notask_concats
from hetnpu.simulator.tiler import precision_info

LAUNCH_S = 5e-6


def _branches(batch: int, ch: int, second_concat: bool = False) -> object:
    """conv_a, conv_b (``ch`` channels each) -> Concat on C -> conv_c; optionally a second
    Concat of conv_a's output with conv_c's (DenseNet's pattern: a shared first input)."""
    wa = numpy_helper.from_array(np.zeros((ch, 16, 1, 1), np.float32), "wa")
    wc = numpy_helper.from_array(np.zeros((16, 2 * ch, 1, 1), np.float32), "wc")
    nodes = [
        helper.make_node("Conv", ["x", "wa"], ["a"], name="conv_a"),
        helper.make_node("Conv", ["x", "wa"], ["b"], name="conv_b"),
        helper.make_node("Concat", ["a", "b"], ["cat"], name="cat", axis=1),
        helper.make_node("Conv", ["cat", "wc"], ["c"], name="conv_c"),
    ]
    out_c = 16
    if second_concat:
        nodes.append(helper.make_node("Concat", ["a", "c"], ["y"], name="cat2", axis=1))
        out_c = ch + 16
    else:
        nodes[-1] = helper.make_node("Conv", ["cat", "wc"], ["y"], name="conv_c")
    graph = helper.make_graph(
        nodes,
        "branches",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, 16, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [batch, out_c, 28, 28])],
        [wa, wc],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def _cat(res, name: str = "cat"):
    return next(o for o in res.ops if o.name == name)


def test_aligned_batch_one_concat_is_no_task() -> None:
    spec = load_npu("ascend310p", {"task_launch_s": LAUNCH_S})
    per_kernel = round(LAUNCH_S * spec.clock_hz)
    res = simulate(_branches(1, 32), spec)
    cat = _cat(res)
    assert (cat.launch_cycles, cat.cycles, cat.gm_bytes, cat.bound) == (0, 0, 0, "zero")
    # Input TransData and three convolutions launch; the Concat does not.
    assert res.launch_cycles == 4 * per_kernel


def test_batch_or_padding_keeps_the_concat_kernel() -> None:
    spec = load_npu("ascend310p", {"task_launch_s": LAUNCH_S})
    for batch, ch in ((2, 32), (1, 24)):  # C1 axis behind N = 2; 24 channels pad to 32
        cat = _cat(simulate(_branches(batch, ch), spec))
        assert cat.launch_cycles > 0 and cat.cycles > 0, (batch, ch)


def test_a_producer_output_joins_one_no_task_concat() -> None:
    g = _branches(1, 32, second_concat=True)
    # ``a`` is in place in ``cat``; ``cat2`` would need it in its own output too.
    formats = format_plan(g, frozenset({"x"}))[1]
    assert notask_concats(g, precision_info("fp16"), formats) == {"cat"}


def test_no_task_concat_output_is_resident_when_its_inputs_are() -> None:
    spec = load_npu("ascend310p", {"task_launch_s": LAUNCH_S})
    res = simulate(_branches(1, 32), spec)
    conv_c = next(o for o in res.ops if o.name == "conv_c")
    # conv_c reads the concatenation (both halves just written) from L2, not from HBM: only
    # its weights (16 x 64 fp16) come from HBM.
    assert conv_c.hbm_bytes <= 16 * 64 * 2 + 64


def test_a_later_reader_of_an_input_finds_it_in_the_concatenation() -> None:
    spec = load_npu("ascend310p", {"task_launch_s": LAUNCH_S})
    res = simulate(_branches(1, 32, second_concat=True), spec)
    cat2 = _cat(res, "cat2")
    # cat2 (a kernel: ``a`` is placed in ``cat`` already) reads ``a`` from the resident
    # concatenation and ``c`` just written: nothing from HBM.
    assert cat2.launch_cycles > 0 and cat2.hbm_bytes == 0
