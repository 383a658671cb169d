"""Weight initialisers (in place, from the seeded host generator so both devices agree).

fan_in = size(1) · receptive field, fan_out = size(0) · receptive field, as PyTorch
computes them (so a ConvTranspose2d weight (in, out, kh, kw) has fan_in = out·kh·kw).
"""

from __future__ import annotations

import math

from .. import backend
from ..autograd.tensor import Tensor

GAINS = {"linear": 1.0, "sigmoid": 1.0, "conv2d": 1.0, "tanh": 5.0 / 3, "relu": math.sqrt(2.0)}


def fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dims, got shape {t.shape}")
    receptive = math.prod(t.shape[2:])
    return t.shape[1] * receptive, t.shape[0] * receptive


def gain(nonlinearity: str, a: float = 0.0) -> float:
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    if nonlinearity not in GAINS:
        raise ValueError(f"unknown nonlinearity {nonlinearity!r}, expected one of {sorted(GAINS) + ['leaky_relu']}")
    return GAINS[nonlinearity]


def _fill(t: Tensor, values) -> Tensor:
    t.data = backend.move(values.astype(t.dtype), t.device)
    return t


def uniform_(t: Tensor, low: float, high: float) -> Tensor:
    return _fill(t, backend.generator("cpu").uniform(low, high, t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    return _fill(t, backend.generator("cpu").normal(mean, std, t.shape))


def zeros_(t: Tensor) -> Tensor:
    t.data = t.data * 0
    return t


def _fan(t: Tensor, mode: str) -> int:
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"mode must be 'fan_in' or 'fan_out', got {mode!r}")
    return fans(t)[0 if mode == "fan_in" else 1]


def kaiming_normal_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "relu") -> Tensor:
    """N(0, std²) with std = gain / sqrt(fan)."""
    return normal_(t, 0.0, gain(nonlinearity, a) / math.sqrt(_fan(t, mode)))


def kaiming_uniform_(t: Tensor, a: float = 0.0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-b, b) with b = gain · sqrt(3 / fan)."""
    bound = gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-b, b) with b = gain · sqrt(6 / (fan_in + fan_out)) (Glorot)."""
    fan_in, fan_out = fans(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = fans(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))
