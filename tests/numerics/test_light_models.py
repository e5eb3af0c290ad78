"""onnx's light models (constant-filled weights, activations up to 1e31) on the simulated NPU.

In fp32 mode (ATC must_keep_origin_dtype) every activation matches onnxruntime to 1e-4 of its
own magnitude; in the default fp16 mode the first op whose result leaves fp16's range is
reported, as the chip's overflow flag reports it: a warning, or an error with ``strict=True``,
never a silent inf/NaN. Which op that is comes from onnxruntime's fp32 activations, not from a list.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from hetnpu import InferenceSession
from hetnpu.backends.base import CompileOptions
from hetnpu.backends.sim import SimNpuBackend
from hetnpu.errors import NumericOverflowError, NumericOverflowWarning
from tests.conftest import LIGHT_MODELS, ort_run
from tests.numerics._probe import (
    FP16_MAX,
    light_model,
    producers,
    ramp_feeds,
    rel_error,
    with_activations,
)

# Quick enough for the default run (a few seconds each); the others are marked slow.
FAST = ("light_squeezenet", "light_resnet50", "light_bvlc_alexnet")


def _params(names):
    return [n if n in FAST else pytest.param(n, marks=pytest.mark.slow) for n in names]


@pytest.fixture(scope="module")
def probes(light_dir):
    """name -> (model with every activation as an output, feeds, onnxruntime's activations)."""
    cache = {}

    def get(name):
        if name not in cache:
            model = with_activations(light_model(light_dir, name))
            feeds = ramp_feeds(model)
            cache[name] = (model, feeds, ort_run(model, feeds))
        return cache[name]

    return get


def _first_beyond_fp16(model, ref) -> str | None:
    prod = producers(model)
    for out in (o.name for o in model.graph.output):
        if np.max(np.abs(ref[out])) > FP16_MAX:
            node = prod[out]
            return node.name or out
    return None


@pytest.mark.parametrize("name", _params(LIGHT_MODELS))
def test_fp32_matches_onnxruntime_at_every_activation(probes, name) -> None:
    model, feeds, ref = probes(name)
    sess = InferenceSession(model, devices=["sim-npu", "cpu"], precision="fp32", strict=True)
    assert "sim-npu" in set(sess.get_device_assignment().values())
    outs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    worst = max(np.max(np.abs(v)) for v in ref.values())
    assert worst > 1.0  # the activations really are large (up to 1e31 in vgg19)
    for out, want in ref.items():
        assert np.all(np.isfinite(outs[out])), out
        assert rel_error(outs[out], want) <= 1e-4, out


@pytest.mark.parametrize("name", _params(LIGHT_MODELS))
def test_fp32_whole_model_on_the_npu_matches_onnxruntime(probes, name) -> None:
    # The session leaves fp32 Convs to the CPU (CANN's must_keep_origin_dtype has no fp32 Conv);
    # the backend on its own puts every Conv through NC1HWC0/FRACTAL_Z with values up to 1e31.
    model, feeds, ref = probes(name)
    exe = SimNpuBackend(strict=True).compile(model, CompileOptions(precision="fp32"))
    outs = exe.run(feeds)
    for out, want in ref.items():
        assert np.all(np.isfinite(outs[out])), out
        assert rel_error(outs[out], want) <= 1e-4, out


@pytest.mark.parametrize("name", _params(LIGHT_MODELS))
def test_fp16_overflow_is_reported_at_the_first_op(probes, name) -> None:
    model, feeds, ref = probes(name)
    expected = _first_beyond_fp16(model, ref)
    sess = InferenceSession(model, devices=["sim-npu", "cpu"])
    on_cpu = expected is not None and sess.get_device_assignment()[expected] != "sim-npu"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        outs = sess.run(None, feeds)
    flags = [w for w in caught if issubclass(w.category, NumericOverflowWarning)]
    if expected is None:
        # Activations stay in fp16's range: no flag, and fp16's accuracy on the final output.
        assert not flags
        assert rel_error(outs[0], ref[model.graph.output[0].name]) <= 2e-2
        return
    assert len(flags) == 1, [str(w.message) for w in flags]
    if on_cpu:
        # The CPU computes past fp16 in fp32; the flag comes where that value enters the NPU.
        assert re.search(r"tensor '[^']+' entering stage \d+ \(sim-npu\)", str(flags[0].message))
    else:
        assert re.search(rf"node '{re.escape(expected)}' \(", str(flags[0].message))
    # Any inf/NaN in the outputs came with that warning; no warning, no inf.
    assert any(not np.all(np.isfinite(o)) for o in outs)


@pytest.mark.parametrize("name", ["light_squeezenet"])
def test_fp16_overflow_raises_when_strict(probes, name) -> None:
    model, feeds, ref = probes(name)
    expected = _first_beyond_fp16(model, ref)
    sess = InferenceSession(model, devices=["sim-npu", "cpu"], strict=True)
    with pytest.raises(NumericOverflowError, match=rf"node '{re.escape(expected)}' \(Conv\)"):
        sess.run(None, feeds)
