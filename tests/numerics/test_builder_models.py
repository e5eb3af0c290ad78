"""The project's model builders on ``["sim-npu", "cpu"]`` against onnxruntime.

fp32 mode (ATC must_keep_origin_dtype) matches to 1e-4 of the output's magnitude; fp16 mode
within fp16's tolerance, max |error| <= 2e-2 x max |output|. For the residual networks the error
is also checked against the network's own fp16 floor: the network as ATC compiles it (constants
and BatchNormalization folded in fp32) with weights and input held in fp16, computed exactly in
fp32, which no fp16 device can beat.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from hetnpu import InferenceSession, models
from hetnpu.devices.atc_compile import fold_for_npu
from tests.conftest import ort_run
from tests.numerics._probe import fp16_rounded, rel_error

FP16_TOL = 2e-2
# name -> (builder kwargs, slow?). Small sizes keep the default run fast; BERT with all 12
# layers is the slow variant.
SIZES = {
    "mlp": ({}, False),
    "bert_base_2_layers": ({"seq_len": 16, "num_layers": 2}, False),
    "bert_base": ({"seq_len": 16}, True),
    "mobilenetv2": ({"image_size": 64}, False),
    "resnet50": ({"image_size": 64}, False),
}
RESIDUAL = ("mobilenetv2", "resnet50")


def _builder(key: str) -> str:
    return "bert_base" if key.startswith("bert_base") else key


@functools.cache
def _case(key: str):
    """(model, feeds, onnxruntime's output) for one builder model."""
    kwargs, _ = SIZES[key]
    model = models.build(_builder(key), **kwargs)
    rng = np.random.default_rng(1)
    if _builder(key) == "bert_base":
        seq = kwargs["seq_len"]
        feeds = {
            "input_ids": rng.integers(0, 30522, (1, seq), dtype=np.int64),
            "attention_mask": np.ones((1, seq), np.int64),
        }
    else:
        vi = model.graph.input[0]
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        feeds = {vi.name: rng.standard_normal(shape, dtype=np.float32)}
    return model, feeds, next(iter(ort_run(model, feeds).values()))


@functools.cache
def _sim(key: str, precision: str) -> np.ndarray:
    model, feeds, _ = _case(key)
    sess = InferenceSession(model, devices=["sim-npu", "cpu"], precision=precision, strict=True)
    assert "sim-npu" in set(sess.get_device_assignment().values())
    return sess.run(None, feeds)[0]


def _params(keys):
    return [pytest.param(k, marks=pytest.mark.slow) if SIZES[k][1] else k for k in keys]


@pytest.mark.parametrize("key", _params(SIZES))
def test_fp32_matches_onnxruntime(key) -> None:
    _, _, want = _case(key)
    got = _sim(key, "fp32")
    assert got.shape == want.shape and got.dtype == want.dtype
    assert rel_error(got, want) <= 1e-4


@pytest.mark.parametrize("key", _params(SIZES))
def test_fp16_within_fp16_tolerance(key) -> None:
    _, _, want = _case(key)
    err = rel_error(_sim(key, "fp16"), want)
    assert 0 < err <= FP16_TOL


@pytest.mark.parametrize("key", RESIDUAL)
def test_fp16_error_is_the_networks_own_fp16_floor(key) -> None:
    model, feeds, want = _case(key)
    # The network as ATC folds it, weights and input held in fp16, computed exactly in fp32.
    rounded = {k: v.astype(np.float16).astype(np.float32) for k, v in feeds.items()}
    held = fp16_rounded(fold_for_npu(model))
    floor = rel_error(next(iter(ort_run(held, rounded).values())), want)
    err = rel_error(_sim(key, "fp16"), want)
    # Computing in fp16 adds roundings of the same size at every layer; a wrong layout or a
    # wrong op would give an error of the order of the output itself.
    assert floor <= err <= 2.5 * floor
    assert err < 0.2
