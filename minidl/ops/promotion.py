"""Type promotion by PyTorch's rules: the one place every op asks what dtype its operands meet in.

Operands come in three priorities: tensors with dims, 0-d tensors, Python numbers ("wrapped
numbers"); and in categories bool < integer < floating point. The result is the promotion
of the dtypes of the highest priority present (of two categories the higher's dtype, within
one NumPy's promotion), unless a lower priority holds a higher category: then that group's
dtype takes part (a 0-d tensor's own, a Python float the default float32, a Python int int64).
So float32 with a 0-d float64 tensor stays float32, int32 with a 0-d int64 stays int32, int64
with 1.5 or with a float32 tensor is float32.

A float op (/, exp, sqrt, sigmoid, ...) of integers or booleans gives the default float32.
Tensors are cast to the result dtype; Python numbers are not cast to float16 first (float16 * 1e5
is 100.06, not inf): they take float32, and the op's result is cast back, as PyTorch computes
half precision in float32. For the same reason sum, mean, var, softmax and log_softmax of float16
run in float32, the result rounded back (half_in_float32): the mean of 70,000 float16 ones is 1,
not inf/70000.
Integer results wrap on overflow (uint8 + 300 adds 44), as PyTorch's (NumPy raises for the number).
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable

import numpy as np

from .. import backend
from ..autograd.tensor import Tensor

DEFAULT_FLOAT = np.dtype(np.float32)
_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}
_LARGEST = {np.dtype(t): float(np.finfo(t).max) for t in (np.float16, np.float32, np.float64)}


def _category(dtype) -> int:
    return _CATEGORY.get(dtype.kind, 2)


def _number_dtype(value) -> np.dtype:
    """A Python number's dtype as a wrapped number: bool, int64, or the default float."""
    if isinstance(value, bool | np.bool_):
        return np.dtype(bool)
    if isinstance(value, numbers.Integral):
        return np.dtype(np.int64)
    return DEFAULT_FLOAT


def _promote(a, b) -> np.dtype:
    """Two dtypes joined: of two categories the higher's dtype (int64 with float32 is float32, where
    NumPy gives float64), within one NumPy's promotion (int32 with int64 is int64)."""
    if _category(a) != _category(b):
        return a if _category(a) > _category(b) else b
    return np.promote_types(a, b)


def _combine(higher, lower):
    """PyTorch's combine_categories: the higher priority's dtype, joined by the lower's only where
    the lower has a higher category (None: no operand of that priority)."""
    if higher is None:
        return lower
    if lower is None or _category(higher) >= _category(lower):
        return higher
    return _promote(higher, lower) if higher.kind == "b" or lower.kind == "f" else lower


def result_type(*operands) -> np.dtype:
    """The dtype of an elementwise op of tensors and Python numbers, as torch.result_type."""
    groups: list = [None, None, None]  # dimensioned tensors, 0-d tensors, numbers
    for x in operands:
        if isinstance(x, Tensor):
            dtype, k = x.dtype, 0 if x.ndim else 1
        else:
            dtype, k = _number_dtype(x), 2
        groups[k] = dtype if groups[k] is None else _promote(groups[k], dtype)
    return _combine(groups[0], _combine(groups[1], groups[2]))


def floating(dtype) -> np.dtype:
    """The dtype of a float op of this dtype: a float keeps it, integers and bool give float32."""
    dtype = np.dtype(dtype)
    return dtype if dtype.kind == "f" else DEFAULT_FLOAT


def as_floating(x: Tensor) -> Tensor:
    """x itself if it is a float tensor, else x as the default float32 (the input of a float op)."""
    return x if x.dtype.kind == "f" else x.to(dtype=DEFAULT_FLOAT)


def computes_in(dtype) -> np.dtype:
    """The dtype a Python number takes in an op of result `dtype`: float32 for float16 (PyTorch computes
    half precision in float32, its opmath; the op's result is cast back), else `dtype` itself."""
    return DEFAULT_FLOAT if dtype == np.float16 else np.dtype(dtype)


def operand(value, dtype, like: Tensor) -> Tensor:
    """value as a tensor of dtype on like's device: a tensor cast (recorded, so gradients flow back),
    a Python number made on the device (a fill, not an upload; an int out of range wraps, as
    PyTorch's), an array uploaded."""
    if isinstance(value, Tensor):
        return value if value.dtype == dtype else value.to(dtype=dtype)
    if type(value) in (int, float) or isinstance(value, numbers.Number):
        if dtype.kind in "iu" and not isinstance(value, bool):
            value = np.array(value, dtype=np.int64).astype(dtype).item()  # wraps: uint8 + 300 adds 44
        elif dtype in _LARGEST and abs(value) > _LARGEST[dtype]:  # 1e5 as float16 is inf, as in PyTorch
            value = math.copysign(math.inf, value)
        return Tensor._wrap(backend.array_module(like.device).full((), value, dtype=dtype), like.device)
    return Tensor(value, device=like.device, dtype=dtype)


def half_in_float32(op: Callable[..., Tensor]) -> Callable[..., Tensor]:
    """op (a reduction, a softmax) that runs a float16 tensor as float32 and rounds its result back
    to float16, as PyTorch accumulates half precision in float32; other dtypes run as they are."""

    @functools.wraps(op)
    def run(x: Tensor, *args, **kwargs) -> Tensor:
        if x.dtype == np.float16:
            return op(x.to(dtype=DEFAULT_FLOAT), *args, **kwargs).to(dtype=np.float16)
        return op(x, *args, **kwargs)

    return run
