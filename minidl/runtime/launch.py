"""The one launch call: every kernel of kernels/*.cu runs through launch(), on cuda and emu alike.

    y, argmax = launch("max_pool2d_forward", x, Out(shape), Out(shape), N=n, C=c, ..., threads=count)

The arrays go in the kernel's parameter order; its numbers go by the names they have in
the .cu signature, in that order, so that two same-typed sizes cannot be swapped unseen.
launch() reads the signature from the source (minidl.runtime.sources), then
  - takes T (float or double) from the arrays passed for T* parameters, which must agree;
  - checks every array: on one device, dtype equal to its parameter's (T, int, ...),
    made C-contiguous if the kernel only reads it, already C-contiguous if it writes it;
  - allocates each Out(shape) on that device with the parameter's dtype (the device decides
    how a fresh output is filled: minidl.runtime.devices);
  - packs each number into its parameter's C type (int, long long, T, double) and checks that it fits;
  - checks each array's size against the sizes its kernel declares (`// sizes: x = N*C*H*W`), so that
    numbers that do not fit the arrays are an error, not a read past an array (an abort on emu);
  - computes the grid (threads= for one thread per element) and checks grid, block and
    shared memory against CUDA's limits; a launch with nothing to do is skipped;
and returns the Out arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import backend
from . import devices, profile
from .compiler import BLOCK, function
from .sources import C_TYPES, SOURCE_DIR, Kernel, Param, kernels

MAX_SHARED_BYTES = 48 * 1024  # dynamic shared memory without opting in, on every GPU we target
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
MAX_THREADS_PER_BLOCK = 1024


@dataclass(frozen=True)
class Out:
    """An output that launch() allocates: shape, and the dtype of its parameter."""

    shape: tuple[int, ...]


def blocks(count: int, block: int = BLOCK) -> int:
    """Blocks for a 1-D launch of one thread per element (0 when there is nothing to do)."""
    return -(-count // block)


def launch(
    kernel: str,
    *arrays,
    threads: int | None = None,
    grid=None,
    block=BLOCK,
    shared_mem: int = 0,
    dtype=None,
    **numbers,
):
    """Run `kernel` (templates: with T from the arrays) on `arrays` (its pointer parameters, in
    order) and `numbers` (its other parameters, by name, in order). Give threads= (one thread
    per element, 1-D blocks of BLOCK) or grid=. Returns the arrays allocated for the Out
    arguments: one array, a tuple of them, or None."""
    spec = kernels().get(kernel)
    if spec is None:
        raise KeyError(f"no kernel named {kernel!r} in {SOURCE_DIR}; there are {sorted(kernels())}")
    if len(arrays) != len(spec.arrays):
        raise TypeError(
            f"{kernel} takes {len(spec.arrays)} arrays, got {len(arrays)}, and its numbers by name "
            f"({', '.join(p.name + '=' for p in spec.scalars)}): {spec.signature()}"
        )
    _check_names(spec, list(numbers))
    device, t = _device_and_type(spec, arrays, dtype)
    xp = backend.array_module(device)
    given = iter(arrays)
    packed, outputs, by_name = [], [], {}
    for param in spec.params:
        if param.pointer:
            arg = next(given)
            array = by_name[param.name] = _array_argument(spec, param, arg, param.dtype(t), device, xp)
            if isinstance(arg, Out):
                outputs.append(array)
            packed.append(array)
        else:
            packed.append(_scalar_argument(spec, param, numbers[param.name], param.dtype(t)))
    _check_sizes(spec, by_name, numbers)
    grid3, block3 = _grid(spec, threads, grid, block, shared_mem)
    if min(grid3) == 0:
        if any(o.size for o in outputs):
            raise ValueError(f"{kernel}: a grid of {grid3} blocks would leave its outputs unwritten")
    else:
        run, args = function(spec, t, device), tuple(packed)
        if profile.PROFILE:
            profile.timed(devices.device(device), spec.instance(t), run, grid3, block3, args, shared_mem=shared_mem)
        else:
            run(grid3, block3, args, shared_mem=shared_mem)
    return outputs[0] if len(outputs) == 1 else (tuple(outputs) if outputs else None)


def _check_names(spec: Kernel, given: list[str]) -> None:
    """The numbers are named as in the .cu signature, all of them, in its order."""
    expected = spec.scalar_names
    if given == expected:
        return
    unknown = [name for name in given if name not in expected]
    missing = [name for name in expected if name not in given]
    if unknown or missing:
        problems = ([f"no parameter named {', '.join(unknown)}"] if unknown else []) + (
            [f"missing {', '.join(missing)}"] if missing else []
        )
        raise TypeError(f"{spec.name}: {'; '.join(problems)}: {spec.signature()}")
    for first, second in zip(given, given[1:]):
        if expected.index(first) > expected.index(second):
            raise TypeError(
                f"{spec.name}: {first} and {second} are given in the wrong order ({first} before {second}); "
                f"the kernel takes {', '.join(expected)}: are two sizes swapped? {spec.signature()}"
            )


def _check_sizes(spec: Kernel, arrays: dict, numbers: dict) -> None:
    """Every array holds as many elements as the kernel's declared sizes say, for the numbers given."""
    for name, factors in spec.sizes:
        values = [int(f) if f.isdigit() else int(numbers[f]) for f in factors]
        if arrays[name].size != math.prod(values):
            product = "*".join(factors)
            raise ValueError(
                f"{spec.name}: {name} holds {arrays[name].size} elements, but {product} = "
                f"{'*'.join(map(str, values))} = {math.prod(values)}: do the sizes fit the arrays? {spec.signature()}"
            )


