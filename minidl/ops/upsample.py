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
from .adjoint import Adjoint
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
    def forward(self, x, out_hw, scales, mode):
        self.options = dict(out_hw=out_hw, scales=scales, mode=mode)
        self.in_hw, xp = x.shape[2:], self.xp
        matrices = [interpolation_matrix(x.shape[2 + d], out_hw[d], scales[d], mode) for d in range(2)]
        self.blocks = tuple(block_size(m) for m in matrices)
        if None not in self.blocks:  # every pixel copied to a block: write the block offset by offset
            return window_spread(x, (*x.shape[:2], *out_hw), self.blocks, self.blocks)
        a_h, a_w = (xp.asarray(m, dtype=x.dtype) for m in matrices)
        self.save_for_backward(a_h, a_w)
        return xp.matmul(xp.matmul(a_h, x), a_w.T)

    def backward(self, g):
        if None not in self.blocks:
            return window_sums(g, self.blocks, self.blocks, self.in_hw)
        xp = self.xp
        a_h, a_w = self.saved
        return xp.matmul(xp.matmul(a_h.T, g), a_w)

    def forward_kernel(self, x, out_hw, scales, mode):
        self.options = dict(out_hw=out_hw, scales=scales, mode=mode)
        self.in_shape, self.out_hw, self.scales, self.mode = x.shape, out_hw, scales, mode
        return self._launch("upsample_forward", x, (*x.shape[:2], *out_hw))

    def backward_kernel(self, g):
        return self._launch("upsample_backward", g, self.in_shape)

    def backward_graph(self, g):  # linear in x: its backward is an op too
        return Adjoint.apply(g, node=self)

    def again(self, x):
        return (self.forward_kernel if self.uses_kernels else self.forward)(x, **self.options)

    def reapply(self, x):
        return Upsample.apply(x, **self.options)

    def _launch(self, kernel: str, source, out_shape):
        (n, c, h, w), (ho, wo), (scale_h, scale_w) = self.in_shape, self.out_hw, self.scales
        return launch(kernel, source, Out(out_shape), N=n, C=c, H=h, W=w, HO=ho, WO=wo, scale_h=scale_h,
                      scale_w=scale_w, bilinear=int(self.mode == "bilinear"), threads=math.prod(out_shape))  # fmt: skip


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
