"""MINIDL_PROFILE=1: every launch timed, and a per-kernel table printed when the process exits.

Times are taken by the device (CUDA events on a GPU, read only when the table is made, so
timing adds no host sync; the wall clock on the emulator). Nothing is timed when it is off.
"""

from __future__ import annotations

import atexit
import os
import sys
import time
from collections import defaultdict

PROFILE = os.environ.get("MINIDL_PROFILE", "0") not in ("", "0")
_timings: dict[str, list] = defaultdict(list)  # kernel instance -> [(device, mark), ...]
_started = time.perf_counter()


def timed(device, name: str, function, *args, **options) -> None:
    """Run function(*args, **options), one launch on `device` (a runtime.devices object), and keep its
    time under `name`."""
    mark = device.start_timer()
    function(*args, **options)
    _timings[name].append((device, device.stop_timer(mark)))


def launch_counts() -> dict[str, int]:
    """How many times each kernel was launched while profiling was on (MINIDL_PROFILE=1, or PROFILE set)."""
    return {name: len(marks) for name, marks in _timings.items()}


def profile_table() -> str:
    """Launches, total and mean time and share of the run of every kernel launched so far."""
    run = time.perf_counter() - _started
    rows = []
    for name, marks in _timings.items():
        times = [device.seconds(mark) for device, mark in marks]
        rows.append((sum(times), len(times), name))
    lines = [f"{'kernel':<34} {'launches':>9} {'total ms':>10} {'mean us':>9} {'of run':>7}"]
    for total, count, name in sorted(rows, reverse=True):
        lines.append(f"{name:<34} {count:>9} {total * 1e3:>10.2f} {total / count * 1e6:>9.1f} {total / run:>7.1%}")
    return "\n".join(lines)


def _report() -> None:
    if _timings:
        print(f"MINIDL_PROFILE: the kernels of this run\n{profile_table()}", file=sys.stderr)


if PROFILE:
    atexit.register(_report)
