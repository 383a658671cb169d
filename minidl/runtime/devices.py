"""The devices kernels run on, side by side: a GPU through CuPy, and the CPU emulator.

Each answers the few questions whose answer depends on the device:
  compile(code, options, names) -> a module (cupy.RawModule, or the emulator's EmuModule);
  function(module, name, file)  -> one kernel instance of it, called as f(grid, block, args, shared_mem=);
  output(shape, dtype)          -> a fresh array for a kernel to write (on emu filled with NaN, or
                                   the smallest int, so that an element left unwritten shows);
  start_timer() / seconds(mark) -> a launch's time for MINIDL_PROFILE (CUDA events read at the
                                   end, so timing adds no host sync; the wall clock on emu).
and runs_as_kernel() is the one rule that says whether an op's call launches a kernel.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np

from .. import backend
from .sources import C_TYPES


class Cuda:
    name = "cuda"

    def compile(self, code: str, options: tuple[str, ...], names: list[str]):
        return backend.cupy().RawModule(code=code, options=options, name_expressions=names)

    def function(self, module, name: str, source: str):
        try:  # CuPy compiles the module at its first get_function
            return module.get_function(name)
        except Exception as error:
            if "nvrtc" in str(error).lower():
                raise RuntimeError(
                    f"compiling {source} for the GPU needs NVIDIA's runtime compiler (NVRTC), which CuPy "
                    "could not load. Install it with CuPy: pip install 'cupy-cuda12x[ctk]' (or cuda13x), "
                    "or install the CUDA toolkit."
                ) from error
            raise

    def output(self, shape: tuple[int, ...], dtype: np.dtype):
        return backend.cupy().empty(shape, dtype=dtype)

    def start_timer(self):
        cuda = backend.cupy().cuda
        start, end = cuda.Event(), cuda.Event()
        start.record()
        return start, end

    def stop_timer(self, mark):
        mark[1].record()
        return mark

    def seconds(self, mark) -> float:
        mark[1].synchronize()
        return backend.cupy().cuda.get_elapsed_time(*mark) / 1e3


class Emu:
    name = "emu"

    def compile(self, code: str, options: tuple[str, ...], names: list[str]):
        from .emulator import EmuModule

        return EmuModule(code=code, options=options, name_expressions=names)

    def function(self, module, name: str, source: str):
        return module.get_function(name)

    def output(self, shape: tuple[int, ...], dtype: np.dtype):
        return np.full(shape, np.nan if dtype.kind == "f" else np.iinfo(dtype).min, dtype=dtype)

    def start_timer(self):
        return time.perf_counter()

    def stop_timer(self, mark):
        return time.perf_counter() - mark

    def seconds(self, mark) -> float:
        return mark


KERNEL_DEVICES = {"cuda": Cuda(), "emu": Emu()}  # the devices on which ops with a .cu kernel launch it


def runs_as_kernel(device: str, dtypes: Iterable) -> bool:
    """Whether a call on `device` with arrays of `dtypes` runs as a kernel: on a kernel device, with
    every array in a type the kernels are instantiated for (float32, float64). Any other call takes
    the op's array path."""
    return device in KERNEL_DEVICES and all(np.dtype(d) in C_TYPES for d in dtypes)


def device(name: str):
    if name not in KERNEL_DEVICES:
        raise ValueError(f"kernels run on {', '.join(KERNEL_DEVICES)}, not on {name!r}")
    return KERNEL_DEVICES[name]
