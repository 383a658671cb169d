"""The op table: one entry per differentiable op, after PyTorch's OpInfo.

Each entry says what the tests, the doctor and the kernel benchmark need to know of an op:

    name       how the op is listed (the doctor prints "<name> kernels")
    op         minidl's callable, called as op(*tensors, *args, **kwargs)
    torch      PyTorch's callable, by name inside torch ("nn.functional.conv2d"), SAME (op itself works
               on torch tensors: operators, methods), a function of the torch module (a composite), or
               None; resolved by torch_op() only when asked, so torch stays a test-only dependency
    inputs     what the op takes: a shape rule that tests/strategies.py draws samples from, value domains,
               fixed options and options to draw from
    reference  the slow, obvious NumPy implementation (loops or the formula), called like op on arrays
    bad        calls that must fail at once, with the exception and the words its message must hold
    kernel     whether the op runs our CUDA kernels on cuda and emu
    second_order_elements
               on a kernel device, second derivatives are checked up to this many input elements (each
               costs two backward passes of launches); 0: only on the cpu, where every case is checked
    example    small fixed inputs of a kernel op: the doctor compares the device with the cpu on them
    benchmark  lab-model inputs of a kernel op: benchmarks/kernels.py times its forward and backward on them

Adding an op: its kernel, its op module, one entry here (docs/adding-an-op.md).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from . import loops, ops
from .autograd.tensor import Tensor
from .backend import manual_seed
from .nn import functional as F

SAME = "the same callable"  # op works on torch tensors as written (operators, methods)


@dataclass(frozen=True)
class Inputs:
    """What an op takes. kind: the shape rule (tests/strategies.py has one per kind); domain: of the
    values, one for all inputs or one per input ("real", "positive", "probability", "distinct": no two
    equal, "wide": real values up to hundreds); kinks: points the values keep away from where finite
    differences are taken; kwargs: fixed options; choices: options drawn from these values; params:
    the shape rule's own settings."""

    kind: str
    domain: str | tuple[str, ...] = "real"
    kinks: tuple[float, ...] = ()
    kwargs: dict = field(default_factory=dict)
    choices: dict[str, tuple] = field(default_factory=dict)
    params: dict = field(default_factory=dict)

    def domain_of(self, k: int) -> str:
        return self.domain if isinstance(self.domain, str) else self.domain[k]


@dataclass
class Sample:
    """One call's inputs: arrays become tensors (grads[k]: whether arrays[k] requires grad); kw_inputs
    names keyword arguments that take the last arrays; packed: the tensors go in as one list (concat);
    transposed: inputs stored with their last two dims swapped, passed as transposed views."""

    arrays: list[np.ndarray]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    grads: list[bool] | None = None
    kw_inputs: tuple[str, ...] = ()
    packed: bool = False
    transposed: tuple[int, ...] = ()

    def __post_init__(self):
        if self.grads is None:
            self.grads = [True] * len(self.arrays)

    def call(self, fn: Callable, inputs: list, constant: Callable = lambda a: a):
        """fn on these inputs (tensors or arrays) in the sample's layout; constant(array) makes the
        array options (a condition, labels, a mask) into what fn takes."""
        inputs = [x.transpose(-1, -2) if k in self.transposed else x for k, x in enumerate(inputs)]
        split = len(inputs) - len(self.kw_inputs)
        positional = [list(inputs[:split])] if self.packed else list(inputs[:split])
        keywords = dict(zip(self.kw_inputs, inputs[split:]))
        args = [constant(a) if isinstance(a, np.ndarray) else a for a in self.args]
        kwargs = {k: constant(v) if isinstance(v, np.ndarray) else v for k, v in self.kwargs.items()}
        return fn(*positional, *args, **kwargs, **keywords)

    def stored(self, k: int) -> np.ndarray:
        """arrays[k] as its tensor is stored (transposed inputs swapped)."""
        a = self.arrays[k]
        return np.ascontiguousarray(a.swapaxes(-1, -2)) if k in self.transposed else a


