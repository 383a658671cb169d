"""Matrix products: matmul (batched, broadcasting) and linear (y = x Wᵀ + b).

Both compute with one product of arrays, `product(a, b, kernel)`: NumPy's or CuPy's `@` on the
array path, kernels/matmul.cu's gemm on the kernel path (emu and cuda). On a GPU the kernel
path is what lets a training step be captured as a CUDA graph: CuPy's `@` calls cuBLAS, which
CuPy refuses to call while a stream captures.
"""

from __future__ import annotations

import math

import numpy as np

from .. import backend, validate
from ..autograd.engine import unbroadcast
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..backend import is_array
from ..runtime import blocks, define, launch
from ..runtime.launch import MAX_GRID, Out
from .reductions import Sum
from .shape import Permute, Reshape

# kernels/matmul.cu's tiles, compiled into it as -D constants (its static_asserts check how they fit)
TILES = define(
    "matmul.cu",
    GEMM_TILE=64,  # each block computes a GEMM_TILE x GEMM_TILE tile of C
    GEMM_DEPTH=16,  # and walks K GEMM_DEPTH values at a time
    GEMM_MICRO=4,  # each thread owns GEMM_MICRO x GEMM_MICRO values of the tile
)


def _stored(a):
    """(array, transposed) with array C-contiguous and a = array, or its last two axes swapped:
    a transposed view goes to the kernel as it is stored, with the kernel's TRANS flag."""
    if a.flags.c_contiguous:
        return a, 0
    swapped = a.swapaxes(-1, -2)
    if swapped.flags.c_contiguous:
        return swapped, 1
    return backend.array_module_of(a).ascontiguousarray(a), 0


def gemm(a, b):
    """a @ b through kernels/matmul.cu, for a (M, K) or (batch, M, K) and b (K, N) or (batch, K, N)
    (a 2-D operand is shared by every matrix of the batch) -> (M, N) or (batch, M, N)."""
    (m, k), n = a.shape[-2:], b.shape[-1]
    batch = max(a.shape[0] if a.ndim == 3 else 1, b.shape[0] if b.ndim == 3 else 1)
    (sa, ta), (sb, tb) = _stored(a), _stored(b)
    xp = backend.array_module_of(a)
    c = xp.empty((batch, m, n), dtype=a.dtype) if batch > MAX_GRID[2] else None
    tile = TILES["GEMM_TILE"]
    for first in range(0, batch, MAX_GRID[2]):  # CUDA's grid holds at most 65535 matrices along z
        count = min(batch - first, MAX_GRID[2])
        part = launch(
            "gemm", sa[first : first + count] if a.ndim == 3 else sa, sb[first : first + count] if b.ndim == 3 else sb,
            Out((count, m, n)), M=m, N=n, K=k, TRANS_A=ta, TRANS_B=tb,
            SA=m * k if a.ndim == 3 else 0, SB=k * n if b.ndim == 3 else 0,
            grid=(blocks(n, tile), blocks(m, tile), count),
        )  # fmt: skip
        if c is None:
            c = part
        else:
            c[first : first + count] = part
    return c if a.ndim == 3 or b.ndim == 3 else c.reshape(m, n)


def product(a, b, kernel: bool):
    """a @ b of arrays with NumPy's rules (vectors promoted, leading dims broadcast): by gemm
    when `kernel`, else by the array module's @."""
    if not kernel or a.size == 0 or b.size == 0:  # an empty product is zeros or empty: no kernel to run
        return a @ b
    a2, b2 = (a[None, :] if a.ndim == 1 else a), (b[:, None] if b.ndim == 1 else b)
    batch = np.broadcast_shapes(a2.shape[:-2], b2.shape[:-2])
    c = gemm(_batched(a2, batch), _batched(b2, batch)).reshape(*batch, a2.shape[-2], b2.shape[-1])
    if a.ndim == 1:
        c = c[..., 0, :]
    if b.ndim == 1:
        c = c[..., 0]
    return c


def _batched(x, batch: tuple[int, ...]):
    """x (..., r, c) as gemm's operand for the batch shape `batch`: (r, c) when every matrix of the
    batch is the same one, else (prod(batch), r, c), x broadcast to the batch."""
    if math.prod(x.shape[:-2]) == 1:
        return x.reshape(x.shape[-2:])
    xp = backend.array_module_of(x)
    return xp.broadcast_to(x, (*batch, *x.shape[-2:])).reshape(-1, *x.shape[-2:])


