"""Shape ops: reshape, permute/transpose, indexing, concat/stack, pad, flatten,
unflatten, (un)squeeze, and moving between devices. None of them changes a value;
their backward puts each gradient element back where its value came from."""

from __future__ import annotations

import math

import numpy as np

from .. import backend, validate
from ..autograd.engine import unbroadcast
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .promotion import result_type


class Reshape(Function):
    saves_inputs = False  # its backward needs shapes only
    makes_view = True  # of a contiguous input, as PyTorch's view (else a copy)

    def forward(self, x, shape):
        self.shape = x.shape
        return x.reshape(shape)

    def backward(self, g):
        return Reshape.apply(g, shape=self.shape)


def reshape(x: Tensor, *shape) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    shape = tuple(validate.integer(n, "reshape: each size", minimum=-1) for n in shape)
    known = [n for n in shape if n != -1]
    if (
        shape.count(-1) > 1
        or (shape.count(-1) == 0 and math.prod(shape) != x.numel())
        or (shape.count(-1) == 1 and (math.prod(known) == 0 or x.numel() % math.prod(known)))
    ):
        raise ValueError(f"cannot reshape a tensor of shape {x.shape} ({x.numel()} elements) into {tuple(shape)}")
    return Reshape.apply(x, shape=tuple(shape))


class Permute(Function):
    saves_inputs = False  # its backward needs shapes only
    makes_view = True

    def forward(self, x, dims):
        self.inverse = tuple(sorted(range(len(dims)), key=dims.__getitem__))  # dims' inverse permutation
        return x.transpose(dims)

    def backward(self, g):
        return Permute.apply(g, dims=self.inverse)


def permute(x: Tensor, *dims) -> Tensor:
    if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
        dims = tuple(dims[0])
    if len(dims) != x.ndim:
        raise ValueError(f"permute of a tensor of {x.ndim} dims needs {x.ndim} dims, got {dims}")
    dims = tuple(validate.dim(d, x.ndim) for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute needs each of the {x.ndim} dims once, got {dims}")
    return Permute.apply(x, dims=dims)


def transpose(x: Tensor, dim0: int, dim1: int) -> Tensor:
    dims = list(range(x.ndim))
    dim0, dim1 = validate.dim(dim0, x.ndim, "dim0"), validate.dim(dim1, x.ndim, "dim1")
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, *dims)