@dataclass(frozen=True)
class Example:
    """Fixed input shapes and options; targets: inputs with values in [0, 1) and no gradient."""

    shapes: tuple[tuple[int, ...], ...]
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)
    targets: tuple[int, ...] = ()

    def sample(self, rng: np.random.Generator, dtype=np.float32) -> Sample:
        arrays = [
            (rng.random(s) if k in self.targets else rng.standard_normal(s)).astype(dtype)
            for k, s in enumerate(self.shapes)
        ]
        grads = [k not in self.targets for k in range(len(arrays))]
        return Sample(arrays, self.args, dict(self.kwargs), grads)


@dataclass(frozen=True)
class BadInput:
    """call(op) must raise error with a message matching words (a regular expression)."""

    what: str
    call: Callable[[Callable], object]
    error: type[Exception]
    words: str


@dataclass(frozen=True)
class OpInfo:
    name: str
    op: Callable
    torch: str | Callable | None
    inputs: Inputs
    reference: Callable | None = None
    bad: tuple[BadInput, ...] = ()
    kernel: bool = False
    second_order_elements: int = 0
    torch_constant: tuple[int, ...] = ()  # inputs PyTorch's callable does not differentiate
    example: Example | None = None
    benchmark: tuple[Example, ...] = ()

    def torch_op(self) -> Callable | None:
        """PyTorch's callable, importing torch now (ImportError where it is not installed)."""
        if self.torch is None or self.torch == SAME:
            return None if self.torch is None else self.op
        import torch

        if callable(self.torch):
            return self.torch(torch)
        return operator.attrgetter(self.torch)(torch)


# ------------------------------------------------------------------ helpers of the entries
def _x4(*shape, dtype=np.float32) -> Tensor:
    """Zeros of a shape (default NCHW 2×1×4×4), for the bad inputs."""
    return Tensor(np.zeros(shape or (2, 1, 4, 4)), dtype=dtype)


def _tensor(data) -> Tensor:
    return Tensor(data)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _where(a, b, condition):
    return ops.where(condition, a, b)


def _dropout_seeded(x, p=0.5, training=True):
    """Dropout with the same mask at every call (seed 0): differentiable like any fixed mask."""
    manual_seed(0)
    return F.dropout(x, p, training)


def _cube(x):
    return x**3


def _two_to_the(x):
    return 2.0**x


def _scalar_arithmetic(x):
    return (1 - x) / 3 + 2 * x


def _reduced(reduce, reduction):
    return reduce.mean() if reduction == "mean" else reduce.sum()


def _sigmoid(z):
    return np.exp(-np.logaddexp(0, -z))  # 1 / (1 + e^-z) without overflow


def _numpy_dims(x, dim):
    return None if dim is None else tuple(d % x.ndim for d in ([dim] if isinstance(dim, int) else dim))


def _reduction_reference(fn):
    def reference(x, dim=None, keepdim=False, **kw):
        return fn(x, axis=_numpy_dims(x, dim), keepdims=keepdim, **kw)

    return reference


def _max_along(pick):
    def reference(x, dim, keepdim=False):
        index = np.expand_dims(pick(x, axis=dim), dim)
        values = np.take_along_axis(x, index, axis=dim)
        return (values, index) if keepdim else (values.squeeze(dim), index.squeeze(dim))

    return reference


def _softmax(x, dim):
    e = np.exp(x - x.max(dim, keepdims=True))
    return e / e.sum(dim, keepdims=True)


def _clamp(x, min=None, max=None):  # noqa: A002
    return np.minimum(np.maximum(x, -np.inf if min is None else min), np.inf if max is None else max)


def _pool_reference(reduce):
    def reference(x, kernel_size, stride=None, padding=0):
        kernel = _pair(kernel_size)
        return loops.pool2d(x, kernel, _pair(stride or kernel), _pair(padding), reduce)

    return reference


