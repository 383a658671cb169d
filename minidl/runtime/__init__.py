"""How a kernel runs: the one home of minidl's kernel path.

An op's kernel path calls launch(); everything between that call and the GPU (or the CPU
emulator) is here, one idea a module:

    sources.py   where the .cu files are (beside the imported package) and their signatures
    compiler.py  compile options (-D constants), each file compiled once per device, each
                 kernel instance looked up once
    devices.py   the devices side by side: cuda (CuPy's RawModule) and emu (the emulator);
                 runs_as_kernel(), the one rule for "does this call run as a kernel here"
    launch.py    the launch contract: arrays and named numbers checked, outputs allocated, grid
    profile.py   MINIDL_PROFILE's per-kernel timings
    emulator/    the CPU emulator of CUDA (runtime.h) and its build

Ops and optimisers never name a device: they ask runs_as_kernel(device, dtypes) and call
launch().
"""

from .compiler import BLOCK, define
from .devices import runs_as_kernel
from .launch import MAX_SHARED_BYTES, Out, blocks, launch

__all__ = ["BLOCK", "MAX_SHARED_BYTES", "Out", "blocks", "define", "launch", "runs_as_kernel"]
