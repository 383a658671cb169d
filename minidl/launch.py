"""Loading and launching our CUDA kernels: the one launch helper, for cuda and emu alike.

A kernel file is compiled once per device into a module: cupy.RawModule on cuda, the
CPU emulator's EmuModule on emu. Both give get_function("name<float>") whose result is
called as f(grid, block, args, shared_mem=...), so everything in this file, from grid
sizes to the order and dtypes of arguments, is the same code on both devices.
"""

from __future__ import annotations

import numpy as np

from . import backend
from .kernels import SOURCE_DIR

BLOCK = 256  # threads per block of every 1-D launch; kernels/common.cuh agrees (MINIDL_BLOCK)
MAX_SHARED_BYTES = 48 * 1024  # dynamic shared memory available without opting in, on every GPU we target
ARCHITECTURES = ("sm_80", "sm_90")  # what the NVRTC test compiles for
COMPILE_OPTIONS = ("-std=c++17",)

# kernel file -> template kernels in it; each is instantiated for float and double
KERNELS: dict[str, tuple[str, ...]] = {
    "conv2d.cu": ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight", "bias_backward"),
    "pooling.cu": ("max_pool2d_forward", "max_pool2d_backward", "avg_pool2d_forward", "avg_pool2d_backward"),
    "upsample.cu": ("upsample_forward", "upsample_backward"),
    "sigmoid_loss.cu": ("sigmoid_loss_forward", "sum_partials"),
    "adam.cu": ("adam_update",),
}
C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}

_modules: dict[tuple[str, str], object] = {}


def name_expressions(source: str) -> list[str]:
    """Every instantiation of a file's kernels, e.g. 'conv2d_forward<float>'."""
    return [f"{kernel}<{ctype}>" for kernel in KERNELS[source] for ctype in C_TYPES.values()]


def module(source: str, device: str):
    """The compiled module of a kernel file on a device (compiled once, then cached)."""
    key = (source, device)
    if key not in _modules:
        path = SOURCE_DIR / source
        if device == "cuda":
            import cupy

            _modules[key] = cupy.RawModule(
                code=path.read_text(),
                options=(*COMPILE_OPTIONS, f"-I{SOURCE_DIR}"),
                name_expressions=name_expressions(source),
            )
        elif device == "emu":
            from .emulator import EmuModule

            _modules[key] = EmuModule(path, name_expressions(source))
        else:
            raise ValueError(f"kernels run on {backend.KERNEL_DEVICES}, not on {device!r}")
    return _modules[key]


def blocks(count: int, block: int = BLOCK) -> int:
    """Blocks for a 1-D launch of one thread per element."""
    return max(1, -(-count // block))


def launch(source: str, kernel: str, dtype, device: str, grid, args, block=BLOCK, shared_mem: int = 0) -> None:
    """Run kernel<T> of kernels/<source> with T from dtype. args: contiguous arrays of the
    device and NumPy scalars (np.int32, np.int64, np.float32, np.float64), in the kernel's order."""
    dtype = np.dtype(dtype)
    if dtype not in C_TYPES:
        raise TypeError(f"{kernel}: kernels run in float32 or float64, got {dtype}")
    if shared_mem > MAX_SHARED_BYTES:
        raise ValueError(f"{kernel}: needs {shared_mem} bytes of shared memory, more than {MAX_SHARED_BYTES}")
    function = module(source, device).get_function(f"{kernel}<{C_TYPES[dtype]}>")
    function(
        grid if isinstance(grid, tuple) else (grid,),
        block if isinstance(block, tuple) else (block,),
        tuple(args),
        shared_mem=shared_mem,
    )


def ints(*values: int) -> tuple[np.int32, ...]:
    """Shape and size arguments as the kernels' int parameters."""
    return tuple(np.int32(v) for v in values)
