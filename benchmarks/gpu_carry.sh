#!/usr/bin/env bash
# gpu_carry.sh: fill .gpu_carry/ (ignored by git) here with what benchmarks/gpu_check.sh needs on a GPU
# machine that has no network, then print its size and the call that runs the check there.
#   .gpu_carry/mnist.npz   MNIST as minidl caches it (read there through MINIDL_DATA)
#   .gpu_carry/wheels/     wheels for packages that machine lacks: GPU_CARRY_WHEELS="NAME==VERSION ..."
#                          (none by default: its python3 has CuPy, PyTorch, pytest-xdist, pytest-timeout,
#                          hypothesis, scipy, matplotlib and tqdm), for its CPython 3.12 on x86-64
#   bash benchmarks/gpu_carry.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CARRY=.gpu_carry
LIMIT_MIB=64  # what may travel with the working tree
mkdir -p "$CARRY/wheels"
python3 - "$CARRY/mnist.npz" <<'PY'
import os, shutil, sys
from pathlib import Path
from minidl import data

target = Path(sys.argv[1])
given = os.environ.get("MINIDL_DATA")
source = Path(given) if given and given.endswith(".npz") else data.cache_dir() / "mnist.npz"
if not source.is_file():
    data.load_mnist(verbose=True)  # finds MNIST as the examples do, and caches it there
data.load_mnist(source, verbose=False)  # refuses a file that is not MNIST
shutil.copyfile(source, target)
print(f"MNIST: {source} -> {target}")
PY
for wheel in ${GPU_CARRY_WHEELS:-}; do
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CARRY/wheels" "$wheel"
done
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 du -cb 2>/dev/null | tail -1 | cut -f1)
carry=$(du -sb "$CARRY" | cut -f1)
total=$(( (tree + carry) / 1048576 ))
echo "working tree $((tree / 1048576)) MiB + $CARRY $((carry / 1048576)) MiB = $total MiB (at most $LIMIT_MIB MiB travel)"
(( total <= LIMIT_MIB )) || { echo "too large to travel: carry fewer wheels" >&2; exit 1; }
cat <<CALL
On the GPU machine, one call (about 6 minutes), then a rerun only if time is left (about 2.5), then give it back:
  command: bash benchmarks/gpu_check.sh          carry: ["$CARRY"]   timeout: 420 s
  command: bash benchmarks/gpu_check.sh --quick  carry: ["$CARRY"]   timeout: 180 s
Everything comes back in \$OUT (7 files at most).
CALL
