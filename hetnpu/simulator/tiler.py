"""Tile sizes that fit the AI core's buffers, and the split of an op's work across cores.

The Cube tiler picks an output tile (m, n) held in L0C, a K chunk ``k`` held in L0A/L0B and a
K panel ``kp`` held in L1, each with ``slots`` ping-pong copies when double buffering is on
(ascend-facts §1.8). It scores candidates by a closed-form estimate: waves of blocks over the
cores times the slower of Cube and MTE2 per block, against the chip's bus limit. A forced tile
that does not fit raises :class:`~hetnpu.errors.ScheduleError` naming the op, the buffer and the
sizes; the tiler never clamps silently.

Left out: alignment padding of buffer addresses (§1.6), bank conflicts, K-splitting across cores
(the tiler parallelises over batch, M and N only, as most Ascend kernels do), and swizzled block
orders that improve L2 reuse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from hetnpu.devices.rates import PRECISIONS as _MODES
from hetnpu.devices.rates import element_bytes
from hetnpu.errors import ConfigError, ScheduleError

__all__ = [
    "PRECISIONS",
    "CubeTile",
    "Precision",
    "check_fit",
    "precision_info",
    "split_even",
    "tile_cube",
]


@dataclass(frozen=True)
class Precision:
    """How a float model runs on the NPU at one precision mode."""

    name: str
    float_bytes: int
    """Bytes of a float element on the device (activations and weights):
    :func:`hetnpu.devices.rates.element_bytes`."""
    acc_bytes: int
    """Bytes of an L0C accumulator element (fp32 for fp16 inputs, int32 for int8; §1.1)."""
    mkn_field: str


PRECISIONS: dict[str, Precision] = {
    name: Precision(name, element_bytes(name), 4, f"cube_mkn_{name}") for name in _MODES
}


def precision_info(precision: str) -> Precision:
    """The :class:`Precision` for ``"fp16"``, ``"fp32"`` or ``"int8"``; ConfigError otherwise."""
    try:
        return PRECISIONS[precision]
    except KeyError:
        raise ConfigError(
            f"precision {precision!r}: expected one of {', '.join(PRECISIONS)}"
        ) from None


@dataclass(frozen=True)
class CubeTile:
    """An L0 tile (m, k, n), the L1 K panel ``kp``, and ping-pong slot counts."""

    m: int
    k: int
    n: int
    kp: int
    slots: int
    """Slots of L1, L0A and L0B (2 with double buffering)."""
    l0c_slots: int
    """Slots of L0C (and of the UB tile it drains into)."""


def check_fit(op: str, buffer: str, need: int, capacity: int, what: str) -> None:
    """Raise ScheduleError unless ``need`` bytes fit ``capacity``.

    Parameters
    ----------
    op
        The node name, for the message.
    buffer
        ``"L0A"``, ``"L0B"``, ``"L0C"``, ``"L1"`` or ``"UB"``.
    need, capacity
        Bytes required and bytes available.
    what
        The tile sizes that produced ``need``, for the message.
    """
    if need > capacity:
        raise ScheduleError(
            f"op {op!r}: tile {what} needs {need} B of {buffer} but {buffer} holds {capacity} B"
        )


def _round_up(x: int, q: int) -> int:
    return -(-x // q) * q


def _fits(
    spec: Any, m: int, k: int, n: int, kp: int, slots: int, l0c_slots: int, ib: int, ab: int
) -> bool:
    return (
        m * k * ib * slots <= spec.l0a_bytes
        and k * n * ib * slots <= spec.l0b_bytes
        and m * n * ab * l0c_slots <= spec.l0c_bytes
        and (m + n) * kp * ib * slots <= spec.l1_bytes
    )


def _check_all(
    op: str, spec: Any, t: CubeTile, ib: int, ab: int, ob: int, ub_bytes: int | None
) -> None:
    what = f"m={t.m} k={t.k} n={t.n} kp={t.kp} x{t.slots} slots"
    check_fit(op, "L0A", t.m * t.k * ib * t.slots, spec.l0a_bytes, what)
    check_fit(op, "L0B", t.k * t.n * ib * t.slots, spec.l0b_bytes, what)
    check_fit(op, "L0C", t.m * t.n * ab * t.l0c_slots, spec.l0c_bytes, what)
    check_fit(op, "L1", (t.m + t.n) * t.kp * ib * t.slots, spec.l1_bytes, what)
    if ub_bytes is not None:
        check_fit(op, "UB", t.m * t.n * ob * t.l0c_slots, ub_bytes, what)


def tile_cube(
    op: str,
    batch: int,
    m_total: int,
    k_total: int,
    n_total: int,
    *,
    spec: Any,
    prec: Precision,
    cores: int,
    double_buffer: bool,
    ub_bytes: int | None,
    force: tuple[int, int, int] | None = None,
    a_bytes_per_elem: float | None = None,
) -> CubeTile:
    """Choose the Cube tile for ``batch`` independent (M, K, N) products.

    Parameters
    ----------
    op
        Node name, named in any ScheduleError.
    batch, m_total, k_total, n_total
        The products' count and sizes.
    spec
        The chip (an ``NpuSpec``).
    prec
        Device precision.
    cores
        Cube cores available.
    double_buffer
        Two ping-pong slots per buffer when true, one otherwise. The tile sizes do not depend on
        it, so turning it off changes only the overlap.
    ub_bytes
        UB capacity that L0C drains into (coupled chips), or ``None`` on split chips.
    force
        A forced (m, k, n) L0 tile; it must fit or ScheduleError is raised.
    a_bytes_per_elem
        GM bytes per element of the A panel (below ``prec.float_bytes`` for img2col, where MTE1
        expands the feature map).

    Returns
    -------
    CubeTile
    """
    m0, k0, n0 = getattr(spec, prec.mkn_field)
    ib, ab, ob = prec.float_bytes, prec.acc_bytes, prec.float_bytes
    slots = 2 if double_buffer else 1
    ma, ka, na = _round_up(m_total, m0), _round_up(k_total, k0), _round_up(n_total, n0)
    if force is not None:
        fm, fk, fn = force
        kp = max(fk, min(_round_up(ka, fk), (spec.l1_bytes // ((fm + fn) * ib * slots)) // fk * fk))
        tile = CubeTile(fm, fk, fn, kp, slots, slots)
        _check_all(op, spec, tile, ib, ab, ob, ub_bytes)
        return tile
    a_rate = a_bytes_per_elem if a_bytes_per_elem is not None else ib
    # Sizes are chosen as if double-buffered either way, so that turning double buffering off
    # changes only the overlap, never the tiles.
    db_slots, slots = slots, 2
    hbm_bpc = spec.hbm_bytes_per_s / spec.clock_hz
    l2_bpc = spec.l2_bytes_per_s / spec.clock_hz
    # Unique bytes come from HBM once; re-reads of panels by other blocks hit L2.
    unique = batch * (m_total * ka * a_rate + ka * n_total * ib + m_total * n_total * ob)
    best: tuple[float, int, CubeTile] | None = None
    sizes = [16 * 2**i for i in range(6)]  # 16 .. 512
    for m in sorted({min(s, ma) for s in sizes if s % m0 == 0 or s >= ma}):
        for n in sorted({min(s, na) for s in sizes if s % n0 == 0 or s >= na}):
            for l0c_slots in (slots, 1):
                if m * n * ab * l0c_slots > spec.l0c_bytes:
                    continue
                if ub_bytes is not None and m * n * ob * l0c_slots > ub_bytes:
                    continue
                kmax = min(spec.l0a_bytes // (m * ib * slots), spec.l0b_bytes // (n * ib * slots))
                k = min(kmax // k0 * k0, ka)
                if k < k0:
                    continue
                kp_max = spec.l1_bytes // ((m + n) * ib * slots) // k * k
                kp = min(kp_max, _round_up(ka, k))
                if kp < k:
                    continue
                blocks = batch * math.ceil(m_total / m) * math.ceil(n_total / n)
                waves = math.ceil(blocks / cores)
                cube = math.ceil(m / m0) * (ka // k0) * math.ceil(n / n0)
                mte2 = (m * ka * a_rate + ka * n * ib) / spec.mte2_bytes_per_cycle
                out = m * n * ab / spec.fixpipe_bytes_per_cycle / (1 if l0c_slots == 1 else 4)
                total_bytes = blocks * (m * ka * a_rate + ka * n * ib + m * n * ob)
                est = max(waves * (max(cube, mte2) + out), unique / hbm_bpc, total_bytes / l2_bpc)
                tile = CubeTile(m, k, n, kp, db_slots, min(l0c_slots, db_slots))
                key = (est, -(m * n * l0c_slots))
                if best is None or key < best[:2]:
                    best = (est, -(m * n * l0c_slots), tile)
    if best is None:
        raise ScheduleError(
            f"op {op!r}: no Cube tile of ({m0},{k0},{n0}) fractals fits L0A {spec.l0a_bytes} B, "
            f"L0B {spec.l0b_bytes} B, L0C {spec.l0c_bytes} B, L1 {spec.l1_bytes} B"
        )
    return best[2]


def split_even(total: int, parts: int, quantum: int = 1) -> list[int]:
    """Split ``total`` into at most ``parts`` shares that are multiples of ``quantum`` (the last
    may be smaller), dropping empty shares.

    Example
    -------
    >>> split_even(100, 3, 32)
    [64, 32, 4]
    """
    if total <= 0:
        return []
    units = math.ceil(total / quantum)
    base, extra = divmod(units, parts)
    shares = [(base + (i < extra)) * quantum for i in range(min(parts, units))]
    shares[-1] -= sum(shares) - total
    return [s for s in shares if s > 0]
