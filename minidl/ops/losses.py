"""Losses, each with reduction="mean" | "sum".

The fused losses take logits z and do sigmoid and loss in one op, computing the
loss and its gradient with respect to z in the same pass (one kernel on the kernel path):
  binary_cross_entropy_with_logits:  l = max(z, 0) - z·y + log(1 + e^-|z|),  dl/dz = σ(z) - y
  sigmoid_mse_loss:                  l = (σ(z) - y)²,                         dl/dz = 2(σ(z) - y)·σ(z)(1 - σ(z))
Both stay finite for any z (±1000 included). As in PyTorch, a target that requires grad gets
its gradient from every loss but cross_entropy's integer labels:
  binary_cross_entropy: dl/dy = log(1 - p) - log p (unclamped)
  binary_cross_entropy_with_logits: dl/dy = -z;  sigmoid_mse_loss: dl/dy = -2(σ(z) - y)
"""

from __future__ import annotations

import numpy as np

from .. import backend, validate
from ..autograd.function import Function
from ..autograd.tensor import Tensor
from ..runtime import Out, blocks, launch
from .activations import sigmoid, softmax, stable_sigmoid
from .elementwise import log, maximum

FUSED_KINDS = {"bce": 0, "mse": 1}  # the kind argument of kernels/sigmoid_loss.cu
MAX_LOSS_BLOCKS = 1024

REDUCTIONS = ("mean", "sum")


def _check(name: str, input: Tensor, target: Tensor, reduction: str) -> None:
    if not isinstance(input, Tensor):
        raise TypeError(f"{name}: input must be a Tensor, got {type(input).__name__}")
    if input.dtype.kind != "f":
        raise TypeError(f"{name}: input must be a float tensor, got {input.dtype}")
    if input.numel() == 0:
        raise ValueError(f"{name}: the input is empty (shape {input.shape}); a loss needs at least one element")
    if reduction not in REDUCTIONS:
        raise ValueError(f"{name}: unknown reduction {reduction!r}, expected one of {REDUCTIONS}")
    if input.shape != target.shape:
        raise ValueError(f"{name}: input shape {input.shape} and target shape {target.shape} differ")
    if input.dtype != target.dtype:
        raise TypeError(f"{name}: input is {input.dtype} and target {target.dtype}; give both one dtype")


