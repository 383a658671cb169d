"""The layers of minidl.nn: thin Modules around the functional ops.

Weights start as PyTorch's do: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
(kaiming_uniform_ with a = sqrt(5)); re-initialise with minidl.nn.init for another scheme.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, ops
from ..autograd.tensor import Tensor
from ..ops.upsample import MODES
from ..validate import integer, pair, real
from . import init
from .module import Module, Parameter


def _parameter(shape, device, dtype) -> Parameter:
    return Parameter(np.zeros(shape), device=backend.resolve_device(device), dtype=dtype or np.float32)


def _reset(weight: Parameter, bias: Parameter | None) -> None:
    init.kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        bound = 1 / math.sqrt(init.fans(weight)[0])
        init.uniform_(bias, -bound, bound)


class Linear(Module):
    """y = x Wᵀ + b; weight (out_features, in_features)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, device=None, dtype=None):
        super().__init__()
        in_features, out_features = integer(in_features, "in_features", 1), integer(out_features, "out_features", 1)
        self.in_features, self.out_features = in_features, out_features
        self.weight = _parameter((out_features, in_features), device, dtype)
        self.bias = _parameter((out_features,), device, dtype) if bias else None
        _reset(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """weight (out_channels, in_channels, kh, kw)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, bias=True, device=None, dtype=None):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size", 1)
        in_channels, out_channels = integer(in_channels, "in_channels", 1), integer(out_channels, "out_channels", 1)
        self.stride, self.padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
        self.weight = _parameter((out_channels, in_channels, kh, kw), device, dtype)
        self.bias = _parameter((out_channels,), device, dtype) if bias else None
        _reset(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return ops.conv2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        o, c, kh, kw = self.weight.shape
        return f"{c}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding}"


class ConvTranspose2d(Module):
    """weight (in_channels, out_channels, kh, kw)."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        output_padding=0,
        bias=True,
        device=None,
        dtype=None,
    ):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size", 1)
        in_channels, out_channels = integer(in_channels, "in_channels", 1), integer(out_channels, "out_channels", 1)
        self.stride, self.padding = pair(stride, "stride", 1), pair(padding, "padding", 0)
        self.output_padding = pair(output_padding, "output_padding", 0)
        self.weight = _parameter((in_channels, out_channels, kh, kw), device, dtype)
        self.bias = _parameter((out_channels,), device, dtype) if bias else None
        _reset(self.weight, self.bias)

    def forward(self, x: Tensor) -> Tensor:
        return ops.conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding, self.output_padding)

    def extra_repr(self) -> str:
        c, o, kh, kw = self.weight.shape
        return (
            f"{c}, {o}, kernel_size=({kh}, {kw}), stride={self.stride}, padding={self.padding}, "
            f"output_padding={self.output_padding}"
        )


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return ops.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x: Tensor) -> Tensor:
        return ops.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class Upsample(Module):
    def __init__(self, scale_factor, mode: str = "nearest"):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"Upsample: unknown mode {mode!r}, expected one of {MODES}")
        self.scale_factor, self.mode = scale_factor, mode

    def forward(self, x: Tensor) -> Tensor:
        return ops.upsample(x, self.scale_factor, self.mode)

    def extra_repr(self) -> str:
        return f"scale_factor={self.scale_factor}, mode={self.mode!r}"


class Dropout(Module):
    def __init__(self, p: float = 0.5):
        super().__init__()
        self.p = real(p, "dropout probability p", 0, 1)

    def forward(self, x: Tensor) -> Tensor:
        return ops.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.relu(x)


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return ops.leaky_relu(x, self.negative_slope)


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.sigmoid(x)


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return ops.tanh(x)


class Flatten(Module):
    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: Tensor) -> Tensor:
        return ops.flatten(x, self.start_dim, self.end_dim)


class Unflatten(Module):
    def __init__(self, dim: int, unflattened_size):
        super().__init__()
        self.dim, self.unflattened_size = dim, tuple(unflattened_size)

    def forward(self, x: Tensor) -> Tensor:
        return ops.unflatten(x, self.dim, self.unflattened_size)
