"""python -m minidl.doctor, started as a student types it: in the checkout, and in a student copy
whose kernels are stubs (where it must fail)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_only, needs_cxx

import minidl as md
from minidl.optable import kernel_ops

ROOT = Path(__file__).resolve().parents[2]


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
    families = [info.name for info in kernel_ops()]
    assert {"conv2d", "max_pool2d", "upsample_bilinear", "sigmoid_mse_loss", "linear"} <= set(families)
    for family in [*families, "Adam"]:  # every kernel op of the op table, and the optimiser
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


def _settings(tmp_path: Path) -> dict:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a folder")
    return {
        "MINIDL_CACHE a file": ({"MINIDL_CACHE": str(a_file)}, "MINIDL_CACHE", f"MINIDL_CACHE={a_file})"),
        "HOME a file, no MINIDL_CACHE": ({"HOME": str(a_file)}, "MINIDL_CACHE", f"under HOME={a_file})"),
        "CXX missing": ({"CXX": "/nonexistent/g++"}, "CXX", "there is no program '/nonexistent/g++'"),
        "CXX not a program": ({"CXX": str(a_file)}, "CXX", "set CXX to a C++ compiler"),
    }


@needs_cxx
@pytest.mark.parametrize("case", ["MINIDL_CACHE a file", "HOME a file, no MINIDL_CACHE", "CXX missing",
                                  "CXX not a program"])  # fmt: skip
def test_a_cache_or_compiler_that_cannot_be_used_is_one_message_naming_the_variable(tmp_path, case):
    """Each ended in pathlib.mkdir's or subprocess's traceback (FileNotFoundError for CXX), reported as a
    failed check with exit status 1; now one line that names the variable to set, exit status 2."""
    settings, variable, words = _settings(tmp_path)[case]
    env = {k: v for k, v in os.environ.items() if k not in ("MINIDL_DEVICE", "MINIDL_CACHE")}
    if "HOME" not in settings:
        env["MINIDL_CACHE"] = str(tmp_path / "cache")  # a fresh cache: the kernels are built
    result = subprocess.run([sys.executable, "-m", "minidl.doctor", "--device", "emu"], capture_output=True,
                            text=True, cwd=ROOT, env={**env, **settings}, timeout=600)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    message = result.stderr.splitlines()[0]
    assert message.startswith("minidl: ") and variable in message and words in message, message
    assert "Traceback" not in result.stderr


@host_only
@needs_cxx
def test_a_compiler_with_flags_in_cxx_builds_the_kernels(tmp_path):
    """CXX='g++ -O3' (a command with flags, as make takes it) was run as one program name: FileNotFoundError.
    The doctor is told --device emu and MINIDL_DEVICE is dropped, so every leg would run the same build."""
    env = {k: v for k, v in os.environ.items() if k != "MINIDL_DEVICE"}
    result = subprocess.run([sys.executable, "-m", "minidl.doctor", "--device", "emu"], capture_output=True,
                            text=True, cwd=ROOT, env={**env, "CXX": "g++ -O3", "MINIDL_CACHE": str(tmp_path)},
                            timeout=600)  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok    kernels compile" in result.stdout and list((tmp_path / "emulator").glob("*.so"))


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
