"""Argument checks shared by ops, layers and optimisers: a wrong argument is a clear error at
the call, naming what was expected and what came. NumPy numbers count as numbers."""

from __future__ import annotations

import math
import numbers


def integer(value, name: str, minimum: int | None = None) -> int:
    """An int (or NumPy integer) at least `minimum`."""
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be ≥ {minimum}, got {value}")
    return int(value)


def real(value, name: str, low: float | None = None, high: float | None = None) -> float:
    """A finite real number (or NumPy number) in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite number, got {value!r} ({type(value).__name__})")
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = f"[{'-inf' if low is None else low}, {'inf' if high is None else high}]"
        raise ValueError(f"{name} must lie in {bounds}, got {value}")
    return float(value)


def pair(value, name: str, minimum: int | None = None) -> tuple[int, int]:
    """An integer or a pair of integers, as a pair of ints, each at least `minimum`."""
    values = (value, value) if type(value) is int or isinstance(value, numbers.Integral) else value
    try:
        values = tuple(values)
    except TypeError:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}") from None
    if len(values) != 2:
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    return integer(values[0], name, minimum), integer(values[1], name, minimum)


def dim(value, ndim: int, name: str = "dim") -> int:
    """A dim of a tensor with `ndim` dims as 0..ndim-1 (a negative one counts from the end; a 0-dim
    tensor takes 0 and -1, as in PyTorch); IndexError naming the range for one outside it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    size = max(ndim, 1)
    if not -size <= value < size:
        raise IndexError(
            f"{name} out of range for a tensor of {ndim} dims (expected to be in range of [{-size}, {size - 1}], "
            f"but got {value})"
        )
    return int(value) % size


def boolean(value, name: str) -> bool:
    """True or False (a NumPy bool too); a string such as 'False' would be taken as true."""
    if type(value).__name__ not in ("bool", "bool_"):
        raise TypeError(f"{name} must be True or False, got {value!r} ({type(value).__name__})")
    return bool(value)


def floating(name: str, *tensors) -> None:
    """Every tensor given (None skipped) holds floating point numbers: integers would wrap around."""
    for t in tensors:
        if t is not None and t.dtype.kind != "f":
            raise TypeError(f"{name} needs floating point tensors (integers would wrap around), got {t.dtype}")
