"""The one launch call: every kernel of kernels/*.cu runs through launch(), on cuda and emu alike.

    y = launch("max_pool2d_forward", x, Out(shape), Out(shape), *sizes, threads=n)

launch() finds the kernel by name in the .cu sources and reads its signature from there
(no hand-kept table), so the Python side cannot drift from the CUDA side. It then
  - takes T (float or double) from the arrays passed for T* parameters, which must agree;
  - checks every array: on one device, dtype equal to its parameter's (T, int, ...),
    made C-contiguous if the kernel only reads it, already C-contiguous if it writes it;
  - allocates each Out(shape) on that device with the parameter's dtype (on emu filled
    with NaN, so a kernel that leaves an output element unwritten is caught);
  - packs Python numbers into the parameter's C type (int, long long, T, double) and
    checks that they fit;
  - computes the grid (threads= for one thread per element) and checks grid, block and
    shared memory against CUDA's limits; a launch with nothing to do is skipped;
and returns the Out arrays. A kernel file is compiled once per device: cupy.RawModule on
cuda, the CPU emulator's EmuModule on emu, both from the same code string and options.
With MINIDL_PROFILE=1 every launch is timed (CUDA events on a GPU, the wall clock on the
emulator) and a per-kernel table is printed when the process exits.
The constants that Python and CUDA share are defined once, in DEFINES, and reach NVRTC
and g++ as -D options.
"""

from __future__ import annotations

import atexit
import math
import os
import re
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from . import backend
from .kernels import SOURCE_DIR

DEFINES = {
    "MINIDL_BLOCK": 256,  # threads per block of every 1-D launch
    "CONV_TILE": 8,  # conv2d_forward: output tile of CONV_TILE x CONV_TILE pixels per block
    "CONV_LANES": 4,  # conv2d_forward: threads per pixel, each owning every CONV_LANES-th channel
    "CONV_MAX_GROUP": 64,  # conv2d_forward: most output channels per block
    "WG_TILE": 16,  # conv2d_backward_weight: tiles of WG_TILE x WG_TILE weights, one thread each (WG_TILE² = block)
}
BLOCK = DEFINES["MINIDL_BLOCK"]
COMPILE_OPTIONS = ("-std=c++17", *(f"-D{name}={value}" for name, value in DEFINES.items()))
ARCHITECTURES = ("sm_80", "sm_90")  # what the NVRTC tests compile for
MAX_SHARED_BYTES = 48 * 1024  # dynamic shared memory without opting in, on every GPU we target
MAX_GRID = (2**31 - 1, 65535, 65535)
MAX_BLOCK = (1024, 1024, 64)
MAX_THREADS_PER_BLOCK = 1024

C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}  # what T may be
FIXED_TYPES = {
    "int": np.dtype(np.int32),
    "long long": np.dtype(np.int64),
    "float": np.dtype(np.float32),
    "double": np.dtype(np.float64),
}


# ------------------------------------------------------------- reading the sources
@dataclass(frozen=True)
class Param:
    """One kernel parameter: `const T* __restrict__ x` is Param("x", "T", pointer=True, const=True)."""

    name: str
    ctype: str
    pointer: bool
    const: bool

    def dtype(self, t: np.dtype) -> np.dtype:
        return t if self.ctype == "T" else FIXED_TYPES[self.ctype]

    def __str__(self) -> str:
        return f"{'const ' if self.const else ''}{self.ctype}{'*' if self.pointer else ''} {self.name}"


@dataclass(frozen=True)
class Kernel:
    name: str
    source: str  # the file under kernels/
    params: tuple[Param, ...]
    templated: bool  # template <typename T>: instantiated for float and double

    def signature(self) -> str:
        return f"{self.name}({', '.join(map(str, self.params))})"

    def instance(self, t: np.dtype | None) -> str:
        """The name expression of its instantiation for T = t, e.g. 'conv2d_forward<float>'."""
        return f"{self.name}<{C_TYPES[t]}>" if self.templated else self.name


_KERNEL = re.compile(r"(template\s*<\s*typename\s+T\s*>\s*)?__global__\s+void\s+(\w+)\s*\(([^)]*)\)")
_PARAM = re.compile(r"^(const\s+)?(T|int|long long|float|double)\s*(\*)?\s*(?:__restrict__\s+)?(\w+)$")
_INCLUDE = re.compile(r'^#include "([\w.]+)"\s*$', re.MULTILINE)