def _upsample_nearest(x, scale_factor, mode="nearest"):
    """PyTorch's nearest: output pixel p reads input ⌊p / s⌋."""
    sh, sw = (scale_factor, scale_factor) if np.isscalar(scale_factor) else scale_factor
    h, w = x.shape[2:]
    rows = np.minimum((np.arange(int(h * sh)) / sh).astype(int), h - 1)
    cols = np.minimum((np.arange(int(w * sw)) / sw).astype(int), w - 1)
    return x[:, :, rows][:, :, :, cols]


def _torch_sigmoid_mse(torch):
    return lambda z, y, reduction="mean": torch.nn.functional.mse_loss(torch.sigmoid(z), y, reduction=reduction)


def _torch_where(torch):
    return lambda a, b, condition: torch.where(condition, a, b)


def _torch_upsample(mode):
    def peer(torch):
        kw = {"align_corners": False} if mode == "bilinear" else {}
        return lambda x, scale_factor, mode=mode: torch.nn.functional.interpolate(x, None, scale_factor, mode, **kw)

    return peer


def _cross_entropy(z, labels, reduction="mean"):
    logp = z - z.max(1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(1, keepdims=True))
    return _reduced(-logp[np.arange(len(labels)), labels], reduction)


def _bce(p, y, reduction="mean"):
    return _reduced(-(y * np.log(p) + (1 - y) * np.log(1 - p)), reduction)


def _bce_logits(z, y, reduction="mean"):
    return _reduced(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))), reduction)


# ------------------------------------------------------------------ the table
UNARY = Inputs("same")
KERNEL_LIMIT = 60  # second derivatives on a kernel device up to this many input elements

