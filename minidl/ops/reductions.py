"""Reductions: sum, mean, amax, amin, var over all elements or some dims; max and min.

Each takes PyTorch's `dim`/`keepdim` (NumPy's `axis`/`keepdims` are accepted too). As in
PyTorch, max(x) and min(x) reduce every element (amax/amin: ties share the gradient), while
max(x, dim) and min(x, dim) for one dim give (values, indices), the gradient going to the
index (the first extreme along the dim).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .. import backend, validate
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .promotion import half_in_float32


def _dims(ndim: int, dim=None, axis=None) -> tuple[int, ...]:
    """The reduced dims as non-negative ints (all dims when none are given)."""
    if dim is not None and axis is not None:
        raise TypeError("give dim or axis, not both")
    dim = axis if dim is None else dim
    if dim is None or (isinstance(dim, tuple | list) and not dim):  # dim=[] or (): every dim, as PyTorch
        return tuple(range(ndim))
    dims = tuple(dim) if isinstance(dim, tuple | list) else (dim,)
    normalised = sorted(validate.dim(d, ndim) for d in dims)
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"dim {dim} names a dim twice")
    return tuple(normalised) if ndim else ()


def _expand(g, dims, keepdim):
    """Reinsert reduced dims into g so that it broadcasts against the input."""
    if not keepdim:
        for d in dims:
            g = g.reshape(g.shape[:d] + (1,) + g.shape[d:])
    return g


class Sum(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, x, dims, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        return x.sum(axis=dims, keepdims=keepdim)

    def backward(self, g):
        return Expand.apply(g, shape=self.shape, dims=self.dims, keepdim=self.keepdim)


class Expand(Function):
    """g (the shape of a sum over dims) broadcast back to `shape`: Sum's gradient as an op, whose own
    gradient is Sum again."""

    saves_inputs = False  # its backward needs the dims only

    def forward(self, g, shape, dims, keepdim):
        self.dims, self.keepdim = dims, keepdim
        return self.xp.broadcast_to(_expand(g, dims, keepdim), shape).copy()

    def backward(self, gg):
        return Sum.apply(gg, dims=self.dims, keepdim=self.keepdim)


class MaxMin(Function):
    """max or min; ties share the gradient evenly (as torch.amax/amin)."""

    def forward(self, x, dims, keepdim, largest):
        out = x.max(axis=dims, keepdims=True) if largest else x.min(axis=dims, keepdims=True)
        hits = (x == out).astype(x.dtype)
        self.save_for_backward(hits / hits.sum(axis=dims, keepdims=True))  # each extreme's share
        self.kept, self.keepdim = out.shape, keepdim
        return out if keepdim else out.squeeze(axis=dims)

    def backward(self, g):  # g times constant shares (they change only where the extreme moves)
        return (g if self.keepdim else g.reshape(self.kept)) * self.saved[0]


def _normalise(x: Tensor, dim, keepdim, kw) -> tuple[tuple[int, ...], bool]:
    unknown = set(kw) - {"axis", "keepdims"}
    if unknown:
        raise TypeError(f"unexpected arguments {sorted(unknown)}: expected dim/keepdim (or axis/keepdims)")
    keepdim = kw.get("keepdims", keepdim)
    return _dims(x.ndim, dim, kw.get("axis")), bool(keepdim)


@half_in_float32
def sum(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:  # noqa: A001
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    return Sum.apply(x, dims=dims, keepdim=keepdim)


@half_in_float32
def mean(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    count = 1
    for d in dims:
        count *= x.shape[d]
    return Sum.apply(x, dims=dims, keepdim=keepdim) / count


def amax(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    return MaxMin.apply(x, dims=dims, keepdim=keepdim, largest=True)


def amin(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    return MaxMin.apply(x, dims=dims, keepdim=keepdim, largest=False)


class Extremes(NamedTuple):
    """What max(x, dim) and min(x, dim) return: the values and their indices along dim."""

    values: Tensor
    indices: Tensor


class AlongDim(Function):
    """x's values at `index` (the argmax or argmin along dim, dims kept); the gradient goes there."""

    saves_inputs = False  # its backward needs shapes only

    def forward(self, x, dim, keepdim, index):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        self.save_for_backward(index)
        out = self.xp.take_along_axis(x, index, axis=dim)
        return out if keepdim else out.squeeze(axis=dim)

    def backward(self, g):  # g where the position along dim is the index, else 0 (no scatter: CuPy has none)
        index = self.saved[0].data
        along = [-1 if d == self.dim else 1 for d in range(len(self.shape))]
        hit = self.constant((self.xp.arange(self.shape[self.dim]).reshape(along) == index).astype(g.dtype))
        return hit * (g if self.keepdim else g.reshape(index.shape))