def _device_and_type(spec: Kernel, arrays, dtype) -> tuple[str, np.dtype | None]:
    given = [(p, a) for p, a in zip(spec.arrays, arrays) if not isinstance(a, Out)]
    devices = {p.name: backend.device_of(a) for p, a in given}
    if len(set(devices.values())) > 1:
        raise ValueError(f"{spec.name}: arrays on different devices: {devices}")
    device = "cuda" if "cuda" in devices.values() else "emu"
    t = None if dtype is None else np.dtype(dtype)
    if spec.templated:
        for param, array in given:
            if param.ctype == "T" and hasattr(array, "dtype"):
                if t is None:
                    t = np.dtype(array.dtype)
                elif array.dtype != t:
                    raise TypeError(
                        f"{spec.name}: {param.name} is {array.dtype} but T is {t} (from the other arrays); "
                        f"every T* argument needs one dtype: {spec.signature()}"
                    )
        if t not in C_TYPES:
            raise TypeError(f"{spec.name}: kernels run in float32 or float64, got T = {t}")
    return device, t


def _array_argument(spec: Kernel, param: Param, arg, dtype: np.dtype, device: str, xp):
    if isinstance(arg, Out):
        if param.const:
            raise TypeError(f"{spec.name}: {param} is read by the kernel, it cannot be an Out")
        return devices.device(device).output(tuple(int(n) for n in arg.shape), dtype)
    if isinstance(arg, np.generic) and xp is np and param.const:  # NumPy's 0-d results are scalars
        arg = np.asarray(arg)
    if not isinstance(arg, xp.ndarray):
        raise TypeError(f"{spec.name}: {param} needs an array on {device}, got {type(arg).__name__}")
    if arg.dtype != dtype:
        raise TypeError(f"{spec.name}: {param} needs dtype {dtype}, got {arg.dtype}")
    if arg.flags.c_contiguous:
        return arg
    if not param.const:
        raise ValueError(f"{spec.name}: {param} is written in place, so it must be C-contiguous already")
    return xp.ascontiguousarray(arg)


def _scalar_argument(spec: Kernel, param: Param, value, dtype: np.dtype):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{spec.name}: {param} needs a number, got {value!r}")
    if dtype.kind == "i":
        if not float(value).is_integer():
            raise TypeError(f"{spec.name}: {param} needs an integer, got {value!r}")
        info = np.iinfo(dtype)
        if not info.min <= int(value) <= info.max:
            raise OverflowError(f"{spec.name}: {param} = {int(value)} does not fit in {param.ctype}")
        return dtype.type(int(value))
    with np.errstate(over="ignore"):
        converted = dtype.type(value)
    if math.isfinite(float(value)) and not np.isfinite(converted):
        raise OverflowError(f"{spec.name}: {param} = {value!r} does not fit in {param.ctype}")
    return converted


def _dims(value) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"a launch dimension has 1 to 3 entries, got {value!r}")
    return tuple(int(d) for d in (*dims, 1, 1)[:3])


def _grid(spec: Kernel, threads, grid, block, shared_mem: int):
    if (threads is None) == (grid is None):
        raise TypeError(f"{spec.name}: give threads= (one per element) or grid=, not both or neither")
    block3 = _dims(block)
    grid3 = _dims(blocks(int(threads), block3[0]) if threads is not None else grid)
    if any(g < 0 or g > most for g, most in zip(grid3, MAX_GRID)):
        raise ValueError(f"{spec.name}: grid {grid3} is outside CUDA's limits {MAX_GRID}")
    if min(block3) < 1 or any(b > most for b, most in zip(block3, MAX_BLOCK)) or math.prod(block3) > 1024:
        raise ValueError(f"{spec.name}: block {block3} is outside CUDA's limits ({MAX_THREADS_PER_BLOCK} threads)")
    if not 0 <= shared_mem <= MAX_SHARED_BYTES:
        raise ValueError(f"{spec.name}: {shared_mem} bytes of shared memory, more than {MAX_SHARED_BYTES}")
    return grid3, block3
