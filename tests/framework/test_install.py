"""Where minidl finds its kernels, the ways a user gets minidl: a fresh clone with nothing
installed, and a wheel. The kernels are found beside the minidl package that was imported,
so neither run can pick up another minidl's kernels (this environment has one installed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_cxx

from minidl.lab import solutions

ROOT = Path(__file__).resolve().parents[2]
once = pytest.mark.skipif(
    os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="installs and runs on emu itself: once, in the cpu leg"
)
PROBE = (
    "import numpy as np, minidl as md\n"
    "from minidl.runtime import sources\n"
    "y = md.nn.functional.avg_pool2d(md.tensor(np.arange(16.0).reshape(1, 1, 4, 4), device='emu'), 2)\n"
    "print(md.__file__, sources.SOURCE_DIR, y.numpy().ravel().tolist(), sep='\\n')\n"
)


def run(command: list[str], cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MINIDL_DEVICE")}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=env)


@once
@needs_cxx
def test_a_fresh_clone_imports_and_runs_its_quickstart_with_nothing_installed(tmp_path):
    clone = tmp_path / "clone"
    solutions.write_copy(ROOT, clone, stubs=None)
    pooling = clone / "kernels" / "pooling.cu"  # a kernel only this clone has: twice the average
    average = "y[index] = acc / T(KH * KW);"
    pooling.write_text(pooling.read_text().replace(average, "y[index] = T(2) * acc / T(KH * KW);"))
    probe = run([sys.executable, "-c", PROBE], cwd=clone, pythonpath=clone)
    assert probe.returncode == 0, probe.stderr
    package, kernels, values = probe.stdout.splitlines()
    assert Path(package) == clone / "minidl" / "__init__.py" and Path(kernels) == clone / "kernels"
    assert values == "[5.0, 9.0, 21.0, 25.0]", "the clone's own kernel ran"
    quickstart = run([sys.executable, "examples/quickstart.py", "--device", "emu", "--steps", "2"], cwd=clone,
                     pythonpath=clone)  # fmt: skip
    assert quickstart.returncode == 0, quickstart.stderr


@once
@needs_cxx
@pytest.mark.slow
def test_a_wheel_ships_the_kernels_and_finds_them_installed(tmp_path):
    source = tmp_path / "source"
    solutions.write_copy(ROOT, source, stubs=None)
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
                cwd=tmp_path)  # fmt: skip
    if built.returncode != 0 and "Could not find a version that satisfies the requirement setuptools" in built.stderr:
        pytest.skip(f"pip cannot reach a package index to build the wheel in isolation:\n{built.stderr[-500:]}")
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("minidl-*.whl")
    site = tmp_path / "site"
    installed = run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                    cwd=tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    assert sorted(p.name for p in (site / "minidl" / "runtime" / "kernels").iterdir()) == sorted(
        p.name for p in (ROOT / "kernels").iterdir() if p.suffix in (".cu", ".cuh")
    )
    probe = run([sys.executable, "-c", PROBE], cwd=tmp_path, pythonpath=site)
    assert probe.returncode == 0, probe.stderr
    package, kernels, values = probe.stdout.splitlines()
    assert Path(package) == site / "minidl" / "__init__.py" and Path(kernels) == site / "minidl" / "runtime" / "kernels"
    assert values == "[2.5, 4.5, 10.5, 12.5]"


@once
def test_the_suite_command_runs_every_leg_and_adds_them_up(tmp_path):
    """tests/all_devices.sh, the README's test command, on a planted suite that fails on emu only:
    the cuda leg still runs, the last line totals the three legs, and the exit status says a leg failed."""
    (tmp_path / "tests").mkdir()
    script = tmp_path / "tests" / "all_devices.sh"
    script.write_text((ROOT / "tests" / "all_devices.sh").read_text())
    (tmp_path / "tests" / "test_planted.py").write_text(
        "import os, pytest\n"
        "def test_everywhere(): pass\n"
        "def test_not_on_emu(): assert os.environ['MINIDL_DEVICE'] != 'emu'\n"
        "@pytest.mark.skip(reason='planted')\ndef test_skipped(): pass\n"
    )
    result = subprocess.run(["bash", str(script), "-p", "no:cacheprovider", "tests"], capture_output=True, text=True,
                            cwd=tmp_path, timeout=120)  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.count("=== MINIDL_DEVICE=") == 4  # three legs, and emu's failure named
    assert result.stdout.splitlines()[-1] == "total: 5 passed, 1 failed, 3 skipped"
