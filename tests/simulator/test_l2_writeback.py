"""Dirty L2 evictions are written back to HBM on the HBM bus, in the evicting op's time.

CANN Ascend C best practices, "Setting a Proper L2 CacheMode" (hiascend.com,
atlas_ascendc_best_practices_10_00014): when the data accessed exceeds L2, "the old data needs
to be written back to the GM during the replacement (this process occupies the GM bandwidth).
After the old data is written back, the new data can enter the L2 cache."
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from hetnpu.devices.presets import load_npu
from hetnpu.graph import load
from hetnpu.simulator import simulate


def _transpose_chain(n: int, side: int) -> object:
    """``n`` 2-D transposes in a row (each a kernel of its own: nothing fuses them), each
    writing a fresh fp32 ``side`` x ``side`` tensor (fp16 on the chip)."""
    nodes, prev = [], "x"
    for i in range(n):
        nodes.append(helper.make_node("Transpose", [prev], [f"t{i}"], name=f"op{i}", perm=[1, 0]))
        prev = f"t{i}"
    graph = helper.make_graph(
        nodes,
        "chain",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [side, side])],
        [helper.make_tensor_value_info(prev, TensorProto.FLOAT, [side, side])],
        [numpy_helper.from_array(np.zeros(1, np.float32), "unused")],
    )
    return load(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))


def test_evicting_dirty_tensors_costs_hbm_bus_time_and_bytes() -> None:
    side = 1024
    elems = side * side  # 2 MB in fp16 per tensor
    g = _transpose_chain(6, side)
    # An L2 that holds two of the tensors: from the third op on, each op's output evicts
    # a dirty tensor written two ops earlier.
    small = load_npu("ascend310p", {"task_launch_s": 0.0, "l2_bytes": 2 * 2 * elems + 1024})
    large = load_npu("ascend310p", {"task_launch_s": 0.0, "l2_bytes": 64 * 2 * elems})
    a, b = simulate(g, small), simulate(g, large)
    wb_ops = [o for o in a.ops if o.hbm_bytes >= 2 * elems and o.name != "op0"]
    assert wb_ops, "no op paid for a write-back"
    # Every evicted tensor's bytes crossed the HBM bus inside some op's record ...
    assert sum(o.hbm_bytes for o in a.ops) > sum(o.hbm_bytes for o in b.ops) + 2 * 2 * elems
    # ... and took bus time: the run is no shorter than all its HBM bytes at the HBM rate,
    # and the write-backs (which overlap the ops' L2 reads) lengthen it.
    hbm_bpc = small.hbm_bytes_per_s / small.clock_hz
    extra = sum(o.hbm_bytes for o in a.ops) - sum(o.hbm_bytes for o in b.ops)
    assert a.cycles >= sum(o.hbm_bytes for o in a.ops) / hbm_bpc
    assert a.cycles - b.cycles >= 0.4 * extra / hbm_bpc
    # The whole-run HBM figure counts each write-back once.
    assert a.hbm_bytes == sum(o.hbm_bytes for o in a.ops) + 2 * elems  # + the output's flush


def test_no_eviction_no_writeback_time() -> None:
    g = _transpose_chain(4, 128)
    spec = load_npu("ascend310p", {"task_launch_s": 0.0})
    res = simulate(g, spec)
    # Everything fits in L2: only the graph input's first read touches HBM during the run.
    assert sum(o.hbm_bytes for o in res.ops) <= 2 * 128 * 128 + 4096
