"""minidl: a small reverse-mode autodiff framework on NumPy (CPU) and CuPy + our CUDA kernels (GPU)."""

from __future__ import annotations

# isort: off
from . import interrupt  # noqa: F401  first: from here on, Ctrl-C in an example is one line, exit 130

# isort: on
import numpy as np

from . import autograd, host_memory, nn, optim, validate
from .autograd.function import Function
from .autograd.mode import enable_grad, is_grad_enabled, no_grad
from .autograd.tensor import Tensor
from .backend import cuda_available, manual_seed, resolve_device
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import (
    abs,
    clamp,
    concat,
    exp,
    flatten,
    log,
    matmul,
    maximum,
    minimum,
    pad,
    relu,
    sigmoid,
    sqrt,
    stack,
    tanh,
    where,
)
from .serialization import load, save

host_memory.keep_freed_memory()  # a step's arrays reuse the last step's pages (no page faults)

float32, float64, int64 = np.float32, np.float64, np.int64
cat = concat

__version__ = "0.1.0"


def tensor(data, requires_grad: bool = False, device: str | None = None, dtype=None) -> Tensor:
    """A new tensor holding a copy of data (floats default to float32)."""
    return Tensor(data, requires_grad=requires_grad, device=device, dtype=dtype)


def _filled(make, shape, requires_grad, device, dtype) -> Tensor:
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = tuple(shape[0])
    return Tensor(make(shape), requires_grad=requires_grad, device=device, dtype=dtype or np.float32)


def zeros(*shape, requires_grad: bool = False, device: str | None = None, dtype=None) -> Tensor:
    return _filled(np.zeros, shape, requires_grad, device, dtype)


def ones(*shape, requires_grad: bool = False, device: str | None = None, dtype=None) -> Tensor:
    return _filled(np.ones, shape, requires_grad, device, dtype)


def _float_dtype(name: str, dtype):
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"{name} draws floating point samples; dtype {np.dtype(dtype)} would truncate them")


def randn(*shape, requires_grad: bool = False, device: str | None = None, dtype=None) -> Tensor:
    """Standard normal samples from the seeded host generator."""
    from .backend import generator

    _float_dtype("randn", dtype)
    return _filled(generator("cpu").standard_normal, shape, requires_grad, device, dtype)


def rand(*shape, requires_grad: bool = False, device: str | None = None, dtype=None) -> Tensor:
    """Uniform [0, 1) samples from the seeded host generator."""
    from .backend import generator

    _float_dtype("rand", dtype)
    return _filled(generator("cpu").random, shape, requires_grad, device, dtype)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return zeros(*t.shape, requires_grad=requires_grad, device=t.device, dtype=t.dtype)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return ones(*t.shape, requires_grad=requires_grad, device=t.device, dtype=t.dtype)


def arange(start, end=None, step=1, requires_grad: bool = False, device: str | None = None, dtype=None) -> Tensor:
    """Like range(); integer arguments give int64, float ones float32. As in PyTorch, the step is not
    0 and points from start towards end (or start == end: empty)."""
    start, end = (0, start) if end is None else (start, end)
    for name, value in (("start", start), ("end", end), ("step", step)):
        validate.real(value, f"arange's {name}")
    if step == 0:
        raise ValueError("arange's step must be nonzero")
    if (end - start) * step < 0:
        raise ValueError(f"arange: end {end} lies behind start {start} for step {step}")
    values = np.arange(start, end, step)
    return Tensor(values, requires_grad=requires_grad, device=device, dtype=dtype or _default_dtype(values))


def _default_dtype(values: np.ndarray):
    """float32 for floats (PyTorch's default), else the values' own dtype."""
    return np.float32 if values.dtype.kind == "f" else values.dtype


__all__ = [
    "Function",
    "GradcheckError",
    "Tensor",
    "abs",
    "arange",
    "cat",
    "clamp",
    "concat",
    "cuda_available",
    "exp",
    "flatten",
    "float32",
    "float64",
    "gradcheck",
    "gradgradcheck",
    "int64",
    "is_grad_enabled",
    "enable_grad",
    "autograd",
    "load",
    "log",
    "manual_seed",
    "matmul",
    "maximum",
    "minimum",
    "nn",
    "no_grad",
    "ones",
    "ones_like",
    "optim",
    "pad",
    "rand",
    "randn",
    "relu",
    "resolve_device",
    "save",
    "sigmoid",
    "sqrt",
    "stack",
    "tanh",
    "tensor",
    "where",
    "zeros",
    "zeros_like",
]
