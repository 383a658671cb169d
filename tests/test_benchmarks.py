"""benchmarks/kernels.py runs (its short mode) and writes its table, JSON and chart."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import needs_cxx

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = {
    "conv2d forward", "conv2d input grad", "conv2d weight grad", "conv_transpose2d forward",
    "max_pool2d forward", "max_pool2d backward", "avg_pool2d forward", "avg_pool2d backward",
    "upsample nearest forward", "upsample nearest backward", "upsample bilinear forward",
    "upsample bilinear backward", "sigmoid + BCE, loss and grad", "Adam step",
    "linear forward", "linear input grad", "linear weight grad",
}  # fmt: skip


def kernels_benchmark(tmp_path, *args):
    command = [sys.executable, str(ROOT / "benchmarks" / "kernels.py"), "--short", *args,
               "--json", str(tmp_path / "k.json"), "--png", str(tmp_path / "k.png")]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout, json.loads((tmp_path / "k.json").read_text())


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="benchmarks/kernels.py runs in the cpu leg")
def test_kernel_benchmark_times_every_family_on_the_cpu(tmp_path):
    stdout, report = kernels_benchmark(tmp_path, "--device", "cpu", "--repeats", "2")
    assert report["device"] == "cpu" and {r["op"] for r in report["rows"]} == FAMILIES
    has_torch = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True).returncode == 0
    for row in report["rows"]:
        assert row["ms"] > 0 and row["rate"] > 0 and 0 < row["of_ceiling"]
        assert (row["ratio"] is not None) == has_torch
        assert row["op"] in stdout
    assert (tmp_path / "k.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "emu", reason="the emu mode runs in the emu leg")
@needs_cxx
def test_kernel_benchmark_counts_launches_on_the_emulator_without_timing(tmp_path):
    stdout, report = kernels_benchmark(tmp_path, "--device", "emu")
    assert {r["op"] for r in report["rows"]} == FAMILIES
    for row in report["rows"]:
        assert "ms" not in row and row["work"] > 0
        # partial sums, then their total; Adam's schedule, then its update
        two = row["op"].startswith("sigmoid") or row["op"] in ("conv2d weight grad", "Adam step")
        assert row["launches"] == (2 if two else 1), row
    assert "conv2d_backward_weight<float>" in stdout and not (tmp_path / "k.png").exists()


def test_the_gpu_peer_runs_in_float32_in_both_benchmarks():
    """PyTorch would use TF32 in cuDNN and cuBLAS on a GPU; the peer is held to float32 (peer.py),
    by kernels.py and train_model_c.py alike, and the table says so."""
    import types

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import peer
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    flags = types.SimpleNamespace
    backends = flags(cudnn=flags(allow_tf32=True), cuda=flags(matmul=flags(allow_tf32=True)))
    words = peer.float32_peer(types.SimpleNamespace(backends=backends))
    assert backends.cudnn.allow_tf32 is False and backends.cuda.matmul.allow_tf32 is False and "TF32 off" in words
    for script in ("kernels.py", "train_model_c.py"):
        assert "float32_peer(torch)" in (ROOT / "benchmarks" / script).read_text(), script


def test_gpu_check_plans_every_step_within_its_budget(tmp_path):
    """benchmarks/gpu_check.sh --dry-run: the steps a GPU run takes, each with its own limit, and nothing
    run or written (the stand-in mode, run by hand, is recorded in RESULTS.md)."""
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    result = subprocess.run(["bash", script, "--dry-run"], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    steps = {line.split()[0]: int(line.split()[2].rstrip("s:")) for line in result.stdout.splitlines()}
    assert list(steps) == ["install", "doctor", "memcheck", "racecheck", "initcheck", "synccheck", "suite", "model_c",
                           "model_c_capture", "kernels"]  # fmt: skip
    assert "-m minidl.doctor --device cuda" in result.stdout and ".[dev,cuda12,bench]" in result.stdout
    assert "MINIDL_DEVICE=cuda" in result.stdout and "--capture" in result.stdout
    assert not (tmp_path / "out").exists()
    usage = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--fast"], capture_output=True, text=True
    )
    assert usage.returncode == 2 and "usage:" in usage.stderr


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="benchmarks run in the cpu leg")
def test_double_backward_benchmark_times_every_penalty_beside_pytorch():
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]'): no peer to time")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "double_backward.py"), "--repeats", "1"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]
    assert len(rows) == 7 and all(float(row[-1]) >= 1 or "plain" in row for row in rows)
    assert "double backward, exact" in result.stdout and "Hutchinson 1" in result.stdout


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="benchmarks/step_calls.py runs on the cpu")
def test_step_calls_counts_the_python_work_of_a_step():
    command = [sys.executable, str(ROOT / "benchmarks" / "step_calls.py"), "--model", "D", "--steps", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    calls = int(result.stdout.split("batch 4: ")[1].split(" Python calls")[0])
    assert 500 < calls < 5000, result.stdout  # a step of Model D makes about 1500 calls
