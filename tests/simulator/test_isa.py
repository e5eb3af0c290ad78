"""The closed-form durations, without SimPy."""

from __future__ import annotations

from hetnpu.simulator.isa import bus_cycles, copy_cycles, gm_cycles, mmad_cycles, vector_cycles


def test_mmad_counts_fractals_plus_latency() -> None:
    assert mmad_cycles(16, 16, 16, (16, 16, 16), 0) == 1
    assert mmad_cycles(64, 64, 64, (16, 16, 16), 5) == 4 * 4 * 4 + 5
    # Partial fractals cost a whole fractal.
    assert mmad_cycles(17, 16, 1, (16, 16, 16), 0) == 2
    # int8 fractals are 16x32x16: half the steps for the same K.
    assert mmad_cycles(64, 64, 64, (16, 32, 16), 0) == 4 * 2 * 4


def test_copies_and_vector() -> None:
    assert copy_cycles(1024, 512, 3) == 3 + 2
    assert copy_cycles(1025, 512, 0) == 3
    assert gm_cycles(640, 64, 10, 100) == 10 + 100 + 10
    assert bus_cycles(1000, 400.0) == 3
    assert vector_cycles(256 * 10, 256, 4) == 4 + 10
    assert vector_cycles(256 * 10, 256, 4, cycles_per_repeat=4) == 4 + 40
