"""Tiles fit their buffers; a forced tile that does not is a ScheduleError."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetnpu.errors import ScheduleError
from hetnpu.simulator import simulate
from hetnpu.simulator.tiler import precision_info, split_even, tile_cube


def test_forced_tile_too_big_for_l0a(chip, matmul) -> None:
    with pytest.raises(ScheduleError) as err:
        simulate(matmul(1024, 1024, 64), chip(), force_tiles={"mm": (512, 512, 16)})
    msg = str(err.value)
    # 512 x 512 fp16 x 2 ping-pong slots = 1 MiB of L0A.
    assert "'mm'" in msg and "L0A" in msg and "m=512 k=512" in msg
    assert str(512 * 512 * 2 * 2) in msg and str(chip().l0a_bytes) in msg


def test_forced_tile_that_fits_is_used(chip, matmul) -> None:
    res = simulate(matmul(256, 256, 256), chip(), force_tiles={"mm": (32, 64, 32)})
    assert "tile m=32 k=64 n=32" in res.ops[0].tile


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(1, 5000),
    k=st.integers(1, 5000),
    n=st.integers(1, 5000),
    batch=st.integers(1, 8),
    precision=st.sampled_from(["fp16", "fp32", "int8"]),
    double_buffer=st.booleans(),
)
def test_chosen_tiles_fit_every_buffer(m, k, n, batch, precision, double_buffer) -> None:
    from hetnpu import chips

    spec = chips.load("ascend910")
    prec = precision_info(precision)
    t = tile_cube(
        "op",
        batch,
        m,
        k,
        n,
        spec=spec,
        prec=prec,
        cores=spec.ai_cores,
        double_buffer=double_buffer,
        ub_bytes=spec.ub_bytes,
    )
    ib = prec.float_bytes
    _m0, k0, _n0 = getattr(spec, prec.mkn_field)
    assert t.m * t.k * ib * t.slots <= spec.l0a_bytes
    assert t.k * t.n * ib * t.slots <= spec.l0b_bytes
    assert t.m * t.n * prec.acc_bytes * t.l0c_slots <= spec.l0c_bytes
    assert (t.m + t.n) * t.kp * ib * t.slots <= spec.l1_bytes
    assert t.k % k0 == 0 and t.kp % t.k == 0
    assert t.slots == (2 if double_buffer else 1)


def test_split_even_sums_exactly() -> None:
    assert split_even(100, 3, 32) == [64, 32, 4]
    assert sum(split_even(10**6 + 7, 32, 32)) == 10**6 + 7
    assert split_even(0, 4) == []
