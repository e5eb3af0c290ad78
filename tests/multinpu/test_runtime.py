"""A tensor-parallel plan run on 2, 4 and 8 simulated NPUs gives the single-device outputs."""

from __future__ import annotations

import numpy as np
import pytest

import hetnpu
from hetnpu import models
from hetnpu.errors import ConfigError


def _feeds(sess: hetnpu.InferenceSession) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for i in sess.get_inputs():
        if "int" in i.type:
            feeds[i.name] = rng.integers(0, 96, i.shape).astype(np.int64)
        else:
            feeds[i.name] = rng.standard_normal(i.shape).astype(np.float32)
    if "position_ids" in feeds:
        feeds["position_ids"] = np.arange(feeds["position_ids"].shape[1])[None].astype(np.int64)
    return feeds


def _run(model, devices, precision, **kw):
    with hetnpu.InferenceSession(model, devices=devices, precision=precision, **kw) as sess:
        feeds = _feeds(sess)
        return sess.run(None, feeds), sess.get_plan()


def _ranks(p: int) -> list[str]:
    return [f"sim-npu:{i}" for i in range(p)]


@pytest.mark.parametrize("p", [2, 4, 8])
@pytest.mark.parametrize("which", ["mlp", "decoder"])
def test_tensor_parallel_fp32_equals_one_device(request, which: str, p: int) -> None:
    model = models.build("mlp", batch=4) if which == "mlp" else request.getfixturevalue(which)
    ref, _ = _run(model, ["sim-npu"], "fp32")
    # All-gathers only: every output element is summed in the unsplit order, bit for bit.
    exact, plan = _run_gather_only(model, p)
    for a, b in zip(exact, ref, strict=True):
        np.testing.assert_array_equal(a, b)
    assert {s.device for s in plan.stages} == set(_ranks(p))
    # Megatron (row-parallel + all-reduce): the partial sums round differently.
    megatron, plan = _run(model, _ranks(p), "fp32")
    assert "all-reduce" in {c.kind for c in plan.collectives}
    for a, b in zip(megatron, ref, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _run_gather_only(model, p):
    from hetnpu.backends import CompileOptions, get_backend
    from hetnpu.graph import load
    from hetnpu.runtime.executor import PlanExecutor
    from hetnpu.scheduler.parallel import tensor_parallel_plan

    plan = tensor_parallel_plan(load(model), _ranks(p), precision="fp32", row_parallel=False)
    assert {c.kind for c in plan.collectives} <= {"all-gather"}
    backends = {d: get_backend("sim-npu") for d in _ranks(p)}
    exe = PlanExecutor(plan, plan.graph, backends, CompileOptions(precision="fp32"))
    sess = hetnpu.InferenceSession(model, devices=["cpu"])
    values = exe.execute(_feeds(sess), None, 1)
    exe.close()
    return [values[o] for o in plan.graph.outputs], plan


@pytest.mark.parametrize("p", [2, 4, 8])
def test_tensor_parallel_cnn_within_fp16_tolerance(cnn, p: int) -> None:
    # The NPU runs Conv in fp16 only (ATC keeps no fp32 Conv), so the CNN is checked in fp16.
    ref, _ = _run(cnn, ["sim-npu"], "fp16")
    out, plan = _run(cnn, _ranks(p), "fp16")
    assert [c.kind for c in plan.collectives] == ["all-reduce"]  # conv2 is row-parallel
    np.testing.assert_allclose(out[0], ref[0], rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize(("which", "precision"), [("cnn", "fp16"), ("decoder", "fp32")])
def test_pipeline_over_npus_equals_one_device(request, which: str, precision: str) -> None:
    model = request.getfixturevalue(which)
    ref, _ = _run(model, ["sim-npu"], precision)
    out, plan = _run(model, _ranks(3), precision, parallel="pipeline")
    assert [s.device for s in plan.stages] == _ranks(3)
    for a, b in zip(out, ref, strict=True):  # the same ops in the same order: bit for bit
        np.testing.assert_array_equal(a, b)


def test_bad_device_lists_are_refused() -> None:
    model = models.build("mlp", batch=4)
    with pytest.raises(ConfigError, match="listed more than once"):
        hetnpu.InferenceSession(model, devices=["sim-npu:0", "sim-npu:0"])
    with pytest.raises(ConfigError, match="unknown device"):
        hetnpu.InferenceSession(model, devices=["sim-npu:x"])
    with pytest.raises(ConfigError, match="two or more addressed NPUs"):
        hetnpu.InferenceSession(model, devices=["sim-npu:0", "cpu"], parallel="tensor")
