#!/usr/bin/env bash
# The whole suite on every device: cpu (NumPy), emu (our CUDA kernels on the CPU emulator)
# and cuda (a GPU where there is one, else the strict CuPy stand-in of tests/standin).
set -euo pipefail
cd "$(dirname "$0")/.."
for device in cpu emu cuda; do
    echo "=== MINIDL_DEVICE=$device"
    MINIDL_DEVICE=$device python -m pytest -q -ra "$@"
done