def flatten(x: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge dims start_dim..end_dim (inclusive) into one."""
    start, end = validate.dim(start_dim, x.ndim, "start_dim"), validate.dim(end_dim, x.ndim, "end_dim")
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim} (for {x.ndim} dims)")
    if x.ndim == 0:
        return reshape(x, 1)
    return reshape(x, *x.shape[:start], -1, *x.shape[end + 1 :])


def unflatten(x: Tensor, dim: int, sizes) -> Tensor:
    """Split dim into `sizes`."""
    dim = validate.dim(dim, x.ndim)
    return reshape(x, *x.shape[:dim], *sizes, *x.shape[dim + 1 :])


def unsqueeze(x: Tensor, dim: int) -> Tensor:
    dim = validate.dim(dim, x.ndim + 1)
    return reshape(x, *x.shape[:dim], 1, *x.shape[dim:])


def squeeze(x: Tensor, dim: int | None = None) -> Tensor:
    if dim is None:
        return reshape(x, *[n for n in x.shape if n != 1])
    dim = validate.dim(dim, x.ndim)
    if x.ndim == 0:
        return x
    return reshape(x, *x.shape[:dim], *x.shape[dim + 1 :]) if x.shape[dim] == 1 else x


class GetItem(Function):
    """x[index] for any NumPy index: ints, slices, None, Ellipsis, boolean or integer arrays."""

    saves_inputs = False  # its backward needs shapes only
    makes_view = True  # for basic indexing (ints, slices); index arrays and masks copy

    def forward(self, x, index):
        self.shape = x.shape
        self.save_for_backward(index)  # it may hold index arrays or a mask
        return x[index]

    def backward(self, g):
        return ScatterAdd.apply(g, index=_array(self.saved[0]), shape=self.shape)


class ScatterAdd(Function):
    """zeros(shape) with g added at index: GetItem's gradient as an op, whose own gradient is getitem."""

    saves_inputs = False  # its backward needs the index only

    def forward(self, g, index, shape):
        self.save_for_backward(index)
        return scatter_add(g, index, shape)

    def backward(self, gg):
        return GetItem.apply(gg, index=_array(self.saved[0]))


def _array(index):
    """A saved index as forward took it (an index array or mask comes back from save_for_backward as a tensor)."""
    return index.data if isinstance(index, Tensor) else index


def scatter_add(g, index, shape):
    """An array of zeros of `shape` with g added at `index` (x[index]'s adjoint)."""
    xp = backend.array_module_of(g)
    out = xp.zeros(shape, dtype=g.dtype)
    parts = index if isinstance(index, tuple) else (index,)
    if all(isinstance(i, (int, slice, type(None), type(Ellipsis))) for i in parts):
        out[index] = g  # basic indexing never repeats an element
    else:
        xp.add.at(out, index, g)  # adds repeated indices (NumPy and CuPy alike)
    return out


def _device_index(x: Tensor, index):
    """index with its lists, arrays and tensors made arrays where x's data is (a NumPy mask indexes a
    CuPy array too); ints, slices, None and Ellipsis as they are."""

    def convert(i):
        if isinstance(i, Tensor):
            i = i.data
        if isinstance(i, list) or getattr(i, "ndim", 0) > 0:
            i = backend.array_module_of(i).asarray(i)
            if i.size == 0 and i.dtype.kind == "f":  # x[[]]: an empty list of indices, as PyTorch
                i = i.astype(np.int64)
            return backend.move(i, x.device)
        return i

    return tuple(convert(i) for i in index) if isinstance(index, tuple) else convert(index)


def getitem(x: Tensor, index) -> Tensor:
    return GetItem.apply(x, index=_device_index(x, index))


class SetItem(Function):
    """A copy of x with x[index] = v (v broadcast to the indexed part): t[index] = v out of place, which
    Tensor.__setitem__ writes into t. Gradients: g with the indexed part zeroed to x, g[index] to v."""

    saves_inputs = False  # its backward needs the index and shapes only

    def forward(self, x, v, index):
        self.v_shape = v.shape
        self.save_for_backward(index)
        out = x.copy()
        out[index] = v
        return out

    def backward(self, g):
        index, zero = _array(self.saved[0]), self.constant(self.xp.zeros((), dtype=g.dtype))
        gx = SetItem.apply(g, zero, index=index) if self.needs_grad[0] else None
        return gx, unbroadcast(GetItem.apply(g, index=index), self.v_shape) if self.needs_grad[1] else None


def setitem(x: Tensor, index, value) -> Tensor:
    """x with x[index] = value, as a new tensor (value cast to x's dtype, as PyTorch's t[index] = v)."""
    index = _device_index(x, index)
    v = value.to(dtype=x.dtype) if isinstance(value, Tensor) else Tensor(value, device=x.device, dtype=x.dtype)
    if v.device != x.device:
        raise RuntimeError(f"t[index] = v: v is on {v.device}, the tensor on {x.device}; move v with .to() first")
    return SetItem.apply(x, v, index=index)


class Concat(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, *arrays, dim):
        self.dim = dim
        self.splits = np.cumsum([a.shape[dim] for a in arrays])[:-1].tolist()
        return self.xp.concatenate(arrays, axis=dim)

    def backward(self, g):
        edges = [0, *self.splits, g.shape[self.dim]]
        lead = (slice(None),) * self.dim
        return tuple(g[(*lead, slice(a, b))] for a, b in zip(edges, edges[1:]))


def concat(tensors, dim: int = 0) -> Tensor:
    """Join tensors along an existing dim (torch.cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("concat joins tensors along a dim: a 0-dim tensor has none (stack them instead)")
    axis = validate.dim(dim, first.ndim)
    for t in tensors[1:]:
        if t.ndim != first.ndim or any(a != b for i, (a, b) in enumerate(zip(t.shape, first.shape)) if i != axis):
            raise ValueError(f"concat along dim {dim}: shapes {first.shape} and {t.shape} differ in another dim")
    dtype = result_type(*tensors)
    return Concat.apply(*(t if t.dtype == dtype else t.to(dtype=dtype) for t in tensors), dim=axis)


def stack(tensors, dim: int = 0) -> Tensor:
    """Join tensors of one shape along a new dim."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    shapes = {t.shape for t in tensors}
    if len(shapes) != 1:
        raise ValueError(f"stack needs tensors of one shape, got {sorted(shapes)}")
    dim = validate.dim(dim, tensors[0].ndim + 1)
    return concat([unsqueeze(t, dim) for t in tensors], dim=dim)


class Pad(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, x, widths, value):
        self.crop = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths, x.shape))
        return self.xp.pad(x, widths, constant_values=value)

    def backward(self, g):
        return GetItem.apply(g, index=self.crop)


def pad(x: Tensor, pad: tuple[int, ...], value: float = 0.0) -> Tensor:
    """Constant padding, widths given as PyTorch's F.pad: (last_lo, last_hi, prev_lo, prev_hi, ...)."""
    if len(pad) % 2 or len(pad) // 2 > x.ndim:
        raise ValueError(f"pad needs pairs for at most {x.ndim} dims, got {pad}")
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"pad's value must be a number, got {value!r} ({type(value).__name__})")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad widths must be non-negative, got {pad}")
    widths = [(0, 0)] * x.ndim
    for i in range(len(pad) // 2):
        widths[x.ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return Pad.apply(x, widths=widths, value=value)


class ToDevice(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, x, device, dtype):
        self.source_dtype = x.dtype
        moved = backend.move(x, device)
        if moved is x:  # cpu and emu share NumPy: .to() is a copy on every pair of devices, as in PyTorch
            moved = moved.copy()
        with np.errstate(over="ignore"):  # a value beyond the dtype's range becomes inf, as in PyTorch
            return moved.astype(dtype, copy=False) if dtype is not None else moved

    def backward(self, g):
        return g.to(self.device, dtype=self.source_dtype)


def to_device(x: Tensor, device: str, dtype=None) -> Tensor:
    """x on another device and/or dtype; the output tensor lives on `device`."""
    out = ToDevice.apply(x, device=device, dtype=dtype)
    out.device = device
    return out
