"""benchmarks/kernels.py runs (its short mode) and writes its table, JSON and chart."""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import host_only, needs_cxx

from minidl.experiments.models import MAIN_JOB
from minidl.optable import kernel_ops

ROOT = Path(__file__).resolve().parents[2]
FAMILIES = {f"{info.name} {part}" for info in kernel_ops() for part in ("forward", "backward")} | {"Adam step"}


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
        # every forward runs the op's kernels (a fused loss's backward only scales what its forward saved)
        assert row["launches"] >= 1 or row["op"].endswith("backward"), row
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


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="the benchmark runs in the cpu leg")
def test_the_main_jobs_model_c_beside_pytorch_on_its_recipe():
    """train_model_c.py --recipe lab: the main job's Model C (MSE, input + 0.3·N(0, 1) unclipped, output layer
    at the mean image), minidl and PyTorch from the same weights on the same batches; the last line gives
    both final test MSEs and their ratio beside the target 1.1."""
    pytest.importorskip("torch", reason="PyTorch (the bench extra) is the peer this benchmark compares with")
    command = [sys.executable, str(ROOT / "benchmarks" / "train_model_c.py"), "--recipe", "lab", "--epochs", "1",
               "--limit", "256", "--test-limit", "200"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].startswith("Model C, recipe lab: loss mse, noise gaussian:0.3:noclip, output layer at the mean")
    assert f"Adam {MAIN_JOB['model_c'].lr:g}," in lines[0]  # the main job's learning rate, not the speed recipe's
    final = next(line for line in lines if line.startswith("final test MSE after 1 epochs: "))
    words = final.replace(",", "").split()
    ours, theirs = float(words[words.index("minidl") + 1]), float(words[words.index("PyTorch") + 1])
    ratio = float(words[words.index("PyTorch", words.index("PyTorch") + 1) + 1])
    assert 0 < ours < 1 and 0 < theirs < 1 and ratio == pytest.approx(ours / theirs, abs=1e-3)
    assert final.endswith("(the lab's target: at most 1.1)")


GPU_CHECK = str(ROOT / "benchmarks" / "gpu_check.sh")


