"""The NPU's arithmetic in software: Cube ops on fractal layouts, Vector ops in fp16.

What the Da Vinci core does, and so what this module reproduces (ascend-facts §1.1, §3):

- The Cube multiplies fractals: A tiles from L0A (M0×K0), B tiles from L0B (K0×N0), into an fp32
  accumulator in L0C, one K-block after another; FixPipe (or the vector path) casts the result
  to the output dtype. Operands reach it in private layouts: activations NC1HWC0, conv weights
  FRACTAL_Z, matrices FRACTAL_NZ. Here each operand really is converted to its layout by
  :mod:`hetnpu.devices.layouts`, multiplied fractal by fractal, and converted back, so a wrong
  conversion shows up as a wrong answer.
- In fp16 mode (ATC's default) every float tensor is rounded to fp16 between ops, Cube products
  accumulate in fp32, and a result that leaves fp16's range is an overflow, as the chip's
  overflow flag reports. In fp32 mode (ATC's must_keep_origin_dtype) nothing is rounded.

Left out: int8 quantisation scales, the Cube's adder tree inside one K-block (modelled as the exact
sum rounded once to fp32), and saturation modes (an overflow is reported, and the value becomes
inf).
"""

from __future__ import annotations

import numpy as np

from hetnpu.devices import layouts

__all__ = ["FP16_MAX", "conv2d", "fixpipe", "fractal_matmul", "matmul"]

FP16_MAX = float(np.finfo(np.float16).max)  # 65504


def _operand_dtype(precision: str) -> np.dtype:
    return np.dtype(np.float16 if precision == "fp16" else np.float32)


def _k0(precision: str) -> int:
    # K0 = 32 bytes / sizeof(dtype) [CAT-ISA]: 16 for fp16, 8 for fp32.
    return 32 // _operand_dtype(precision).itemsize


def fractal_matmul(a: np.ndarray, b: np.ndarray, precision: str = "fp16") -> np.ndarray:
    """``a @ b`` for 2-D operands the way the Cube computes it; returns the fp32 accumulator.

    A goes to FRACTAL_NZ as L0A holds it, B^T to FRACTAL_NZ (the K-major "nZ" order of L0B),
    both cut into fractals; the product accumulates one K-block at a time in fp32 into an
    accumulator laid out as L0C holds it (FRACTAL_NZ with 16-column fractals), as successive
    ``mmad`` instructions accumulate, and is converted back to ND on the way out. Each K-block
    is exact (see :func:`_k_block`); the fp32 additions into L0C run in K-block order, so the
    result is the same on every machine and for every column position.
    """
    dtype = _operand_dtype(precision)
    m, k = a.shape
    k2, n = b.shape
    if k != k2:
        raise ValueError(f"fractal_matmul: inner dims differ, {a.shape} @ {b.shape}")
    k0 = _k0(precision)
    a = a.astype(dtype, copy=False)
    b = b.astype(dtype, copy=False)
    # A (M, K) in NZ: (K1, M1*16, K0). B^T (N, K) in NZ: (K1, N1*16, K0), K0 elements of one
    # output column contiguous.
    a_nz = layouts.nd_to_fractal_nz(a, w0=k0, merged=True)
    bt_nz = layouts.nd_to_fractal_nz(np.ascontiguousarray(b.T), w0=k0, merged=True)
    m_pad, n_pad = a_nz.shape[1], bt_nz.shape[1]
    n1 = n_pad // layouts.CUBE_SIZE
    acc = np.zeros((m_pad, n_pad), np.float32)
    for a_blk, bt_blk in zip(a_nz, bt_nz, strict=True):
        acc += _k_block(a_blk, bt_blk)
    l0c = acc.reshape(m_pad, n1, layouts.CUBE_SIZE).transpose(1, 0, 2)  # L0C: (N1, M1*16, N0)
    return layouts.fractal_nz_to_nd(l0c, (m, n))


def _k_block(a_blk: np.ndarray, bt_blk: np.ndarray) -> np.ndarray:
    """One K-block of ``mmad``: the K0-long dot products of every (row, column), rounded to fp32.

    Every product of two fp16 or two fp32 values is exact in float64, and their K0-term (8 or
    16) sum carries float64's rounding, 2^-29 of an fp32 ulp, so the fp32 value it rounds to does
    not depend on the order BLAS adds the terms in. BLAS over the whole K dimension did: its
    kernels add in an order that depends on the column's place in the register tile and on the
    kernel OpenBLAS picks for the processor, so equal columns came out an fp32 ulp apart on some
    machines, which a Softmax over logits near 1e10 turns into 0 against 0.001.
    """
    return (a_blk.astype(np.float64) @ bt_blk.astype(np.float64).T).astype(np.float32)


