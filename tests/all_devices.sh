#!/usr/bin/env bash
# The whole suite on every device: cpu (NumPy), emu (our CUDA kernels on the CPU emulator)
# and cuda (a GPU where there is one, else the strict CuPy stand-in of tests/standin).
# Every leg runs even when one fails; the last line adds them up, and the exit status is
# non-zero when any leg failed. Each leg spreads its test files over the cores (pytest-xdist, -n auto,
# --dist loadfile: a file stays on one worker, so a module fixture, e.g. a graded class, runs once);
# arguments go to pytest after that (-n 0 runs a leg in one process). MINIDL_ALL_LEGS=1 tells the
# tests that every leg runs: a case that names the emulator runs in the emu leg only.
set -uo pipefail
cd "$(dirname "$0")/.."
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
status=0
for device in cpu emu cuda; do
    echo "=== MINIDL_DEVICE=$device"
    MINIDL_ALL_LEGS=1 MINIDL_DEVICE=$device python -m pytest -q -ra -n auto --dist loadfile --durations=15 "$@" 2>&1 | tee "$logs/$device.log"
    rc=${PIPESTATUS[0]}
    ((rc == 0)) || { echo "=== MINIDL_DEVICE=$device: pytest exit status $rc"; status=1; }
done
# pytest's closing line of each leg, e.g. "3 failed, 410 passed, 51 skipped, 2 errors in 120.5s"
count() { grep -h -a -E "^=*\s*[0-9]+ \w+.* in [0-9.]+s" "$logs"/*.log | grep -o -E "[0-9]+ $1\b" | awk '{s += $1} END {print s + 0}'; }
echo "total: $(count passed) passed, $(( $(count failed) + $(count errors) + $(count error) )) failed, $(count skipped) skipped"
exit $status
