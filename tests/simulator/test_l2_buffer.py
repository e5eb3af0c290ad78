"""An L2 buffer (``l2_kind="buffer"``, the 310's): a tensor leaves it when its last reader has
run and is never written back, where a cache writes back every dirty tensor it evicts.

GE's platform config for the 310 has ``l2_type=1``, and GE's L2 allocator frees a tensor's
pages when its consumers are done without loading it out to DDR (``L2_load_to_ddr = 0``)."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.errors import ConfigError
from hetnpu.simulator import simulate
from tests.support.graphs import float_graph

from .test_l2_writeback import _transpose_chain

SIDE = 1024
BYTES = 2 * SIDE * SIDE  # one fp16 tensor on the chip


def _spec(kind: str, tensors: int):
    return load_npu(
        "ascend310p", {"task_launch_s": 0.0, "l2_kind": kind, "l2_bytes": tensors * BYTES + 1024}
    )


def test_a_buffer_frees_dead_tensors_instead_of_writing_them_back() -> None:
    g = _transpose_chain(6, SIDE)
    # Room for two tensors: in a cache each op's output evicts the dirty one of two ops back.
    cache, buffer = simulate(g, _spec("cache", 2)), simulate(g, _spec("buffer", 2))
    roomy = simulate(g, _spec("cache", 64))
    assert cache.hbm_bytes > roomy.hbm_bytes + 2 * BYTES
    # In the buffer each tensor is dead once the next op has read it: nothing is written
    # back but the graph's output, so it runs as if L2 held everything.
    assert buffer.hbm_bytes == roomy.hbm_bytes == 2 * BYTES  # the input's read, the output's flush
    assert buffer.cycles == roomy.cycles < cache.cycles
    assert [o.hbm_bytes for o in buffer.ops] == [o.hbm_bytes for o in roomy.ops]


def test_a_tensor_stays_in_the_buffer_until_its_last_reader() -> None:
    # t0 is read by op1 and again by the Add after two more ops: it must still be resident.
    nodes = [
        helper.make_node("Transpose", ["x"], ["t0"], name="op0", perm=[1, 0]),
        helper.make_node("Transpose", ["t0"], ["t1"], name="op1", perm=[1, 0]),
        helper.make_node("Transpose", ["t1"], ["t2"], name="op2", perm=[1, 0]),
        helper.make_node("Add", ["t2", "t0"], ["y"], name="add"),
    ]
    g = float_graph(nodes, [("x", [SIDE, SIDE])], [("y", [SIDE, SIDE])], name="late_reader")
    res = simulate(g, _spec("buffer", 3))
    add = next(o for o in res.ops if o.name == "add")
    assert add.hbm_bytes == 0  # both operands found in L2
    assert res.hbm_bytes == 2 * BYTES  # the input's read and the output's flush, nothing else
    # The Add's read is what a live t0 in L2 saves: with room for two tensors, t0 is evicted
    # (and written back) before the Add, which reads it from HBM. (GE's allocator would leave
    # t2 in DDR instead of evicting t0: one tensor goes through DDR either way.)
    tight = simulate(g, _spec("buffer", 2))
    assert next(o for o in tight.ops if o.name == "add").hbm_bytes >= BYTES


def test_the_310s_l2_is_a_buffer_and_the_others_caches() -> None:
    assert load_npu("ascend310").l2_kind == "buffer"
    for chip in ("ascend310p", "ascend910", "ascend910b", "ascend910b4"):
        assert load_npu(chip).l2_kind == "cache"


def test_an_unknown_l2_kind_is_a_config_error_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="l2_kind"):
        load_npu("ascend310", {"l2_kind": "scratchpad"})


def _weight(name: str, cout: int, cin: int):
    return numpy_helper.from_array(np.zeros((cout, cin, 1, 1), np.float32), name)


def _views():
    # The Transpose's output is last read, by name, by a Flatten; the Relu reads the view.
    nodes = [
        helper.make_node("Transpose", ["x"], ["t0"], name="op0", perm=[1, 0]),
        helper.make_node("Flatten", ["t0"], ["v"], name="flat", axis=0),
        helper.make_node("Relu", ["v"], ["y"], name="op2"),
    ]
    return float_graph(nodes, [("x", [SIDE, SIDE])], [("y", None)]), BYTES


def _output_view():
    # The graph's output is a view of a tensor nothing else reads: it is written back.
    nodes = [
        helper.make_node("Transpose", ["x"], ["t0"], name="op0", perm=[1, 0]),
        helper.make_node("Flatten", ["t0"], ["v"], name="flat", axis=0),
    ]
    return float_graph(nodes, [("x", [SIDE, SIDE])], [("v", None)]), BYTES


def _conv_relu():
    # Each Conv's output is read only by its fused ReLU; the next Conv reads the ReLU's.
    c, h = 64, 128
    nodes, inits, prev = [], [], "x"
    for i in range(6):
        inits.append(_weight(f"w{i}", c, c))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"c{i}"], name=f"conv{i}"))
        nodes.append(helper.make_node("Relu", [f"c{i}"], [f"r{i}"], name=f"relu{i}"))
        prev = f"r{i}"
    return float_graph(nodes, [("x", [1, c, h, h])], [(prev, None)], inits), 2 * c * h * h


def _dense_concats():
    # No-task Concats (DenseNet): cat2 reads x0 and x1 after cat1's output has been read.
    c, h = 16, 256
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["x0"], name="conv0"),
        helper.make_node("Conv", ["x0", "w1"], ["x1"], name="conv1"),
        helper.make_node("Concat", ["x0", "x1"], ["W1"], name="cat1", axis=1),
        helper.make_node("Conv", ["W1", "w2"], ["x2"], name="conv2"),
        helper.make_node("Concat", ["x0", "x1", "x2"], ["W2"], name="cat2", axis=1),
        helper.make_node("Conv", ["W2", "w3"], ["y"], name="conv3"),
    ]
    inits = [_weight("w0", c, c), _weight("w1", c, c), _weight("w2", c, 2 * c),
             _weight("w3", c, 3 * c)]  # fmt: skip
    return float_graph(nodes, [("x", [1, c, h, h])], [("y", None)], inits), 2 * 3 * c * h * h


@pytest.mark.parametrize("build", [_views, _output_view, _conv_relu, _dense_concats])
def test_a_buffer_frees_a_tensor_only_after_its_last_reader_under_any_name(build) -> None:
    # A tensor is read under other names (a view's, a fused epilogue's, a no-task Concat's
    # output): freed before the last of those readers, it would come back from HBM; kept
    # past it, it would be written back. Either way the run would differ from one whose L2
    # holds everything.
    g, largest = build()

    def run(kind: str, room: int):
        spec = load_npu("ascend310", {"l2_kind": kind, "l2_bytes": room * largest + 1024})
        return simulate(g, spec)

    buffer, roomy = run("buffer", 3), run("cache", 64)
    assert buffer.hbm_bytes == roomy.hbm_bytes
    assert buffer.cycles == roomy.cycles
    assert [o.hbm_bytes for o in buffer.ops] == [o.hbm_bytes for o in roomy.ops]
