"""Device availability: the documented fallback policy when a GPU is asked for without CUDA."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import hetnpu
from hetnpu.errors import BackendUnavailableError, ConfigError
from hetnpu.runtime.session import DeviceFallbackWarning
from tests.runtime._models import assert_same_as_ort, ort_session, small

HAS_CUDA = "CUDAExecutionProvider" in ort.get_available_providers()


def test_gpu_without_cuda_falls_back_to_cpu_with_a_warning():
    model = small("mlp")
    if HAS_CUDA:  # a machine with CUDA: the GPU must then really run the model
        sess = hetnpu.InferenceSession(model, devices=["gpu", "cpu"])
        assert "gpu" in sess.get_device_assignment().values()
        return
    with pytest.warns(
        DeviceFallbackWarning, match=r"device 'gpu' is unavailable \(.*onnxruntime-gpu"
    ):
        sess = hetnpu.InferenceSession(model, devices=["gpu", "cpu"])
    assert sess.get_providers() == ["cpu"]
    assert set(sess.get_device_assignment().values()) == {"cpu"}
    assert sess.fallbacks and "gpu" in sess.fallbacks[0]
    x = np.ones((2, 784), np.float32)
    assert_same_as_ort(sess.run(None, {"input": x}), ort_session(model).run(None, {"input": x}))


@pytest.mark.skipif(HAS_CUDA, reason="this machine has CUDA: the GPU is available")
def test_gpu_without_cuda_and_no_fallback_refuses_with_the_reason():
    with pytest.raises(
        BackendUnavailableError, match=r"device 'gpu' is unavailable: .*hetnpu\[gpu\]"
    ):
        hetnpu.InferenceSession(small("mlp"), devices=["gpu", "cpu"], fallback=False)


def test_unknown_device_and_precision():
    with pytest.raises(ConfigError, match=r"unknown device\(s\) 'tpu'"):
        hetnpu.InferenceSession(small("mlp"), devices=["tpu"])
    with pytest.raises(ConfigError, match="precision 'fp8'"):
        hetnpu.InferenceSession(small("mlp"), devices=["cpu"], precision="fp8")
