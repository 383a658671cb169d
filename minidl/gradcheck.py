"""gradcheck and gradgradcheck: analytic first and second derivatives against central finite
differences in float64.

gradcheck: for a random weighting v of fn's output, the analytic gradient of s = Σ v·fn(x)
(one backward pass) must match (s(x + εe_k) - s(x - εe_k)) / 2ε for every element k of
every input that requires grad. A random v makes a wrong Jacobian show with probability
one, at the cost of one backward instead of one per output element.

gradgradcheck: gradcheck of h(x) = Σ_i Σ u_i · ∂s/∂x_i, the first-order gradients built with
create_graph=True and weighted by a random u; h's gradient is the Hessian of s applied to u,
so a wrong second derivative (an op's backward, differentiated through the ops it runs) shows
as gradcheck's would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from . import backend
from .autograd.engine import grad
from .autograd.function import enable_grad, no_grad
from .autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """Analytic and numeric gradients disagree."""


def numeric_vjp(forward: Callable[..., np.ndarray], weights, *arrays: np.ndarray, eps: float = 1e-6) -> list:
    """The gradients of s = Σ weights · forward(*arrays) with respect to each array, by central
    differences in float64: (s(a + εe_k) - s(a - εe_k)) / 2ε for every element k of every array."""
    arrays = [np.array(a, dtype=np.float64) for a in arrays]
    grads = [np.zeros_like(a) for a in arrays]
    for a, g in zip(arrays, grads):
        for k in np.ndindex(a.shape):
            saved = a[k]
            a[k] = saved + eps
            up = float((weights * forward(*arrays)).sum())
            a[k] = saved - eps
            down = float((weights * forward(*arrays)).sum())
            a[k] = saved
            g[k] = (up - down) / (2 * eps)
    return grads


def _checked(name: str, inputs: Sequence[Tensor]) -> list[int]:
    """The positions of the inputs that require grad (at least one, else ValueError)."""
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError(f"{name}: no input requires grad")
    return checked


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
    checked = _checked("gradcheck", inputs)
    for i in checked:
        if inputs[i].dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {inputs[i].dtype}; finite differences need float64")
        inputs[i].grad = None
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor._wrap(backend.move(weights, out.device), out.device)).sum().backward()

    originals = [inputs[i].data for i in checked]

    def forward(*arrays):  # fn of the checked inputs given as host arrays, its output on the host
        for i, a in zip(checked, arrays):
            inputs[i].data = backend.move(a, inputs[i].device)
        with no_grad():
            return backend.to_numpy(fn(*inputs).data)

    try:
        numerics = numeric_vjp(forward, weights, *(backend.to_numpy(a) for a in originals), eps=eps)
    finally:
        for i, original in zip(checked, originals):
            inputs[i].data = original
    for i, numeric in zip(checked, numerics):
        x = inputs[i]
        analytic = np.zeros(x.shape) if x.grad is None else x.grad.numpy()
        for k in np.ndindex(*x.shape):
            if not abs(analytic[k] - numeric[k]) <= atol + rtol * abs(numeric[k]):
                raise GradcheckError(
                    f"gradient of input {i} (shape {x.shape}) at element {k}: "
                    f"analytic {analytic[k]:.8g}, numeric {numeric[k]:.8g}"
                )
    return True


def gradgradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    seed: int = 0,
) -> bool:
    """True if fn's second derivatives are right for every input with requires_grad (see the module's
    docstring); else GradcheckError."""
    inputs = list(inputs)
    checked = _checked("gradgradcheck", inputs)
    rng = np.random.default_rng(seed + 1)
    with no_grad():
        out_shape = fn(*inputs).shape
    v = rng.standard_normal(out_shape)
    u = [rng.standard_normal(inputs[i].shape) for i in checked]

    def first_order(*xs: Tensor) -> Tensor:
        with enable_grad():  # gradcheck evaluates this under no_grad for its finite differences
            out = fn(*xs)
            device = out.device
            s = (out * Tensor._wrap(backend.move(v, device), device)).sum()
            wrt = [xs[i] for i in checked]
            grads = grad(s, wrt, create_graph=True, allow_unused=True)
            total = sum((x * 0).sum() for x in wrt)  # keeps h a function of x where the gradients are constant
            for g, weights in zip(grads, u):
                if g is not None:
                    total = total + (g * Tensor._wrap(backend.move(weights, device), device)).sum()
            return total

    return gradcheck(first_order, inputs, eps=eps, atol=atol, rtol=rtol, seed=seed)
