"""kill -9 at random moments of a two-model example, each followed by --resume: the metrics equal
those of an uninterrupted run (checkpoints are atomic; the random state is restored). About three
minutes on 2 CPU cores, so it runs only when asked: MINIDL_SLOW=1 python -m pytest -m slow."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
RUN = ["--limit", "128", "--batch-size", "32", "--epochs", "2", "--device", "cpu"]
KILLS = 10

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not os.environ.get("MINIDL_SLOW"), reason="takes ~3 minutes: set MINIDL_SLOW=1 to run it"),
]


def _example(out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, str(ROOT / "examples" / "conv_dae_mnist.py"), *RUN, "--out", str(out),
               "--json", str(out / "metrics.json"), *extra]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _metrics(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("seconds_per_epoch")  # wall time: the one thing that may differ
    return metrics


def test_kill_at_random_moments_then_resume_gives_the_uninterrupted_metrics(tmp_path):
    start = time.perf_counter()
    straight = _example(tmp_path / "straight")
    assert straight.wait(timeout=600) == 0, straight.stderr.read()
    expected, seconds = _metrics(tmp_path / "straight"), time.perf_counter() - start
    moments = np.random.default_rng(2026).uniform(0.5, seconds, KILLS)
    for k, moment in enumerate(moments):
        out = tmp_path / f"killed{k}"
        run = _example(out)
        time.sleep(moment)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=60)
        resumed = _example(out, *(["--resume"] if any(out.glob("*.ckpt.npz")) else []))  # nothing to resume: afresh
        assert resumed.wait(timeout=600) == 0, f"kill {k} at {moment:.1f} s: {resumed.stderr.read()}"
        assert _metrics(out) == expected, f"kill {k} at {moment:.1f} s"
