"""benchmarks/cpu_step.py: a tiny run gives a row per workload and thread count, with both frameworks'
wall and CPU time, the peak RSS of each framework, the CPU's model and its AVX-512 flag."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import host_only

ROOT = Path(__file__).resolve().parents[2]


@host_only
@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch (the peer) is not installed")
def test_cpu_step_reports_ratios_per_workload_and_threads(tmp_path):
    workloads = ["C-mse", "contractive-exact-16"]
    tiny = ["--threads", "1", "2", "--rounds", "1", "--steps", "1", "--batch", "4", "--workloads", *workloads]
    command = [sys.executable, str(ROOT / "benchmarks" / "cpu_step.py"), *tiny, "--json", str(tmp_path / "r.json")]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["minidl"] == str(ROOT / "minidl")  # the checkout's minidl, not an installed one
    assert report["cpu"]["model"] and isinstance(report["cpu"]["avx512"], bool)
    assert [(r["workload"], r["threads"]) for r in report["rows"]] == [(w, t) for t in (1, 2) for w in workloads]
    for row in report["rows"]:
        for key in ("minidl_wall_ms", "torch_wall_ms", "minidl_cpu_ms", "torch_cpu_ms"):
            assert row[key] > 0, (row, key)
    assert set(report["load"]) == {"1", "2"} and report["settle"] == 1  # one untimed step before each block
    assert set(report["rss_mb"]) == set(workloads)
    assert all(rss["minidl"] > 10 and rss["torch"] > 10 for rss in report["rss_mb"].values())
    assert "AVX-512: " in result.stdout and result.stdout.count("contractive-exact-16") == 3  # 2 rows, 1 RSS
