"""Devices, array modules and random numbers: the one place that picks a device.

A device is one of
  "cpu"  -- NumPy arrays, NumPy implementations of every op;
  "cuda" -- CuPy arrays, our CUDA kernels through cupy.RawModule;
  "emu"  -- NumPy arrays, but every op that has a kernel runs its .cu source on
            the CPU emulator (slow; for tests and for students without a GPU).
Which calls run as kernels, and how, is minidl.runtime's business; this module knows only
devices, their array modules and their random generators.

The device is chosen by argument, then by MINIDL_DEVICE, then by what is present.
"""

from __future__ import annotations

import os
from functools import lru_cache
from types import ModuleType

import numpy as np

from . import validate

HOST, GPU, EMULATOR = "cpu", "cuda", "emu"
DEVICES = (HOST, GPU, EMULATOR)


# CuPy 13 is refused: in 13.x memory from a pool keeps no reference to its pool, so the .grad a captured
# step leaves (arrays of its graph's private pool) point at freed memory once the step is gone
# (cupy/cuda/memory.pyx v13.6.0:918-945, 1204, 1303; v14.2.0:945-968 keeps the chunk), and a module
# compiled with name expressions, as every kernel file is, is never read back from the disk cache,
# so every process compiles every file again (cupy/cuda/compiler.py v13.6.0:596-599; v14.2.0:545-560).
MIN_CUPY = (14, 0)


@lru_cache(maxsize=1)
def cupy_problem() -> str | None:
    """Why CuPy cannot be used here (not installed, too old, no GPU), or None when it can."""
    try:
        import cupy
    except ImportError:
        return (
            "CuPy is not installed (in minidl's folder: "
            'pip install -e ".[dev,cuda12]", or ".[dev,cuda13]" for CUDA 13)'
        )
    version = getattr(cupy, "__version__", "0")
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    if numbers < MIN_CUPY:
        return (
            f"CuPy {version} is installed and minidl needs CuPy >= {'.'.join(map(str, MIN_CUPY))} "
            "(13.x frees a captured step's gradients with its graph and compiles every kernel file again in "
            "every process): pip install -U 'cupy-cuda12x>=14' (or cupy-cuda13x)"
        )
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy finds no CUDA device"
    except Exception as error:  # no driver, no device: CuPy raises its own runtime errors
        return f"CuPy finds no usable CUDA device ({type(error).__name__}: {error})"
    return None


@lru_cache(maxsize=1)
def _cupy() -> ModuleType | None:
    """CuPy if it can be used here (cupy_problem() is None), else None."""
    if cupy_problem() is not None:
        return None
    import cupy

    return cupy


def cuda_available() -> bool:
    return _cupy() is not None


def cupy() -> ModuleType:
    """The CuPy module; an error that says why when it cannot be used."""
    module = _cupy()
    if module is None:
        resolve_device("cuda")  # raises the explanation
    return module


class DeviceError(ValueError):
    """An unknown device name, given as an argument or in $MINIDL_DEVICE."""


class DeviceUnavailable(RuntimeError):
    """A known device that cannot be used here (cuda without a GPU or CuPy)."""


def resolve_device(device: str | None = None) -> str:
    """Name the device to use: the argument, else $MINIDL_DEVICE, else cuda if present, else cpu."""
    source = "device"
    if device is None:
        source = "MINIDL_DEVICE" if os.environ.get("MINIDL_DEVICE") else source
        device = os.environ.get("MINIDL_DEVICE") or ("cuda" if cuda_available() else "cpu")
    name = str(device).lower()
    if name.startswith("cuda:"):
        name = "cuda"
    if name not in DEVICES:
        given = f"MINIDL_DEVICE={device!r} in the environment" if source == "MINIDL_DEVICE" else f"device {device!r}"
        raise DeviceError(f"unknown {given}: expected one of {', '.join(DEVICES)}")
    if name == "cuda" and not cuda_available():
        raise DeviceUnavailable(
            f"device 'cuda' was requested but no GPU is usable: {cupy_problem()}. "
            "Use device='cpu', or 'emu' to run the CUDA kernels on the CPU emulator."
        )
    return name


def capturing(device: str) -> bool:
    """Whether work on `device` is being recorded into a CUDA graph now (minidl.capture): nothing
    runs, so nothing may be read back to the host."""
    return device == "cuda" and _cupy().cuda.get_current_stream().is_capturing()


def array_module(device: str) -> ModuleType:
    """NumPy for cpu and emu, CuPy for cuda."""
    return _cupy() if device == "cuda" else np


def device_of(array) -> str:
    """'cuda' for a CuPy array, 'cpu' for anything else."""
    cp = _cupy()
    return "cuda" if cp is not None and isinstance(array, cp.ndarray) else "cpu"


def device_for(data) -> str:
    """The device of new data: cuda for a CuPy array, else the default device (resolve_device)."""
    return "cuda" if device_of(data) == "cuda" else resolve_device(None)


def to_numpy(array) -> np.ndarray:
    """A host NumPy array (a copy only when the data lives on the GPU); numbers become 0-d arrays."""
    return array.get() if device_of(array) == "cuda" else np.asarray(array)


def array_module_of(array) -> ModuleType:
    """CuPy for a CuPy array, NumPy for anything else."""
    return array_module(device_of(array))


def move(array, device: str):
    """The array on `device` (no copy when it is already there)."""
    if device == "cuda":
        return _cupy().asarray(array)
    return to_numpy(array)


# ---------------------------------------------------------------- random numbers
_seed: int | None = None
_generators: dict[str, object] = {}


def manual_seed(seed: int) -> None:
    """Make initialisation, dropout and corruption repeatable on every device. Seeds are PyTorch's:
    integers in [-2**63, 2**64); a negative one counts back from 2**64."""
    global _seed
    seed = validate.integer(seed, "manual_seed's seed", minimum=-(2**63))
    if seed >= 2**64:
        raise ValueError(f"manual_seed's seed must be < 2**64, got {seed}")
    _seed = seed % 2**64
    _generators.clear()


def generator(device: str = "cpu"):
    """The seeded random generator of a device (numpy.random.Generator or CuPy's)."""
    if device not in _generators:
        xp = array_module(device)
        _generators[device] = xp.random.default_rng(_seed)
    return _generators[device]


def generators_by_device() -> dict:
    """The generators in use now, by device."""
    return dict(_generators)


def live_generators() -> list:
    """The generators in use now (a captured step keeps them, as its graph draws from their state)."""
    return list(_generators.values())
