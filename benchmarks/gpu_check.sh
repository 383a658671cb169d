#!/usr/bin/env bash
# gpu_check.sh: the one command that records what a GPU has to show about minidl, from a bare
# checkout, in under 10 minutes on one GPU. Every step has its own timeout inside one deadline
# (GPU_CHECK_BUDGET seconds, default 560), so a hang costs one step; all output goes under $OUT.
#
#   bash benchmarks/gpu_check.sh              # on a machine with an NVIDIA GPU
#   bash benchmarks/gpu_check.sh --standin    # here, without a GPU: the same steps on the CuPy stand-in
#   bash benchmarks/gpu_check.sh --dry-run    # print the steps and their limits, run nothing
#
# The steps, in order:
#   install      a venv with .[dev,cuda12,bench] (CuPy, NVRTC, PyTorch), pytest-xdist and NVIDIA's
#                compute-sanitizer wheel (--standin: the Python running this script, nothing installed)
#   doctor       python -m minidl.doctor: versions, every kernel compiled, each family against the CPU,
#                a captured step against an eager one
#   sanitizers   compute-sanitizer memcheck, racecheck, initcheck and synccheck, each over the doctor's
#                run of every kernel family (in the background, beside the suite)
#   suite        the test suite on cuda (MINIDL_DEVICE=cuda), the emulator's parametrisations left out
#   model_c      benchmarks/train_model_c.py eager, then --capture, beside PyTorch (TF32 off)
#   kernels      benchmarks/kernels.py --device cuda --short beside PyTorch (TF32 off)
# and summary.txt: each step's exit status, seconds and key lines. Knobs: OUT (default
# ./gpu_check_out), GPU_CHECK_BUDGET, GPU_CHECK_VENV, GPU_CHECK_TESTS (pytest paths, default tests).
set -u -o pipefail
cd "$(dirname "$0")/.."
MODE=gpu
case "${1:-}" in
    --standin) MODE=standin ;;
    --dry-run) MODE=dry ;;
    "") ;;
    *) echo "usage: bash benchmarks/gpu_check.sh [--standin | --dry-run]" >&2; exit 2 ;;
esac
START=$SECONDS
BUDGET=${GPU_CHECK_BUDGET:-560}
OUT=${OUT:-$PWD/gpu_check_out}
VENV=${GPU_CHECK_VENV:-/tmp/minidl-gpu-venv}
TESTS=${GPU_CHECK_TESTS:-tests}
export PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 OUT
SUMMARY="$OUT/summary.txt"
if [[ $MODE != dry ]]; then mkdir -p "$OUT" && : > "$SUMMARY"; fi

say() { echo "[$(( SECONDS - START ))s] $*" | tee -a "$SUMMARY"; }
limit() { local l=$(( BUDGET - (SECONDS - START) - ${2:-0} )); (( l > $1 )) && l=$1; echo "$l"; }  # limit MAX [RESERVE]

# step NAME MAX RESERVE CMD...: run CMD with a timeout of min(MAX, time left - RESERVE); its output in $OUT/NAME.log
step() {
    local name=$1 max=$2 reserve=$3 t s rc
    shift 3
    t=$(limit "$max" "$reserve")
    if [[ $MODE == dry ]]; then printf '%-12s limit %4ss: %s\n' "$name" "$max" "$*"; return 0; fi
    if (( t < 15 )); then say "SKIP  $name (no time left)"; return 99; fi
    s=$SECONDS
    timeout -k 10 "$t" "$@" > "$OUT/$name.log" 2>&1
    rc=$?
    say "$(printf '%-12s rc=%-3s %4ss (limit %ss)' "$name" "$rc" $(( SECONDS - s )) "$t")$( ((rc == 124 || rc == 137)) && echo '  TIMED OUT')"
    return $rc
}

# ------------------------------------------------------------------ install
if [[ $MODE == standin ]]; then
    PY=$(command -v python)
    export PYTHONPATH="$PWD/tests/standin${PYTHONPATH:+:$PYTHONPATH}"  # `import cupy` finds the stand-in
    say "stand-in mode: $PY, the CuPy stand-in of tests/standin, no install, no compute-sanitizer"
else
    PY="$VENV/bin/python"
    step install 300 200 bash -c "python3 -m venv '$VENV' && '$PY' -m pip install -q -e '.[dev,cuda12,bench]' \
        pytest-xdist nvidia-cuda-sanitizer-api-cu12" || { [[ $MODE == dry ]] || { tail -20 "$OUT/install.log" >> "$SUMMARY"; exit 1; }; }
