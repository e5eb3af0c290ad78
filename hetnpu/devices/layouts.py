"""Exact numpy conversions between framework layouts and the Ascend NPU's private layouts.

The Cube reads operands fractal by fractal, so the NPU keeps tensors in blocked layouts
(ascend-facts §3): NC1HWC0 ("5HD") for activations, FRACTAL_Z for conv weights and FRACTAL_NZ
for matrices. Every conversion here pads with zeros up to whole blocks, and its inverse drops
the pads, so ``from_X(to_X(x))`` is ``x`` bit for bit. Everything is reshape/pad/transpose: no
Python loop touches an element.

Block sizes (the rule per layout, each one overridable by an argument):

- FRACTAL_Z ``C0`` and FRACTAL_NZ ``W0`` are the fractal's K dimension, ``K0 = 32 B / itemsize``
  ([CAT-ISA], ini ``DtypeMKN``): 16 for fp16, 32 for int8, 8 for fp32 and int32
  (:func:`c0_for`). The other fractal side is the cube size, ``N0 = H0 = 16``.
- NC1HWC0 ``C0`` "equals the cube size, e.g. 16" [HIA-FMT], and 32 for int8 [AIS-LAYOUT]:
  16 for every dtype wider than one byte (fp32 included), 32 for one-byte dtypes
  (:func:`nc1hwc0_c0`).

:func:`padded_shape`, :func:`padded_nbytes` and :func:`transdata_bytes` give the same padding
as shapes and byte counts, for cost models.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from hetnpu.errors import InputError

__all__ = [
    "CUBE_SIZE",
    "SMALL_CHANNEL",
    "Layout",
    "c0_for",
    "default_c0",
    "fractal_nz_shape",
    "fractal_nz_to_nd",
    "fractal_z_shape",
    "fractal_z_to_oihw",
    "nc1hwc0_c0",
    "nc1hwc0_shape",
    "nc1hwc0_to_nchw",
    "nc1hwc0_to_nhwc",
    "nchw_to_nc1hwc0",
    "nd_to_fractal_nz",
    "nhwc_to_nc1hwc0",
    "oihw_to_fractal_z",
    "padded_nbytes",
    "padded_shape",
    "transdata_bytes",
]

CUBE_SIZE = 16
"""M0 = N0 = H0: the 16-row side of every fractal, whatever the dtype [AIS-CUBE][ATB-TD]."""

SMALL_CHANNEL = 4
"""Channel counts CANN treats as small (ATC ``--enable_small_channel``: convolutions of at most
4 input channels); a TransData of so few channels is not timed at ``transdata_bytes_per_cycle``."""

_FRACTAL_BYTES = 32  # K0 · itemsize: one 32-B datablock per fractal row [CAT-ISA]


class Layout(enum.StrEnum):
    """Tensor layouts hetnpu converts between; ``acl_format`` is the aclFormat value [HIA-FMT]."""

    NCHW = "NCHW"
    NHWC = "NHWC"
    ND = "ND"
    NC1HWC0 = "NC1HWC0"
    FRACTAL_Z = "FRACTAL_Z"
    FRACTAL_NZ = "FRACTAL_NZ"

    @property
    def acl_format(self) -> int:
        """The ``aclFormat`` enum value of this layout (ascend-facts §3.1)."""
        return _ACL_FORMAT[self]


_ACL_FORMAT = {
    Layout.NCHW: 0,
    Layout.NHWC: 1,
    Layout.ND: 2,
    Layout.NC1HWC0: 3,
    Layout.FRACTAL_Z: 4,
    Layout.FRACTAL_NZ: 29,
}


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _itemsize(dtype: DTypeLike, where: str) -> int:
    try:
        return np.dtype(dtype).itemsize
    except TypeError as exc:
        raise InputError(f"{where}: {dtype!r} is not a numpy dtype") from exc


def c0_for(dtype: DTypeLike) -> int:
    """Fractal K dimension for ``dtype``: ``32 B / itemsize`` [CAT-ISA].

    Used as FRACTAL_Z ``C0`` and FRACTAL_NZ ``W0``: 16 for fp16, 32 for int8, 8 for fp32/int32.

    Raises
    ------
    InputError
        ``dtype`` is not a numpy dtype, or is wider than 32 bytes.
    """
    size = _itemsize(dtype, "c0_for")
    if not 0 < size <= _FRACTAL_BYTES:
        raise InputError(f"c0_for: dtype {np.dtype(dtype)} ({size} B) does not fit a 32-B row")
    return _FRACTAL_BYTES // size


def nc1hwc0_c0(dtype: DTypeLike) -> int:
    """NC1HWC0 ``C0`` for ``dtype``: 32 for one-byte dtypes [AIS-LAYOUT], else 16 [HIA-FMT].

    Unlike :func:`c0_for`, fp32 keeps C0 = 16: 5HD's C0 is the cube size, not a 32-B row.
    MindSpore's Ascend device shapes agree (mindspore-ai/mindspore
    ``mindspore/ccsrc/runtime/device/ms_device_shape_transfer.cc``, [MS-TRANS]'s successor:
    ``NC1HWC0DeviceShape`` takes C0 from ``GetCubeSizeByType``, 32 for int8/uint8 and 16 for
    every other dtype, float32 included). This is the one C0 rule of 5HD: the cost models and
    the simulator's TransData call it.
    """
    return 32 if _itemsize(dtype, "nc1hwc0_c0") == 1 else CUBE_SIZE


def default_c0(layout: str, dtype: DTypeLike) -> int | None:
    """The innermost block of ``layout`` for ``dtype``; ``None`` for unblocked layouts.

    NC1HWC0 → :func:`nc1hwc0_c0`; FRACTAL_Z (C0) and FRACTAL_NZ (W0) → :func:`c0_for`.
    """
    lay = _layout(layout, "default_c0")
    if lay is Layout.NC1HWC0:
        return nc1hwc0_c0(dtype)
    if lay in (Layout.FRACTAL_Z, Layout.FRACTAL_NZ):
        return c0_for(dtype)
    return None


def _layout(layout: str, where: str) -> Layout:
    try:
        return Layout(str(layout).upper())
    except ValueError:
        known = ", ".join(m.value for m in Layout)
        raise InputError(f"{where}: unknown layout {layout!r}; known: {known}") from None


def _positive(value: object, where: str, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f"{where}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _array(
    x: ArrayLike, rank: int, where: str, expected: str, at_least: bool = False
) -> np.ndarray:
    arr = np.asarray(x)
    if arr.ndim < rank if at_least else arr.ndim != rank:
        raise InputError(f"{where}: expected {expected}, got shape {arr.shape}")
    return arr


def _check_shape(arr: np.ndarray, want: tuple[int, ...], where: str, what: str) -> None:
    if arr.shape != want:
        raise InputError(f"{where}: expected shape {want} for {what}, got shape {arr.shape}")


def _pad_axis(x: np.ndarray, axis: int, to: int) -> np.ndarray:
    """Zero-pad ``axis`` of ``x`` at the end up to length ``to`` (a copy only if needed)."""
    extra = to - x.shape[axis]
    if extra == 0:
        return x
    widths = [(0, 0)] * x.ndim
    widths[axis] = (0, extra)
    return np.pad(x, widths)


# --------------------------------------------------------------------------------- NC1HWC0


def nc1hwc0_shape(n: int, c: int, h: int, w: int, c0: int) -> tuple[int, int, int, int, int]:
    """Device shape ``(N, ceil(C/C0), H, W, C0)`` of an NCHW tensor in NC1HWC0 [HIA-FMT]."""
    return (n, _ceil(c, c0), h, w, c0)


def nchw_to_nc1hwc0(x: ArrayLike, c0: int | None = None) -> np.ndarray:
    """NCHW → NC1HWC0 ``(N, C1, H, W, C0)``, channels zero-padded to ``C1·C0``.

    ``dst[((n·C1 + c1)·H + h)·W·C0 + w·C0 + c0] = src[n·C·H·W + (c1·C0+c0)·H·W + h·W + w]``,
    zero where ``c1·C0 + c0 ≥ C`` ([MS-TRANS] ``NchwToNc1hwc0``, [HIA-FMT]).

    Parameters
    ----------
    x : array (N, C, H, W), any dtype
    c0 : channel block; default :func:`nc1hwc0_c0` of ``x.dtype`` (16, or 32 for int8).

    Returns
    -------
    numpy.ndarray
        C-contiguous, dtype of ``x``. Inverse: :func:`nc1hwc0_to_nchw` with ``channels=C``.
    """
    x = _array(x, 4, "nchw_to_nc1hwc0", "a 4-D (N, C, H, W) array")
    c0 = nc1hwc0_c0(x.dtype) if c0 is None else _positive(c0, "nchw_to_nc1hwc0", "c0")
    n, c, h, w = x.shape
    c1 = _ceil(c, c0)
    x = _pad_axis(x, 1, c1 * c0).reshape(n, c1, c0, h, w)
    return np.ascontiguousarray(x.transpose(0, 1, 3, 4, 2))


def nhwc_to_nc1hwc0(x: ArrayLike, c0: int | None = None) -> np.ndarray:
    """NHWC → NC1HWC0 ``(N, C1, H, W, C0)``: ``pad(C).reshape(N,H,W,C1,C0).transpose(0,3,1,2,4)``.

    Same result as :func:`nchw_to_nc1hwc0` on the NCHW view [HIA-FMT][AIS-LAYOUT]; ``c0`` as
    there. Inverse: :func:`nc1hwc0_to_nhwc` with ``channels=C``.
    """
    x = _array(x, 4, "nhwc_to_nc1hwc0", "a 4-D (N, H, W, C) array")
    c0 = nc1hwc0_c0(x.dtype) if c0 is None else _positive(c0, "nhwc_to_nc1hwc0", "c0")
    n, h, w, c = x.shape
    c1 = _ceil(c, c0)
    x = _pad_axis(x, 3, c1 * c0).reshape(n, h, w, c1, c0)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2, 4))


def _check_nc1hwc0(x: ArrayLike, channels: int, where: str) -> np.ndarray:
    x = _array(x, 5, where, "a 5-D (N, C1, H, W, C0) array")
    # Zero channels is an empty tensor (C1 = 0), the image of nchw_to_nc1hwc0 on C = 0.
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 0:
        raise InputError(f"{where}: channels must be a non-negative integer, got {channels!r}")
    channels = int(channels)
    n, _, h, w, c0 = x.shape
    if c0 == 0:
        raise InputError(f"{where}: C0 axis of shape {x.shape} is empty")
    _check_shape(x, nc1hwc0_shape(n, channels, h, w, c0), where, f"{channels} channels")
    return x


def nc1hwc0_to_nchw(x: ArrayLike, channels: int) -> np.ndarray:
    """NC1HWC0 ``(N, C1, H, W, C0)`` → NCHW ``(N, channels, H, W)``, dropping the channel pads.

    Inverse of :func:`nchw_to_nc1hwc0`; ``C1`` must be ``ceil(channels / C0)``.
    """
    x = _check_nc1hwc0(x, channels, "nc1hwc0_to_nchw")
    n, c1, h, w, c0 = x.shape
    out = x.transpose(0, 1, 4, 2, 3).reshape(n, c1 * c0, h, w)
    return np.ascontiguousarray(out[:, :channels])


def nc1hwc0_to_nhwc(x: ArrayLike, channels: int) -> np.ndarray:
    """NC1HWC0 ``(N, C1, H, W, C0)`` → NHWC ``(N, H, W, channels)``, dropping the channel pads.

    Inverse of :func:`nhwc_to_nc1hwc0`; ``C1`` must be ``ceil(channels / C0)``.
    """
    x = _check_nc1hwc0(x, channels, "nc1hwc0_to_nhwc")
    n, c1, h, w, c0 = x.shape
    out = x.transpose(0, 2, 3, 1, 4).reshape(n, h, w, c1 * c0)
    return np.ascontiguousarray(out[..., :channels])


# ------------------------------------------------------------------------------- FRACTAL_Z


def fractal_z_shape(
    out_channels: int, in_channels: int, kh: int, kw: int, c0: int
) -> tuple[int, int, int, int]:
    """Device shape ``(C1·kh·kw, N1, 16, C0)`` of an OIHW weight in FRACTAL_Z [MS-TRANS]."""
    return (_ceil(in_channels, c0) * kh * kw, _ceil(out_channels, CUBE_SIZE), CUBE_SIZE, c0)


def oihw_to_fractal_z(w: ArrayLike, c0: int | None = None) -> np.ndarray:
    """Conv weight OIHW ``(N=Cout, C=Cin, H, W)`` → FRACTAL_Z ``(C1·H·W, N1, 16, C0)``.

    Memory order ``[C1][H][W][Npad][C0]`` with ``Npad = 16·N1``: element ``(n, c, h, w)`` with
    ``c = c1·C0 + c0`` sits at ``c1·(H·W·Npad·C0) + h·(W·Npad·C0) + w·(Npad·C0) + n·C0 + c0``
    ([MS-TRANS] ``FracZToNchw``), so each 16×C0 fractal is ``[n0][c0]``. Pads (``n ≥ N`` or
    ``c ≥ C``) are zero.

    Parameters
    ----------
    w : array (Cout, Cin, kh, kw), any dtype
    c0 : input-channel block; default :func:`c0_for` of ``w.dtype`` (16 fp16, 32 int8, 8 fp32).
        A conv whose input is NC1HWC0 with C0 = 16 should pass ``c0=16`` so the blocks agree.

    Returns
    -------
    numpy.ndarray
        C-contiguous. Inverse: :func:`fractal_z_to_oihw` with the original ``(Cout, Cin, kh, kw)``.
    """
    w = _array(w, 4, "oihw_to_fractal_z", "a 4-D (Cout, Cin, kh, kw) array")
    c0 = c0_for(w.dtype) if c0 is None else _positive(c0, "oihw_to_fractal_z", "c0")
    n, c, kh, kw = w.shape
    c1, n1 = _ceil(c, c0), _ceil(n, CUBE_SIZE)
    w = _pad_axis(_pad_axis(w, 0, n1 * CUBE_SIZE), 1, c1 * c0)
    w = w.reshape(n1 * CUBE_SIZE, c1, c0, kh, kw).transpose(1, 3, 4, 0, 2)  # C1,H,W,Npad,C0
    return np.ascontiguousarray(w).reshape(c1 * kh * kw, n1, CUBE_SIZE, c0)


def fractal_z_to_oihw(
    x: ArrayLike, out_channels: int, in_channels: int, kh: int, kw: int
) -> np.ndarray:
    """FRACTAL_Z ``(C1·kh·kw, N1, 16, C0)`` → OIHW ``(out_channels, in_channels, kh, kw)``.

    Inverse of :func:`oihw_to_fractal_z`: ``C0`` is read from ``x.shape[3]``, and the pads of both
    channel axes are dropped.
    """
    where = "fractal_z_to_oihw"
    x = _array(x, 4, where, "a 4-D (C1*kh*kw, N1, 16, C0) array")
    names = ("out_channels", "in_channels", "kh", "kw")
    dims = tuple(
        _positive(v, where, k)
        for k, v in zip(names, (out_channels, in_channels, kh, kw), strict=True)
    )
    n, c, kh, kw = dims
    c0 = x.shape[3]
    if c0 == 0:
        raise InputError(f"{where}: C0 axis of shape {x.shape} is empty")
    _check_shape(x, fractal_z_shape(n, c, kh, kw, c0), where, f"OIHW weight {dims}")
    c1, npad = _ceil(c, c0), x.shape[1] * CUBE_SIZE
    out = x.reshape(c1, kh, kw, npad, c0).transpose(3, 0, 4, 1, 2).reshape(npad, c1 * c0, kh, kw)
    return np.ascontiguousarray(out[:n, :c])


# ------------------------------------------------------------------------------ FRACTAL_NZ


def _nz_dims(dims: tuple[int, ...], h0: int, w0: int, merged: bool) -> tuple[int, ...]:
    *batch, h, w = dims
    w1, h1 = _ceil(w, w0), _ceil(h, h0)
    return (*batch, w1, h1 * h0, w0) if merged else (*batch, w1, h1, h0, w0)


def fractal_nz_shape(
    shape: Sequence[int],
    dtype: DTypeLike,
    merged: bool = True,
    *,
    w0: int | None = None,
    h0: int = CUBE_SIZE,
) -> tuple[int, ...]:
    """Device shape of an ND ``(…, H, W)`` tensor in FRACTAL_NZ [MS-TRANS][ATB-TD].

    ``merged=True`` gives ``(…, W1, H1·H0, W0)``, the view ATB documents (ND (8,100,30) fp16 →
    (8, 2, 112, 16)); ``merged=False`` gives ``(…, W1, H1, H0, W0)``, the view
    :func:`nd_to_fractal_nz` returns. ``W0`` defaults to :func:`c0_for` of ``dtype``.
    """
    where = "fractal_nz_shape"
    dims = _dims(shape, where)
    if len(dims) < 2:
        raise InputError(f"{where}: expected a shape of rank >= 2 (..., H, W), got {dims}")
    w0 = c0_for(dtype) if w0 is None else _positive(w0, where, "w0")
    return _nz_dims(dims, _positive(h0, where, "h0"), w0, merged)


def nd_to_fractal_nz(
    x: ArrayLike, w0: int | None = None, *, h0: int = CUBE_SIZE, merged: bool = False
) -> np.ndarray:
    """ND ``(…, H, W)`` → FRACTAL_NZ ``(…, W1, H1, H0, W0)`` (or ``(…, W1, H1·H0, W0)``).

    ``dst = b·(W1·H1·H0·W0) + (w // W0)·(H1·H0·W0) + h·W0 + (w % W0)`` for ``h < H, w < W``
    ([MS-TRANS] ``NchwToFracNz``); H is zero-padded to ``H1·H0`` and W to ``W1·W0``. Fractals are
    column-block-major ("big N"), rows inside a fractal row-major ("small z") [AIS-LAYOUT].

    Parameters
    ----------
    x : array of rank >= 2, any dtype; leading axes are batch axes. Reshape a vector to (1, n).
    w0 : column block; default :func:`c0_for` of ``x.dtype`` (16 fp16, 32 int8, 8 fp32) [ATB-TD].
    h0 : row block, 16 on the chip [ATB-TD]; other values give the same order with other fractals.
    merged : return the view ``(…, W1, H1·H0, W0)`` instead of the 5-D one (same memory).

    Returns
    -------
    numpy.ndarray
        C-contiguous. Inverse: :func:`fractal_nz_to_nd` with the original shape (either view).
    """
    where = "nd_to_fractal_nz"
    x = _array(x, 2, where, "an array of rank >= 2 (..., H, W)", at_least=True)
    w0 = c0_for(x.dtype) if w0 is None else _positive(w0, where, "w0")
    h0 = _positive(h0, where, "h0")
    *batch, w1, h1, _, _ = _nz_dims(x.shape, h0, w0, merged=False)
    b = len(batch)
    x = _pad_axis(_pad_axis(x, b, h1 * h0), b + 1, w1 * w0).reshape(*batch, h1, h0, w1, w0)
    x = np.ascontiguousarray(x.transpose(*range(b), b + 2, b, b + 1, b + 3))
    return x.reshape(*batch, w1, h1 * h0, w0) if merged else x


def fractal_nz_to_nd(x: ArrayLike, shape: Sequence[int], *, h0: int = CUBE_SIZE) -> np.ndarray:
    """FRACTAL_NZ → ND ``shape``, dropping the pads; inverse of :func:`nd_to_fractal_nz`.

    Accepts both views: ``(…, W1, H1, H0, W0)`` (rank ``len(shape) + 2``) and
    ``(…, W1, H1·H0, W0)`` (rank ``len(shape) + 1``). ``W0`` is read from ``x.shape[-1]``.
    """
    where = "fractal_nz_to_nd"
    dims = _dims(shape, where)
    if len(dims) < 2:
        raise InputError(f"{where}: expected an ND shape of rank >= 2 (..., H, W), got {dims}")
    rank = len(dims)
    x = _array(x, rank + 1, where, f"an NZ array of rank {rank + 1} or {rank + 2}", at_least=True)
    h0, w0 = _positive(h0, where, "h0"), x.shape[-1]
    if w0 == 0 or x.ndim > rank + 2:
        raise InputError(f"{where}: expected an NZ array for ND {dims}, got shape {x.shape}")
    _check_shape(x, _nz_dims(dims, h0, w0, merged=x.ndim == rank + 1), where, f"ND {dims}")
    *batch, h, w = dims
    *_, w1, h1, _, _ = _nz_dims(dims, h0, w0, merged=False)
    b = len(batch)
    out = x.reshape(*batch, w1, h1, h0, w0).transpose(*range(b), b + 1, b + 2, b, b + 3)
    return np.ascontiguousarray(out.reshape(*batch, h1 * h0, w1 * w0)[..., :h, :w])


# -------------------------------------------------------------------------- sizes for costs


def _dims(shape: Sequence[int], where: str) -> tuple[int, ...]:
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise InputError(f"{where}: shape must be a sequence of integers, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise InputError(f"{where}: shape has a negative dimension: {dims}")
    return dims


def padded_shape(
    shape: Sequence[int], layout: str, dtype: DTypeLike, *, c0: int | None = None
) -> tuple[int, ...]:
    """Shape a tensor occupies in ``layout``, padding included.

    ``shape`` is the logical shape in the layout's framework order: NCHW for NCHW, NC1HWC0 and
    FRACTAL_Z (OIHW); NHWC for NHWC; any rank for ND; ``(…, H, W)`` for FRACTAL_NZ, whose result
    is the 5-D view ``(…, W1, H1, H0, W0)`` that :func:`nd_to_fractal_nz` returns. ``c0``
    overrides :func:`default_c0` (C0 of NC1HWC0/FRACTAL_Z, W0 of FRACTAL_NZ).

    Raises
    ------
    InputError
        Unknown layout, or a rank the layout does not take (4 for the NCHW family, >= 2 for NZ).
    """
    lay = _layout(layout, "padded_shape")
    dims = _dims(shape, "padded_shape")
    if lay is Layout.ND:
        return dims
    if lay is Layout.FRACTAL_NZ:
        return fractal_nz_shape(dims, dtype, merged=False, w0=c0)
    if len(dims) != 4:
        raise InputError(f"padded_shape: layout {lay.value} expects a 4-D shape, got {dims}")
    if lay in (Layout.NCHW, Layout.NHWC):
        return dims
    if lay is Layout.NC1HWC0:
        block = nc1hwc0_c0(dtype) if c0 is None else _positive(c0, "padded_shape", "c0")
        return nc1hwc0_shape(*dims, block)
    block = c0_for(dtype) if c0 is None else _positive(c0, "padded_shape", "c0")
    return fractal_z_shape(*dims, block)


def padded_nbytes(
    shape: Sequence[int], layout: str, dtype: DTypeLike, *, c0: int | None = None
) -> int:
    """Bytes a tensor of logical ``shape`` occupies in ``layout`` (see :func:`padded_shape`).

    Example: NCHW (1, 3, 224, 224) fp16 in NC1HWC0 is (1, 1, 224, 224, 16): 1 605 632 B.
    """
    size = _itemsize(dtype, "padded_nbytes")
    return math.prod(padded_shape(shape, layout, dtype, c0=c0)) * size


_NCHW_LIKE = (Layout.NC1HWC0, Layout.FRACTAL_Z)


def transdata_bytes(
    shape: Sequence[int], src_layout: str, dst_layout: str, dtype: DTypeLike
) -> int:
    """Bytes a TransData from ``src_layout`` to ``dst_layout`` reads plus the bytes it writes.

    ``shape`` is the tensor's logical shape in the framework layout of the pair: NHWC order if
    either side is NHWC (it is permuted to NCHW for an NC1HWC0/FRACTAL_Z side), NCHW order for
    the other 4-D layouts, ``(…, H, W)`` for ND/FRACTAL_NZ. The same layout on both sides is no
    conversion: 0 bytes.
    """
    src = _layout(src_layout, "transdata_bytes")
    dst = _layout(dst_layout, "transdata_bytes")
    if src is dst:
        return 0
    dims = _dims(shape, "transdata_bytes")
    if Layout.NHWC in (src, dst) and len(dims) == 4:
        n, h, w, c = dims
        nchw = (n, c, h, w)
        return sum(
            padded_nbytes(nchw if lay in _NCHW_LIKE else dims, lay, dtype) for lay in (src, dst)
        )
    return padded_nbytes(dims, src, dtype) + padded_nbytes(dims, dst, dtype)
