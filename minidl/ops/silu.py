"""silu(x) = x · σ(x) (PyTorch's F.silu, the swish activation).

d silu / dx = σ(x) · (1 + x · (1 - σ(x))), written in ops on tensors, so its second derivative
comes from those ops' own backwards. The kernel path runs kernels/silu.cu, one thread per element.
"""

from __future__ import annotations

from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import Out, launch
from .activations import sigmoid, stable_sigmoid
from .promotion import as_floating


class SiLU(Function):
    def forward(self, x):
        return x * stable_sigmoid(self.xp, x)

    def forward_kernel(self, x):
        return launch("silu_forward", x, Out(x.shape), count=x.size, threads=x.size)

    def backward(self, g):
        x = self.inputs[0]
        s = sigmoid(x)
        return g * s * (1 + x * (1 - s))


def silu(x: Tensor) -> Tensor:
    """x · σ(x), elementwise; any shape."""
    if not isinstance(x, Tensor):
        raise TypeError(f"silu takes tensors, got {type(x).__name__}")
    return SiLU.apply(as_floating(x))