def _plan(tmp_path, *flags: str) -> tuple[str, dict[str, int]]:
    """gpu_check.sh --dry-run's environment line and its steps with their limits in seconds."""
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    result = subprocess.run(["bash", GPU_CHECK, "--dry-run", *flags], capture_output=True, text=True, env=env,
                            timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    head, *lines = result.stdout.splitlines()
    return result.stdout, {line.split()[0]: int(line.split()[2].rstrip("s:")) for line in lines} | {"": head}


@host_only
def test_gpu_check_runs_on_the_lent_machine_as_it_is(tmp_path):
    """The GPU machine has no network and its own python3 (CUDA 13 CuPy, PyTorch): the plan makes no
    venv, reaches no index, installs no cuda12 CuPy, and takes minidl from the checkout."""
    plan, steps = _plan(tmp_path)
    assert list(steps)[:-1] == ["preflight", "wheels", "doctor", "memcheck", "racecheck", "initcheck", "synccheck",
                                "suite", "model_c", "model_c_capture", "kernels"]  # fmt: skip
    assert "budget=360s" in steps[""] and "PIP_NO_INDEX=1" in steps[""] and f"PYTHONPATH={ROOT}" in steps[""]
    assert "venv" not in plan and "cuda12" not in plan and ".[" not in plan
    pip_lines = [line for line in plan.splitlines() if "pip" in line and not line.startswith("environment")]
    assert pip_lines and all("--no-index" in line and "--no-deps" in line for line in pip_lines)
    assert "-n 8 --timeout 60" in plan and "MINIDL_DEVICE=cuda" in plan and "--epochs 2" in plan
    assert "python3 -m minidl.doctor --device cuda" in plan and "python3 benchmarks/gpu_preflight.py" in plan
    quick_plan, quick = _plan(tmp_path, "--quick")
    assert set(quick) - {""} == {"preflight", "wheels", "doctor", "memcheck", "model_c_capture"}
    assert "budget=150s" in quick[""] and "--capture" in quick_plan
    usage = subprocess.run(["bash", GPU_CHECK, "--fast"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr


@host_only
def test_gpu_preflight_stops_with_one_line_without_cupy():
    try:
        import cupy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("CuPy is installed here: the preflight would go on")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_preflight.py")], capture_output=True,
                            text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("STOP: cupy: cannot be imported"), result.stdout


FAKE_PYTHON = """#!/usr/bin/env bash
# stands for python3 on a GPU machine: the preflight exits $PREFLIGHT_RC, the doctor fails, a step sleeps
case "$*" in
    *gpu_preflight*) echo "cupy 14.2.0"; [[ $PREFLIGHT_RC == 3 ]] && echo "STOP: cupy: cannot be imported"
                     exit "$PREFLIGHT_RC" ;;
    *minidl.doctor*) echo "minidl doctor: 1 of 13 checks failed"; exit 1 ;;
    *train_model_c*) touch "$STARTED"; sleep 30 ;;
    *) exit 0 ;;
esac
"""


@host_only
def test_gpu_check_says_what_failed_and_keeps_its_files_when_killed(tmp_path):
    """With a python that fails the doctor (and no compute-sanitizer), the check goes on, writes its
    summary and exits 1; the preflight's stop exits 3; killed mid-step, the exit hook still says so;
    an OUT that already holds files keeps those that are not the check's own."""
    fake = tmp_path / "python3"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    env = {**os.environ, "GPU_CHECK_PYTHON": str(fake), "PATH": "/usr/bin:/bin", "STARTED": str(tmp_path / "go"),
           "GPU_CHECK_CARRY": str(tmp_path / "no-carry")}  # fmt: skip

    def check(out: str, preflight_rc: int) -> subprocess.Popen:
        return subprocess.Popen(["bash", GPU_CHECK, "--quick"], env={**env, "OUT": str(tmp_path / out),
                                "PREFLIGHT_RC": str(preflight_rc)}, stdout=subprocess.PIPE, text=True)  # fmt: skip

    stopped = check("stopped", 3)
    assert stopped.wait(timeout=60) == 3
    summary = (tmp_path / "stopped" / "summary.txt").read_text()
    assert "STOP: cupy: cannot be imported" in summary and "RESULT: stopped by the preflight" in summary
    (tmp_path / "killed").mkdir()
    (tmp_path / "killed" / "mine.txt").write_text("a file of the user's in OUT")
    (tmp_path / "killed" / "summary.txt").write_text("RESULT: an earlier run's summary")
    killed = check("killed", 0)
    deadline = time.monotonic() + 60
    while not (tmp_path / "go").exists() and time.monotonic() < deadline:  # the doctor failed; Model C runs
        time.sleep(0.1)
    killed.terminate()
    assert killed.wait(timeout=10) == 1  # at once, not after the step's 30 s
    files = sorted(p.name for p in (tmp_path / "killed").iterdir())
    assert files == ["bench.log", "doctor.log", "mine.txt", "summary.txt"], files  # the user's file stays
    summary = (tmp_path / "killed" / "summary.txt").read_text()
    assert "an earlier run's summary" not in summary
    assert "doctor           rc=1" in summary and "FAIL  memcheck (compute-sanitizer is not on PATH)" in summary
    assert "RESULT: 2 step(s) failed, timed out or were skipped: doctor memcheck" in summary


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="benchmarks run in the cpu leg")
def test_double_backward_benchmark_tables_every_penalty_beside_pytorch():
    """The table's shape and arithmetic; how fast each penalty is belongs in RESULTS.md, not in a test."""
    pytest.importorskip("torch", reason="PyTorch is not installed (pip install -e '.[bench]'): no peer to time")
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "double_backward.py"), "--repeats", "1"],
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()[2:]]  # code, penalty..., 4 numbers
    assert [row[0] for row in rows] == ["256"] * 3 + ["16"] * 4
    numbers = [[float(v) for v in row[-4:]] for row in rows]
    assert all(all(v > 0 and math.isfinite(v) for v in row) for row in numbers)
    for row, (ours, theirs, ratio, per_plain) in zip(rows, numbers):  # the columns agree; their sizes are timings
        assert ratio == pytest.approx(ours / theirs, abs=0.01, rel=0.01), row
        assert per_plain == 1.0 if "plain" in row else per_plain > 0
    assert "double backward, exact" in result.stdout and "Hutchinson 1" in result.stdout


@pytest.mark.skipif(os.environ.get("MINIDL_DEVICE", "cpu") != "cpu", reason="benchmarks/step_calls.py runs on the cpu")
def test_step_calls_counts_the_python_work_of_a_step():
    command = [sys.executable, str(ROOT / "benchmarks" / "step_calls.py"), "--model", "D", "--steps", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    calls = int(result.stdout.split("batch 4: ")[1].split(" Python calls")[0])
    assert 500 < calls < 5000, result.stdout  # a step of Model D makes about 1500 calls
