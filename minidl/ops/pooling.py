"""max_pool2d and avg_pool2d over NCHW images, forward and backward.

Output size floor((H + 2p - k) / s) + 1, stride defaulting to the kernel size, as PyTorch.
max keeps where each window's first maximum lies (the array path: its index in the input's
storage, so that the backward is one scatter-add; the kernels: its offset i·kw + j in the window), and
its backward sends the gradient there; avg pads with zeros and divides by kh·kw (count_include_pad).
The kernel path runs the kernels of kernels/pooling.cu (backward as a gather).
"""

from __future__ import annotations

import math

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import Out, launch
from ..validate import pair
from .adjoint import Adjoint, MaxGather
from .windows import (
    crop_hw,
    in_storage,
    output_size,
    pad_hw,
    sliding_windows,
    storage,
    window_offsets,
    window_spread,
    window_sums,
)


class Pool2d(Function):
    """What max and avg pooling share: the window, and the sizes every pooling kernel takes."""

    def keep_window(self, x, kernel, stride, padding):
        self.shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        self.options = dict(kernel=kernel, stride=stride, padding=padding)
        self.out_hw = tuple(output_size(x.shape[2 + d], kernel[d], stride[d], padding[d]) for d in range(2))
        self.out_shape = (*x.shape[:2], *self.out_hw)

    def sizes(self) -> dict[str, int]:
        """The numbers every pooling kernel takes, by name: N C H W KH KW SH SW PH PW HO WO."""
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo) = (
            self.shape,
            self.kernel,
            self.stride,
            self.padding,
            self.out_hw,
        )
        return dict(N=n, C=c, H=h, W=w, KH=kh, KW=kw, SH=sh, SW=sw, PH=ph, PW=pw, HO=ho, WO=wo)

    def offsets(self, padded):
        """(n, view) for each window offset n = i·kw + j: view[n, c, y, x] is offset n of window (y, x)."""
        return window_offsets(padded, self.kernel, self.stride, self.out_hw)

    def backward_graph(self, g):  # linear in x (max-pool with its argmax fixed): its backward is an op too
        return Adjoint.apply(g, node=self)


class MaxPool2d(Pool2d):
    def forward(self, x, kernel, stride, padding):
        """Over the window offsets in order, keep the best value and where it was first seen: a NaN
        beats any number (as in PyTorch), and the padding never wins, not even when every pixel is
        -inf (then the first real pixel, as PyTorch and the kernel choose). Saves `where`, the index
        of each window's maximum in x's storage (whatever x's layout: NCHW, batch last)."""
        self.keep_window(x, kernel, stride, padding)
        x, self.strides = storage(x)
        xp, (n, c, h, w), (sh, sw), (ph, pw), (ho, wo) = self.xp, x.shape, stride, padding, self.out_hw
        (s_n, s_c, s_h, s_w), float_ = self.strides, x.dtype.kind == "f"
        pixels = self.offsets(pad_hw(x, padding, -xp.inf if float_ else xp.iinfo(x.dtype).min))
        real = self.offsets(pad_hw(xp.ones((1, 1, h, w), dtype=bool), padding))  # not padding
        (_, best), (_, on_padding) = next(pixels), next(real)
        best, on_padding = best.copy(order="K"), ~on_padding  # on_padding: the best so far is padding
        step = xp.zeros_like(best, dtype=xp.int64)  # where the best lies from its window's corner
        for (offset, view), (_, inside) in zip(pixels, real):
            ahead = (view > best) | (on_padding & inside)
            if float_:
                ahead |= xp.isnan(view) & ~xp.isnan(best)
            on_padding = on_padding & ~inside
            xp.maximum(view, best, out=best)  # the value: NaN wins; on a tie the earlier (-0.0 before 0.0)
            i, j = divmod(offset, kernel[1])
            step += ahead * (i * s_h + j * s_w - step)  # where ahead: this offset's
        corner = (xp.arange(ho)[:, None] * sh - ph) * s_h + (xp.arange(wo) * sw - pw) * s_w  # (Ho, Wo)
        plane = (xp.arange(n)[:, None] * s_n + xp.arange(c) * s_c)[:, :, None, None]  # (N, C, 1, 1)
        step += plane  # in place, twice: `where` keeps best's layout (as g will come)
        step += corner
        self.save_for_backward(step)
        return best

    def backward(self, g):
        """Each window's gradient added at its maximum (a pixel may be the maximum of several windows)."""
        xp, (where,) = self.xp, self.saved
        gx = xp.zeros(math.prod(self.shape), dtype=g.dtype)
        g_like_where = xp.empty_like(where, dtype=g.dtype)
        g_like_where[...] = g
        xp.add.at(gx, where.ravel(order="K"), g_like_where.ravel(order="K"))
        return in_storage(gx, self.shape, self.strides)

    def forward_kernel(self, x, kernel, stride, padding):
        self.keep_window(x, kernel, stride, padding)
        y, argmax = launch(
            "max_pool2d_forward",
            x,
            Out(self.out_shape),
            Out(self.out_shape),
            **self.sizes(),
            threads=math.prod(self.out_shape),
        )
        self.save_for_backward(argmax)
        return y

    def backward_kernel(self, g):
        return launch(
            "max_pool2d_backward", g, self.saved[0], Out(self.shape), **self.sizes(), threads=math.prod(self.shape)
        )

    def again(self, x):
        """x (the input's shape) at this pooling's maxima: the max-pool as a linear map (arrays, any path)."""
        if not self.uses_kernels:
            flat = self.xp.empty(math.prod(self.shape), dtype=x.dtype)
            in_storage(flat, self.shape, self.strides)[...] = x
            return flat[self.saved[0]]
        windows = sliding_windows(pad_hw(x, self.padding), self.kernel, self.stride)  # the kernels keep offsets
        flat = windows.reshape(*x.shape[:2], -1, *self.out_hw)
        return self.xp.take_along_axis(flat, self.saved[0].astype(self.xp.int64)[:, :, None], axis=2)[:, :, 0]

    def reapply(self, x):
        return MaxGather.apply(x, node=self)


