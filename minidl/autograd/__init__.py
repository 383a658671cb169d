"""Reverse-mode automatic differentiation, one idea a module:

mode.py       grad mode: whether ops record the graph (per thread), no_grad, enable_grad
tensor.py     Tensor: the array, its gradient and the node that made it; its methods forward to ops
function.py   Function: an op's node (forward on arrays or its kernel path; backward once, in ops)
engine.py     the backward walk (run_backward), unbroadcast, grad (torch.autograd.grad's)
"""

from .engine import grad, run_backward, unbroadcast
from .function import Function
from .mode import enable_grad, is_grad_enabled, no_grad
from .tensor import Tensor

__all__ = ["Function", "Tensor", "enable_grad", "grad", "is_grad_enabled", "no_grad", "run_backward", "unbroadcast"]
