"""Using codes: PCA's subspace (what a linear AE learns), interpolation between two codes, the
walk from noise to the data (and toward a chosen digit), and how plausible generated digits are."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.special import softmax

from .. import ops
from ..autograd.function import no_grad
from ..autograd.tensor import Tensor
from ..nn import (
    Module,
)


def pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The mean (D,) of x (N, ...) flattened to (N, D), and its first k principal directions as
    orthonormal columns (D, k): the right singular vectors of the centred data, largest first."""
    flat = x.reshape(len(x), -1).astype(np.float64)
    mean = flat.mean(axis=0)
    _, _, vt = np.linalg.svd(flat - mean, full_matrices=False)
    return mean, vt[:k].T


# --------------------------------------------------------------- using codes
def pick_pair(labels: np.ndarray, a: int, b: int, rng: np.random.Generator) -> tuple[int, int]:
    """Two different indices drawn at random, of an example of class a and one of class b."""
    i = rng.choice(np.flatnonzero(labels == a))
    j = rng.choice(np.flatnonzero((labels == b) & (np.arange(len(labels)) != i)))
    return int(i), int(j)


def interpolate_codes(model: Module, a: Tensor, b: Tensor, alphas: Sequence[float], logits: bool = False) -> Tensor:
    """Decoded images of (1 - α) f(a) + α f(b) for each α: a, b (1, ...) -> (len(alphas), 1, 28, 28)."""
    with no_grad():
        za, zb = model.encode(a), model.encode(b)
        codes = ops.concat([za * (1 - t) + zb * t for t in alphas], 0)
        out = model.decode(codes)
        return ops.sigmoid(out) if logits else out


def manifold_walk(
    model: Module, x: Tensor, steps: int, mode: str = "reconstruct", step_size: float = 0.1, logits: bool = False,
    target: Tensor | None = None, pull: float = 0.1,
) -> list[np.ndarray]:  # fmt: skip
    """Frames of x walking to the data manifold, r = g∘f the reconstruction, η = step_size:
    reconstruct: x ← x + η (r(x) - x), the lecture's step along the DAE's vector field r(x) - x
                 (which points toward the data, ∝ ∇ₓ log p(x)); η = 1 is x ← r(x);
    gradient:    x ← clip(x - η ∇ₓ ‖r(x) - x‖², 0, 1), ascent on -‖r(x) - x‖²;
    toward:      x ← clip(x - η ∇ₓ (‖r(x) - x‖² + λ‖x - t‖²), 0, 1), the same ascent with a pull of
                 weight λ (`pull`) toward a target image t (1, ...), e.g. the mean of one digit's images:
                 it ends where the manifold and the pull balance, not on t itself."""
    if mode not in WALKS:
        raise ValueError(f"manifold_walk: mode must be one of {WALKS}, got {mode!r}")
    if (target is None) == (mode == "toward"):
        raise ValueError("manifold_walk: give a target image for mode 'toward', and only for it")

    def reconstruct(t):
        out = model(t)
        return ops.sigmoid(out) if logits else out

    frames = [x.numpy()]
    for _ in range(steps):
        if mode == "reconstruct":
            with no_grad():
                x = x + step_size * (reconstruct(x) - x)
        else:
            x = x.detach().requires_grad_()
            error = ((reconstruct(x) - x) ** 2).sum()
            if target is not None:
                error = error + pull * ((x - target) ** 2).sum()
            error.backward()
            x = ops.clamp(x.detach() - step_size * x.grad, 0.0, 1.0)
        frames.append(x.numpy())
    return frames


WALKS = ("reconstruct", "gradient", "toward")


def plausibility(images: np.ndarray, logits: np.ndarray, digits: np.ndarray, chunk: int = 4096) -> dict:
    """Are images (M, 1, 28, 28) plausible digits? Given a classifier's logits (M, 10) for them and a
    set of real digits (K, 1, 28, 28): each image's predicted class, its confidence (the softmax's
    largest probability) and its RMS pixel distance to the nearest real digit."""
    p = softmax(logits, axis=1)
    a, b = images.reshape(len(images), -1).astype(np.float64), digits.reshape(len(digits), -1)
    nearest = np.full(len(a), np.inf)
    for start in range(0, len(b), chunk):
        part = b[start : start + chunk].astype(np.float64)
        d2 = (a**2).sum(1)[:, None] + (part**2).sum(1)[None] - 2 * a @ part.T
        nearest = np.minimum(nearest, d2.min(axis=1))
    return {"class": p.argmax(axis=1), "confidence": p.max(axis=1),
            "nearest": np.sqrt(np.maximum(nearest, 0) / a.shape[1])}  # fmt: skip


def class_changed(first: np.ndarray, last: np.ndarray, target: int | None = None) -> np.ndarray:
    """Per walk (or strip), from the judge's classes of its first and last frames (M,): whether it changed
    class, and with a target, whether it changed to the target. A walk that never leaves one class does
    not count, even when that class is the target: it went nowhere the judge can tell."""
    changed = np.asarray(first) != np.asarray(last)
    return changed if target is None else changed & (np.asarray(last) == target)
