"""Elementwise arithmetic and maths: + - * / **, neg, exp, log, sqrt, abs, clamp,
maximum, minimum, where. Binary ops broadcast as NumPy does; their gradients are
summed back to each input's shape."""

from __future__ import annotations

import numbers

import numpy as np

from .. import backend
from ..autograd.engine import unbroadcast
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from .promotion import as_floating, computes_in, floating, operand, result_type


def _binary(fn_cls, a, b, float_op: bool = False) -> Tensor:
    """Apply a binary Function to tensors, numbers or arrays, which meet in the dtype of PyTorch's
    promotion (minidl.ops.promotion); a float op (/) of integers gives float32, and a Python number
    meets float16 in float32, the result cast back."""
    for t, other in ((a, b), (b, a)):  # the common cases first: a float32 (or float64) tensor with its like
        if isinstance(t, Tensor) and t.data.dtype in _PLAIN:
            if isinstance(other, Tensor) and other.data.dtype == t.data.dtype:
                return fn_cls.apply(a, b)
            if type(other) in (int, float):  # or with a Python number, which takes its dtype
                number = operand(other, t.data.dtype, t)
                return fn_cls.apply(a, number) if t is a else fn_cls.apply(number, b)
    like = a if isinstance(a, Tensor) else b
    a, b = _tensors_or_numbers(a, b, like)
    dtype = floating(result_type(a, b)) if float_op else result_type(a, b)
    a, b = (operand(x, dtype if isinstance(x, Tensor) else computes_in(dtype), like) for x in (a, b))
    out = fn_cls.apply(a, b)
    return out if out.dtype == dtype else out.to(dtype=dtype)


def _tensors_or_numbers(a, b, like: Tensor) -> tuple:
    """a and b with arrays and lists made tensors on like's device (numbers stay Python's)."""
    return tuple(x if isinstance(x, Tensor | numbers.Number) else Tensor(x, device=like.device) for x in (a, b))


_PLAIN = (np.dtype(np.float32), np.dtype(np.float64))  # the dtypes that meet their like and numbers as they are


class Add(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, g):
        needs = self.needs_grad
        return (
            unbroadcast(g, self.shapes[0]) if needs[0] else None,
            unbroadcast(g, self.shapes[1]) if needs[1] else None,
        )


class Sub(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, g):
        needs = self.needs_grad
        return (
            unbroadcast(g, self.shapes[0]) if needs[0] else None,
            unbroadcast(-g, self.shapes[1]) if needs[1] else None,
        )


class Mul(Function):
    def forward(self, a, b):
        return a * b

    def reads_value_of(self, k):  # d(ab)/da = b: a's value serves only b's gradient (so y *= 3 is fine)
        return self.needs_grad[1 - k]

    def backward(self, g):
        (a, b), needs = self.inputs, self.needs_grad
        if a is b:  # a square, a * a: its two gradients are one product (the engine adds them up)
            ga = g * a
            return ga, ga
        return (
            unbroadcast(g * b, a.shape) if needs[0] else None,
            unbroadcast(g * a, b.shape) if needs[1] else None,
        )


class Div(Function):
    def forward(self, a, b):
        return a / b

    def backward(self, g):
        (a, b), needs = self.inputs, self.needs_grad
        ga = g / b
        return unbroadcast(ga, a.shape) if needs[0] else None, unbroadcast(-ga * a / b, b.shape) if needs[1] else None


class Pow(Function):
    """a ** b; d/da = b a^(b-1), d/db = a^b log a (NaN for a < 0, 0 at 0 ** (b ≥ 0), as PyTorch)."""

    saves_output = True  # its backward reads its output

    def forward(self, a, b):
        return a**b

    def backward(self, g):
        a, b = self.inputs
        zero = b.data == 0  # where the exponent is 0 the slope is 0, also at a = 0 (not 0 · 0⁻¹ = NaN)
        ga = gb = None
        if self.needs_grad[0]:
            ga = unbroadcast(g * where(zero, 0.0, b * a ** where(zero, 1.0, b - 1)), a.shape)
        if self.needs_grad[1]:
            with np.errstate(invalid="ignore", divide="ignore"):  # log of a < 0: NaN, as PyTorch
                log_a = log(where(_zero_to_the_nonnegative(a.data, b.data), 1.0, a))
            gb = unbroadcast(g * self.output * log_a, b.shape)
        return ga, gb


def _zero_to_the_nonnegative(a, b):
    """Where a ** b is 0 ** (b ≥ 0): there d(a^b)/db is 0 (PyTorch's rule); elsewhere a^b log a, NaN for a < 0."""
    return (a == 0) & (b >= 0)


class Maximum(Function):
    """Elementwise max; where a == b the gradient is split evenly (as PyTorch does)."""

    def forward(self, a, b):
        return self.xp.maximum(a, b)

    def backward(self, g):
        a, b = (t.data for t in self.inputs)
        return _split(self, g, (a > b) + 0.5 * (a == b))


class Minimum(Function):
    def forward(self, a, b):
        return self.xp.minimum(a, b)

    def backward(self, g):
        a, b = (t.data for t in self.inputs)
        return _split(self, g, (a < b) + 0.5 * (a == b))


def _split(node: Function, g: Tensor, share_a) -> tuple[Tensor, Tensor]:
    """g shared between two inputs: share_a to the first, the rest to the second (shares are
    constants: they change only where a crosses b)."""
    a, b = node.inputs
    share_a = node.constant(share_a.astype(g.dtype))
    return unbroadcast(g * share_a, a.shape), unbroadcast(g * (1 - share_a), b.shape)


def add(a, b) -> Tensor:
    return _binary(Add, a, b)