def _ceil(x: int, m: int) -> int:
    return -(-x // m)


def fixpipe(acc: np.ndarray, precision: str) -> np.ndarray:
    """The cast on the way out of L0C: fp32 accumulator to fp16 (fp16 mode) or fp32.

    In fp16 mode a value beyond fp16's range becomes inf here, where the chip sets its
    overflow flag.
    """
    if precision != "fp16":
        return acc.astype(np.float32)
    with np.errstate(over="ignore"):
        return acc.astype(np.float16)


def matmul(a: np.ndarray, b: np.ndarray, precision: str = "fp16") -> np.ndarray:
    """numpy-``matmul`` semantics (batch broadcasting, 1-D operands) on the Cube.

    Returns the fp32 accumulator; :func:`fixpipe` gives the value the chip writes out.
    """
    a_vec, b_vec = a.ndim == 1, b.ndim == 1
    a2 = a[None, :] if a_vec else a
    b2 = b[:, None] if b_vec else b
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    a3 = np.broadcast_to(a2, (*batch, *a2.shape[-2:])).reshape(-1, *a2.shape[-2:])
    b3 = np.broadcast_to(b2, (*batch, *b2.shape[-2:])).reshape(-1, *b2.shape[-2:])
    out = np.stack([fractal_matmul(x, y, precision) for x, y in zip(a3, b3, strict=True)])
    out = out.reshape(*batch, a2.shape[-2], b2.shape[-1])
    if a_vec:
        out = out[..., 0, :]
    if b_vec:
        out = out[..., 0]
    return out


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    bias: np.ndarray | None,
    *,
    strides: tuple[int, int],
    pads: tuple[int, int, int, int],
    dilations: tuple[int, int],
    group: int,
    precision: str = "fp16",
) -> np.ndarray:
    """A 2-D convolution as the NPU runs it: NC1HWC0 input, FRACTAL_Z weights, img2col, mmad.

    ``pads`` is ONNX's (top, left, bottom, right). Returns the fp32 accumulator as NCHW, bias
    included (it joins the accumulator before the cast); :func:`fixpipe` gives what is written.
    """
    dtype = _operand_dtype(precision)
    n, _, h, wd = x.shape
    cout, cin_g, kh, kw = w.shape
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    ho = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    wo = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    cout_g = cout // group
    outs = []
    for g in range(group):
        xg = x[:, g * cin_g : (g + 1) * cin_g].astype(dtype, copy=False)
        wg = w[g * cout_g : (g + 1) * cout_g].astype(dtype, copy=False)
        x5 = layouts.nchw_to_nc1hwc0(xg)  # (N, C1, H, W, C0)
        c1, c0 = x5.shape[1], x5.shape[4]
        x5 = np.pad(x5, ((0, 0), (0, 0), (pt, pb), (pl, pr), (0, 0)))
        # img2col (LoadData3D): rows are output pixels, columns (c1, kh, kw, c0) — the row
        # order of FRACTAL_Z, so the weight matrix needs no reordering.
        hi = (np.arange(ho) * sh)[:, None] + np.arange(kh) * dh  # (Ho, kh)
        wi = (np.arange(wo) * sw)[:, None] + np.arange(kw) * dw  # (Wo, kw)
        patches = x5[:, :, hi[:, None, :, None], wi[None, :, None, :], :]  # N,C1,Ho,Wo,kh,kw,C0
        a = patches.transpose(0, 2, 3, 1, 4, 5, 6).reshape(n * ho * wo, c1 * kh * kw * c0)
        fz = layouts.oihw_to_fractal_z(wg, c0=c0)  # (C1*kh*kw, N1, 16, C0)
        b = fz.transpose(0, 3, 1, 2).reshape(c1 * kh * kw * c0, -1)  # (K, N1*16)
        acc = fractal_matmul(a, b, precision)  # (N*Ho*Wo, N1*16): padded output channels
        if bias is not None:
            # Bias joins the accumulator in fp32 before the cast out of L0C.
            bg = np.zeros(acc.shape[1], np.float32)
            bg[:cout_g] = bias[g * cout_g : (g + 1) * cout_g].astype(dtype)
            acc = acc + bg
        # L0C holds the result fractal by fractal: it leaves as NC1HWC0 (C0 = 16).
        out5 = acc.reshape(n, ho, wo, -1, 16).transpose(0, 3, 1, 2, 4)
        outs.append(layouts.nc1hwc0_to_nchw(out5, cout_g))
    return np.concatenate(outs, axis=1)