def _extreme(x: Tensor, dim, keepdim, kw, largest: bool):
    name = "max" if largest else "min"
    if dim is None:  # every element, or NumPy's axis=: values only, as NumPy and amax/amin give
        return (amax if largest else amin)(x, None, keepdim, **kw)
    if isinstance(dim, tuple | list):
        raise TypeError(f"{name} takes one dim ({name}(x, dim) gives values and indices); a{name} takes several")
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    if x.ndim == 0:  # PyTorch: the value itself, at index 0
        zero = backend.array_module(x.device).zeros((), dtype=np.int64)
        return Extremes(x.reshape(()), Tensor._wrap(zero, x.device))
    (axis,) = dims
    if x.shape[axis] == 0:
        raise IndexError(f"{name} along dim {axis}: it has no elements (shape {x.shape})")
    found = x.data.argmax(axis=axis) if largest else x.data.argmin(axis=axis)
    index = found.reshape(found.shape[:axis] + (1,) + found.shape[axis:])
    values = AlongDim.apply(x, dim=axis, keepdim=keepdim, index=index)
    return Extremes(values, Tensor._wrap(index if keepdim else found, x.device))


def max(x: Tensor, dim=None, keepdim: bool = False, **kw):  # noqa: A001
    """max(x) (or NumPy's axis=): the largest values (amax); max(x, dim): (values, indices) along dim, as
    in PyTorch."""
    return _extreme(x, dim, keepdim, kw, largest=True)


def min(x: Tensor, dim=None, keepdim: bool = False, **kw):  # noqa: A001
    """min(x) (or NumPy's axis=): the smallest values (amin); min(x, dim): (values, indices) along dim, as
    in PyTorch."""
    return _extreme(x, dim, keepdim, kw, largest=False)


class Var(Function):
    """Σ (x - mean)² / (n - correction) over dims; backward 2/(n - correction) · g · (x - mean), as
    PyTorch's: over every dim with n ≤ correction, g · (NaN where x is the mean, else +inf)."""

    def forward(self, x, dims, keepdim, correction, every_dim):
        count = 1
        for d in dims:
            count *= x.shape[d]
        self.dims, self.keepdim, self.dof, self.every_dim = dims, keepdim, count - correction, every_dim
        with np.errstate(divide="ignore", invalid="ignore"):  # inf - inf; n ≤ correction: inf, or NaN for 0/0
            centred = x - x.mean(axis=dims, keepdims=True)
            self.kept = tuple(1 if d in dims else n for d, n in enumerate(x.shape))
            return (centred * centred).sum(axis=dims, keepdims=keepdim) / (self.dof if self.dof > 0 else 0)

    def backward(self, g):
        (x,) = self.inputs
        g = g if self.keepdim else g.reshape(self.kept)
        with np.errstate(divide="ignore", invalid="ignore"):  # inf - inf, inf · 0
            if self.every_dim and self.dof <= 0:  # g · (NaN where x is the mean, else +inf): constants
                centred = x.data - x.data.mean(axis=self.dims, keepdims=True)
                return g * self.constant(self.xp.where(centred == 0, np.nan, np.inf).astype(x.dtype))
            return g * (2 / self.dof if self.dof else np.inf) * (x - mean(x, self.dims, keepdim=True))


@half_in_float32
def var(x: Tensor, dim=None, keepdim: bool = False, correction: int = 1, **kw) -> Tensor:
    """Σ (x - mean)² / (n - correction); correction=1 is PyTorch's unbiased default."""
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    every_dim = dim is None and kw.get("axis") is None
    return Var.apply(x, dims=dims, keepdim=keepdim, correction=correction, every_dim=every_dim)
