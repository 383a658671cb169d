"""Corruptions for denoising autoencoders: functions of (clean batch, rng) -> corrupted batch.

x is a float array in [0, 1] (NumPy or CuPy) or a Tensor; rng a numpy.random.Generator, or
CuPy's generator for CuPy arrays (backend.generator(device) gives the one of a device), so
that noise is drawn where the batch lives. Only the generator methods that CuPy's has are
used (random, standard_normal).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from .. import backend
from ..autograd.tensor import Tensor


def _on_floats(noise: Callable) -> Callable:
    """noise(x, ...), refusing an x that does not hold floats (uint8 pixels 0..255 have no noise of that dtype)."""

    @functools.wraps(noise)
    def checked(x, *args, **options):
        dtype = getattr(x, "dtype", None)
        if dtype is None or dtype.kind != "f":
            got = dtype or type(x).__name__
            raise TypeError(f"{noise.__name__}: x must be a float array or tensor in [0, 1], got {got}; "
                            "scale it first (e.g. x.astype(np.float32) / 255)")  # fmt: skip
        return noise(x, *args, **options)

    return checked


@_on_floats
def gaussian(x, rng, sigma: float, clip: bool = True):
    """x + N(0, σ²), clipped to [0, 1] unless clip=False."""
    ### BEGIN SOLUTION exercise 9
    noisy = x + rng.standard_normal(x.shape, dtype=x.dtype) * sigma
    return noisy.clip(0, 1) if clip else noisy
    ### END SOLUTION


@_on_floats
def masking(x, rng, fraction: float):
    """Set a random fraction of the pixels to 0."""
    return x * (rng.random(x.shape, dtype=x.dtype) >= fraction)


@_on_floats
def salt_and_pepper(x, rng, fraction: float):
    """Set a random fraction of the pixels to 0 or 1, each with probability one half."""
    ### BEGIN SOLUTION exercise 9
    hit = rng.random(x.shape, dtype=x.dtype) < fraction
    salt = rng.random(x.shape, dtype=x.dtype) < 0.5
    return backend.array_module_of(x).where(hit, salt.astype(x.dtype), x)
    ### END SOLUTION


@_on_floats
def uniform(x, rng, amplitude: float, clip: bool = True):
    """x + U(-a, a), clipped to [0, 1] unless clip=False."""
    noisy = x + (rng.random(x.shape, dtype=x.dtype) * 2 - 1) * amplitude
    return noisy.clip(0, 1) if clip else noisy


MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # MNIST's training pixels (the constants of torchvision's Normalize)
READINGS = {  # what "corrupted by normalization" can mean: reading -> what is done to each image
    "standardize": "(x - mean) / std over each image's pixels, unclipped (TensorFlow's per-image standardisation)",
    "clipped": "(x - mean) / std over each image's pixels, clipped to [0, 1]",
    "dataset": f"(x - {MNIST_MEAN}) / {MNIST_STD}, MNIST's pixel mean and std (torchvision's Normalize)",
    "l2": "x / ||x||_2 over each image's pixels (tf.nn.l2_normalize)",
}
MOST_LIKELY = "standardize"  # the assignment's reading (see examples/normalization.py)


@_on_floats
def normalization(x, rng=None, reading: str = MOST_LIKELY):
    """x "corrupted by normalization" in one of the READINGS the CudaVision assignment leaves open; no
    randomness, no level. (N, ...) -> (N, ...), each image on its own except for 'dataset'.
    On MNIST, 'standardize' puts the background near -0.4 and strokes near 2-3; 'clipped' then keeps
    [0, 1], so faint strokes vanish and thick ones turn into plateaus; 'dataset' shifts and scales
    every image alike (background -0.42, strokes up to 2.82); 'l2' scales each image down about
    tenfold, to a faint copy."""
    if reading not in READINGS:
        raise ValueError(f"unknown normalization reading {reading!r}, expected one of {sorted(READINGS)}")
    xp = backend.array_module_of(x)
    axes = tuple(range(1, x.ndim))
    if reading == "dataset":
        out = (x - MNIST_MEAN) / MNIST_STD
    elif reading == "l2":
        out = x / xp.maximum(xp.sqrt((x * x).sum(axis=axes, keepdims=True)), 1e-12)
    else:
        out = (x - x.mean(axis=axes, keepdims=True)) / xp.maximum(x.std(axis=axes, keepdims=True), 1e-6)
        out = out.clip(0, 1) if reading == "clipped" else out
    return out.astype(x.dtype, copy=False)


CORRUPTIONS: dict[str, Callable] = {
    "gaussian": gaussian,
    "masking": masking,
    "salt_and_pepper": salt_and_pepper,
    "uniform": uniform,
    "normalization": normalization,
}


def corruption(spec: str) -> Callable:
    """A corruption from text: 'gaussian:0.5', 'gaussian:0.3:noclip', 'masking:0.3',
    'salt_and_pepper:0.2', 'uniform:0.4', 'normalization:standardize' (a reading of READINGS)."""
    name, *params = spec.split(":")
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}, expected one of {sorted(CORRUPTIONS)}")
    if name == "normalization":
        if len(params) != 1 or params[0] not in READINGS:
            raise ValueError(f"corruption {spec!r}: normalization takes one reading, 'normalization:READING' with "
                             f"READING one of {', '.join(READINGS)}")  # fmt: skip
        return _on_tensors(lambda x, rng: normalization(x, rng, params[0]))
    try:
        level = float(params[0])
    except (IndexError, ValueError) as e:
        raise ValueError(f"corruption {spec!r} needs a level, e.g. '{name}:0.3'") from e
    if not level >= 0 or level == float("inf"):
        raise ValueError(f"corruption level must be a finite number ≥ 0, got {params[0]!r}")
    flags = params[1:]
    allowed = ["noclip"] if name in ("gaussian", "uniform") else []
    if any(flag not in allowed for flag in flags) or len(flags) > 1:
        raise ValueError(
            f"corruption {spec!r}: unknown option {':'.join(flags)!r}; {name} takes "
            + (f"'{name}:LEVEL' or '{name}:LEVEL:noclip'" if allowed else f"'{name}:FRACTION' only")
        )
    clip = "noclip" not in flags
    if name in ("gaussian", "uniform"):
        return _on_tensors(lambda x, rng: CORRUPTIONS[name](x, rng, level, clip))
    if level > 1:
        raise ValueError(f"{name} takes a fraction in [0, 1], got {level}")
    return _on_tensors(lambda x, rng: CORRUPTIONS[name](x, rng, level))


def _on_tensors(noise: Callable) -> Callable:
    """noise(x, rng) for arrays, extended to Tensors (a new constant tensor on x's device)."""

    def apply(x, rng):
        return Tensor._wrap(noise(x.data, rng), x.device) if isinstance(x, Tensor) else noise(x, rng)

    return apply
