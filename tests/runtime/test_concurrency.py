"""One compiled plan serves concurrent run calls; independent stages run concurrently."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

import hetnpu
from tests.runtime._models import SPLIT, branchy, feeds_for, small

THREADS = 6
CALLS = 4


def _inputs(n):
    rng = np.random.default_rng(1)
    return [rng.standard_normal((2, 4, 6, 6)).astype(np.float32) for _ in range(n)]


def _equal(a, b):
    return len(a) == len(b) and all(
        x.dtype == y.dtype and np.array_equal(x, y) for x, y in zip(a, b, strict=True)
    )


def test_threads_sharing_sessions_get_the_sequential_outputs():
    split = hetnpu.InferenceSession(
        branchy(), devices=["sim-npu", "cpu"], strategy="affinity", affinity=SPLIT
    )
    split.run(None, {"X": _inputs(1)[0]})
    assert split._latest_plan().parallel  # its two stages are submitted to the stage pool
    mlp = hetnpu.InferenceSession(small("mlp"), devices=["sim-npu", "cpu"], strategy="heft")
    xs = _inputs(THREADS * CALLS)
    mlp_feeds = [feeds_for(small("mlp"), seed=k) for k in range(THREADS)]
    expected = [split.run(None, {"X": x}) for x in xs]
    expected_mlp = [mlp.run(None, f) for f in mlp_feeds]
    plans_before = (len(split._plans), len(mlp._plans))
    barrier = threading.Barrier(THREADS)

    def worker(t):
        barrier.wait()  # start together, so calls really overlap
        got = []
        for k in range(CALLS):
            i = t * CALLS + k
            got.append((i, split.run(None, {"X": xs[i]})))
            got.append((-1 - t, mlp.run(None, mlp_feeds[t])))
        return got

    with ThreadPoolExecutor(THREADS) as pool:
        results = [r for rs in pool.map(worker, range(THREADS)) for r in rs]
    for i, outs in results:
        want = expected[i] if i >= 0 else expected_mlp[-1 - i]
        assert _equal(outs, want), i
    assert (len(split._plans), len(mlp._plans)) == plans_before  # compiled once, reused
