"""gradcheck: analytic gradients against central finite differences in float64.

For a random weighting v of fn's output, the analytic gradient of s = Σ v·fn(x) (one
backward pass) must match (s(x + εe_k) - s(x - εe_k)) / 2ε for every element k of
every input that requires grad. A random v makes a wrong Jacobian show with
probability one, at the cost of one backward instead of one per output element.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import backend
from .autograd.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def _weighted_sum(out: Tensor, weights) -> float:
    return float(backend.to_numpy((out.data * weights).sum()))


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """True if fn's gradients are right for every input with requires_grad; else GradcheckError
    naming the input, the element and both values."""
    inputs = list(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")
        inputs[i].grad = None
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    xp = backend.array_module(out.device)
    weights = xp.asarray(np.random.default_rng(seed).standard_normal(out.shape))
    (out * Tensor._wrap(weights, out.device)).sum().backward()

    for i in checked:
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        for k in np.ndindex(*x.shape):
            original = x.data[k].copy()
            with no_grad():
                x.data[k] = original + eps
                plus = _weighted_sum(fn(*inputs), weights)
                x.data[k] = original - eps
                minus = _weighted_sum(fn(*inputs), weights)
            x.data[k] = original
            numeric = (plus - minus) / (2 * eps)
            if not abs(analytic[k] - numeric) <= atol + rtol * abs(numeric):
                raise GradcheckError(
                    f"gradient of input {i} (shape {x.shape}) at element {k}: "
                    f"analytic {analytic[k]:.8g}, numeric {numeric:.8g}"
                )
    return True
