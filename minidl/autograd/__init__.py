"""Reverse-mode automatic differentiation, one idea a module:

tensor.py     Tensor: the array, its gradient and the node that made it; its methods forward to ops
function.py   Function: an op's node (forward on arrays or its kernel path; backward once, in ops), grad mode
engine.py     the backward walk (run_backward), unbroadcast, grad (torch.autograd.grad's)
"""

from .tensor import Tensor  # noqa: I001  (first: function and engine need it)
from .engine import grad, run_backward, unbroadcast
from .function import Function, enable_grad, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "enable_grad", "grad", "is_grad_enabled", "no_grad", "run_backward", "unbroadcast"]
