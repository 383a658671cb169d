"""Dropout: zero each element with probability p while training."""

from __future__ import annotations

from .. import backend
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..validate import boolean, real


class Dropout(Function):
    """Zero each element with probability p and scale the rest by 1/(1-p) (inverted dropout)."""

    def forward(self, x, p):
        keep = backend.generator(self.device).random(x.shape) >= p
        mask = keep.astype(x.dtype) / (1 - p)
        self.save_for_backward(mask)
        return x * mask

    def backward(self, g):  # g times the constant mask
        return g * self.saved[0]


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    p = real(p, "dropout probability p", 0, 1)
    if not boolean(training, "dropout's training"):
        return x
    if not training or p == 0:
        return x
    if p == 1:
        return x * 0
    return Dropout.apply(x, p=p)
