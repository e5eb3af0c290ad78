"""The profiled Ascend 910 TransData ops: the presets' rate is their median, and the simulator
times them within the error it reached (a regression guard: simulated times are deterministic)."""

from __future__ import annotations

import pytest

from hetnpu.devices.presets import load_npu
from hetnpu.fidelity.op_profiles import (
    mean_abs_error,
    simulate_transdata,
    transdata_rate,
    transdata_rows,
)

REACHED = 0.127
"""Mean |simulated - measured| / measured of the 22 ops on ascend910 (benchmarks/transdata.py)."""


def test_the_table_holds_large_conversions_of_more_than_four_channels() -> None:
    rows = transdata_rows()
    assert len(rows) == 22
    assert {r.direction for r in rows} == {"NCHW->NC1HWC0", "NC1HWC0->NCHW"}
    assert {r.dtype for r in rows} == {"fp16", "fp32"}
    assert all(r.shape[1] > 4 and r.nc1hwc0_bytes >= 4 << 20 for r in rows)


@pytest.mark.parametrize("preset", ["ascend910", "ascend310p", "ascend310"])
def test_the_coupled_presets_hold_the_median_rate(preset: str) -> None:
    clock = load_npu("ascend910", {}).clock_hz  # the rate is read at the 910's clock
    median = transdata_rate(transdata_rows(), clock)
    assert load_npu(preset, {}).transdata_bytes_per_cycle == pytest.approx(median, abs=0.005)


def test_the_split_chip_leaves_the_rate_unset() -> None:
    assert load_npu("ascend910b", {}).transdata_bytes_per_cycle is None


def test_the_simulated_conversions_stay_within_the_error_reached() -> None:
    spec = load_npu("ascend910", {})
    rows = transdata_rows()
    times = [simulate_transdata(r, spec) for r in rows]
    assert mean_abs_error(times) <= REACHED + 0.005
    plain = load_npu("ascend910", {"transdata_bytes_per_cycle": None})
    small = [r for r in rows if r.profile.endswith("_16") or "_16_" in r.profile]
    assert mean_abs_error([simulate_transdata(r, plain) for r in small]) > 0.5
