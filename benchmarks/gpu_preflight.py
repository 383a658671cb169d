"""What the GPU machine is, before gpu_check.sh spends its lease: the commit, the GPU, Python,
NumPy, CuPy, PyTorch, the CUDA driver, runtime and NVRTC, CuPy's own kernels compiled (which
needs CUDA's headers), and the MNIST file carried through MINIDL_DATA. One line each.

    python3 benchmarks/gpu_preflight.py [--standin]

Exit status 3 with one line saying what is missing when CuPy (or, on a GPU, PyTorch) cannot be
imported or CuPy cannot compile a kernel: every later step would fail on it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _version_line(name: str) -> tuple[str, bool]:
    try:
        module = __import__(name)
    except Exception as error:  # not installed, or broken (a missing CUDA library)
        return f"{name}: cannot be imported ({type(error).__name__}: {error})", False
    where = getattr(module, "__file__", None) or "?"
    return f"{name} {getattr(module, '__version__', '?')} ({where})", True


def _cuda_lines(standin: bool) -> tuple[list[str], str | None]:
    """The CUDA versions and a compiled CuPy kernel; the problem that stops the check, if any."""
    import cupy

    from minidl.doctor import cuda_version

    runtime = cupy.cuda.runtime
    driver, runtime_version = cuda_version(runtime.driverGetVersion()), cuda_version(runtime.runtimeGetVersion())
    lines = [f"CUDA driver {driver}, runtime {runtime_version}"]
    if standin:
        return lines + ["NVRTC and CUDA headers: not used by the stand-in (kernels run on the emulator)"], None
    major, minor = cupy.cuda.nvrtc.getVersion()
    lines.append(f"NVRTC {major}.{minor}; CUDA path {cupy.cuda.get_cuda_path() or 'not found (CuPy wheels bring it)'}")
    try:  # an elementwise kernel of CuPy's own, compiled by NVRTC with CuPy's and CUDA's headers
        total = float((cupy.arange(4, dtype=cupy.float32) * 2).sum())
    except Exception as error:
        return lines, f"CuPy cannot compile or run its own kernels ({type(error).__name__}: {error})"
    lines.append(f"CuPy compiled and ran a kernel: {'ok' if total == 12.0 else f'WRONG ({total} != 12)'}")
    if total != 12.0:
        return lines, "CuPy's first kernel gave a wrong result"
    import torch

    if not torch.cuda.is_available():
        return lines, f"PyTorch {torch.__version__} sees no GPU: the benchmarks would have no peer"
    lines.append(f"PyTorch on {torch.cuda.get_device_name(0)}, CUDA {torch.version.cuda}")
    return lines, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--standin", action="store_true", help="the CuPy stand-in of tests/standin, PyTorch optional")
    args = parser.parse_args(argv)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    print(f"commit {commit.stdout.strip() or '(not a git checkout)'}")
    query = "nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader"
    smi = subprocess.run(query, shell=True, capture_output=True, text=True)
    print(f"nvidia-smi: {smi.stdout.strip() or 'none' + (' (stand-in mode)' if args.standin else '')}")
    print(f"Python {sys.version.split()[0]} ({sys.executable})")
    problems = []
    for name, needed in (("numpy", True), ("cupy", True), ("torch", not args.standin), ("minidl", True)):
        line, ok = _version_line(name)
        print(line)
        if needed and not ok:
            problems.append(line)
    if not problems:
        lines, problem = _cuda_lines(args.standin)
        print("\n".join(lines))
        problems += [problem] if problem else []
    data = os.environ.get("MINIDL_DATA")
    print(f"MNIST: {data} ({Path(data).stat().st_size / 2**20:.1f} MiB)" if data and Path(data).is_file()
          else "MNIST: not carried (run benchmarks/gpu_carry.sh here first): the Model C steps will fail")  # fmt: skip
    if problems:
        print(f"STOP: {problems[0]}")
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
