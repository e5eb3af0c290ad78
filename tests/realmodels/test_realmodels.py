"""Real models from public PyPI wheels: load → info → simulate → run on the CPU and on sim-npu.

Outputs are checked against onnxruntime on the original file; sim-npu computes the NPU's
share in fp16, so its tolerance is fp16's, relative to the output's scale.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import onnxruntime as ort
import pytest

from hetnpu import InferenceSession, load, simulate
from hetnpu.errors import NumericOverflowWarning
from hetnpu.graph.control import ControlOptions
from hetnpu.graph.stats import model_stats
from tests.realmodels.corpus import CORPUS, DATA

CHIP = "ascend310p"
FP16_REL = 3e-2  # of the output's largest magnitude: a few fp16 ulps accumulated over layers


def _reference(name: str) -> list[np.ndarray]:
    m = CORPUS[name]
    sess = ort.InferenceSession(str(m.path), providers=["CPUExecutionProvider"])
    return sess.run(None, m.feeds())


def test_sources_name_every_file_with_its_sha256():
    sources = (DATA / "SOURCES.md").read_text()
    for m in CORPUS.values():
        digest = hashlib.sha256(m.path.read_bytes()).hexdigest()
        row = next(line for line in sources.splitlines() if f"`{m.file}`" in line)
        assert digest in row, m.file
        assert re.search(r"\| [\w.-]+ \| [\d.]+ \|", row), row  # package and version


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_info_and_simulation_count_the_work(name):
    m = CORPUS[name]
    g = load(m.path, input_shapes=m.shapes)
    feeds = m.feeds()
    stats = model_stats(g, control=ControlOptions(feeds=feeds))
    assert stats.macs > 0
    res = simulate(g, CHIP, feeds=feeds)
    timed_macs = sum(o.macs for o in res.ops)
    assert res.cycles > 0 and timed_macs > 0
    assert all(o.cycles >= o.roofline_cycles for o in res.ops)


def test_silero_branch_and_lstm_are_counted_and_timed():
    m = CORPUS["silero_vad"]
    g = load(m.path, input_shapes=m.shapes)
    feeds = m.feeds()
    fed = model_stats(g, control=ControlOptions(feeds=feeds))
    # An 8 kHz chunk (256 samples, sr = 8000) takes the else branch.
    g8 = load(m.path, input_shapes={**m.shapes, "input": [1, 256]})
    feeds8 = {**feeds, "input": feeds["input"][:, ::2].copy(), "sr": np.array(8000, np.int64)}
    eight_k = model_stats(g8, control=ControlOptions(feeds=feeds8))
    # Each branch runs an LSTM cell: 4 gates of 128 over [x, h] of 128 + 128.
    assert fed.macs > eight_k.macs > 4 * 128 * 256
    res = simulate(g, CHIP, feeds=feeds)
    op = next(o for o in res.ops if o.name == "If_0")
    assert op.cycles > 1000 and op.macs >= 4 * 128 * 256
    assert res.cycles >= op.cycles


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_cpu_run_matches_onnxruntime(name):
    m = CORPUS[name]
    out = InferenceSession(str(m.path), devices=["cpu"], input_shapes=m.shapes).run(None, m.feeds())
    for got, want in zip(out, _reference(name), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


# Magika's LayerNorm sums squares of activations up to 1.97e5, past fp16's 65504: under
# force_fp16 the chip overflows there too (tested below), so it runs as ATC's
# allow_mix_precision compiles it, reductions kept in fp32.
_PRECISION_MODE = {"magika": "allow_mix_precision"}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_sim_npu_run_matches_onnxruntime_in_fp16(name):
    m = CORPUS[name]
    options = (
        {"sim-npu": {"precision_mode": _PRECISION_MODE[name]}} if name in _PRECISION_MODE else None
    )
    sess = InferenceSession(
        str(m.path), devices=["sim-npu", "cpu"], input_shapes=m.shapes, backend_options=options
    )
    for got, want in zip(sess.run(None, m.feeds()), _reference(name), strict=True):
        scale = float(np.max(np.abs(want))) or 1.0
        np.testing.assert_allclose(got, want, rtol=FP16_REL, atol=FP16_REL * scale)


def test_magika_overflows_fp16_in_its_layer_norm_under_force_fp16():
    m = CORPUS["magika"]
    sess = InferenceSession(
        str(m.path), devices=["sim-npu", "cpu"], input_shapes=m.shapes,
        backend_options={"sim-npu": {"precision_mode": "force_fp16"}},
    )  # fmt: skip
    with pytest.warns(NumericOverflowWarning, match=r"LayerNorm_1/Sum_1' \(ReduceSum\)"):
        sess.run(None, m.feeds())
