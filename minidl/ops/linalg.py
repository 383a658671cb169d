"""Matrix products: matmul (batched, broadcasting) and linear (y = x Wᵀ + b)."""

from __future__ import annotations

from .. import validate
from ..autograd.tensor import Function, Tensor, unbroadcast


class MatMul(Function):
    """a @ b with NumPy's rules: 1-D operands are promoted, leading dims broadcast."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, g):
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a  # promote vectors as matmul does
        b2 = b[:, None] if b.ndim == 1 else b
        if a.ndim == 1:
            g = g[..., None, :]
        if b.ndim == 1:
            g = g[..., None]
        ga = g @ b2.swapaxes(-1, -2)
        gb = a2.swapaxes(-1, -2) @ g
        ga = unbroadcast(ga, a2.shape).reshape(a.shape)
        gb = unbroadcast(gb, b2.shape).reshape(b.shape)
        return ga, gb


def _same_dtype(name: str, *tensors: Tensor) -> None:
    """Products do not promote (as in PyTorch): a float64 input to a float32 layer is an error."""
    validate.floating(name, *tensors)
    dtypes = [t.dtype for t in tensors if t is not None]
    if len(set(dtypes)) > 1:
        raise TypeError(
            f"{name}: operands have dtypes {', '.join(map(str, dtypes))}; convert one (e.g. x.float() or x.double())"
        )


def matmul(a: Tensor, b: Tensor) -> Tensor:
    _same_dtype("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs tensors with at least one dim; use * for scalars")
    inner_a, inner_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit ({inner_a} != {inner_b})")
    return MatMul.apply(a, b)


class Linear(Function):
    """x: (..., in), w: (out, in), b: (out,) -> (..., out); one BLAS call each way."""

    def forward(self, x, w, b=None):
        self.x, self.w = x, w
        out = x @ w.T
        return out + b if b is not None else out

    def backward(self, g):
        x2, g2 = self.x.reshape(-1, self.x.shape[-1]), g.reshape(-1, g.shape[-1])
        gx = g @ self.w if self.needs_grad[0] else None
        gw = g2.T @ x2
        return (gx, gw, g2.sum(axis=0)) if len(self.inputs) == 3 else (gx, gw)


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., in), weight (out, in), bias (out,) -> (..., out): x Wᵀ + b."""
    _same_dtype("linear", x, weight, bias)
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input (..., {weight.shape[-1]}) expected for weight {weight.shape}, got {x.shape}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias of shape ({weight.shape[0]},) expected, got {bias.shape}")
    return Linear.apply(x, weight, bias) if bias is not None else Linear.apply(x, weight)
