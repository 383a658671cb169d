"""Shared test helpers. Tensors are made on the default device, so
`MINIDL_DEVICE=emu pytest` runs the same tests through the CUDA kernels on the emulator, and
`MINIDL_DEVICE=cuda pytest` on a GPU, or, where there is none, on the strict CuPy stand-in
of tests/standin (NumPy underneath, CuPy's rules on top, kernels on the emulator)."""

import argparse
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

STANDIN = Path(__file__).resolve().parent / "standin"


def _real_gpu() -> bool:
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # not installed, no driver, no device
        return False


if os.environ.get("MINIDL_DEVICE") == "cuda" and not _real_gpu():
    for name in [m for m in sys.modules if m == "cupy" or m.startswith(("cupy.", "cupyx"))]:
        del sys.modules[name]
    sys.path.insert(0, str(STANDIN))  # `import cupy` now finds the stand-in, here and in child processes
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(STANDIN), os.environ.get("PYTHONPATH")]))

import minidl as md  # noqa: E402
from minidl import backend  # noqa: E402

needs_cxx = pytest.mark.skipif(
    shutil.which("g++") is None, reason="no C++ compiler (g++): the CPU emulator cannot build kernels"
)
needs_cuda = pytest.mark.skipif(
    not md.cuda_available(), reason="no cuda device: MINIDL_DEVICE=cuda pytest runs these on the CuPy stand-in"
)
host_only = pytest.mark.skipif(
    os.environ.get("MINIDL_DEVICE", "cpu") != "cpu",
    reason="it touches no device (files, processes, data, the command line on cpu): it runs once, in the cpu leg",
)
cpu_leg_only = pytest.mark.skipif(
    os.environ.get("MINIDL_DEVICE", "cpu") != "cpu",
    reason="it checks the array path or the lab's maths, the same in every leg: it runs in the cpu leg "
    "(the ops it calls are checked on every device from the op table)",
)
emu_leg_only = pytest.mark.skipif(  # a plain pytest (the cpu leg alone) runs them; tests/all_devices.sh, once
    os.environ.get("MINIDL_DEVICE", "cpu") != "emu" and os.environ.get("MINIDL_ALL_LEGS") == "1",
    reason="the emu cases run in the emu leg of tests/all_devices.sh",
)
KERNEL_DEVICES = [pytest.param("emu", marks=[needs_cxx, emu_leg_only]),
                  pytest.param("cuda", marks=[pytest.mark.gpu, needs_cuda])]  # fmt: skip

settings.register_profile(
    "minidl", deadline=None, max_examples=20, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)
settings.load_profile("minidl")


def standin():
    """The CuPy stand-in module, or a skip where cuda is a real GPU or absent."""
    if not md.cuda_available():
        pytest.skip("no cuda device: MINIDL_DEVICE=cuda pytest runs this on the CuPy stand-in")
    cupy = backend.cupy()
    if not getattr(cupy, "STANDIN", False):
        pytest.skip("cuda is a real GPU here; this checks the stand-in itself")
    return cupy


def quick_experiment(tmp_path, device, **options):
    """An Experiment (the lab application's) without a command line: one epoch of batches of 4, seed 0;
    options override."""
    from minidl.experiments.experiment import Experiment

    args = argparse.Namespace(epochs=1, device=device, seed=0, out=tmp_path, json=None, limit=None, batch_size=4,
                              resume=False, data=None, capture=False)  # fmt: skip
    vars(args).update(options)
    return Experiment(args, "test")


def leaf(array, requires_grad=True, dtype=np.float64):
    """A float64 leaf tensor on the default device."""
    return md.tensor(np.asarray(array), requires_grad=requires_grad, dtype=dtype)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
