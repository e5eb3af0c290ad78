"""One fp16 MatMul on the ascend910 preset, against cycle counts worked out by hand.

The figures below are literals derived on paper from DESIGN.md's instruction rules (an mmad over
an (m, k, n) tile takes cube latency + ceil(m/16)·ceil(k/16)·ceil(n/16) cycles; a copy of B
bytes takes latency + ceil(B / bytes_per_cycle)), the timing rules of simulator/core.py and
chip.py (a GM transfer holds its engine for the MTE latency plus its data phase while the GM
round trip runs behind it; a read's data, and its flags, land one round trip later; an op ends
when its last write has landed; a tensor's first reads in an op, up to its size, come from HBM
and later reads hit L2) and the preset's numbers. No simulator helper computes them, so a
change to a closed form, to the pipelining or to a preset value shows up here as a number.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from hetnpu.graph import Graph
from hetnpu.simulator import simulate

# The ascend910 preset values the derivations use (hetnpu/devices/presets/ascend910.toml).
PRESET_910 = {
    "ai_cores": 32,
    "clock_hz": 976_562_500.0,
    "cube_mkn_fp16": (16, 16, 16),
    "cube_latency_cycles": 8,
    "vector_latency_cycles": 8,
    "scalar_issue_cycles": 4,
    "mte_latency_cycles": 16,
    "gm_latency_cycles": 195,
    "mte2_bytes_per_cycle": 67.0,
    "mte2_l2_bytes_per_cycle": 128.0,
    "mte1_l0a_bytes_per_cycle": 512.0,
    "mte1_l0b_bytes_per_cycle": 256.0,
    "fixpipe_bytes_per_cycle": 512.0,
    "mte3_bytes_per_cycle": 64.0,
    "hbm_bytes_per_s": 1.2e12,  # / clock = 1228.8 B/cycle of HBM bus
    "l2_bytes_per_s": 4.0e12,  # / clock = 4096 B/cycle of L2 bus
    "l0a_bytes": 65_536,
    "l0b_bytes": 65_536,
    "l0c_bytes": 262_144,
    "l1_bytes": 1_048_576,
    "ub_bytes": 262_144,
    "flag_ids": 4,
}


def _spec(chip: Callable[..., Any]) -> Any:
    spec = chip("ascend910")
    # The hand figures hold for these values only: a preset change must show up as a changed
    # premise here, not as an unexplained cycle count below.
    assert {k: getattr(spec, k) for k in PRESET_910} == PRESET_910
    return spec


def _spans(res: Any, core: str) -> list[tuple[str, int, int]]:
    """(instruction, start, end) of ``core``'s instructions, by start then end."""
    rows = [e for e in res.raw_events if e[0] == core and e[1] != "SCALAR"]
    return [
        (op, start, end)
        for _core, _unit, start, end, op, _i, _b in sorted(rows, key=lambda e: (e[2], e[3]))
    ]


def test_one_core_gemm_16x4096x16_takes_5278_cycles(
    chip: Callable[..., Any], matmul: Callable[..., Graph]
) -> None:
    """M=16, K=4096, N=16: one 16x16 output block, so one core; its K streams through L0A/L0B
    in four ping-pong chunks.

    Tile: L0A holds k <= 65536 / (16 rows · 2 B · 2 slots) = 1024, so k = 1024; an L1 panel
    of (16 + 16) · kp · 2 B · 2 slots <= 1 MiB allows kp = 8192, so all of K (4096) is one
    panel: one load of A (16·4096·2 = 131072 B) and one of B (131072 B).

    Scalar issues instruction i at (i + 1) · 4: load_a at 4.
    - MTE2 load_a, A's first read (HBM): 16 + ceil(131072 / 67) = 16 + 1957 = 1973 -> [4, 1977]
      (its HBM bus time, ceil(131072 / 1228.8) = 107, is shorter).
    - MTE2 load_b, same size, HBM: [1977, 3950]; B lands one round trip later: 3950 + 195 = 4145.
    - MTE1 per chunk: L0A 16 + 16·1024·2 / 512 = 16 + 64, then L0B 1024·16·2 / 256 = 128:
      208 cycles, chunks back to back: [4145, 4353], [4353, 4561], [4561, 4769], [4769, 4977].
    - mmad per chunk: 8 + ceil(16/16)·ceil(1024/16)·ceil(16/16) = 8 + 64 = 72, each right after
      its chunk's MTE1 (the Cube is faster, so a slot is always free): last [4977, 5049].
    - L0C -> UB on the Vector path: 8 + 16·16·4 B / 512 = 8 + 2 = 10 -> [5049, 5059].
    - MTE3 store of 16·16·2 = 512 B: 16 + 512 / 64 = 24 -> [5059, 5083], landing at
      5083 + 195 = 5278, the op's end.
    """
    res = simulate(matmul(16, 4096, 16), _spec(chip), trace_level="instr")
    assert "tile m=16 k=1024 n=16 kp=4096 slots=2/2 on 1 cores" in res.ops[0].tile
    assert _spans(res, "core0") == [
        ("mte2.load_a", 4, 1977),
        ("mte2.load_b", 1977, 3950),
        ("mte1.load_l0ab", 4145, 4353),
        ("mmad", 4353, 4425),
        ("mte1.load_l0ab", 4353, 4561),
        ("mmad", 4561, 4633),
        ("mte1.load_l0ab", 4561, 4769),
        ("mmad", 4769, 4841),
        ("mte1.load_l0ab", 4769, 4977),
        ("mmad", 4977, 5049),
        ("vec.l0c_to_ub", 5049, 5059),
        ("mte3.store", 5059, 5083),
    ]
    assert res.cycles == 5278


