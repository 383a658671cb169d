"""The CPU emulator: runs our .cu kernels on the CPU, through the same launch code as a GPU.

EmuModule(code=..., options=..., name_expressions=...) takes what cupy.RawModule takes:
it compiles `code` with g++ as C++, after the shims of runtime.h, with AddressSanitizer,
and its get_function(name) -> f is called as f(grid, block, args, shared_mem=0), with
args the NumPy arrays and NumPy scalars that a GPU launch passes as CuPy arrays and
NumPy scalars. Options are -D and -std, as for NVRTC. The compiler is $CXX (a command with
flags, as make takes it, e.g. CXX="g++ -march=native"), else g++. Builds are cached under
$MINIDL_CACHE/emulator (default ~/.cache/minidl/emulator), keyed by a hash of every input, written
atomically, with the SHA-256 of the library beside it: a cached build that does not match
its digest (a crash or a full disk while it was written) is built again, never loaded.
Builds are also looked for, never written, in $MINIDL_SHARED_CACHE (shared_caches).
A launch runs its grid twice, the threads of each block in opposite orders, and fails on a
difference, naming the block and the first element that differs (a race: runtime.h;
MINIDL_EMU_RACES=0 runs it once). One launch runs at a time in a process: the emulator's scheduler and a kernel's
__shared__ variables are process-wide, and ctypes lets other Python threads run while a
launch does.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

import numpy as np

RUNTIME = Path(__file__).resolve().parent / "runtime.h"
FLAGS = [
    "-std=c++17",
    "-O1",
    "-g",
    "-fPIC",
    "-shared",
    "-fsanitize=address",
    "-fno-omit-frame-pointer",
    "-fvisibility=hidden",
]
SCALARS = {
    np.dtype(np.int32): ctypes.c_int32,
    np.dtype(np.int64): ctypes.c_int64,
    np.dtype(np.float32): ctypes.c_float,
    np.dtype(np.float64): ctypes.c_double,
}
_ERROR_BYTES = 1024
RACES = "MINIDL_EMU_RACES"  # "0" turns the race check off (each launch then runs its grid once)
_LAUNCH = threading.Lock()  # one emulated launch at a time in this process


class EmulatorUnavailable(RuntimeError):
    """No C++ compiler (or no AddressSanitizer runtime) to build kernels with."""


class EmulatorSettingError(EmulatorUnavailable):
    """CXX or the kernel cache (MINIDL_CACHE, else under HOME) is set to something unusable; the message
    names the variable to set (a usage error: exit status 2 from the command line)."""


def compiler() -> list[str]:
    """The compiler command: $CXX split as a shell would (it may carry flags), else g++."""
    setting = os.environ.get("CXX", "").strip()
    if not setting:
        if shutil.which("g++") is None:
            raise EmulatorUnavailable("the emu device needs a C++ compiler: install g++ (or set CXX)")
        return ["g++"]
    try:
        command = shlex.split(setting)
    except ValueError as e:
        raise EmulatorSettingError(f"CXX={setting!r} is not a command ({e}): set CXX to a C++ compiler, "
                                   "e.g. CXX=g++, or unset it") from None  # fmt: skip
    if shutil.which(command[0]) is None:
        raise EmulatorSettingError(f"CXX={setting!r}: there is no program {command[0]!r} to run; set CXX to a "
                                   "C++ compiler, e.g. CXX=g++, or unset it to use g++")  # fmt: skip
    return command


def cache_dir() -> Path:
    return Path(os.environ.get("MINIDL_CACHE") or Path.home() / ".cache" / "minidl") / "emulator"


def _work_folder(cache: Path) -> tempfile.TemporaryDirectory:
    """A temporary folder inside the cache (made if missing) to build in; an error naming MINIDL_CACHE
    where the cache cannot be written (a read-only file system, a file in its place, no permission)."""
    try:
        cache.mkdir(parents=True, exist_ok=True)
        return tempfile.TemporaryDirectory(dir=cache)
    except OSError as e:
        setting = os.environ.get("MINIDL_CACHE")
        now = f"MINIDL_CACHE={setting}" if setting else f"MINIDL_CACHE is not set, so it is under HOME={Path.home()}"
        raise EmulatorSettingError(
            f"the emulator cannot write its kernel cache {cache}: {e.strerror or e}"
            f"{f' ({e.filename})' if e.filename and str(e.filename) != str(cache) else ''}. "
            f"Set MINIDL_CACHE to a folder you can write in, e.g. MINIDL_CACHE=/tmp/minidl-cache ({now})"
        ) from None


def shared_caches() -> list[Path]:
    """Folders of builds that are read, never written: $MINIDL_SHARED_CACHE (os.pathsep between them;
    the lab's grader gives each student's process the builds it made of the teacher's code)."""
    return [Path(p) / "emulator" for p in os.environ.get("MINIDL_SHARED_CACHE", "").split(os.pathsep) if p]


def _wrapper(names: list[str]) -> str:
    """C++ that includes the kernel code verbatim and tables its instantiations."""
    rows = "\n".join(f'    emu::entry(&{n}, "{n}"),' for n in names)
    return (
        f'#include "kernel.cu"\nstatic const emu::Entry minidl_entries[] = {{\n{rows}\n}};\n'
        "MINIDL_EMULATOR_EXPORT(minidl_entries)\n"
    )


def _compiler_options(options) -> list[str]:
    """NVRTC's -D and -std options, as g++ reads them."""
    for option in options:
        if not option.startswith(("-D", "-std=")):
            raise ValueError(f"the emulator takes -D and -std= options, as NVRTC does; got {option!r}")
    return list(options)


# `__shared__ T name[N][M];` inside a kernel (not `extern __shared__`, the dynamic kind)
_SHARED = re.compile(r"(?<!extern )\b__shared__\b[^;{}()]*?\b(\w+)\s*(?:\[[^\];]*\]\s*)*;")


def declare_shared(code: str) -> str:
    """`code` with each static __shared__ declaration followed, on its line, by the call that fills the
    variable with NaN bytes for every new block and names it for the race check (runtime.h:
    shared_declared)."""

    def follow(match: re.Match) -> str:
        name = match.group(1)
        element = f"sizeof(std::remove_all_extents_t<decltype({name})>)"
        return f'{match.group(0)} emu::shared_declared(&{name}, sizeof({name}), {element}, "{name}");'

    return _SHARED.sub(follow, code)


def build(code: str, options, names: list[str]) -> Path:
    """Compile (or find in the cache) the shared library for kernel `code` and its kernel `names`."""
    code = declare_shared(code)
    wrapper = _wrapper(names)
    command = [*compiler(), *FLAGS, *_compiler_options(options)]
    digest = hashlib.sha256()
    for part in (RUNTIME.read_bytes(), wrapper.encode(), code.encode(), " ".join(command).encode()):
        digest.update(hashlib.sha256(part).digest())
    target = cache_dir() / f"{names[0].split('<')[0]}-{digest.hexdigest()[:16]}.so"
    for cached in (target, *(folder / target.name for folder in shared_caches())):
        if _verified(cached):
            return cached
    with _work_folder(target.parent) as work:
        (Path(work) / "kernel.cu").write_text(code)
        wrapper_path = Path(work) / "wrapper.cpp"
        wrapper_path.write_text(wrapper)
        built = Path(work) / target.name
        command += ["-include", str(RUNTIME), str(wrapper_path), "-o", str(built)]
        try:
            result = subprocess.run(command, capture_output=True, text=True)
        except OSError as e:  # found, but not a program this system runs
            raise EmulatorSettingError(f"the compiler {command[0]!r} cannot be run: {e.strerror or e}; set CXX to "
                                       "a C++ compiler, e.g. CXX=g++") from None  # fmt: skip
        if result.returncode != 0:
            if "asan" in result.stderr.lower() and "cannot find" in result.stderr.lower():
                raise EmulatorUnavailable(f"g++ has no AddressSanitizer runtime (libasan):\n{result.stderr}")
            raise RuntimeError(f"emulator build of {names[0]} failed:\n{' '.join(command)}\n{result.stderr}")
        digest_path = Path(work) / "digest"
        digest_path.write_text(_sha256(built))
        os.replace(built, target)  # atomic: a crash never leaves a half-written library,
        os.replace(digest_path, _digest_file(target))  # and one without its digest is built again
    return target


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _digest_file(library: Path) -> Path:
    return library.with_name(library.name + ".sha256")


def _verified(library: Path) -> bool:
    """Whether a cached library is there, whole: its bytes match the digest written beside it."""
    try:
        return _digest_file(library).read_text().strip() == _sha256(library)
    except OSError:
        return False


def _load_library(path: Path) -> ctypes.CDLL:
    # AddressSanitizer, loaded with the first library, looks up the C++ runtime's __cxa_throw as
    # it starts: libstdc++ must be in the process by then, or the first C++ exception thrown
    # anywhere later (matplotlib's font code throws some on import) aborts the process.
    ctypes.CDLL("libstdc++.so.6", mode=ctypes.RTLD_GLOBAL)
    # RTLD_GLOBAL lets AddressSanitizer find the library's __asan_default_options (see runtime.h);
    # everything else in it is hidden, so libraries cannot interpose on each other.
    library = ctypes.CDLL(str(path), mode=ctypes.RTLD_GLOBAL)
    library.minidl_emu_launch.restype = ctypes.c_int
    return library


class EmuFunction:
    """One kernel instantiation; called like a CuPy RawKernel."""

    def __init__(self, library: ctypes.CDLL, index: int, name: str):
        self.library, self.index, self.name = library, index, name

    def __call__(self, grid, block, args, shared_mem: int = 0) -> None:
        grid3 = (ctypes.c_uint * 3)(*_three(grid))
        block3 = (ctypes.c_uint * 3)(*_three(block))
        n = len(args)
        storage, pointers = [], (ctypes.c_void_p * n)()
        kinds, sizes = (ctypes.c_int * n)(), (ctypes.c_size_t * n)()
        for k, arg in enumerate(args):
            if isinstance(arg, np.ndarray):
                if not arg.flags.c_contiguous:
                    raise ValueError(f"{self.name}: argument {k} must be C-contiguous")
                value = ctypes.c_void_p(arg.ctypes.data)
                kinds[k], sizes[k] = (1 if arg.flags.writeable else 2), arg.nbytes
            elif isinstance(arg, np.generic) and arg.dtype in SCALARS:
                value = SCALARS[arg.dtype](arg.item())
            else:
                raise TypeError(
                    f"{self.name}: argument {k} is {type(arg).__name__}; kernels take C-contiguous arrays and "
                    f"NumPy scalars of {sorted(str(d) for d in SCALARS)}"
                )
            storage.append(value)
            pointers[k] = ctypes.cast(ctypes.pointer(value), ctypes.c_void_p)
        error = ctypes.create_string_buffer(_ERROR_BYTES)
        with _LAUNCH:
            status = self.library.minidl_emu_launch(
                self.index, grid3, block3, ctypes.c_size_t(shared_mem), n, pointers, kinds, sizes,
                int(checks_races()), error, _ERROR_BYTES,
            )  # fmt: skip
        if status != 0:
            raise RuntimeError(f"emulated kernel failed: {error.value.decode()}")


def checks_races() -> bool:
    """Whether launches run their grid a second time, each block's threads in the reverse order, and
    fail on a difference (on unless MINIDL_EMU_RACES=0)."""
    return os.environ.get(RACES, "1") != "0"


def _three(d) -> tuple[int, int, int]:
    d = (d,) if isinstance(d, int) else tuple(int(v) for v in d)
    return (*d, *([1] * (3 - len(d))))


class EmuModule:
    """The emulator's counterpart of cupy.RawModule: the same constructor arguments, get_function(name)."""

    def __init__(self, code: str, options=(), name_expressions=()):
        self.names = list(name_expressions)
        if not self.names:
            raise ValueError("EmuModule needs the name_expressions of the kernels to build")
        self.library = _load_library(build(code, options, self.names))

    def get_function(self, name: str) -> EmuFunction:
        if name not in self.names:
            raise KeyError(f"kernel {name!r} is not built into this module; it has {self.names}")
        return EmuFunction(self.library, self.names.index(name), name)
