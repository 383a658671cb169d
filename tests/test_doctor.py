"""python -m minidl.doctor, started as a student types it: in the checkout, and in a student copy
whose kernels are stubs (where it must fail)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_cxx

import minidl as md

ROOT = Path(__file__).resolve().parents[1]


def doctor(folder: Path, *args: str, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MINIDL_DEVICE"}  # the doctor picks its device itself
    env.update(variables)
    return subprocess.run([sys.executable, "-m", "minidl.doctor", *args], capture_output=True, text=True,
                          cwd=folder, env=env, timeout=600)  # fmt: skip


@needs_cxx
def test_the_doctor_checks_every_kernel_family_and_says_all_is_well():
    result = doctor(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert f"NumPy {__import__('numpy').__version__}" in out and "Python 3." in out
    for family in ("conv2d", "conv_transpose2d", "max_pool2d", "avg_pool2d", "upsample nearest", "upsample bilinear",
                   "sigmoid + BCE", "sigmoid + MSE", "linear", "matmul", "Adam"):  # fmt: skip
        assert f"ok    {family} kernels" in out, family
    if md.cuda_available():  # a GPU, or the stand-in in the cuda leg: as on a GPU
        assert "GPU 0:" in out and "ok    captured step" in out and "checks passed on the GPU" in out
    else:
        assert "no GPU:" in out and "skip  captured step" in out
        assert out.strip().endswith("s") and "passed on the emulator (no GPU here)" in out


@needs_cxx
def test_the_doctor_fails_where_a_kernel_is_wrong(tmp_path):
    """A student copy (its backward walk and kernels are stubs): every family fails with the stub's
    message, the exit status is 1."""
    copy = tmp_path / "student"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    made = subprocess.run([sys.executable, "-m", "minidl.lab", "student", str(copy)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip
    assert made.returncode == 0, made.stderr
    result = doctor(copy, "--device", "emu")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "ok    kernels compile" in result.stdout  # the stubs compile
    assert "FAIL  max_pool2d kernels" in result.stdout and "FAIL  Adam kernels" in result.stdout
    assert "Exercise 3 not implemented: conv2d forward by im2col" in result.stdout
    assert "checks failed on the emulator" in result.stdout.splitlines()[-1]


def test_the_doctor_reads_minidl_device_first():
    """MINIDL_DEVICE=garbage, and cuda where CuPy is missing, ran every check on the emulator and
    said all passed (exit 0)."""
    result = doctor(ROOT, MINIDL_DEVICE="garbage")
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert "minidl: unknown MINIDL_DEVICE='garbage' in the environment: expected one of cpu, cuda, emu" in result.stderr
    if md.backend.cupy_problem() is None:
        pytest.skip("CuPy is importable here: MINIDL_DEVICE=cuda is a device the doctor checks")
    result = doctor(ROOT, MINIDL_DEVICE="cuda")
    assert result.returncode == 1 and "passed" not in result.stdout, result.stdout
    assert "device 'cuda' was requested but no GPU is usable" in result.stderr
