"""max_pool2d and avg_pool2d over NCHW images, forward and backward.

Both are linear in x (max-pool once its argmax is fixed), so each one's gradient is an op of its
own, the adjoint (MaxUnpool: a scatter to the maxima; AvgUnpool: a spread over the windows), whose
gradient is the pooling again (MaxGather, AvgPool2d): second derivatives come from these ops.

Output size floor((H + 2p - k) / s) + 1, stride defaulting to the kernel size, as PyTorch.
max keeps where each window's first maximum lies (the array path: its index in the input's
storage, so that the backward is one scatter-add; the kernels: its offset i·kw + j in the window), and
its backward sends the gradient there; avg pads with zeros and divides by kh·kw (count_include_pad).
The kernel path runs the kernels of kernels/pooling.cu (backward as a gather).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import Out, launch
from ..validate import pair
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


class Window(NamedTuple):
    """A pooling's geometry: its input's shape (N, C, H, W), the window, and the output's (Ho, Wo)."""

    shape: tuple[int, ...]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    out_hw: tuple[int, int]

    @classmethod
    def of(cls, x, kernel, stride, padding) -> Window:
        out_hw = tuple(output_size(x.shape[2 + d], kernel[d], stride[d], padding[d]) for d in range(2))
        return cls(x.shape, kernel, stride, padding, out_hw)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (*self.shape[:2], *self.out_hw)

    def sizes(self) -> dict[str, int]:
        """The numbers every pooling kernel takes, by name: N C H W KH KW SH SW PH PW HO WO."""
        (n, c, h, w), (kh, kw), (sh, sw), (ph, pw), (ho, wo) = self
        return dict(N=n, C=c, H=h, W=w, KH=kh, KW=kw, SH=sh, SW=sw, PH=ph, PW=pw, HO=ho, WO=wo)

    def offsets(self, padded):
        """(n, view) for each window offset n = i·kw + j: view[n, c, y, x] is offset n of window (y, x)."""
        return window_offsets(padded, self.kernel, self.stride, self.out_hw)


class MaxPool2d(Function):
    """Its gradient scatters g to each window's maximum: MaxUnpool, an op whose gradient gathers
    (MaxGather), whose gradient scatters again: the argmax held fixed, max-pool is linear."""

    def forward(self, x, kernel, stride, padding):
        """Over the window offsets in order, keep the best value and where it was first seen: a NaN
        beats any number (as in PyTorch), and the padding never wins, not even when every pixel is
        -inf (then the first real pixel, as PyTorch and the kernel choose). Saves `where`, the index
        of each window's maximum in x's storage (whatever x's layout: NCHW, batch last)."""
        self.window = window = Window.of(x, kernel, stride, padding)
        x, self.strides = storage(x)
        xp, (n, c, h, w), (sh, sw), (ph, pw), (ho, wo) = self.xp, x.shape, stride, padding, window.out_hw
        (s_n, s_c, s_h, s_w), float_ = self.strides, x.dtype.kind == "f"
        pixels = window.offsets(pad_hw(x, padding, -xp.inf if float_ else xp.iinfo(x.dtype).min))
        real = window.offsets(pad_hw(xp.ones((1, 1, h, w), dtype=bool), padding))  # not padding
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

    def forward_kernel(self, x, kernel, stride, padding):
        """The kernel keeps each window's argmax as its offset i·kw + j in the window."""
        self.window = window = Window.of(x, kernel, stride, padding)
        self.strides = None
        y, argmax = launch(
            "max_pool2d_forward", x, Out(window.out_shape), Out(window.out_shape), **window.sizes(),
            threads=math.prod(window.out_shape),
        )  # fmt: skip
        self.save_for_backward(argmax)
        return y

    def backward(self, g):
        return MaxUnpool.apply(g, argmax=self.saved[0].data, window=self.window, strides=self.strides)