class AvgPool2d(Pool2d):
    def forward(self, x, kernel, stride, padding):
        self.keep_window(x, kernel, stride, padding)
        return window_sums(pad_hw(x, padding), kernel, stride, self.out_hw) / (kernel[0] * kernel[1])

    def backward(self, g):
        """Each window's share g / (kh·kw) spread over its pixels; the padding cropped away."""
        (n, c, h, w), (ph, pw) = self.shape, self.padding
        share = g / (self.kernel[0] * self.kernel[1])
        image = window_spread(share, (n, c, h + 2 * ph, w + 2 * pw), self.kernel, self.stride)
        return crop_hw(image, self.padding, (h, w)).copy() if ph or pw else image

    def forward_kernel(self, x, kernel, stride, padding):
        self.keep_window(x, kernel, stride, padding)
        return launch("avg_pool2d_forward", x, Out(self.out_shape), **self.sizes(), threads=math.prod(self.out_shape))

    def backward_kernel(self, g):
        return launch("avg_pool2d_backward", g, Out(self.shape), **self.sizes(), threads=math.prod(self.shape))

    def again(self, x):
        return (self.forward_kernel if self.uses_kernels else self.forward)(x, **self.options)

    def reapply(self, x):
        return AvgPool2d.apply(x, **self.options)


def _pool_args(name: str, x: Tensor, kernel_size, stride, padding):
    if not isinstance(x, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(x).__name__}")
    if x.dtype.kind == "b":  # as PyTorch: pooling is not defined for booleans
        raise TypeError(f"{name}: input holds booleans; pool numbers (e.g. x.float())")
    kernel = pair(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else pair(stride, "stride", 1)
    padding = pair(padding, "padding", 0)
    if x.ndim != 4:
        raise ValueError(f"{name}: input must be NCHW (4 dims), got shape {x.shape}")
    if min(kernel) < 1 or min(stride) < 1 or any(2 * p > k for p, k in zip(padding, kernel)) or min(padding) < 0:
        raise ValueError(
            f"{name}: kernel {kernel} and stride {stride} must be ≥ 1, padding {padding} between 0 and half the kernel"
        )
    out = [output_size(x.shape[2 + d], kernel[d], stride[d], padding[d]) for d in range(2)]
    if min(out) < 1:
        raise ValueError(f"{name}: input {x.shape} is smaller than the window {kernel} (with padding {padding})")
    return dict(kernel=kernel, stride=stride, padding=padding)


def max_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    return MaxPool2d.apply(x, **_pool_args("max_pool2d", x, kernel_size, stride, padding))


def avg_pool2d(x: Tensor, kernel_size, stride=None, padding=0) -> Tensor:
    return AvgPool2d.apply(x, **_pool_args("avg_pool2d", x, kernel_size, stride, padding))