def sub(a, b) -> Tensor:
    return _binary(Sub, a, b)


def mul(a, b) -> Tensor:
    return _binary(Mul, a, b)


def div(a, b) -> Tensor:
    return _binary(Div, a, b, float_op=True)


def pow(a, b) -> Tensor:  # noqa: A001 (the name students know)
    return _binary(Pow, a, b)


def maximum(a, b) -> Tensor:
    return _binary(Maximum, a, b)


def minimum(a, b) -> Tensor:
    return _binary(Minimum, a, b)


class Neg(Function):
    saves_inputs = False  # its backward needs shapes only

    def forward(self, x):
        return -x

    def backward(self, g):
        return -g


class Exp(Function):
    saves_output = True  # its backward reads its output

    def forward(self, x):
        return self.xp.exp(x)

    def backward(self, g):
        return g * self.output


class Log(Function):
    def forward(self, x):
        return self.xp.log(x)

    def backward(self, g):
        return g / self.inputs[0]


class Sqrt(Function):
    saves_output = True  # its backward reads its output

    def forward(self, x):
        return self.xp.sqrt(x)

    def backward(self, g):
        return g / (2 * self.output)


class Abs(Function):
    """|x|; the gradient at 0 is 0, as in PyTorch."""

    def forward(self, x):
        return self.xp.abs(x)

    def backward(self, g):
        return g * self.constant(self.xp.sign(self.inputs[0].data))  # sign(x): a constant almost everywhere


class Clamp(Function):
    """min(max(x, lo), hi), each bound a number or a tensor (broadcast; `tensor_bounds` names those given
    as inputs after x). Gradients as in PyTorch: x's where lo ≤ x ≤ hi (bounds included), lo's where
    x < lo ≤ hi, hi's where x > hi or hi < lo (then hi is the result)."""

    def forward(self, x, *tensors, tensor_bounds=(), lo=None, hi=None):
        bounds = {"lo": lo, "hi": hi, **dict(zip(tensor_bounds, tensors))}
        lo, hi = bounds["lo"], bounds["hi"]
        inside = self.xp.ones(x.shape, dtype=bool)
        if lo is not None:
            inside = inside & (x >= lo)
        if hi is not None:
            inside = inside & (x <= hi)
        beyond = {"lo": lambda: x < lo if hi is None else (x < lo) & ~(hi < lo),
                 "hi": lambda: x > hi if lo is None else (x > hi) | (hi < lo)}  # fmt: skip
        self.shapes = (x.shape, *(t.shape for t in tensors))
        self.save_for_backward(*(m.astype(x.dtype) for m in (inside, *(beyond[n]() for n in tensor_bounds))))
        return self.xp.clip(x, lo, hi)

    def backward(self, g):  # g times constant masks
        grads = tuple(unbroadcast(g * mask, shape) for mask, shape in zip(self.saved, self.shapes, strict=True))
        return grads if len(grads) > 1 else grads[0]


class Where(Function):
    """cond ? a : b, with cond a boolean array (no gradient)."""

    def forward(self, a, b, cond):
        self.shapes = a.shape, b.shape
        self.save_for_backward(cond)
        return self.xp.where(cond, a, b)

    def backward(self, g):
        cond = self.saved[0].data
        return unbroadcast(where(cond, g, 0.0), self.shapes[0]), unbroadcast(where(cond, 0.0, g), self.shapes[1])


def neg(x: Tensor) -> Tensor:
    return Neg.apply(x)


def exp(x: Tensor) -> Tensor:
    return Exp.apply(as_floating(x))


def log(x: Tensor) -> Tensor:
    return Log.apply(as_floating(x))


def sqrt(x: Tensor) -> Tensor:
    return Sqrt.apply(as_floating(x))


def abs(x: Tensor) -> Tensor:  # noqa: A001
    return Abs.apply(x)


def clamp(x: Tensor, min: float | Tensor | None = None, max: float | Tensor | None = None) -> Tensor:  # noqa: A002
    """x limited to [min, max]; a bound is a number or a tensor that broadcasts with x, as in PyTorch."""
    if min is None and max is None:
        raise ValueError("clamp needs at least one of min and max")
    if not isinstance(x, Tensor):
        raise TypeError(f"clamp's input must be a Tensor, got {type(x).__name__}")
    bounds = {"lo": min, "hi": max}
    for bound, word in zip(bounds.values(), ("min", "max")):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real | Tensor)):
            raise TypeError(
                f"clamp's {word} must be a number, a Tensor or None, got {bound!r} ({type(bound).__name__})"
            )
    tensors = {name: bound for name, bound in bounds.items() if isinstance(bound, Tensor)}
    dtype = result_type(x, *tensors.values())  # x and tensor bounds meet in PyTorch's promoted dtype
    x = operand(x, dtype, x)
    tensors = {name: operand(bound, dtype, x) for name, bound in tensors.items()}
    numbers_given = {name: bound for name, bound in bounds.items() if name not in tensors}
    return Clamp.apply(x, *tensors.values(), tensor_bounds=tuple(tensors), **numbers_given)


def where(cond, a, b) -> Tensor:
    """Elementwise choice: a where cond is true, else b."""
    like = a if isinstance(a, Tensor) else b
    if not isinstance(like, Tensor):
        raise TypeError("where needs at least one of a and b to be a Tensor")
    cond = cond.data if isinstance(cond, Tensor) else backend.array_module(like.device).asarray(cond)
    a, b = _tensors_or_numbers(a, b, like)
    dtype = result_type(a, b)
    return Where.apply(operand(a, dtype, like), operand(b, dtype, like), cond=cond.astype(bool))
