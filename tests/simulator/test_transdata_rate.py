"""TransData between NCHW and NC1HWC0 at the chip's measured per-core rate
(``transdata_bytes_per_cycle``), against the closed form: the NC1HWC0 side's bytes over the rate
times the cores. A tensor of at most 4 channels (CANN's small channel) keeps the Vector pass."""

from __future__ import annotations

from onnx import TensorProto, helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate


def _input_transdata_cycles(shape: list[int], overrides: dict) -> int:
    """Cycles of ATC's input TransData of an fp16 NCHW input feeding a 1x1 convolution."""
    c = shape[1]
    w = helper.make_tensor("w", TensorProto.FLOAT16, [16, c, 1, 1], [0.0] * (16 * c))
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[1, 1], name="conv")],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT16, None)],
        initializer=[w],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    res = simulate(load(model), load_npu("ascend910", overrides), precision="fp16")
    (td,) = [o for o in res.ops if o.op_type == "TransData"]
    return td.cycles


def test_a_transdata_takes_its_nc1hwc0_bytes_over_the_rate_of_every_core() -> None:
    shape = [8, 64, 56, 56]  # 64 channels: C1 = 4 whole blocks of C0 = 16, no padding
    nc1hwc0 = 8 * 64 * 56 * 56 * 2
    cores = load_npu("ascend910", {}).ai_cores
    got, want = {}, {}
    for rate in (2.0, 4.63, 8.0):
        # The Vector pass takes one 256-B repeat per round(256 / rate) cycles.
        want[rate] = nc1hwc0 / (256 / round(256 / rate)) / cores
        got[rate] = _input_transdata_cycles(shape, {"transdata_bytes_per_cycle": rate})
        assert got[rate] >= want[rate]
    # The rate scales the Vector-bound part only: beyond it the same fill of the pipeline (the
    # first tile's read, the last one's write) at every rate.
    fills = [got[r] - want[r] for r in got]
    assert max(fills) - min(fills) <= 0.01 * want[8.0]
    assert max(fills) < 0.25 * want[8.0]


def test_unset_the_conversion_is_one_vector_pass_several_times_faster() -> None:
    shape = [8, 64, 56, 56]
    measured = _input_transdata_cycles(shape, {})
    plain = _input_transdata_cycles(shape, {"transdata_bytes_per_cycle": None})
    assert measured > 4 * plain


def test_a_small_channel_input_keeps_the_vector_pass() -> None:
    # A 3-channel image converts as fast as memory allows (the 910 profiles: 1.1-2.2 TB/s).
    shape = [8, 3, 224, 224]
    assert _input_transdata_cycles(shape, {}) == _input_transdata_cycles(
        shape, {"transdata_bytes_per_cycle": None}
    )
    five = [8, 5, 224, 224]
    assert _input_transdata_cycles(five, {}) > 4 * _input_transdata_cycles(
        five, {"transdata_bytes_per_cycle": None}
    )
