"""upsample: nearest and bilinear (align_corners=False), as PyTorch's F.interpolate
with scale_factor.

Both modes are separable linear maps, y = A_h · x · A_wᵀ per image and channel, with
A (out, in) an interpolation matrix; so the backward is gx = A_hᵀ · g · A_w.
Source coordinates follow PyTorch with scale = 1 / scale_factor:
  nearest:  src = min(floor(dst · scale), in - 1)
  bilinear: src = max((dst + 0.5) · scale - 0.5, 0), blending floor(src) and floor(src) + 1.
Where nearest upsampling copies each pixel to an s × s block (an integer factor whose source
coordinates are dst // s), the array path writes and sums the blocks offset by offset instead
(window_spread and window_sums, an adjoint pair). The kernel path runs kernels/upsample.cu,
which computes the same weights per pixel (backward as a gather).
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import Out, launch
from ..validate import real
from .windows import window_spread, window_sums

MODES = ("nearest", "bilinear")


def interpolation_matrix(size_in: int, size_out: int, scale: float, mode: str) -> np.ndarray:
    """A (size_out, size_in) float64 matrix whose row d holds the weights of output d."""
    dst = np.arange(size_out)
    matrix = np.zeros((size_out, size_in))
    if mode == "nearest":
        src = np.minimum(np.floor(dst.astype(np.float32) * np.float32(scale)).astype(int), size_in - 1)
        matrix[dst, src] = 1.0
        return matrix
    src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), size_in - 1)
    hi = np.minimum(lo + 1, size_in - 1)
    frac = src - lo
    np.add.at(matrix, (dst, lo), 1 - frac)
    np.add.at(matrix, (dst, hi), frac)
    return matrix


def block_size(matrix: np.ndarray) -> int | None:
    """s where the interpolation matrix copies input i to outputs s·i ... s·i + s - 1, else None."""
    size_out, size_in = matrix.shape
    s = size_out // size_in
    copies = size_out == s * size_in and np.array_equal(matrix, np.repeat(np.eye(size_in), s, axis=0))
    return s if copies else None


class Upsample(Function):
    """Linear in x: its gradient is UpsampleGrad (gx = A_hᵀ · g · A_w), whose gradient is Upsample again."""

    saves_inputs = False  # linear: its backward needs the options only

    def forward(self, x, out_hw, scales, mode):
        self.options, self.in_hw = dict(out_hw=out_hw, scales=scales, mode=mode), x.shape[2:]
        blocks, matrices = _plan(x.shape[2:], out_hw, scales, mode)
        if blocks:  # every pixel copied to a block: write the block offset by offset
            return window_spread(x, (*x.shape[:2], *out_hw), blocks, blocks)
        a_h, a_w = (self.xp.asarray(m, dtype=x.dtype) for m in matrices)
        return self.xp.matmul(self.xp.matmul(a_h, x), a_w.T)

    def forward_kernel(self, x, out_hw, scales, mode):
        self.options, self.in_hw = dict(out_hw=out_hw, scales=scales, mode=mode), x.shape[2:]
        return _launch("upsample_forward", x, (*x.shape[:2], *out_hw), x.shape, out_hw, scales, mode)

    def backward(self, g):
        return UpsampleGrad.apply(g, in_hw=self.in_hw, **self.options)


class UpsampleGrad(Function):
    """upsample's gradient: g (N, C, Ho, Wo) -> A_hᵀ · g · A_w (N, C, H, W) with (H, W) = in_hw; its
    gradient is upsample again."""

    saves_inputs = False

    def forward(self, g, in_hw, out_hw, scales, mode):
        self.options = dict(out_hw=out_hw, scales=scales, mode=mode)
        blocks, matrices = _plan(in_hw, out_hw, scales, mode)
        if blocks:
            return window_sums(g, blocks, blocks, in_hw)
        a_h, a_w = (self.xp.asarray(m, dtype=g.dtype) for m in matrices)
        return self.xp.matmul(self.xp.matmul(a_h.T, g), a_w)

    def forward_kernel(self, g, in_hw, out_hw, scales, mode):
        self.options = dict(out_hw=out_hw, scales=scales, mode=mode)
        in_shape = (*g.shape[:2], *in_hw)
        return _launch("upsample_backward", g, in_shape, in_shape, out_hw, scales, mode)

    def backward(self, gg):
        return Upsample.apply(gg, **self.options)


def _plan(in_hw, out_hw, scales, mode) -> tuple[tuple[int, int] | None, list[np.ndarray]]:
    """The interpolation matrices (A_h, A_w), and the block sizes where both only copy pixels to blocks (else None)."""
    matrices = [interpolation_matrix(in_hw[d], out_hw[d], scales[d], mode) for d in range(2)]
    blocks = tuple(block_size(m) for m in matrices)
    return (None if None in blocks else blocks), matrices


def _launch(kernel: str, source, out_shape, in_shape, out_hw, scales, mode):
    """A kernel of kernels/upsample.cu, for an upsampling of in_shape to out_hw, writing an array of out_shape."""
    (n, c, h, w), (ho, wo), (scale_h, scale_w) = in_shape, out_hw, scales
    return launch(kernel, source, Out(out_shape), N=n, C=c, H=h, W=w, HO=ho, WO=wo, scale_h=scale_h,
                  scale_w=scale_w, bilinear=int(mode == "bilinear"), threads=math.prod(out_shape))  # fmt: skip


def upsample(x: Tensor, scale_factor, mode: str = "nearest") -> Tensor:
    """Resize NCHW images by scale_factor (a number or an (h, w) pair): (N, C, H, W) -> (N, C, ⌊H·s⌋, ⌊W·s⌋)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"upsample: input must be a Tensor, got {type(x).__name__}")
    if mode not in MODES:
        raise ValueError(f"upsample: unknown mode {mode!r}, expected one of {MODES}")
    if x.ndim != 4:
        raise ValueError(f"upsample: input must be NCHW (4 dims), got shape {x.shape}")
    if mode == "bilinear" and x.dtype.kind != "f":
        raise TypeError(f"upsample: bilinear interpolation needs a float tensor, got {x.dtype} (convert with .float())")
    if isinstance(scale_factor, numbers.Real):
        factors = (scale_factor, scale_factor)
    elif isinstance(scale_factor, (tuple, list)) and len(scale_factor) == 2:
        factors = tuple(scale_factor)
    else:
        raise TypeError(f"upsample: scale_factor must be a number or a pair of numbers, got {scale_factor!r}")
    factors = tuple(real(f, "upsample: scale_factor", 0) for f in factors)
    if min(factors) == 0:
        raise ValueError(f"upsample: scale_factor must be positive, got {scale_factor!r}")
    out_hw = tuple(math.floor(x.shape[2 + d] * factors[d]) for d in range(2))
    if min(out_hw) < 1:
        raise ValueError(f"upsample: input {x.shape} with scale {scale_factor} gives an empty output")
    return Upsample.apply(x, out_hw=out_hw, scales=tuple(1.0 / f for f in factors), mode=mode)