class AtMaxima(Function):
    """What max-pool's two linear maps share: where each window's maximum lies (argmax, saved so that
    release() drops it: with `strides` (the array path) its index in the input's storage, else (the
    kernels) its offset in the window) and the geometry, both handed on to the other map."""

    saves_inputs = False  # linear: the backward needs the argmax only

    def keep(self, argmax, window: Window, strides) -> None:
        self.save_for_backward(argmax)
        self.window, self.strides = window, strides

    def handed_on(self) -> dict:
        return dict(argmax=self.saved[0].data, window=self.window, strides=self.strides)


class MaxUnpool(AtMaxima):
    """g (the output's shape) added at each window's maximum of an input of window.shape: max-pool's
    gradient, whose gradient is MaxGather."""

    def forward(self, g, argmax, window, strides):
        """Each window's gradient added at its maximum (a pixel may be the maximum of several windows)."""
        self.keep(argmax, window, strides)
        xp = self.xp
        gx = xp.zeros(math.prod(window.shape), dtype=g.dtype)
        g_like_argmax = xp.empty_like(argmax, dtype=g.dtype)
        g_like_argmax[...] = g
        xp.add.at(gx, argmax.ravel(order="K"), g_like_argmax.ravel(order="K"))
        return in_storage(gx, window.shape, strides)

    def forward_kernel(self, g, argmax, window, strides):
        self.keep(argmax, window, strides)
        return launch("max_pool2d_backward", g, argmax, Out(window.shape), **window.sizes(),
                      threads=math.prod(window.shape))  # fmt: skip

    def backward(self, gg):
        return MaxGather.apply(gg, **self.handed_on())


class MaxGather(AtMaxima):
    """x (the input's shape) read at each window's maximum: max-pool with its argmax held fixed, a
    linear map, whose gradient is MaxUnpool."""

    def forward(self, x, argmax, window, strides):
        self.keep(argmax, window, strides)
        flat = self.xp.empty(math.prod(window.shape), dtype=x.dtype)
        in_storage(flat, window.shape, strides)[...] = x
        return flat[argmax]

    def forward_kernel(self, x, argmax, window, strides):
        """The kernels' offsets in the window: a gather from the windows (NumPy or CuPy, no kernel needed)."""
        self.keep(argmax, window, strides)
        windows = sliding_windows(pad_hw(x, window.padding), window.kernel, window.stride)
        flat = windows.reshape(*x.shape[:2], -1, *window.out_hw)
        return self.xp.take_along_axis(flat, argmax.astype(self.xp.int64)[:, :, None], axis=2)[:, :, 0]

    def backward(self, g):
        return MaxUnpool.apply(g, **self.handed_on())


class AvgPool2d(Function):
    """Its gradient spreads each window's share back (AvgUnpool), whose gradient is avg-pooling again."""

    saves_inputs = False  # linear in x: its backward needs the window only

    def forward(self, x, kernel, stride, padding):
        self.window = Window.of(x, kernel, stride, padding)
        return window_sums(pad_hw(x, padding), kernel, stride, self.window.out_hw) / (kernel[0] * kernel[1])

    def forward_kernel(self, x, kernel, stride, padding):
        self.window = window = Window.of(x, kernel, stride, padding)
        return launch("avg_pool2d_forward", x, Out(window.out_shape), **window.sizes(),
                      threads=math.prod(window.out_shape))  # fmt: skip

    def backward(self, g):
        return AvgUnpool.apply(g, window=self.window)


class AvgUnpool(Function):
    """avg_pool2d's gradient: each window's share g / (kh·kw) spread over its pixels, the padding
    cropped away. Its gradient is avg_pool2d of the same window."""

    saves_inputs = False

    def forward(self, g, window):
        self.window = window
        (n, c, h, w), (ph, pw), kernel = window.shape, window.padding, window.kernel
        image = window_spread(g / (kernel[0] * kernel[1]), (n, c, h + 2 * ph, w + 2 * pw), kernel, window.stride)
        return crop_hw(image, window.padding, (h, w)).copy() if ph or pw else image

    def forward_kernel(self, g, window):
        self.window = window
        return launch("avg_pool2d_backward", g, Out(window.shape), **window.sizes(), threads=math.prod(window.shape))

    def backward(self, gg):
        w = self.window
        return AvgPool2d.apply(gg, kernel=w.kernel, stride=w.stride, padding=w.padding)


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