fi
if [[ $MODE != dry ]]; then
    git rev-parse HEAD > "$OUT/commit.txt" 2>/dev/null
    { nvidia-smi 2>&1 || echo "no nvidia-smi"; lscpu | grep -E 'Model name|^CPU\(s\)|avx512f' | head -3; } > "$OUT/machine.txt"
    say "$(grep -m1 'Model name' "$OUT/machine.txt" | tr -s ' '); $(grep -c avx512f "$OUT/machine.txt" | sed 's/^0$/no AVX-512/; s/^1$/AVX-512/')"
fi

# ------------------------------------------------------------------ doctor
step doctor 120 300 "$PY" -m minidl.doctor --device cuda
[[ $MODE != dry ]] && tail -1 "$OUT/doctor.log" | sed 's/^/  /' | tee -a "$SUMMARY"

# ------------------------------------------------------------------ sanitizers, in the background
SANITIZER=""
if [[ $MODE == gpu ]]; then
    SANITIZER=$(command -v compute-sanitizer || ls "$VENV"/lib/python3*/site-packages/nvidia/cuda_sanitizer_api/bin/compute-sanitizer 2>/dev/null | head -1)
fi
PIDS=()
for tool in memcheck racecheck initcheck synccheck; do
    if [[ $MODE == dry ]]; then printf '%-12s limit %4ss: %s\n' "$tool" 180 "compute-sanitizer --tool $tool --error-exitcode 9 python -m minidl.doctor --device cuda"; continue; fi
    if [[ -z $SANITIZER ]]; then say "SKIP  $tool (no compute-sanitizer$([[ $MODE == standin ]] && echo ' in stand-in mode'))"; continue; fi
    chmod +x "$SANITIZER"
    extra=()
    [[ $SANITIZER == *site-packages* ]] && extra=(--injection-path "$(dirname "$(dirname "$SANITIZER")")/lib")
    step "$tool" 180 240 "$SANITIZER" "${extra[@]}" --tool "$tool" --error-exitcode 9 --print-limit 20 \
        "$PY" -m minidl.doctor --device cuda &
    PIDS+=($!)
done

# ------------------------------------------------------------------ the suite on cuda
if [[ $MODE == standin ]]; then WORKERS=(); else WORKERS=(-n 8); fi  # pytest-xdist: 8 processes share the GPU
step suite 300 150 env MINIDL_DEVICE=cuda "$PY" -m pytest -q -ra -p no:cacheprovider "${WORKERS[@]}" -k "not emu" \
    --junitxml "$OUT/suite.xml" $TESTS
[[ $MODE != dry ]] && { grep -a -E '[0-9]+ (passed|failed)' "$OUT/suite.log" | tail -1 | sed 's/^/  /'; grep -a -E '^(FAILED|ERROR) ' "$OUT/suite.log" | head -30; } | tee -a "$SUMMARY"
for pid in "${PIDS[@]}"; do wait "$pid"; done
for tool in memcheck racecheck initcheck synccheck; do
    [[ -f $OUT/$tool.log ]] && grep -a -m1 -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/$tool.log" | sed "s/^/  $tool: /" | tee -a "$SUMMARY"
done

# ------------------------------------------------------------------ Model C beside PyTorch, eager and captured
if [[ $MODE == standin ]]; then BENCH=(--model D --limit 256 --epochs 1 --framework minidl); else BENCH=(--epochs 2); fi
step model_c 120 90 "$PY" benchmarks/train_model_c.py --device cuda "${BENCH[@]}"
step model_c_capture 120 60 "$PY" benchmarks/train_model_c.py --device cuda --capture "${BENCH[@]}"
[[ $MODE != dry ]] && for b in model_c model_c_capture; do grep -a -E '^(Model| +[0-9]+ )' "$OUT/$b.log" | sed "s/^/  $b: /"; done | tee -a "$SUMMARY"

# ------------------------------------------------------------------ every kernel family beside PyTorch
step kernels 90 5 "$PY" benchmarks/kernels.py --device cuda --short --repeats 3 --json "$OUT/kernels.json"
[[ $MODE != dry ]] && say "done in $(( SECONDS - START ))s; everything is in $OUT"
exit 0