def read_source(source: str) -> str:
    """A kernel file with its local #includes pasted in, each once, with #line marks so that
    compiler messages and AddressSanitizer reports name the real file and line.
    (CuPy caches compiled modules by this code string: a header edit must change it.)"""
    seen: set[str] = set()

    def expand(name: str) -> str:
        if name in seen:
            return ""
        seen.add(name)
        text = (SOURCE_DIR / name).read_text()
        parts, at = [f'#line 1 "{name}"\n'], 0
        for match in _INCLUDE.finditer(text):
            parts += [text[at : match.start()], expand(match.group(1))]
            parts.append(f'#line {text.count(chr(10), 0, match.end()) + 1} "{name}"')
            at = match.end()
        return "".join([*parts, text[at:]])

    return expand(source)


def parse_kernels(code: str, source: str) -> dict[str, Kernel]:
    """Every __global__ function of `code`, with its parameters."""
    found = {}
    for match in _KERNEL.finditer(code):
        params = []
        for text in filter(None, (" ".join(p.split()) for p in match.group(3).split(","))):
            parsed = _PARAM.match(text)
            if not parsed:
                raise ValueError(f"{source}: kernel {match.group(2)}: cannot read parameter {text!r}")
            const, ctype, star, name = parsed.groups()
            params.append(Param(name, ctype, bool(star), bool(const)))
        found[match.group(2)] = Kernel(match.group(2), source, tuple(params), bool(match.group(1)))
    return found


@lru_cache(maxsize=1)
def kernels() -> dict[str, Kernel]:
    """Every kernel of kernels/*.cu by name (names are unique across files)."""
    table: dict[str, Kernel] = {}
    for path in sorted(SOURCE_DIR.glob("*.cu")):
        for name, kernel in parse_kernels(read_source(path.name), path.name).items():
            if name in table:
                raise ValueError(f"kernel {name} is defined in both {table[name].source} and {path.name}")
            table[name] = kernel
    return table


def sources() -> list[str]:
    return sorted({k.source for k in kernels().values()})


def name_expressions(source: str) -> list[str]:
    """Every instantiation of a file's kernels, e.g. 'conv2d_forward<float>'."""
    names = []
    for k in kernels().values():
        if k.source == source:
            names += [k.instance(t) for t in C_TYPES] if k.templated else [k.name]
    return names


# --------------------------------------------------------------------- modules
_modules: dict[tuple[str, str], object] = {}


def module(source: str, device: str):
    """The compiled module of a kernel file on a device (compiled once per process, then cached)."""
    key = (source, device)
    if key not in _modules:
        if device == "cuda":
            module_class = backend.cupy().RawModule
        elif device == "emu":
            from .emulator import EmuModule as module_class
        else:
            raise ValueError(f"kernels run on {backend.KERNEL_DEVICES}, not on {device!r}")
        _modules[key] = module_class(
            code=read_source(source), options=COMPILE_OPTIONS, name_expressions=name_expressions(source)
        )
    return _modules[key]


def _function(kernel: Kernel, t: np.dtype, device: str):
    name = kernel.instance(t)
    try:
        return module(kernel.source, device).get_function(name)
    except Exception as error:
        if device == "cuda" and "nvrtc" in str(error).lower():
            raise RuntimeError(
                f"compiling {kernel.source} for the GPU needs NVIDIA's runtime compiler (NVRTC), which CuPy "
                "could not load. Install it with CuPy: pip install 'cupy-cuda12x[ctk]' (or cuda13x), "
                "or install the CUDA toolkit."
            ) from error
        raise


# ---------------------------------------------------------------------- launch
@dataclass(frozen=True)
class Out:
    """An output that launch() allocates: shape, and the dtype of its parameter."""

    shape: tuple[int, ...]