class MatMul(Function):
    """a @ b with NumPy's rules: 1-D operands are promoted, leading dims broadcast."""

    def forward(self, a, b):
        return product(a, b, self.uses_kernels)

    forward_kernel = forward  # the same code: product() takes the kernel path

    def backward(self, g):
        a, b = self.inputs
        a2 = Reshape.apply(a, shape=(1, -1)) if a.ndim == 1 else a  # promote vectors as matmul does
        b2 = Reshape.apply(b, shape=(-1, 1)) if b.ndim == 1 else b
        if b.ndim == 1:  # b's dim first: a dot product's g has no dims
            g = Reshape.apply(g, shape=(*g.shape, 1))
        if a.ndim == 1:
            g = Reshape.apply(g, shape=(*g.shape[:-1], 1, g.shape[-1]))
        ga = _unpromoted(unbroadcast(MatMul.apply(g, _swap(b2)), a2.shape), a) if self.needs_grad[0] else None
        gb = _unpromoted(unbroadcast(MatMul.apply(_swap(a2), g), b2.shape), b) if self.needs_grad[1] else None
        return ga, gb


def _unpromoted(g: Tensor, operand: Tensor) -> Tensor:
    """A gradient of a promoted operand in the operand's own shape (a vector's again 1-D)."""
    return g if g.shape == operand.shape else g.reshape(operand.shape)


def _swap(t: Tensor) -> Tensor:
    """t with its last two dims swapped."""
    dims = list(range(t.ndim))
    dims[-2:] = dims[-1], dims[-2]
    return Permute.apply(t, dims=tuple(dims))


def _same_dtype(name: str, *tensors: Tensor) -> None:
    """Products do not promote (as in PyTorch): a float64 input to a float32 layer is an error."""
    validate.floating(name, *tensors)
    dtypes = [t.dtype for t in tensors if t is not None]
    if len(set(dtypes)) > 1:
        raise TypeError(
            f"{name}: operands have dtypes {', '.join(map(str, dtypes))}; convert one (e.g. x.float() or x.double())"
        )


def _tensors(name: str, arrays: bool = False, **operands) -> None:
    """Each operand is a Tensor (or, with `arrays`, an array: a constant); a list or None is not converted."""
    for arg, operand in operands.items():
        if not (isinstance(operand, Tensor) or (arrays and is_array(operand))):
            raise TypeError(f"{name}: {arg} must be a Tensor{' or an array' * arrays}, got {type(operand).__name__}")


def matmul(a: Tensor, b: Tensor) -> Tensor:
    _tensors("matmul", arrays=True, input=a, other=b)
    _same_dtype("matmul", a, b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError("matmul needs tensors with at least one dim; use * for scalars")
    inner_a, inner_b = a.shape[-1], b.shape[0] if b.ndim == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not fit ({inner_a} != {inner_b})")
    return MatMul.apply(a, b)


class Linear(Function):
    """x: (..., in), w: (out, in), b: (out,) -> (..., out); one product each way."""

    def forward(self, x, w, b=None):
        self.has_bias = b is not None
        out = product(x, w.T, self.uses_kernels)
        return out + b if b is not None else out

    forward_kernel = forward  # the same code: product() takes the kernel path

    def backward(self, g):
        (x, w), needs = self.inputs[:2], self.needs_grad
        return (
            MatMul.apply(g, w) if needs[0] else None,
            LinearWeightGrad.apply(g, x) if needs[1] else None,
            *([_bias_grad(g) if needs[2] else None] if self.has_bias else []),
        )


def _bias_grad(g: Tensor) -> Tensor:
    """Linear's bias gradient: g (..., out) summed over every dim but the last."""
    return Sum.apply(g, dims=tuple(range(g.ndim - 1)), keepdim=False)


class LinearWeightGrad(Function):
    """Linear's weight gradient as an op: g (..., out), x (..., in) -> Σ over rows of gᵀx (out, in).
    Bilinear, so for an output gradient G (out, in): d/dg = x Gᵀ, d/dx = g G."""

    def forward(self, g, x):
        return product(_rows(g).T, _rows(x), self.uses_kernels)

    forward_kernel = forward  # the same code: product() takes the kernel path

    def backward(self, gg):
        g, x = self.inputs
        return (
            MatMul.apply(x, _swap(gg)) if self.needs_grad[0] else None,
            MatMul.apply(g, gg) if self.needs_grad[1] else None,
        )


def _rows(x):
    """x (..., n) as a matrix (rows, n), also where n is 0 (an array or a tensor)."""
    return x.reshape(math.prod(x.shape[:-1]), x.shape[-1])


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """x (..., in), weight (out, in), bias (out,) -> (..., out): x Wᵀ + b."""
    _tensors("linear", input=x, weight=weight, **({} if bias is None else {"bias": bias}))
    _same_dtype("linear", x, weight, bias)
    if weight.ndim != 2 or x.shape[-1:] != weight.shape[1:]:
        raise ValueError(f"linear: input (..., {weight.shape[-1]}) expected for weight {weight.shape}, got {x.shape}")
    if bias is not None and bias.shape != weight.shape[:1]:
        raise ValueError(f"linear: bias of shape ({weight.shape[0]},) expected, got {bias.shape}")
    return Linear.apply(x, weight, bias) if bias is not None else Linear.apply(x, weight)
