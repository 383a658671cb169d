"""Reverse-mode automatic differentiation: Tensor, Function and the backward engine."""

from .tensor import Function, Tensor, enable_grad, grad, is_grad_enabled, no_grad

__all__ = ["Function", "Tensor", "enable_grad", "grad", "is_grad_enabled", "no_grad"]