def blocks(count: int, block: int = BLOCK) -> int:
    """Blocks for a 1-D launch of one thread per element (0 when there is nothing to do)."""
    return -(-count // block)


def _dims(value) -> tuple[int, int, int]:
    dims = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if not 1 <= len(dims) <= 3:
        raise ValueError(f"a launch dimension has 1 to 3 entries, got {value!r}")
    return tuple(int(d) for d in (*dims, 1, 1)[:3])


def launch(kernel: str, *args, threads: int | None = None, grid=None, block=BLOCK, shared_mem: int = 0, dtype=None):
    """Run `kernel` (templates: with T from the arrays) over `args` in the kernel's parameter order.
    Give threads= (one thread per element, 1-D blocks of BLOCK) or grid=. Returns the
    arrays allocated for the Out arguments: one array, a tuple of them, or None."""
    spec = kernels().get(kernel)
    if spec is None:
        raise KeyError(f"no kernel named {kernel!r} in {SOURCE_DIR}; there are {sorted(kernels())}")
    if len(args) != len(spec.params):
        raise TypeError(f"{kernel} takes {len(spec.params)} arguments, got {len(args)}: {spec.signature()}")
    device, t = _device_and_type(spec, args, dtype)
    xp = backend.array_module(device)
    packed, outputs = [], []
    for param, arg in zip(spec.params, args):
        if param.pointer:
            array = _array_argument(spec, param, arg, param.dtype(t), device, xp)
            if isinstance(arg, Out):
                outputs.append(array)
            packed.append(array)
        else:
            packed.append(_scalar_argument(spec, param, arg, param.dtype(t)))
    grid3, block3 = _grid(spec, threads, grid, block, shared_mem)
    if min(grid3) == 0:
        if any(o.size for o in outputs):
            raise ValueError(f"{kernel}: a grid of {grid3} blocks would leave its outputs unwritten")
    else:
        function = _function(spec, t, device)
        if PROFILE:
            _timed(function, spec.instance(t), device,
                   (grid3, block3, tuple(packed)), shared_mem)  # fmt: skip
        else:
            function(grid3, block3, tuple(packed), shared_mem=shared_mem)
    return outputs[0] if len(outputs) == 1 else (tuple(outputs) if outputs else None)


def _device_and_type(spec: Kernel, args, dtype) -> tuple[str, np.dtype]:
    arrays = [(p, a) for p, a in zip(spec.params, args) if p.pointer and not isinstance(a, Out)]
    devices = {p.name: backend.device_of(a) for p, a in arrays}
    if len(set(devices.values())) > 1:
        raise ValueError(f"{spec.name}: arrays on different devices: {devices}")
    device = "cuda" if "cuda" in devices.values() else "emu"
    t = None if dtype is None else np.dtype(dtype)
    if spec.templated:
        for param, array in arrays:
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
        shape = tuple(int(n) for n in arg.shape)
        if device == "emu":  # fresh outputs hold NaN (or a poison int): an element left unwritten shows
            return np.full(shape, np.nan if dtype.kind == "f" else np.iinfo(dtype).min, dtype=dtype)
        return xp.empty(shape, dtype=dtype)
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


# ------------------------------------------------------------------- profiling
PROFILE = os.environ.get("MINIDL_PROFILE", "0") not in ("", "0")
_timings: dict[str, list] = defaultdict(list)  # kernel -> seconds, or (start, end) CUDA events
_started = time.perf_counter()


def _timed(function, name: str, device: str, launch_args, shared_mem: int) -> None:
    if device == "cuda":  # events, read at exit: timing adds no host sync
        cuda = backend.cupy().cuda
        start, end = cuda.Event(), cuda.Event()
        start.record()
        function(*launch_args, shared_mem=shared_mem)
        end.record()
        _timings[name].append((start, end))
    else:
        begin = time.perf_counter()
        function(*launch_args, shared_mem=shared_mem)
        _timings[name].append(time.perf_counter() - begin)


def launch_counts() -> dict[str, int]:
    """How many times each kernel was launched while profiling was on (MINIDL_PROFILE=1, or PROFILE set)."""
    return {name: len(times) for name, times in _timings.items()}


def profile_table() -> str:
    """Launches, total and mean time and share of the run of every kernel launched so far."""
    run = time.perf_counter() - _started
    rows = []
    for name, times in _timings.items():
        if times and isinstance(times[0], tuple):
            times[-1][1].synchronize()
            cuda = backend.cupy().cuda
            times = [cuda.get_elapsed_time(start, end) / 1e3 for start, end in times]
        rows.append((sum(times), len(times), name))
    lines = [f"{'kernel':<34} {'launches':>9} {'total ms':>10} {'mean us':>9} {'of run':>7}"]
    for total, count, name in sorted(rows, reverse=True):
        lines.append(f"{name:<34} {count:>9} {total * 1e3:>10.2f} {total / count * 1e6:>9.1f} {total / run:>7.1%}")
    return "\n".join(lines)


def _report() -> None:
    if _timings:
        print(f"MINIDL_PROFILE: the kernels of this run\n{profile_table()}", file=sys.stderr)


if PROFILE:
    atexit.register(_report)
