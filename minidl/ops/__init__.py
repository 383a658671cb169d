"""Every differentiable op, grouped by family (one module each)."""

import sys

from ..autograd import tensor as tensor_module
from .activations import leaky_relu, log_softmax, relu, sigmoid, softmax, softplus, tanh
from .conv import conv2d, conv_transpose2d
from .dropout import dropout
from .elementwise import abs, add, clamp, div, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where
from .inplace import in_place
from .linalg import linear, matmul
from .losses import (
    binary_cross_entropy,
    binary_cross_entropy_with_logits,
    cross_entropy,
    mse_loss,
    sigmoid_mse_loss,
)
from .pooling import avg_pool2d, max_pool2d
from .reductions import amax, amin, max, mean, min, sum, var
from .shape import (
    concat,
    flatten,
    getitem,
    pad,
    permute,
    reshape,
    setitem,
    squeeze,
    stack,
    transpose,
    unflatten,
    unsqueeze,
)
from .silu import silu
from .upsample import upsample

__all__ = [
    "abs",
    "add",
    "avg_pool2d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "clamp",
    "concat",
    "conv2d",
    "conv_transpose2d",
    "cross_entropy",
    "div",
    "dropout",
    "exp",
    "flatten",
    "getitem",
    "in_place",
    "leaky_relu",
    "linear",
    "log",
    "log_softmax",
    "amax",
    "amin",
    "matmul",
    "max",
    "max_pool2d",
    "maximum",
    "mean",
    "min",
    "minimum",
    "mse_loss",
    "mul",
    "neg",
    "pad",
    "permute",
    "pow",
    "relu",
    "reshape",
    "setitem",
    "sigmoid",
    "sigmoid_mse_loss",
    "silu",
    "softmax",
    "softplus",
    "sqrt",
    "squeeze",
    "stack",
    "sub",
    "sum",
    "tanh",
    "transpose",
    "unflatten",
    "unsqueeze",
    "upsample",
    "var",
    "where",
]

tensor_module.ops = sys.modules[__name__]  # Tensor's operators and methods call the ops (see tensor.py)
