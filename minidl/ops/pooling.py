"""max_pool2d and avg_pool2d over NCHW images, forward and backward.

Output size floor((H + 2p - k) / s) + 1, stride defaulting to the kernel size, as PyTorch.
max keeps the flat index (i·kw + j) of each window's first maximum, and its backward
sends the gradient there; avg pads with zeros and divides by kh·kw (count_include_pad).
On cuda and emu both run the kernels of kernels/pooling.cu (backward as a gather).
"""

from __future__ import annotations

from .. import backend
from ..autograd.tensor import Function, Tensor
from ..launch import blocks, ints, launch
from .windows import add_windows, crop_hw, output_size, pad_hw, pair, sliding_windows


def _launch(kernel: str, device: str, inputs: tuple, out_shape, shape, window, out_dtype=None):
    """Run a pooling kernel with one thread per element of a new array of out_shape."""
    xp = backend.array_module(device)
    out = xp.empty(out_shape, dtype=out_dtype or inputs[0].dtype)
    (n, c, h, w), (kernel_hw, stride, padding, out_hw) = shape, window
    args = (*(xp.ascontiguousarray(a) for a in inputs), out, *ints(n, c, h, w, *kernel_hw, *stride, *padding, *out_hw))
    launch("pooling.cu", kernel, inputs[0].dtype, device, blocks(out.size), args)
    return out


class MaxPool2d(Function):
    def forward(self, x, kernel, stride, padding):
        self.shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        if self.device in backend.KERNEL_DEVICES:
            out_hw = tuple(output_size(x.shape[2 + d], kernel[d], stride[d], padding[d]) for d in range(2))
            self.window = (kernel, stride, padding, out_hw)
            xp = self.xp
            y = xp.empty((*x.shape[:2], *out_hw), dtype=x.dtype)
            self.argmax = xp.empty(y.shape, dtype=xp.int32)
            args = (xp.ascontiguousarray(x), y, self.argmax, *ints(*x.shape, *kernel, *stride, *padding, *out_hw))
            launch("pooling.cu", "max_pool2d_forward", x.dtype, self.device, blocks(y.size), args)
            return y
        windows = sliding_windows(pad_hw(x, padding, value=-self.xp.inf), kernel, stride)
        n, c, kh, kw, ho, wo = windows.shape
        flat = windows.reshape(n, c, kh * kw, ho, wo)
        self.argmax = flat.argmax(axis=2)  # (N, C, Ho, Wo), index into the window
        return self.xp.take_along_axis(flat, self.argmax[:, :, None], axis=2)[:, :, 0]

    def backward(self, g):
        if self.device in backend.KERNEL_DEVICES:
            return _launch("max_pool2d_backward", self.device, (g, self.argmax), self.shape, self.shape, self.window)
        (kh, kw), (n, c, h, w) = self.kernel, self.shape
        hit = self.argmax[:, :, None] == self.xp.arange(kh * kw).reshape(1, 1, -1, 1, 1)
        windows = (hit * g[:, :, None]).reshape(n, c, kh, kw, *g.shape[2:])
        padded = (n, c, h + 2 * self.padding[0], w + 2 * self.padding[1])
        return crop_hw(add_windows(windows, padded, self.stride), self.padding, (h, w)).copy()


class AvgPool2d(Function):
    def forward(self, x, kernel, stride, padding):
        self.shape, self.kernel, self.stride, self.padding = x.shape, kernel, stride, padding
        if self.device in backend.KERNEL_DEVICES:
            out_hw = tuple(output_size(x.shape[2 + d], kernel[d], stride[d], padding[d]) for d in range(2))
            self.window = (kernel, stride, padding, out_hw)
            return _launch("avg_pool2d_forward", self.device, (x,), (*x.shape[:2], *out_hw), x.shape, self.window)
        return sliding_windows(pad_hw(x, padding), kernel, stride).mean(axis=(2, 3))

    def backward(self, g):
        if self.device in backend.KERNEL_DEVICES:
            return _launch("avg_pool2d_backward", self.device, (g,), self.shape, self.shape, self.window)
        (kh, kw), (n, c, h, w) = self.kernel, self.shape
        share = g / (kh * kw)
        windows = self.xp.broadcast_to(share[:, :, None, None], (n, c, kh, kw, *g.shape[2:]))
        padded = (n, c, h + 2 * self.padding[0], w + 2 * self.padding[1])
        return crop_hw(add_windows(windows, padded, self.stride), self.padding, (h, w)).copy()


def _pool_args(name: str, x: Tensor, kernel_size, stride, padding):
    kernel = pair(kernel_size, "kernel_size")
    stride = kernel if stride is None else pair(stride, "stride")
    padding = pair(padding, "padding")
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
