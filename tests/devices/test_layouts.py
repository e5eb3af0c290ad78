"""Layout conversions: round trips, index formulas of ascend-facts §3 checked by hand, sizes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hetnpu.devices import layouts as L
from hetnpu.errors import HetnpuError, InputError

DTYPES = [np.float16, np.float32, np.int8, np.int32]
# Sizes on both sides of the 8/16/32 block boundaries.
DIM = st.sampled_from([1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33])
SMALL = st.integers(1, 3)


def _ceil(a: int, b: int) -> int:
    return (a + b - 1) // b


def _nonzero_data(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    """Values 1..100, never 0, so any zero in a converted array is a pad."""
    return np.random.default_rng(seed).integers(1, 101, size=shape).astype(dtype)


def _assert_pads_zero(out: np.ndarray, x: np.ndarray) -> None:
    # Every source value lands once and everything else is zero.
    assert np.count_nonzero(out) == x.size
    np.testing.assert_array_equal(np.sort(out[out != 0]), np.sort(x.ravel()))


# ------------------------------------------------------------------------------ block rules


def test_c0_for_is_32_bytes_over_itemsize():
    assert L.c0_for(np.float16) == 16
    assert L.c0_for("int8") == 32
    assert L.c0_for(np.float32) == 8
    assert L.c0_for(np.int32) == 8


def test_nc1hwc0_c0_is_cube_size_except_one_byte_types():
    assert L.nc1hwc0_c0(np.float16) == 16
    assert L.nc1hwc0_c0(np.float32) == 16  # not 8: 5HD's C0 is the cube size
    assert L.nc1hwc0_c0(np.int32) == 16
    assert L.nc1hwc0_c0(np.int8) == 32
    assert L.nc1hwc0_c0(np.uint8) == 32


def test_default_c0_per_layout():
    assert L.default_c0("NC1HWC0", np.float32) == 16
    assert L.default_c0("FRACTAL_Z", np.float32) == 8
    assert L.default_c0("FRACTAL_NZ", np.int8) == 32
    assert L.default_c0("NCHW", np.float16) is None
    assert L.default_c0("ND", np.float16) is None


def test_defaults_follow_the_rules_and_overrides_win():
    x32 = np.ones((1, 3, 2, 2), np.float32)
    assert L.nchw_to_nc1hwc0(x32).shape == (1, 1, 2, 2, 16)
    assert L.nchw_to_nc1hwc0(x32, c0=4).shape == (1, 1, 2, 2, 4)
    assert L.oihw_to_fractal_z(x32).shape == (1 * 2 * 2, 1, 16, 8)
    assert L.oihw_to_fractal_z(x32, c0=16).shape == (1 * 2 * 2, 1, 16, 16)
    m = np.ones((20, 20), np.float32)
    assert L.nd_to_fractal_nz(m).shape == (3, 2, 16, 8)
    assert L.nd_to_fractal_nz(m, w0=16).shape == (2, 2, 16, 16)


def test_int8_nc1hwc0_uses_c0_32():
    x = np.arange(1, 13, dtype=np.int8).reshape(1, 3, 2, 2)
    out = L.nchw_to_nc1hwc0(x)
    assert out.shape == (1, 1, 2, 2, 32)
    assert out.dtype == np.int8
    assert L.nhwc_to_nc1hwc0(x.transpose(0, 2, 3, 1)).shape == (1, 1, 2, 2, 32)


def test_layout_enum_carries_acl_format_values():
    # aclFormat values, ascend-facts §3.1.
    assert L.Layout.NCHW.acl_format == 0
    assert L.Layout.NHWC.acl_format == 1
    assert L.Layout.ND.acl_format == 2
    assert L.Layout.NC1HWC0.acl_format == 3
    assert L.Layout.FRACTAL_Z.acl_format == 4
    assert L.Layout.FRACTAL_NZ.acl_format == 29
    assert L.Layout("FRACTAL_NZ") == "FRACTAL_NZ"


# ----------------------------------------------------------------------------- round trips


@settings(max_examples=60, deadline=None)
@given(n=SMALL, c=DIM, h=SMALL, w=SMALL, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 99))
def test_nchw_nc1hwc0_round_trip(n, c, h, w, dtype, seed):
    x = _nonzero_data((n, c, h, w), dtype, seed)
    c0 = 32 if np.dtype(dtype).itemsize == 1 else 16
    out = L.nchw_to_nc1hwc0(x)
    assert out.shape == (n, _ceil(c, c0), h, w, c0)
    assert out.dtype == x.dtype
    _assert_pads_zero(out, x)
    assert out.nbytes == L.padded_nbytes(x.shape, "NC1HWC0", dtype)
    back = L.nc1hwc0_to_nchw(out, c)
    assert back.dtype == x.dtype
    np.testing.assert_array_equal(back, x)


@settings(max_examples=60, deadline=None)
@given(n=SMALL, c=DIM, h=SMALL, w=SMALL, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 99))
def test_nhwc_nc1hwc0_round_trip_and_agrees_with_nchw(n, c, h, w, dtype, seed):
    x = _nonzero_data((n, h, w, c), dtype, seed)
    out = L.nhwc_to_nc1hwc0(x)
    _assert_pads_zero(out, x)
    np.testing.assert_array_equal(out, L.nchw_to_nc1hwc0(x.transpose(0, 3, 1, 2)))
    np.testing.assert_array_equal(L.nc1hwc0_to_nhwc(out, c), x)


@settings(max_examples=60, deadline=None)
@given(
    cout=DIM, cin=DIM, kh=SMALL, kw=SMALL, dtype=st.sampled_from(DTYPES), seed=st.integers(0, 99)
)
def test_oihw_fractal_z_round_trip(cout, cin, kh, kw, dtype, seed):
    x = _nonzero_data((cout, cin, kh, kw), dtype, seed)
    c0 = 32 // np.dtype(dtype).itemsize
    out = L.oihw_to_fractal_z(x)
    assert out.shape == (_ceil(cin, c0) * kh * kw, _ceil(cout, 16), 16, c0)
    _assert_pads_zero(out, x)
    assert out.nbytes == L.padded_nbytes(x.shape, "FRACTAL_Z", dtype)
    np.testing.assert_array_equal(L.fractal_z_to_oihw(out, cout, cin, kh, kw), x)


@settings(max_examples=60, deadline=None)
@given(
    batch=st.lists(SMALL, max_size=2),
    h=DIM,
    w=DIM,
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 99),
)
def test_nd_fractal_nz_round_trip_both_views(batch, h, w, dtype, seed):
    shape = (*batch, h, w)
    x = _nonzero_data(shape, dtype, seed)
    w0 = 32 // np.dtype(dtype).itemsize
    out = L.nd_to_fractal_nz(x)
    assert out.shape == (*batch, _ceil(w, w0), _ceil(h, 16), 16, w0)
    assert out.shape == L.fractal_nz_shape(shape, dtype, merged=False)
    _assert_pads_zero(out, x)
    assert out.nbytes == L.padded_nbytes(shape, "FRACTAL_NZ", dtype)
    np.testing.assert_array_equal(L.fractal_nz_to_nd(out, shape), x)
    merged = L.nd_to_fractal_nz(x, merged=True)
    assert merged.shape == (*batch, _ceil(w, w0), _ceil(h, 16) * 16, w0)
    np.testing.assert_array_equal(merged.ravel(), out.ravel())
    np.testing.assert_array_equal(L.fractal_nz_to_nd(merged, shape), x)


# ------------------------------------------------------------- index formulas, by hand


@pytest.mark.parametrize(
    ("shape", "dtype", "c0"),
    [((2, 5, 3, 2), np.float32, 4), ((1, 17, 2, 3), np.float16, 16), ((2, 3, 2, 2), np.int8, 32)],
)
def test_nchw_to_nc1hwc0_matches_ms_trans_formula(shape, dtype, c0):
    big_n, big_c, big_h, big_w = shape
    src = _nonzero_data(shape, dtype, 0).ravel()
    dst = L.nchw_to_nc1hwc0(src.reshape(shape), c0=c0).ravel()
    c1s = _ceil(big_c, c0)
    assert dst.size == big_n * c1s * big_h * big_w * c0
    for n in range(big_n):
        for c1 in range(c1s):
            for h in range(big_h):
                for w in range(big_w):
                    for k in range(c0):
                        d = ((n * c1s + c1) * big_h + h) * big_w * c0 + w * c0 + k
                        c = c1 * c0 + k
                        s = n * big_c * big_h * big_w + c * big_h * big_w + h * big_w + w
                        assert dst[d] == (src[s] if c < big_c else 0), (n, c1, h, w, k)


def test_nhwc_to_nc1hwc0_matches_index_formula():
    big_n, big_h, big_w, big_c, c0 = 2, 2, 3, 5, 4
    src = _nonzero_data((big_n, big_h, big_w, big_c), np.int32, 1).ravel()
    dst = L.nhwc_to_nc1hwc0(src.reshape(big_n, big_h, big_w, big_c), c0=c0).ravel()
    c1s = _ceil(big_c, c0)
    for n in range(big_n):
        for c1 in range(c1s):
            for h in range(big_h):
                for w in range(big_w):
                    for k in range(c0):
                        d = ((n * c1s + c1) * big_h + h) * big_w * c0 + w * c0 + k
                        c = c1 * c0 + k
                        s = ((n * big_h + h) * big_w + w) * big_c + c
                        assert dst[d] == (src[s] if c < big_c else 0)


@pytest.mark.parametrize(
    ("shape", "dtype"),
    [((3, 5, 2, 2), np.float16), ((17, 20, 1, 3), np.float32), ((2, 33, 1, 1), np.int8)],
)
def test_oihw_to_fractal_z_matches_ms_trans_formula(shape, dtype):
    big_n, big_c, big_h, big_w = shape
    c0 = 32 // np.dtype(dtype).itemsize
    src = _nonzero_data(shape, dtype, 2).ravel()
    dst = L.oihw_to_fractal_z(src.reshape(shape)).ravel()
    c1s, npad = _ceil(big_c, c0), _ceil(big_n, 16) * 16
    assert dst.size == c1s * big_h * big_w * npad * c0
    for n in range(npad):
        for c in range(c1s * c0):
            c1, k = divmod(c, c0)
            for h in range(big_h):
                for w in range(big_w):
                    f = (
                        c1 * (big_h * big_w * npad * c0)
                        + h * (big_w * npad * c0)
                        + w * (npad * c0)
                        + n * c0
                        + k
                    )
                    s = n * big_c * big_h * big_w + c * big_h * big_w + h * big_w + w
                    want = src[s] if n < big_n and c < big_c else 0
                    assert dst[f] == want, (n, c, h, w)


@pytest.mark.parametrize(
    ("shape", "dtype", "w0"),
    [
        ((2, 5, 7), np.float16, 4),
        ((1, 20, 18), np.float16, None),
        ((3, 17, 33), np.int8, None),
        ((2, 2, 3, 9), np.float32, None),
    ],
)
def test_nd_to_fractal_nz_matches_ms_trans_formula(shape, dtype, w0):
    *batch, big_h, big_w = shape
    w0_ = w0 or 32 // np.dtype(dtype).itemsize
    h1s, w1s, h0 = _ceil(big_h, 16), _ceil(big_w, w0_), 16
    src = _nonzero_data(shape, dtype, 3)
    dst = L.nd_to_fractal_nz(src, w0=w0).ravel()
    nb = int(np.prod(batch))
    assert dst.size == nb * w1s * h1s * h0 * w0_
    flat = src.ravel()
    hit = np.zeros(dst.size, bool)
    for b in range(nb):
        for h in range(big_h):
            for w in range(big_w):
                d = b * (w1s * h1s * h0 * w0_) + (w // w0_) * (h1s * h0 * w0_) + h * w0_ + w % w0_
                assert dst[d] == flat[b * big_h * big_w + h * big_w + w], (b, h, w)
                hit[d] = True
    assert not dst[~hit].any()  # every position the formula does not reach is a zero pad


# ------------------------------------------------------------------------ known answers


def test_atb_known_answer_nd_8x100x30_fp16():
    # [ATB-TD]: ND {8,100,30} fp16 -> NZ {8, 2, 112, 16} = [batch, n1, m1*m0, n0].
    x = np.zeros((8, 100, 30), np.float16)
    assert L.nd_to_fractal_nz(x, merged=True).shape == (8, 2, 112, 16)
    assert L.nd_to_fractal_nz(x).shape == (8, 2, 7, 16, 16)
    assert L.fractal_nz_shape((8, 100, 30), np.float16) == (8, 2, 112, 16)
    assert L.fractal_nz_shape((8, 100, 30), np.float16, merged=False) == (8, 2, 7, 16, 16)


def test_ais_toy_4x4_with_2x2_fractals():
    # [AIS-LAYOUT]: NZ memory order of a 4×4 matrix in 2×2 fractals.
    x = np.arange(16).reshape(4, 4)
    out = L.nd_to_fractal_nz(x, w0=2, h0=2)
    assert out.ravel().tolist() == [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]
    np.testing.assert_array_equal(L.fractal_nz_to_nd(out, (4, 4), h0=2), x)


# --------------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    ("shape", "layout", "dtype", "nbytes"),
    [
        ((1, 3, 224, 224), "NC1HWC0", "float16", 1 * 1 * 224 * 224 * 16 * 2),
        ((1, 3, 224, 224), "NC1HWC0", "float32", 1 * 1 * 224 * 224 * 16 * 4),  # C0 16
        ((1, 3, 224, 224), "NC1HWC0", "int8", 1 * 1 * 224 * 224 * 32 * 1),
        ((1, 40, 2, 2), "NC1HWC0", "float16", 1 * 3 * 2 * 2 * 16 * 2),
        ((20, 20, 3, 3), "FRACTAL_Z", "float16", (2 * 9) * 2 * 16 * 16 * 2),
        ((20, 20, 3, 3), "FRACTAL_Z", "float32", (3 * 9) * 2 * 16 * 8 * 4),  # C0 8
        ((8, 100, 30), "FRACTAL_NZ", "float16", 8 * 2 * 112 * 16 * 2),
        ((100, 30), "FRACTAL_NZ", "float32", 4 * 112 * 8 * 4),  # W0 8
        ((100, 30), "fractal_nz", "int8", 1 * 112 * 32 * 1),  # W0 32; case-insensitive
        ((2, 3, 4, 5), "NCHW", "float32", 2 * 3 * 4 * 5 * 4),
        ((2, 3, 4, 5), "NHWC", "int8", 120),
        ((3, 5), "ND", "int32", 60),
        ((), "ND", "float16", 2),
    ],
)
def test_padded_nbytes_hand_computed(shape, layout, dtype, nbytes):
    assert L.padded_nbytes(shape, layout, dtype) == nbytes


def test_padded_shape_values_and_override():
    assert L.padded_shape((1, 3, 5, 5), "NC1HWC0", "float16") == (1, 1, 5, 5, 16)
    assert L.padded_shape((1, 3, 5, 5), L.Layout.NC1HWC0, "float16", c0=4) == (1, 1, 5, 5, 4)
    assert L.padded_shape((17, 3, 3, 3), "FRACTAL_Z", "float16") == (9, 2, 16, 16)
    assert L.padded_shape((2, 100, 30), "FRACTAL_NZ", "float16") == (2, 2, 7, 16, 16)
    assert L.padded_nbytes((1, 3, 5, 5), "NC1HWC0", "float32", c0=8) == 5 * 5 * 8 * 4


def test_transdata_bytes_is_read_plus_write():
    nchw, fivehd = 1 * 3 * 224 * 224 * 2, 1 * 1 * 224 * 224 * 16 * 2
    assert L.transdata_bytes((1, 3, 224, 224), "NCHW", "NC1HWC0", "float16") == nchw + fivehd
    assert L.transdata_bytes((1, 3, 224, 224), "NC1HWC0", "NCHW", "float16") == nchw + fivehd
    # NHWC shapes are given in NHWC order.
    assert L.transdata_bytes((1, 224, 224, 3), "NHWC", "NC1HWC0", "float16") == nchw + fivehd
    nd, nz = 8 * 100 * 30 * 2, 8 * 2 * 112 * 16 * 2
    assert L.transdata_bytes((8, 100, 30), "ND", "FRACTAL_NZ", "float16") == nd + nz
    assert L.transdata_bytes((8, 100, 30), "FRACTAL_NZ", "ND", "float16") == nd + nz
    assert L.transdata_bytes((8, 100, 30), "ND", "ND", "float16") == 0


# -------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda: L.nchw_to_nc1hwc0(np.zeros((2, 3))), "nchw_to_nc1hwc0"),
        (lambda: L.nhwc_to_nc1hwc0(np.zeros((2, 3, 4))), "nhwc_to_nc1hwc0"),
        (lambda: L.nc1hwc0_to_nchw(np.zeros((1, 2, 3, 4)), 3), "nc1hwc0_to_nchw"),
        (lambda: L.nc1hwc0_to_nhwc(np.zeros((1, 2, 3, 4)), 3), "nc1hwc0_to_nhwc"),
        (lambda: L.oihw_to_fractal_z(np.zeros((4, 4, 3))), "oihw_to_fractal_z"),
        (lambda: L.fractal_z_to_oihw(np.zeros((9, 1, 16)), 4, 4, 3, 3), "fractal_z_to_oihw"),
        (lambda: L.nd_to_fractal_nz(np.zeros(7)), "nd_to_fractal_nz"),
        (lambda: L.fractal_nz_to_nd(np.zeros((2, 16)), (5, 6)), "fractal_nz_to_nd"),
    ],
)
def test_wrong_rank_raises_input_error_naming_function_and_shape(call, name):
    with pytest.raises(InputError) as info:
        call()
    msg = str(info.value)
    assert msg.startswith(name + ":")
    assert "expected" in msg and "got shape" in msg


def test_inverse_rejects_shape_inconsistent_with_original():
    five_hd = np.zeros((1, 1, 2, 2, 16), np.float16)
    with pytest.raises(InputError, match=r"nc1hwc0_to_nchw: expected shape \(1, 2, 2, 2, 16\)"):
        L.nc1hwc0_to_nchw(five_hd, 17)  # 17 channels need C1 = 2
    fz = np.zeros((9, 1, 16, 16), np.float16)
    with pytest.raises(InputError, match=r"fractal_z_to_oihw: expected shape \(18, 1, 16, 16\)"):
        L.fractal_z_to_oihw(fz, 16, 20, 3, 3)
    nz = np.zeros((2, 7, 16, 16), np.float16)
    with pytest.raises(InputError, match=r"got shape \(2, 7, 16, 16\)"):
        L.fractal_nz_to_nd(nz, (100, 40))  # needs W1 = 3


def test_bad_arguments_raise_hetnpu_errors():
    assert issubclass(InputError, HetnpuError)
    with pytest.raises(InputError, match="unknown layout 'NCDHW'"):
        L.padded_nbytes((1, 2, 3, 4, 5), "NCDHW", "float16")
    with pytest.raises(InputError, match="padded_shape: layout NC1HWC0 expects a 4-D shape"):
        L.padded_shape((3, 4), "NC1HWC0", "float16")
    with pytest.raises(InputError, match="rank >= 2"):
        L.padded_shape((7,), "FRACTAL_NZ", "float16")
    with pytest.raises(InputError, match="c0 must be a positive integer"):
        L.nchw_to_nc1hwc0(np.zeros((1, 1, 1, 1)), c0=0)
    with pytest.raises(InputError, match="not a numpy dtype"):
        L.c0_for("undefined")