# fmt: off
OPS: list[OpInfo] = [
    # elementwise, two operands broadcast together
    OpInfo("add", ops.add, "add", Inputs("broadcast"), np.add),
    OpInfo("sub", ops.sub, "sub", Inputs("broadcast"), np.subtract),
    OpInfo("mul", ops.mul, "mul", Inputs("broadcast"), np.multiply),
    OpInfo("div", ops.div, "div", Inputs("broadcast", domain="positive"), np.divide),
    OpInfo("maximum", ops.maximum, "maximum", Inputs("broadcast"), np.maximum),
    OpInfo("minimum", ops.minimum, "minimum", Inputs("broadcast"), np.minimum),
    OpInfo("pow", ops.pow, "pow", Inputs("broadcast", domain="positive"), np.power),
    OpInfo("where", _where, _torch_where, Inputs("where"), lambda a, b, condition: np.where(condition, a, b)),
    OpInfo("clamp_tensor", ops.clamp, "clamp", Inputs("clamp_tensor"), _clamp,
           bad=(BadInput("min='a'", lambda op: op(_tensor([1.0, 1.0]), min="a"), TypeError,
                         "clamp's min must be a number, a Tensor"),
                BadInput("of a list", lambda op: op([1.0], min=_tensor([1.0])), TypeError,
                         "input must be a Tensor, got list"))),
    # elementwise, one operand
    OpInfo("neg", ops.neg, "neg", UNARY, np.negative),
    OpInfo("exp", ops.exp, "exp", UNARY, np.exp),
    OpInfo("log", ops.log, "log", Inputs("same", domain="positive"), np.log),
    OpInfo("sqrt", ops.sqrt, "sqrt", Inputs("same", domain="positive"), np.sqrt),
    OpInfo("abs", ops.abs, "abs", Inputs("same", kinks=(0.0,)), np.abs),
    OpInfo("clamp", ops.clamp, "clamp", Inputs("same", kinks=(-0.55, 0.45), kwargs=dict(min=-0.55, max=0.45)), _clamp),
    OpInfo("pow_scalar", _cube, SAME, UNARY, _cube),
    OpInfo("rpow", _two_to_the, SAME, UNARY, _two_to_the),
    OpInfo("scalar_arithmetic", _scalar_arithmetic, SAME, UNARY, _scalar_arithmetic),
    OpInfo("relu", F.relu, "relu", Inputs("same", kinks=(0.0,)), lambda x: np.maximum(x, 0),
           bad=(BadInput("of a NumPy array", lambda op: op(np.ones(3)), TypeError,
                         "ReLU takes tensors, got ndarray"),)),
    OpInfo("leaky_relu", F.leaky_relu, "nn.functional.leaky_relu",
           Inputs("same", kinks=(0.0,), kwargs=dict(negative_slope=0.2)),
           lambda x, negative_slope: np.where(x > 0, x, negative_slope * x),
           bad=(BadInput("slope None", lambda op: op(_tensor(np.ones(3)), None), TypeError,
                         "negative_slope must be a finite"),)),
    OpInfo("sigmoid", F.sigmoid, "sigmoid", UNARY, _sigmoid),
    OpInfo("tanh", F.tanh, "tanh", UNARY, np.tanh),
    OpInfo("softplus", F.softplus, "nn.functional.softplus", Inputs("same", domain="wide"),
           lambda x: np.logaddexp(0, x)),
    OpInfo("silu", F.silu, "nn.functional.silu", Inputs("same", domain="wide"), lambda x: x * _sigmoid(x),
           kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("of a NumPy array", lambda op: op(np.ones(3)), TypeError, "silu takes tensors, got ndarray"),),
           example=Example(((4, 300),)), benchmark=(Example(((128, 784),)),)),
    OpInfo("softmax", F.softmax, "softmax", Inputs("reduce", params=dict(one_dim=True, keepdim=False)), _softmax),
    OpInfo("log_softmax", F.log_softmax, "log_softmax", Inputs("reduce", params=dict(one_dim=True, keepdim=False)),
           lambda x, dim: np.log(_softmax(x, dim)),
           bad=(BadInput("dim=None", lambda op: op(_tensor(np.zeros((2, 3))), dim=None), TypeError,
                         "dim must be an integer"),)),
    OpInfo("dropout", _dropout_seeded, None, Inputs("same", choices=dict(p=(0.1, 0.5, 0.8))),
           bad=(BadInput("p as a string", lambda op: op(_tensor(np.zeros(3)), "0.5"), TypeError, "finite number"),
                BadInput("p above 1", lambda op: op(_tensor(np.ones(3)), 1.5), ValueError, r"\[0, 1\]"),
                BadInput("training='no'", lambda op: op(_tensor(np.ones(3)), 0.5, training="no"), TypeError,
                         "True or False"))),
    # reductions
    OpInfo("sum", ops.sum, "sum", Inputs("reduce"), _reduction_reference(np.sum),
           bad=(BadInput("dim=True", lambda op: op(_tensor(np.zeros((2, 3))), dim=True), TypeError,
                         "dim must be an integer, got True"),
                BadInput("dim 3 of 3 dims", lambda op: op(_tensor(np.zeros((3, 4, 5))), 3), IndexError,
                         "out of range"))),
    OpInfo("mean", ops.mean, "mean", Inputs("reduce"), _reduction_reference(np.mean)),
    OpInfo("amax", ops.amax, "amax", Inputs("reduce"), _reduction_reference(np.amax)),
    OpInfo("amin", ops.amin, "amin", Inputs("reduce"), _reduction_reference(np.amin)),
    OpInfo("var", ops.var, "var", Inputs("reduce", params=dict(min_count=2)), _reduction_reference(
        lambda x, axis, keepdims: np.var(x, axis=axis, keepdims=keepdims, ddof=1))),
    OpInfo("max_dim", ops.max, "max", Inputs("reduce", params=dict(one_dim=True)), _max_along(np.argmax),
           bad=(BadInput("over two dims", lambda op: op(_tensor(np.zeros((2, 3))), dim=(0, 1)), TypeError,
                         "amax takes several"),)),
    OpInfo("min_dim", ops.min, "min", Inputs("reduce", params=dict(one_dim=True)), _max_along(np.argmin)),
    # products
    OpInfo("matmul", ops.matmul, "matmul", Inputs("matmul"), np.matmul, kernel=True,
           second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("mixed dtypes", lambda op: op(_x4(2, 2), _x4(2, 2, dtype=np.float64)), TypeError, "dtypes"),
                BadInput("of a list", lambda op: op(_tensor(np.ones((3, 2))), [[1.0], [1.0]]), TypeError,
                         "other must be a Tensor"),
                BadInput("@ a list operand", lambda op: [[1.0, 1.0, 1.0]] @ _tensor(np.ones((3, 2))), TypeError,
                         "unsupported operand type"),
                BadInput("a list @ operand", lambda op: _tensor(np.ones((3, 2))) @ [[1.0], [1.0]], TypeError,
                         "unsupported operand type"),
                BadInput("sizes that do not fit", lambda op: op(_x4(2, 3), _x4(2, 3)), ValueError, "do not fit")),
           example=Example(((3, 17, 9), (9, 70))),
           benchmark=(Example(((128, 784), (784, 256))),)),
    OpInfo("linear", F.linear, "nn.functional.linear", Inputs("linear"),
           lambda x, w, b=None: x @ w.T + (0 if b is None else b), kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("of int8", lambda op: op(_tensor(np.ones((2, 3), np.int8)), _tensor(np.ones((4, 3), np.int8))),
                         TypeError, "integers would wrap around"),),
           example=Example(((70, 33), (65, 33), (65,))),
           benchmark=(Example(((128, 784), (256, 784), (256,))),
                      Example(((128, 256), (256, 256), (256,))))),
    # shapes and indexing
    OpInfo("reshape", ops.reshape, "Tensor.reshape", Inputs("reshape"), lambda x, *shape: x.reshape(shape),
           bad=(BadInput("(2.0, 3.0)", lambda op: op(_tensor(np.ones(6)), 2.0, 3.0), TypeError,
                         "must be an integer, got 2.0"),
                BadInput("(-2, -3)", lambda op: op(_tensor(np.ones(6)), -2, -3), ValueError, "must be ≥ -1, got -2"),
                BadInput("(4, 2) of (2, 3)", lambda op: op(_x4(2, 3), 4, 2), ValueError,
                         r"cannot reshape a tensor of shape \(2, 3\)"))),
    OpInfo("permute", ops.permute, "Tensor.permute", Inputs("permute"), lambda x, *dims: np.transpose(x, dims),
           bad=(BadInput("(0, 3) of 2 dims", lambda op: op(_x4(2, 3), 0, 3), IndexError,
                         r"range of \[-2, 1\], but got 3"),)),
    OpInfo("T", operator.attrgetter("T"), SAME, UNARY, np.transpose),
    OpInfo("transpose", ops.transpose, "transpose", Inputs("transpose"), np.swapaxes),
    OpInfo("unflatten", ops.unflatten, "unflatten", Inputs("unflatten"),
           lambda x, dim, sizes: x.reshape(x.shape[: dim % x.ndim] + tuple(sizes) + x.shape[dim % x.ndim + 1 :])),
    OpInfo("unsqueeze", ops.unsqueeze, "unsqueeze", Inputs("unsqueeze"), lambda x, dim: np.expand_dims(x, dim),
           bad=(BadInput("(5) of 2 dims", lambda op: op(_x4(1, 3), 5), IndexError, r"range of \[-3, 2\], but got 5"),)),
    OpInfo("squeeze", ops.squeeze, "squeeze", Inputs("squeeze"), lambda x, dim: np.squeeze(x, dim),
           bad=(BadInput("(2) of (1, 3)", lambda op: op(_x4(1, 3), 2), IndexError, "but got 2"),)),  # it removed dim 0
    OpInfo("flatten", ops.flatten, "flatten", Inputs("flatten"),
           lambda x, start_dim=0, end_dim=-1: x.reshape(
               x.shape[: start_dim % x.ndim] + (-1,) + x.shape[end_dim % x.ndim + 1 :]),
           bad=(BadInput("start_dim=4", lambda op: op(_x4(2, 3), start_dim=4), IndexError, "start_dim out of range"),
                BadInput("(2, 1)", lambda op: op(_x4(2, 3, 4), 2, 1), ValueError,
                         "start_dim 2 comes after end_dim 1"))),
    OpInfo("pad", ops.pad, "nn.functional.pad", Inputs("pad", kwargs=dict(value=0.5)),
           lambda x, pads, value: np.pad(x, [(0, 0)] * (x.ndim - len(pads) // 2)
                                         + [pads[2 * k : 2 * k + 2] for k in range(len(pads) // 2)][::-1],
                                         constant_values=value),
           bad=(BadInput("value None", lambda op: op(_tensor(np.ones(3)), (1, 1), value=None), TypeError,
                         "pad's value must be a number"),)),
    OpInfo("index", ops.getitem, "Tensor.__getitem__", Inputs("index"), operator.getitem),
    OpInfo("concat", ops.concat, "cat", Inputs("concat"), lambda arrays, dim: np.concatenate(arrays, dim),
           bad=(BadInput("dim=5", lambda op: op([_x4(2), _x4(2)], dim=5), IndexError, "but got 5"),
                BadInput("another dim differs", lambda op: op([_x4(2, 3), _x4(3, 2)], 0), ValueError,
                         "differ in another dim"))),
    OpInfo("stack", ops.stack, "stack", Inputs("concat", params=dict(same=True)),
           lambda arrays, dim: np.stack(arrays, dim),
           bad=(BadInput("dim=7", lambda op: op([_x4(2), _x4(2)], dim=7), IndexError, "but got 7"),
                BadInput("two shapes", lambda op: op([_x4(2), _x4(3)]), ValueError, "one shape"))),
    # images
    OpInfo("conv2d", F.conv2d, "nn.functional.conv2d", Inputs("conv"),
           lambda x, w, b=None, stride=1, padding=0: loops.conv2d(x, w, b, _pair(stride), _pair(padding)),
           kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("stride 0", lambda op: op(_x4(), _x4(1, 1, 3, 3), stride=0), ValueError, "stride must be ≥ 1"),
                BadInput("stride a float", lambda op: op(_x4(), _x4(1, 1, 3, 3), stride=1.5), TypeError,
                         "stride must be an int"),
                BadInput("stride a string", lambda op: op(_x4(1, 1, 5, 5), _x4(1, 1, 3, 3), stride="2"), TypeError,
                         "stride must be an int or a pair"),
                BadInput("on a NumPy array", lambda op: op(np.zeros((1, 1, 4, 4)), _x4(1, 1, 3, 3)), TypeError,
                         "must be a Tensor"),
                BadInput("weight of 2 dims", lambda op: op(_x4(), _x4(3, 3)), ValueError, "weight must have 4 dims"),
                BadInput("mixed dtypes", lambda op: op(_x4(), _x4(1, 1, 3, 3, dtype=np.float64)), TypeError,
                         "share a dtype"),
                BadInput("of int8", lambda op: op(_tensor(np.ones((1, 1, 4, 4), np.int8)),
                                                  _tensor(np.ones((1, 1, 3, 3), np.int8))),
                         TypeError, "integers would wrap around"),
                BadInput("channels that differ", lambda op: op(_x4(1, 2, 5, 5), _x4(4, 3, 3, 3)), ValueError,
                         "expects 3 input channels"),
                BadInput("input of 3 dims", lambda op: op(_x4(2, 5, 5), _x4(4, 2, 3, 3)), ValueError, "NCHW"),
                BadInput("no output pixel", lambda op: op(_x4(1, 1, 2, 2), _x4(1, 1, 3, 3)), ValueError,
                         "output size")),
           example=Example(((2, 3, 9, 9), (4, 3, 3, 3), (4,)), (2, 1)),
           benchmark=(Example(((128, 1, 28, 28), (16, 1, 3, 3), (16,)), (2, 1)),
                      Example(((128, 16, 14, 14), (32, 16, 3, 3), (32,)), (2, 1)),
                      Example(((128, 32, 7, 7), (64, 32, 3, 3), (64,)), (1, 1)))),
    OpInfo("conv_transpose2d", F.conv_transpose2d, "nn.functional.conv_transpose2d", Inputs("conv_transpose"),
           lambda x, w, b=None, stride=1, padding=0, output_padding=0: loops.conv_transpose2d(
               x, w, b, _pair(stride), _pair(padding), _pair(output_padding)),
           kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("output_padding ≥ stride", lambda op: op(_x4(), _x4(1, 1, 3, 3), stride=2, output_padding=2),
                         ValueError, "smaller than stride"),),
           example=Example(((2, 4, 5, 5), (4, 3, 3, 3), (3,)), (2, 1, 1)),
           benchmark=(Example(((128, 64, 7, 7), (64, 32, 3, 3), (32,)), (1, 1)),
                      Example(((128, 32, 7, 7), (32, 16, 3, 3), (16,)), (2, 1, 1)))),
    OpInfo("max_pool2d", F.max_pool2d, "nn.functional.max_pool2d", Inputs("pool", domain="distinct"),
           _pool_reference(np.max), kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("kernel 0", lambda op: op(_x4(), 0), ValueError, "kernel_size must be ≥ 1"),
                BadInput("of booleans", lambda op: op(_x4(dtype=np.bool_), 2), TypeError, "input holds booleans")),
           example=Example(((2, 3, 8, 8),), (2,)),
           benchmark=(Example(((128, 16, 28, 28),), (2,)), Example(((128, 8, 14, 14),), (2,)))),
    OpInfo("avg_pool2d", F.avg_pool2d, "nn.functional.avg_pool2d", Inputs("pool", domain="distinct"),
           _pool_reference(np.mean), kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("padding over half", lambda op: op(_x4(), 2, 1, 2), ValueError, "half the kernel"),
                BadInput("of booleans", lambda op: op(_x4(dtype=np.bool_), 2), TypeError, "input holds booleans")),
           example=Example(((2, 3, 8, 8),), (3, 2, 1)),
           benchmark=(Example(((128, 16, 28, 28),), (2,)),)),
    OpInfo("upsample_nearest", F.interpolate, _torch_upsample("nearest"),
           Inputs("upsample", kwargs=dict(mode="nearest")), _upsample_nearest,
           kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("scale 0", lambda op: op(_x4(), 0), ValueError, "must be positive"),
                BadInput("scale a string", lambda op: op(_x4(), "2"), TypeError, "number or a pair of numbers"),
                BadInput("unknown mode", lambda op: op(_x4(1, 1, 2, 2), 2, "cubic"), ValueError,
                         "unknown mode 'cubic'")),
           example=Example(((2, 3, 5, 5),), kwargs=dict(scale_factor=2, mode="nearest")),
           benchmark=(Example(((128, 8, 7, 7),), kwargs=dict(scale_factor=2, mode="nearest")),
                      Example(((128, 16, 14, 14),), kwargs=dict(scale_factor=2, mode="nearest")))),
    OpInfo("upsample_bilinear", F.interpolate, _torch_upsample("bilinear"),
           Inputs("upsample", kwargs=dict(mode="bilinear")),
           lambda x, scale_factor, mode: loops.upsample_bilinear(x, scale_factor),
           kernel=True, second_order_elements=KERNEL_LIMIT,
           bad=(BadInput("of integers", lambda op: op(_tensor(np.ones((1, 1, 2, 2), np.int64)), 2, "bilinear"),
                         TypeError, "needs a float tensor"),),
           example=Example(((2, 3, 5, 5),), kwargs=dict(scale_factor=2, mode="bilinear")),
           benchmark=(Example(((128, 16, 14, 14),), kwargs=dict(scale_factor=2, mode="bilinear")),)),
    # losses (input, target)
    OpInfo("mse_loss", F.mse_loss, "nn.functional.mse_loss", Inputs("loss", choices=dict(reduction=("mean", "sum"))),
           lambda x, y, reduction="mean": _reduced((x - y) ** 2, reduction),
           bad=(BadInput("unknown reduction", lambda op: op(_x4(2), _x4(2), "avg"), ValueError,
                         "unknown reduction 'avg'"),
                BadInput("shapes that differ", lambda op: op(_x4(2), _x4(3)), ValueError,
                         r"shape \(2,\) and target shape \(3,\)"),
                BadInput("float64 target", lambda op: op(_x4(3), _x4(3, dtype=np.float64)), TypeError,
                         "float32 and target float64"),
                BadInput("of integers", lambda op: op(_tensor([1, 2]), _tensor([1, 2])), TypeError, "float tensor"),
                BadInput("of an empty batch", lambda op: op(_x4(0, 3), _x4(0, 3)), ValueError, "is empty"))),
    OpInfo("binary_cross_entropy", F.binary_cross_entropy, "nn.functional.binary_cross_entropy",
           Inputs("loss", domain=("probability", "probability"), choices=dict(reduction=("mean", "sum"))), _bce,
           torch_constant=(1,),
           bad=(BadInput("of a probability 1.5", lambda op: op(_tensor([1.5]), _tensor([1.0])), ValueError,
                         "probabilities"),)),
    OpInfo("binary_cross_entropy_with_logits", F.binary_cross_entropy_with_logits,
           "nn.functional.binary_cross_entropy_with_logits",
           Inputs("loss", domain=("wide", "probability"), choices=dict(reduction=("mean", "sum"))), _bce_logits,
           kernel=True, second_order_elements=KERNEL_LIMIT, torch_constant=(1,),
           bad=(BadInput("of an empty batch", lambda op: op(_x4(0), _x4(0)), ValueError, "is empty"),),
           example=Example(((4, 50), (4, 50)), targets=(1,)),
           benchmark=(Example(((128 * 784,), (128 * 784,)), targets=(1,)),)),
    OpInfo("sigmoid_mse_loss", F.sigmoid_mse_loss, _torch_sigmoid_mse,
           Inputs("loss", domain=("real", "probability"), choices=dict(reduction=("mean", "sum"))),
           lambda z, y, reduction="mean": _reduced((_sigmoid(z) - y) ** 2, reduction),
           kernel=True, second_order_elements=KERNEL_LIMIT, torch_constant=(1,),
           example=Example(((4, 50), (4, 50)), targets=(1,)),
           benchmark=(Example(((128 * 784,), (128 * 784,)), targets=(1,)),)),
    OpInfo("cross_entropy", F.cross_entropy, "nn.functional.cross_entropy",
           Inputs("cross_entropy", choices=dict(reduction=("mean", "sum"))), _cross_entropy,
           bad=(BadInput("of an empty batch", lambda op: op(_x4(0, 3), _tensor(np.zeros(0, np.int64))), ValueError,
                         "N ≥ 1"),
                BadInput("of integer logits",
                         lambda op: op(_tensor(np.ones((2, 3), np.int64)), _tensor(np.array([0, 1]))),
                         TypeError, "logits needs floating point"),
                BadInput("a label out of range", lambda op: op(_x4(2, 3), [0, 3]), ValueError,
                         r"labels must lie in \[0, 3\)"),
                BadInput("float labels", lambda op: op(_x4(2, 3), _tensor([0.0, 1.0])), ValueError, "integer labels"))),
]
# fmt: on

BY_NAME: dict[str, OpInfo] = {info.name: info for info in OPS}


def kernel_ops() -> list[OpInfo]:
    """The entries whose op runs our CUDA kernels: the doctor checks them, benchmarks/kernels.py times them."""
    return [info for info in OPS if info.kernel]
