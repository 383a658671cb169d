"""Compiling the kernels: each .cu file once per device, each kernel instance looked up once.

The constants that Python and CUDA share reach NVRTC and g++ as -D options: MINIDL_BLOCK for
every file, and the constants an op declares for its own file with define() (conv's tiles are
defined in minidl/ops/conv.py). A module is compiled from read_source(file) with
compile_options(file) for the names in name_expressions(file), on cuda and emu alike.
"""

from __future__ import annotations

import threading

import numpy as np

from .devices import device
from .sources import Kernel, name_expressions, read_source, sources

BLOCK = 256  # threads per block of every 1-D launch
DEFINES: dict[str, int] = {"MINIDL_BLOCK": BLOCK}
_FILE_DEFINES: dict[str, dict[str, int]] = {}
ARCHITECTURES = ("sm_80", "sm_90")  # what the NVRTC tests compile for

_modules: dict[tuple[str, str], object] = {}  # (file, device) -> module
_functions: dict[tuple[str, str, str], object] = {}  # (file, kernel instance, device) -> function
_lock = threading.Lock()  # two threads launching at once compile a module once


def define(source: str, **values: int) -> dict[str, int]:
    """Declare the -D constants of one kernel file (call at import, before any launch); returns them."""
    if source not in sources():
        raise ValueError(f"define: no kernel file {source!r}; there are {sources()}")
    if any(key[0] == source for key in _modules):
        raise RuntimeError(f"define: {source} is compiled already; its constants are fixed")
    clash = sorted(set(values) & set(DEFINES))
    if clash:
        raise ValueError(f"define: {clash} are defined for every file already")
    _FILE_DEFINES.setdefault(source, {}).update(values)
    return dict(values)


def compile_options(source: str) -> tuple[str, ...]:
    """NVRTC's options for a kernel file (g++ reads the same): the C++ standard and the -D constants."""
    values = {**DEFINES, **_FILE_DEFINES.get(source, {})}
    return ("-std=c++17", *(f"-D{name}={value}" for name, value in values.items()))


def module(source: str, device_name: str):
    """The compiled module of a kernel file on a device (compiled once per process, then kept)."""
    key = (source, device_name)
    if key not in _modules:
        with _lock:
            if key not in _modules:
                _modules[key] = device(device_name).compile(
                    read_source(source), compile_options(source), name_expressions(source)
                )
    return _modules[key]


def function(kernel: Kernel, t: np.dtype | None, device_name: str):
    """The launchable function of one kernel instance on a device, looked up once."""
    key = (kernel.source, kernel.instance(t), device_name)
    found = _functions.get(key)
    if found is None:
        found = device(device_name).function(module(kernel.source, device_name), kernel.instance(t), kernel.source)
        _functions[key] = found
    return found
