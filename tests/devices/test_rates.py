"""Rates and element sizes of the NPU at a precision mode, against figures worked out by hand."""

from __future__ import annotations

import pytest

from hetnpu.devices.presets import npu_spec
from hetnpu.devices.rates import (
    device_dtype,
    device_itemsize,
    device_nbytes,
    element_bytes,
    npu_rates,
)
from hetnpu.errors import ConfigError
from hetnpu.graph.ir import Tensor


@pytest.mark.parametrize(
    "dtype, precision, size",
    [
        ("float32", "fp16", 2),
        ("float16", "fp16", 2),
        ("bfloat16", "fp16", 2),
        ("float16", "fp32", 4),
        ("float32", "fp32", 4),
        ("float32", "int8", 1),
        ("int64", "fp16", 8),
        ("int64", "int8", 8),
        ("int32", "fp32", 4),
        ("bool", "fp16", 1),
        ("undefined", "fp16", 0),
    ],
)
def test_floats_take_the_precisions_size_other_dtypes_their_own(
    dtype: str, precision: str, size: int
) -> None:
    assert device_itemsize(dtype, precision) == size


def test_device_dtype_and_nbytes() -> None:
    assert device_dtype("float16", "int8") == "int8"
    assert device_dtype("int64", "fp32") == "int64"
    t = Tensor("t", (2, 3, 4), "float16", 10, False)
    assert device_nbytes(t, "fp32") == 2 * 3 * 4 * 4
    assert device_nbytes(Tensor("u", (2, None), "float32", 1, False), "fp16") is None


def test_an_unknown_precision_is_a_config_error_naming_the_modes() -> None:
    with pytest.raises(ConfigError, match="fp16, fp32, int8"):
        element_bytes("bf16")
    with pytest.raises(ConfigError, match="precision 'fp64'"):
        npu_rates(npu_spec("ascend910"), "fp64")


def test_ascend910_rates_from_its_preset() -> None:
    spec = npu_spec("ascend910")
    r = npu_rates(spec, "fp16")
    # 32 coupled cores x 16x16x16 MACs x 2 x clock: the published 256 TFLOPS (ascend-facts §2).
    assert r.cube_flops_per_s == pytest.approx(256e12)
    assert (r.cube_cores, r.cube_macs_per_cycle, r.vector_units) == (32, 4096, 32)
    # One 256-B repeat per cycle per core: 128 fp16 lanes, 64 fp32, 256 int8.
    assert r.vector_lanes == 128
    assert r.vector_ops_per_s == 32 * 128 * spec.clock_hz
    assert npu_rates(spec, "fp32").vector_lanes == 64
    assert npu_rates(spec, "int8").vector_lanes == 256
    assert npu_rates(spec, "fp32").cube_macs_per_cycle == 16 * 8 * 16
    assert spec.peak_flops("int8") == npu_rates(spec, "int8").cube_flops_per_s


def test_a_split_chip_runs_vector_work_on_its_aiv_cores() -> None:
    r = npu_rates(npu_spec("ascend910b"), "fp16")
    assert (r.cube_cores, r.vector_units) == (24, 48)
    assert r.vector_ops_per_s == 48 * 128 * 1.8e9


def test_the_trace_roofs_are_the_rates() -> None:
    from hetnpu.traces.chrome import chip_roof

    spec = npu_spec("ascend910b")
    for precision in ("fp16", "fp32", "int8"):
        r = npu_rates(spec, precision)
        assert chip_roof(spec, precision) == {
            "peak_flops": r.cube_flops_per_s,
            "peak_vector_flops": r.vector_ops_per_s,
            "hbm_bytes_per_s": r.hbm_bytes_per_s,
            "l2_bytes_per_s": r.l2_bytes_per_s,
        }
