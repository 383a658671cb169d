"""Activations: relu, leaky_relu, sigmoid, tanh, softplus, softmax, log_softmax."""

from __future__ import annotations

from .. import validate
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .promotion import as_floating, half_in_float32


def stable_sigmoid(xp, z):
    """1 / (1 + e^-z) without overflow for large |z|."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1 / (1 + e), e / (1 + e))


class ReLU(Function):
    def forward(self, x):
        self.save_for_backward(~(x <= 0))  # PyTorch's mask is x <= 0: the gradient at NaN passes (1)
        return self.xp.maximum(x, 0)  # relu(-inf) = 0 and relu(NaN) = NaN, as in PyTorch (x·(x > 0) gave NaN)

    def backward(self, g):
        (positive,) = self.saved
        return g * positive

    backward_graph = backward  # g times a constant mask


class LeakyReLU(Function):
    def forward(self, x, slope):
        scale = self.xp.where(x > 0, 1, slope).astype(x.dtype)
        self.save_for_backward(scale)
        return x * scale

    def backward(self, g):
        (scale,) = self.saved
        return g * scale

    backward_graph = backward


class Sigmoid(Function):
    saves_output = True  # its backward reads its output

    def forward(self, x):
        out = stable_sigmoid(self.xp, x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (s,) = self.saved
        return g * s * (1 - s)

    def backward_graph(self, g):
        s = sigmoid(self.inputs[0])
        return g * s * (1 - s)


class Tanh(Function):
    saves_output = True  # its backward reads its output

    def forward(self, x):
        out = self.xp.tanh(x)
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (t,) = self.saved
        return g * (1 - t * t)

    def backward_graph(self, g):
        t = tanh(self.inputs[0])
        return g * (1 - t * t)


class Softplus(Function):
    """log(1 + e^x), computed as max(x, 0) + log1p(e^-|x|); d/dx = sigmoid(x)."""

    def forward(self, x):
        self.save_for_backward(x)
        return self.xp.maximum(x, 0) + self.xp.log1p(self.xp.exp(-self.xp.abs(x)))

    def backward(self, g):
        (x,) = self.saved
        return g * stable_sigmoid(self.xp, x)

    def backward_graph(self, g):
        return g * sigmoid(self.inputs[0])


class LogSoftmax(Function):
    """x - logsumexp(x) along dim; backward g - softmax · Σg."""

    saves_output = True  # its backward reads its output

    def forward(self, x, dim):
        if x.size == 0:  # an empty x (an empty dim too): an empty result, as PyTorch's
            out = x.copy()
        else:
            shifted = x - x.max(axis=dim, keepdims=True)
            out = shifted - self.xp.log(self.xp.exp(shifted).sum(axis=dim, keepdims=True))
        self.dim = dim
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (out,) = self.saved
        return g - self.xp.exp(out) * g.sum(axis=self.dim, keepdims=True)

    def backward_graph(self, g):
        return g - softmax(self.inputs[0], self.dim) * g.sum(dim=self.dim, keepdim=True)


class Softmax(Function):
    """e^x / Σe^x along dim; backward s · (g - Σ g s)."""

    saves_output = True  # its backward reads its output

    def forward(self, x, dim):
        e = self.xp.exp(x - (x.max(axis=dim, keepdims=True) if x.size else 0))  # an empty x: an empty result
        out, self.dim = e / e.sum(axis=dim, keepdims=True), dim
        self.save_for_backward(out)
        return out

    def backward(self, g):
        (s,) = self.saved
        return s * (g - (g * s).sum(axis=self.dim, keepdims=True))

    def backward_graph(self, g):
        s = softmax(self.inputs[0], self.dim)
        return s * (g - (g * s).sum(dim=self.dim, keepdim=True))


def relu(x: Tensor) -> Tensor:
    return ReLU.apply(x)


def leaky_relu(x: Tensor, negative_slope: float = 0.01) -> Tensor:
    return LeakyReLU.apply(x, slope=validate.real(negative_slope, "leaky_relu's negative_slope"))


def sigmoid(x: Tensor) -> Tensor:
    return Sigmoid.apply(as_floating(x))


def tanh(x: Tensor) -> Tensor:
    return Tanh.apply(as_floating(x))


def softplus(x: Tensor) -> Tensor:
    return Softplus.apply(as_floating(x))


@half_in_float32
def softmax(x: Tensor, dim: int = -1) -> Tensor:
    return Softmax.apply(as_floating(x), dim=validate.dim(dim, x.ndim))


@half_in_float32
def log_softmax(x: Tensor, dim: int = -1) -> Tensor:
    return LogSoftmax.apply(as_floating(x), dim=validate.dim(dim, x.ndim))
