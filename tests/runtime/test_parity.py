"""Outputs of the session against onnxruntime's on the project's model builders."""

from __future__ import annotations

import numpy as np
import pytest

import hetnpu
from tests.runtime._models import SMALL, assert_same_as_ort, feeds_for, ort_session, small

FP16_TOL = 2e-2
"""Max abs error allowed on an NPU run in fp16, relative to the output's largest magnitude."""


@pytest.mark.parametrize("name", sorted(SMALL))
def test_cpu_only_equals_onnxruntime_exactly(name):
    model = small(name)
    sess = hetnpu.InferenceSession(model, devices=["cpu"], strategy="heft")
    feeds = feeds_for(model)
    outs = sess.run(None, feeds)
    assert_same_as_ort(outs, ort_session(model).run(None, feeds))
    assert set(sess.get_device_assignment().values()) == {"cpu"}


@pytest.mark.parametrize(
    "name",
    [
        "mlp",
        "bert_base",
        "resnet50",
        "mobilenetv2",
    ],
)
def test_sim_npu_and_cpu_match_onnxruntime_within_fp16_tolerance(name):
    model = small(name)
    sess = hetnpu.InferenceSession(model, devices=["sim-npu", "cpu"], strategy="heft")
    feeds = feeds_for(model)
    outs = sess.run(None, feeds)
    assert_same_as_ort(outs, ort_session(model).run(None, feeds), FP16_TOL)
    placed = sess.get_device_assignment()
    # The NPU really ran most of the model: otherwise this would test onnxruntime against itself.
    assert sum(d == "sim-npu" for d in placed.values()) > len(placed) / 2
    assert sess.get_plan().transdata, "an NPU stage fed from the host converts its layouts"


def test_fp16_differs_from_fp32_as_rounding_does():
    # The NPU path really computes in fp16: its error is of fp16's order, not zero, while fp32
    # (must_keep_origin_dtype) on the same placement is accurate to fp32's.
    model = small("mlp")
    feeds = feeds_for(model)
    ref = ort_session(model).run(None, feeds)[0]
    errs = {}
    for precision in ("fp16", "fp32"):
        sess = hetnpu.InferenceSession(model, devices=["sim-npu", "cpu"], precision=precision)
        assert set(sess.get_device_assignment().values()) == {"sim-npu"}
        errs[precision] = float(np.abs(sess.run(None, feeds)[0] - ref).max())
    assert errs["fp32"] < 1e-5
    assert 1e-5 < errs["fp16"] < FP16_TOL * float(np.abs(ref).max())


def test_split_plan_with_boundaries_matches_onnxruntime():
    # Relu pinned to the CPU between NPU Gemms: four CPU<->NPU crossings, each with a transfer
    # and a TransData in and out of FRACTAL_NZ, all on the real data.
    model = small("mlp")
    sess = hetnpu.InferenceSession(
        model, devices=["sim-npu", "cpu"], strategy="affinity", affinity={"Relu": "cpu"}
    )
    plan = sess.get_plan()
    assert [s.device for s in plan.stages] == ["sim-npu", "cpu", "sim-npu", "cpu", "sim-npu"]
    assert {t.dst_layout for t in plan.transdata} == {"FRACTAL_NZ", "ND"}
    feeds = feeds_for(model)
    assert_same_as_ort(sess.run(None, feeds), ort_session(model).run(None, feeds), FP16_TOL)
