"""max_pool2d and avg_pool2d over NCHW images, forward and backward.

Output size floor((H + 2p - k) / s) + 1, stride defaulting to the kernel size, as PyTorch.
max keeps the flat index (i·kw + j) of each window's first maximum, and its backward
sends the gradient there; avg pads with zeros and divides by kh·kw (count_include_pad).
The kernel path runs the kernels of kernels/pooling.cu (backward as a gather).
"""

from __future__ import annotations

import math

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import Out, launch
from ..validate import pair
from .adjoint import Adjoint, MaxGather
from .windows import add_windows, crop_hw, output_size, pad_hw, sliding_windows


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

    def scatter_windows(self, windows):
        """col2im of (N, C, kh, kw, Ho, Wo) window values back to an (N, C, H, W) image."""
        n, c, h, w = self.shape
        padded = (n * c, h + 2 * self.padding[0], w + 2 * self.padding[1], 1)
        image = add_windows(windows.reshape(n * c, *windows.shape[2:], 1), padded, self.stride)
        return crop_hw(image.reshape(n, c, *padded[1:3]), self.padding, (h, w)).copy()

    def backward_graph(self, g):  # linear in x (max-pool with its argmax fixed): its backward is an op too
        return Adjoint.apply(g, node=self)


class MaxPool2d(Pool2d):
    def forward(self, x, kernel, stride, padding):
        self.keep_window(x, kernel, stride, padding)
        xp = self.xp
        lowest = -xp.inf if x.dtype.kind == "f" else xp.iinfo(x.dtype).min
        windows = sliding_windows(pad_hw(x, padding), kernel, stride)  # the padding is masked out below
        n, c, kh, kw, ho, wo = windows.shape
        flat = windows.reshape(n, c, kh * kw, ho, wo)
        # the first maximum among the window's real pixels, never its padding (not even when
        # every pixel is -inf: then the first real pixel, as PyTorch and the kernel choose)
        inside = sliding_windows(pad_hw(xp.ones((1, 1, *x.shape[2:]), dtype=bool), padding), kernel, stride)
        inside = inside.reshape(1, 1, kh * kw, ho, wo)
        best = xp.where(inside, flat, lowest).max(axis=2, keepdims=True)
        hit = (flat == best) | (xp.isnan(flat) & xp.isnan(best))  # a NaN is the maximum, as in PyTorch
        argmax = (hit & inside).argmax(axis=2)  # (N, C, Ho, Wo), index into the window
        self.save_for_backward(argmax)
        return xp.take_along_axis(flat, argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, g):
        kh, kw = self.kernel
        (argmax,) = self.saved
        hit = argmax[:, :, None] == self.xp.arange(kh * kw).reshape(1, 1, -1, 1, 1)
        return self.scatter_windows((hit * g[:, :, None]).reshape(*self.shape[:2], kh, kw, *g.shape[2:]))

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
        """x (the input's shape) at this pooling's argmax: the max-pool as a linear map (arrays, any path)."""
        n, c = x.shape[:2]
        windows = sliding_windows(pad_hw(x, self.padding), self.kernel, self.stride)
        flat = windows.reshape(n, c, -1, *self.out_hw)
        index = self.saved[0].astype(self.xp.int64)[:, :, None]
        return self.xp.take_along_axis(flat, index, axis=2)[:, :, 0]

    def reapply(self, x):
        return MaxGather.apply(x, node=self)


class AvgPool2d(Pool2d):
    def forward(self, x, kernel, stride, padding):
        self.keep_window(x, kernel, stride, padding)
        return sliding_windows(pad_hw(x, padding), kernel, stride).mean(axis=(2, 3))

    def backward(self, g):
        kh, kw = self.kernel
        share = g / (kh * kw)
        return self.scatter_windows(
            self.xp.broadcast_to(share[:, :, None, None], (*self.shape[:2], kh, kw, *g.shape[2:]))
        )

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
