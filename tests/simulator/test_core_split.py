"""A Cube op is split over the cores first, then each core's share is tiled.

CANN's multi-core Matmul tiling gives each core one ``singleCoreM x singleCoreN`` block of C
(``mDim x nDim`` cores) that the core iterates in L0 tiles. Cutting C into L0 tiles first and
dealing them out left a core with a full tile next to one with a remainder: M = 784 in tiles
of 256 is 256, 256, 256 and 16 rows.
"""

from __future__ import annotations

from hetnpu.devices.presets import load_npu
from hetnpu.simulator.lowering.common import LowerCtx
from hetnpu.simulator.lowering.matmul import core_blocks
from hetnpu.simulator.tiler import CubeTile, precision_info


def _ctx(cores: int = 8) -> LowerCtx:
    spec = load_npu("ascend310p")
    return LowerCtx(spec, precision_info("fp16"), True, False, cores, cores, None)


def _rows_cols(blocks: tuple[tuple[int, int], ...]) -> int:
    return sum(m * n for m, n in blocks)


def test_every_core_gets_an_even_share_in_whole_fractals() -> None:
    tile = CubeTile(256, 64, 128, 640, 2, 2)
    split = core_blocks(1, 784, 2304, 256, tile, _ctx(), 2 / 9)
    assert len(split) == 8
    work = [_rows_cols(b) for b in split]
    assert sum(work) == 784 * 256
    # 784 rows = 49 fractals over 4 row shares: the busiest core holds one fractal row more
    # than the others (208 rows against 192), not 16 times the work of the idlest; and each
    # core has as few L0 tiles as dealing the tiles out gave (one).
    assert max(work) <= sum(work) / 8 + 16 * 128
    assert all(len(b) == 1 for b in split)
    for blocks in split:
        assert all(m <= tile.m and n <= tile.n and m % 16 == 0 for m, n in blocks)


def test_batches_of_products_go_to_cores_whole_and_a_share_is_tiled() -> None:
    tile = CubeTile(64, 64, 64, 256, 2, 2)
    split = core_blocks(16, 128, 256, 128, tile, _ctx(), 2.0)
    assert len(split) == 8
    # Each core: 2 products, each 128 x 128 cut into 2 x 2 tiles of 64 x 64.
    assert all(b == ((64, 64),) * 8 for b in split)
