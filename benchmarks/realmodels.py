"""The real-model corpus (``tests/data/realmodels``): work, simulated time and sim-npu error.

Run from the repository root: ``python -m benchmarks.realmodels [--chip ascend310p]``

Per model: MACs as ``hetnpu info`` counts them with the corpus feed (If branches and loop trips
that the feed selects included), the simulated latency on the chip (control flow and RNNs
timed as what they run), the ops the NPU cannot run, and the largest difference of the
``["sim-npu", "cpu"]`` session's outputs from onnxruntime's, relative to each output's scale.
"""

from __future__ import annotations

import argparse

import numpy as np
import onnxruntime as ort

from hetnpu import InferenceSession, load, simulate
from hetnpu.errors import HetnpuError
from hetnpu.graph.control import ControlOptions
from hetnpu.graph.stats import model_stats
from tests.realmodels.corpus import CORPUS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", default="ascend310p")
    chip = parser.parse_args().chip
    print(f"{'model':14} {'MACs':>12} {'sim ms':>9} {'untimed':>8}  sim-npu max rel. error")
    for name, m in CORPUS.items():
        feeds = m.feeds()
        g = load(m.path, input_shapes=m.shapes)
        macs = model_stats(g, control=ControlOptions(feeds=feeds)).macs
        res = simulate(g, chip, feeds=feeds)
        ref = ort.InferenceSession(str(m.path), providers=["CPUExecutionProvider"]).run(None, feeds)
        try:
            sess = InferenceSession(str(m.path), devices=["sim-npu", "cpu"], input_shapes=m.shapes)
            err = max(
                float(np.max(np.abs(a - b))) / (float(np.max(np.abs(b))) or 1.0)
                for a, b in zip(sess.run(None, feeds), ref, strict=True)
            )
            shown = f"{err:.2e}"
        except HetnpuError as exc:
            shown = f"fails: {type(exc).__name__}"
        print(
            f"{name:14} {macs:>12,} {res.latency_s * 1e3:>9.4f} {len(res.unsupported):>8}  {shown}"
        )


if __name__ == "__main__":
    main()