def test_gemm_256_cubed_over_32_cores_takes_1460_cycles(
    chip: Callable[..., Any], matmul: Callable[..., Graph]
) -> None:
    """M=K=N=256: 32 output blocks of 32x64, one per core, each one K panel and one mmad.

    Tile: a tile of at least 256·256 / 32 = 2048 outputs needs at most one block per core,
    one wave, and the tiler's estimate is then one block's MTE2 time, (m + n)·256·2 B at
    67 B/cycle, least at m + n = 96 (32x64 or 64x32; the tie goes to the smaller m, tried
    first); smaller tiles take two waves.
    L0B holds k <= 65536 / (64 · 2 B · 2 slots) = 256, so k = kp = 256 = K.

    Per core: A block 32·256·2 = 16384 B, B panel 256·64·2 = 32768 B, then
    - MTE1: 16 + 16384 / 512 + 32768 / 256 = 16 + 32 + 128 = 176;
    - mmad: 8 + 2·16·4 = 136;
    - L0C -> UB: 8 + 32·64·4 / 512 = 8 + 16 = 24;
    - MTE3 store of 32·64·2 = 4096 B: 16 + 4096 / 64 = 80, then a 195-cycle round trip.
    Reads: at the GM rate 16 + ceil(B / 67), at the L2 rate 16 + B / 128:
      A: 16 + 245 = 261 (HBM) or 16 + 128 = 144 (L2); B: 16 + 490 = 506 (HBM) or 16 + 256 = 272.
    Which reads hit HBM: A is 131072 B, so the first 8 A reads (cores 0-7, in core order at
    cycle 4) come from HBM, cores 8-31 read A from L2 and finish at 4 + 144 = 148. B is 131072 B:
    the first 4 B reads are cores 8-11 at 148 (HBM, to 148 + 506 = 654); cores 12-31 (from 148)
    and cores 0-7 (from 265) read B from L2. The buses never bind: HBM carries 8 · 14 + 4 · 27
    cycles, L2 at most 160 in a row, each under the engines' times.
    The critical path is a core of 8-11: 654 + 195 (B lands) = 849, + 176 = 1025, + 136 =
    1161, + 24 = 1185, + 80 = 1265, + 195 (the write lands) = 1460.
    (Cores 0-7 end at 537 + 195 + 176 + 136 + 24 + 80 + 195 = 1343, cores 12-31 at 1226.)

    The L2 hits follow chip.py's per-tensor L2 model, which counts bytes, not addresses or
    arrival times: cores 8-31 "hit" L2 at cycle 4, before any of A has arrived from HBM (the
    first read lands at 265 + 195 = 460), and cores 0-7, whose HBM reads use up A's count,
    fetch only A's first two row blocks. Were a hit to wait for its line's fill, a core first
    to read both its A block and its B panel would end no earlier than 4 + 261 + 506 + 195 +
    176 + 136 + 24 + 80 + 195 = 1577.
    """
    res = simulate(matmul(256, 256, 256), _spec(chip), trace_level="instr")
    assert "tile m=32 k=256 n=64 kp=256 slots=2/2 on 32 cores" in res.ops[0].tile
    critical = [
        ("mte2.load_a", 4, 148),
        ("mte2.load_b", 148, 654),
        ("mte1.load_l0ab", 849, 1025),
        ("mmad", 1025, 1161),
        ("vec.l0c_to_ub", 1161, 1185),
        ("mte3.store", 1185, 1265),
    ]
    assert [_spans(res, f"core{c}") for c in (8, 9, 10, 11)] == [critical] * 4
    assert _spans(res, "core0")[:2] == [("mte2.load_a", 4, 265), ("mte2.load_b", 265, 537)]
    assert _spans(res, "core12")[:2] == [("mte2.load_a", 4, 148), ("mte2.load_b", 148, 420)]
    assert res.cycles == 1460


@pytest.mark.parametrize(("m", "k", "n", "cycles"), [(16, 4096, 16, 5278), (256, 256, 256, 1460)])
def test_the_literal_counts_hold_without_instruction_records(
    chip: Callable[..., Any], matmul: Callable[..., Graph], m: int, k: int, n: int, cycles: int
) -> None:
    # Recording instructions must not change the timing: the default run gives the same counts.
    assert simulate(matmul(m, k, n), _spec(chip)).cycles == cycles
