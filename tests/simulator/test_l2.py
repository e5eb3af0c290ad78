"""The L2 residency model on its own: LRU over whole tensors, write-back of dirty evictions."""

from __future__ import annotations

from hetnpu.simulator.l2 import L2Residency


def test_least_recently_used_tensor_leaves_first_and_dirty_ones_are_written_back() -> None:
    l2 = L2Residency(100)
    l2.touch("a", 40, dirty=True)  # an op's output
    l2.touch("b", 40, dirty=False)  # an input read from HBM
    l2.touch("a", 40, dirty=False)  # read again: most recent now, still dirty
    l2.touch("c", 40, dirty=True)  # 120 > 100: "b", the least recent, leaves (clean: no cost)
    assert ("a" in l2, "b" in l2, "c" in l2) == (True, False, True)
    assert l2.writeback_bytes == 0
    l2.touch("d", 30, dirty=False)  # 110 > 100: "a" leaves, and it was written: 40 B to HBM
    assert "a" not in l2
    assert l2.writeback_bytes == 40


def test_a_tensor_larger_than_l2_never_enters_and_flush_writes_back_dirty_outputs() -> None:
    l2 = L2Residency(100)
    l2.touch("big", 101, dirty=True)
    assert "big" not in l2
    l2.touch("out", 60, dirty=True)
    l2.touch("tmp", 30, dirty=True)
    l2.flush(["out", "missing"])  # only resident, dirty graph outputs are written at the end
    assert l2.writeback_bytes == 60