def _reduce(elementwise, reduction: str):
    return elementwise.mean() if reduction == "mean" else elementwise.sum()


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean (or sum) of (input - target)²."""
    target = _as_target(target, input)
    _check("mse_loss", input, target, reduction)
    diff = input - target
    return _reduce(diff * diff, reduction)


class BinaryCrossEntropy(Function):
    """-(y log p + (1-y) log(1-p)), each log clamped at -100 as PyTorch does."""

    def forward(self, p, y, reduction):
        xp = self.xp
        self.scale = 1 / p.size if reduction == "mean" else 1
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped to -100 next
            loss = -(y * xp.maximum(xp.log(p), -100) + (1 - y) * xp.maximum(xp.log1p(-p), -100))
        return xp.asarray(loss.sum() * self.scale, dtype=p.dtype)

    def backward(self, g):
        (p, y), g = self.inputs, g * self.scale
        grad_p = g * (p - y) / maximum(p * (1 - p), 1e-12) if self.needs_grad[0] else None
        if not self.needs_grad[1]:
            return grad_p, None
        with np.errstate(divide="ignore", invalid="ignore"):  # p = 0 or 1: an infinite gradient, as PyTorch's
            return grad_p, g * (log(1 - p) - log(p))


class FusedSigmoidLoss(Function):
    """Sigmoid of logits fused with BCE or MSE: forward returns the loss and keeps dloss/dz, which
    backward hands on as an op (SigmoidLossGrad) so that it can be differentiated again."""

    def forward(self, z, y, kind, reduction):
        xp = self.xp
        scale = self.scale = 1 / z.size if reduction == "mean" else 1
        self.kind = kind
        e = xp.exp(-xp.abs(z))  # serves both the sigmoid and the log term
        s = stable_sigmoid(xp, z, e)
        if kind == "bce":
            loss = xp.maximum(z, 0) - z * y + xp.log1p(e)
            grad = s - y
        else:
            loss = (s - y) ** 2
            grad = 2 * (s - y) * s * (1 - s)
        self.save_for_backward(grad * scale)  # dloss/dz, computed with the loss
        return xp.asarray(loss.sum() * scale, dtype=z.dtype)

    def forward_kernel(self, z, y, kind, reduction):
        """Pass 1: gradient and per-block partial losses; pass 2: their sum, in a fixed order."""
        scale = self.scale = 1 / z.size if reduction == "mean" else 1
        self.kind = kind
        count = min(blocks(z.size), MAX_LOSS_BLOCKS)
        dz, partial = launch(
            "sigmoid_loss_forward", z, y, Out(z.shape), Out((count,)), count=z.size, kind=FUSED_KINDS[kind],
            scale=scale, grid=count,
        )  # fmt: skip
        self.save_for_backward(dz)
        return launch("sum_partials", partial, Out(()), count=count, scale=scale, grid=1)

    def backward(self, g):
        z, y = self.inputs
        dz = SigmoidLossGrad.apply(z, y, kind=self.kind, scale=self.scale, dz=self.saved[0].data)
        if not self.needs_grad[1]:
            return g * dz, None
        dy = -z if self.kind == "bce" else -2 * (sigmoid(z) - y)
        return g * dz, g * self.scale * dy


class SigmoidLossGrad(Function):
    """dloss/dz of the fused losses as an op of the logits z and the target y, times `scale`:
        bce: σ(z) - y                      d/dz = σ'            d/dy = -1
        mse: 2(σ(z) - y)σ'                 d/dz = 2σ'(σ' + (σ(z) - y)(1 - 2σ(z)))   d/dy = -2σ'
    with σ' = σ(z)(1 - σ(z)). Forward hands back the values the loss's forward computed (dz)."""

    def forward(self, z, y, kind, scale, dz):
        self.kind, self.scale = kind, scale
        return dz

    def backward(self, g):
        z, y = self.inputs
        s = sigmoid(z)
        slope = s * (1 - s)
        if self.kind == "bce":
            gz, gy = slope, -1.0
        else:
            gz, gy = 2 * slope * (slope + (s - y) * (1 - 2 * s)), -2 * slope
        g = g * self.scale
        return g * gz if self.needs_grad[0] else None, g * gy if self.needs_grad[1] else None


class CrossEntropy(Function):
    """-log softmax(z)[label] for z (N, C) and integer labels (N,); gradient softmax(z) - onehot."""

    def forward(self, z, labels, reduction):
        xp = self.xp
        shifted = z - z.max(axis=1, keepdims=True)
        log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
        rows = xp.arange(z.shape[0])
        self.scale = 1 / z.shape[0] if reduction == "mean" else 1
        onehot = xp.zeros_like(z)
        onehot[rows, labels] = 1
        self.save_for_backward(onehot)
        return xp.asarray(-log_probs[rows, labels].sum() * self.scale, dtype=z.dtype)

    def backward(self, g):
        (z,) = self.inputs
        return g * self.scale * (softmax(z, 1) - self.saved[0])


def _as_target(target, like: Tensor) -> Tensor:
    if not isinstance(like, Tensor):
        raise TypeError(f"a loss takes a Tensor as input, got {type(like).__name__}")
    return target if isinstance(target, Tensor) else Tensor(target, device=like.device, dtype=like.dtype)


def binary_cross_entropy(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """BCE of probabilities in [0, 1] against targets in [0, 1]."""
    target = _as_target(target, input)
    _check("binary_cross_entropy", input, target, reduction)
    lo, hi = float(input.data.min()), float(input.data.max())
    if lo < 0 or hi > 1:
        raise ValueError(f"binary_cross_entropy: input must be probabilities in [0, 1], got values in [{lo}, {hi}]")
    return BinaryCrossEntropy.apply(input, target, reduction=reduction)


def binary_cross_entropy_with_logits(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """BCE of sigmoid(input) against target, computed stably from the logits."""
    target = _as_target(target, input)
    _check("binary_cross_entropy_with_logits", input, target, reduction)
    return FusedSigmoidLoss.apply(input, target, kind="bce", reduction=reduction)


def sigmoid_mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """MSE between sigmoid(input) and target, fused into one op."""
    target = _as_target(target, input)
    _check("sigmoid_mse_loss", input, target, reduction)
    return FusedSigmoidLoss.apply(input, target, kind="mse", reduction=reduction)


def cross_entropy(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy of logits (N, C) against integer class labels (N,)."""
    if not isinstance(input, Tensor) or input.ndim != 2 or input.shape[0] == 0:
        raise ValueError(f"cross_entropy: expected logits (N, C) with N ≥ 1, got {getattr(input, 'shape', input)!r}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"cross_entropy: unknown reduction {reduction!r}, expected one of {REDUCTIONS}")
    validate.floating("cross_entropy's logits", input)
    labels = target.data if isinstance(target, Tensor) else target
    labels = Tensor(labels, device=input.device).data
    if input.ndim != 2 or labels.shape != input.shape[:1] or labels.dtype.kind not in "iu":
        raise ValueError(
            f"cross_entropy: expected logits (N, C) and integer labels (N,), got {input.shape} and "
            f"{tuple(labels.shape)} of dtype {labels.dtype}"
        )
    # the range is read on the host, except while a step is recorded into a CUDA graph (nothing runs
    # then: the same step's eager warm-up checked it)
    checked = labels.size and not backend.capturing(input.device)
    if checked and (int(labels.min()) < 0 or int(labels.max()) >= input.shape[1]):
        raise ValueError(
            f"cross_entropy: labels must lie in [0, {input.shape[1]}), got [{int(labels.min())}, {int(labels.max())}]"
        )
    return CrossEntropy.apply(input, labels=labels, reduction=reduction)
