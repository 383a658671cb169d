"""What a regularised autoencoder adds to its loss: L1 and KL sparsity of a code, the contractive
penalty of a sigmoid encoder (by its formula) and of any encoder (jacobian_penalty, by double
backward)."""

from __future__ import annotations

from collections.abc import Callable

from .. import backend, ops
from ..autograd.engine import grad
from ..autograd.tensor import Tensor


# ------------------------------------------------------------------ penalties
def l1_penalty(code: Tensor) -> Tensor:
    """Mean over the batch of Σ_j |h_j|."""
    return ops.abs(code).sum() / code.shape[0]


def kl_sparsity(code: Tensor, rho: float) -> Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j), ρ̂_j the mean activation of unit j over the batch (activations in (0, 1))."""
    if not 0 < rho < 1:
        raise ValueError(f"target activation rho must be in (0, 1), got {rho}")
    rho_hat = ops.clamp(code.mean(0), 1e-6, 1 - 1e-6)
    return (rho * ops.log(rho / rho_hat) + (1 - rho) * ops.log((1 - rho) / (1 - rho_hat))).sum()


def contractive_penalty(x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:
    """‖J‖_F² of the sigmoid encoder h = σ(x Wᵀ + b), averaged over the batch, exactly:
    J_ji = h_j (1 - h_j) W_ji, so ‖J‖_F² = Σ_j (h_j (1 - h_j))² Σ_i W_ji².
    x (N, ...) is flattened to (N, in); weight (code, in); bias (code,)."""
    ### BEGIN SOLUTION exercise 11
    h = ops.sigmoid(ops.linear(x.reshape(x.shape[0], -1), weight, bias))
    slope = h * (1 - h)
    return ((slope * slope) * (weight * weight).sum(1)).sum() / x.shape[0]
    ### END SOLUTION


def jacobian_penalty(encode: Callable[[Tensor], Tensor], x: Tensor, samples: int | None = None) -> Tensor:
    """‖∂enc(x)/∂x‖_F² of any encoder, averaged over the batch, by double backward: a differentiable
    loss term (the contractive penalty of a deep or convolutional encoder). x (N, ...); the encoder
    must treat the samples of a batch independently (no batch statistics, no dropout). Each
    backward is the vector-Jacobian product of h = enc(x) (N, code) with a seed v (N, code):
      samples=None, exactly: Σ_j ‖∂h_j/∂x‖², one backward per code unit j, v = ones in column j
        (the product is ∂h_nj/∂x_n for every sample n at once: one backward serves the batch);
      samples=S, Hutchinson's estimate: the mean over S draws of ‖vᵀJ‖² with v of random signs,
        unbiased since E[v vᵀ] = I; one backward per draw, whatever the code size."""
    if samples is not None and samples < 1:
        raise ValueError(f"jacobian_penalty: samples must be a positive number of draws or None (exact), got {samples}")
    n = x.shape[0]
    x = x.detach().requires_grad_()  # the Jacobian is with respect to this batch, not what made it
    h = encode(x).reshape(n, -1)
    xp = backend.array_module(x.device)
    if samples is None:
        seeds = [xp.zeros(h.shape, h.dtype) for _ in range(h.shape[1])]
        for j, v in enumerate(seeds):
            v[:, j] = 1
    else:
        generator = backend.generator(x.device)
        seeds = [(generator.random(h.shape) < 0.5).astype(h.dtype) * 2 - 1 for _ in range(samples)]  # ±1
    total = None
    for v in seeds:
        (g,) = grad(h, x, grad_outputs=Tensor(v, device=x.device), retain_graph=True, create_graph=True)
        term = (g * g).sum()
        total = term if total is None else total + term
    return total / (n * (1 if samples is None else samples))
