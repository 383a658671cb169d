"""Reductions: sum, mean, max, min, var over all elements or some dims.

Each takes PyTorch's `dim`/`keepdim` (NumPy's `axis`/`keepdims` are accepted too).
"""

from __future__ import annotations

from ..autograd.tensor import Function, Tensor


def _dims(ndim: int, dim=None, axis=None) -> tuple[int, ...]:
    """The reduced dims as non-negative ints (all dims when none are given)."""
    if dim is not None and axis is not None:
        raise TypeError("give dim or axis, not both")
    dim = axis if dim is None else dim
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    size = ndim or 1  # a 0-dim tensor accepts dim 0 and -1
    for d in dims:
        if not -size <= d < size:
            raise IndexError(f"dim {d} is out of range for a tensor with {ndim} dims")
    return tuple(sorted(d % size for d in dims))


def _expand(g, dims, keepdim):
    """Reinsert reduced dims into g so that it broadcasts against the input."""
    if not keepdim:
        for d in dims:
            g = g.reshape(g.shape[:d] + (1,) + g.shape[d:])
    return g


class Sum(Function):
    def forward(self, x, dims, keepdim):
        self.shape, self.dims, self.keepdim = x.shape, dims, keepdim
        return x.sum(axis=dims, keepdims=keepdim)

    def backward(self, g):
        return self.xp.broadcast_to(_expand(g, self.dims, self.keepdim), self.shape).copy()


class MaxMin(Function):
    """max or min; ties share the gradient evenly (as torch.amax/amin)."""

    def forward(self, x, dims, keepdim, largest):
        out = x.max(axis=dims, keepdims=True) if largest else x.min(axis=dims, keepdims=True)
        hits = (x == out).astype(x.dtype)
        self.share = hits / hits.sum(axis=dims, keepdims=True)
        self.dims, self.keepdim = dims, keepdim
        return out if keepdim else out.squeeze(axis=dims)

    def backward(self, g):
        return _expand(g, self.dims, self.keepdim) * self.share


def _normalise(x: Tensor, dim, keepdim, kw) -> tuple[tuple[int, ...], bool]:
    unknown = set(kw) - {"axis", "keepdims"}
    if unknown:
        raise TypeError(f"unexpected arguments {sorted(unknown)}: expected dim/keepdim (or axis/keepdims)")
    keepdim = kw.get("keepdims", keepdim)
    return _dims(x.ndim, dim, kw.get("axis")), bool(keepdim)


def sum(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:  # noqa: A001
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    return Sum.apply(x, dims=dims, keepdim=keepdim)


def mean(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    count = 1
    for d in dims:
        count *= x.shape[d]
    return Sum.apply(x, dims=dims, keepdim=keepdim) / count


def max(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:  # noqa: A001
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    return MaxMin.apply(x, dims=dims, keepdim=keepdim, largest=True)


def min(x: Tensor, dim=None, keepdim: bool = False, **kw) -> Tensor:  # noqa: A001
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    return MaxMin.apply(x, dims=dims, keepdim=keepdim, largest=False)


def var(x: Tensor, dim=None, keepdim: bool = False, correction: int = 1, **kw) -> Tensor:
    """Σ (x - mean)² / (n - correction); correction=1 is PyTorch's unbiased default."""
    dims, keepdim = _normalise(x, dim, keepdim, kw)
    count = 1
    for d in dims:
        count *= x.shape[d]
    centred = x - mean(x, dims, keepdim=True)
    return sum(centred * centred, dims, keepdim) / (count - correction)
