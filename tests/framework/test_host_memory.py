"""minidl.host_memory: after `import minidl` a step's large arrays reuse freed pages (no page faults),
unless MINIDL_HOST_MEMORY=release keeps glibc's defaults."""

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_only

ROOT = Path(__file__).resolve().parents[2]

STEPS = """
import resource, numpy as np, minidl
def step():  # arrays of a training step's sizes, made and dropped (12 MB each)
    a = np.ones(3_000_000, np.float32); b = a * 2; c = a + b; return float(c[-1])
step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 10)
"""


def faults_per_step(**env) -> float:
    result = subprocess.run([sys.executable, "-c", STEPS], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})  # fmt: skip
    assert result.returncode == 0, result.stderr
    return float(result.stdout)


@host_only
@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="host_memory tunes glibc's malloc only")
def test_a_step_reuses_freed_pages_after_import():
    released = faults_per_step(MINIDL_HOST_MEMORY="release")
    kept = faults_per_step()
    assert released > 1000  # glibc's defaults: the step's arrays come back as new pages, faulted in
    assert kept < 50, (kept, released)
