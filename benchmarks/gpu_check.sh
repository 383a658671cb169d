#!/usr/bin/env bash
# gpu_check.sh: what a lent GPU machine has to show about minidl, in one call of the device tool.
# That machine has no network: it runs the preinstalled python3 (CuPy for CUDA 13, PyTorch,
# pytest-xdist, pytest-timeout, compute-sanitizer on PATH), minidl from this checkout on
# PYTHONPATH, no venv, no package index (PIP_NO_INDEX=1). What it lacks comes in the carry that
# benchmarks/gpu_carry.sh prepares here: MNIST's file (MINIDL_DATA) and any wheel a step needs.
#
#   bash benchmarks/gpu_check.sh                  # on the GPU machine: the full check, <= 6 minutes
#   bash benchmarks/gpu_check.sh --quick          # a rerun in the same lease: <= 2.5 minutes
#   bash benchmarks/gpu_check.sh --standin        # here, rehearsed on the CuPy stand-in (tests/standin)
#   bash benchmarks/gpu_check.sh --dry-run        # print the steps, their limits and the environment
#
# The steps, each with its own timeout inside one deadline (GPU_CHECK_BUDGET seconds: 360, quick 150):
#   preflight    benchmarks/gpu_preflight.py: commit, GPU, versions, a CuPy kernel, the MNIST file;
#                stops the check with one line when CuPy or PyTorch cannot be imported
#   wheels       the carried wheels (.gpu_carry/wheels) into a private folder: --no-index --no-deps --target
#   doctor       python3 -m minidl.doctor --device cuda: every kernel family against the CPU, a captured step
#   memcheck, racecheck, initcheck, synccheck
#                compute-sanitizer over the doctor's run, in the background beside the suite (quick: memcheck)
#   suite        the tests on cuda: pytest -n 8 --timeout 60, the emulator's parametrisations left out
#   model_c      benchmarks/train_model_c.py eager, then model_c_capture with --capture, beside PyTorch
#                (TF32 off; 2 epochs, so that the second is free of compile time) (quick: captured only)
#   kernels      benchmarks/kernels.py --device cuda --short beside PyTorch
# At most 7 files in $OUT (default ./gpu_check_out), written as the steps go and completed by an exit
# hook after a failure or a kill: summary.txt, doctor.log, suite.log, suite.xml, sanitizers.log,
# bench.log, kernels.json. Exit status: 0 when every step passed, 1 when any failed, timed out or was
# skipped for lack of time, 3 when the preflight found the machine unusable.
set -u -o pipefail
cd "$(dirname "$0")/.."
MODE=gpu QUICK=0 DRY=0
for arg in "$@"; do
    case $arg in
        --standin) MODE=standin ;;
        --quick) QUICK=1 ;;
        --dry-run) DRY=1 ;;
        *) echo "usage: bash benchmarks/gpu_check.sh [--quick] [--standin] [--dry-run]" >&2; exit 2 ;;
    esac
done
START=$SECONDS
BUDGET=${GPU_CHECK_BUDGET:-$( ((QUICK)) && echo 150 || echo 360)}
OUT=${OUT:-$PWD/gpu_check_out}
CARRY=${GPU_CHECK_CARRY:-$PWD/.gpu_carry}
TESTS=${GPU_CHECK_TESTS:-tests}
PY=${GPU_CHECK_PYTHON:-python3}
WORK=${TMPDIR:-/tmp}/minidl-gpu-check.$$
export PYTHONUNBUFFERED=1 PIP_NO_INDEX=1 PIP_DISABLE_PIP_VERSION_CHECK=1 MINIDL_CACHE=$WORK/cache
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"  # minidl from this checkout, nothing installed
[[ $MODE == standin ]] && export PYTHONPATH="$PWD/tests/standin:$PYTHONPATH"  # `import cupy` finds the stand-in
[[ -f $CARRY/mnist.npz ]] && export MINIDL_DATA=$CARRY/mnist.npz
SUMMARY=$OUT/summary.txt
FAILED=()

say() { echo "[$((SECONDS - START))s] $*" | tee -a "$SUMMARY"; }
limit() { local l=$((BUDGET - (SECONDS - START) - $2)); ((l > $1)) && l=$1; echo "$l"; }  # limit MAX RESERVE

# step NAME MAX RESERVE LOG CMD...: CMD with a timeout of min(MAX, time left - RESERVE), its output appended
# to LOG under a header line; a failure, a time-out or a skip for lack of time is counted in FAILED
step() {
    local name=$1 max=$2 reserve=$3 log=$4 t s rc
    shift 4
    if ((DRY)); then printf '%-16s limit %4ss: %s\n' "$name" "$max" "$*"; return 0; fi
    t=$(limit "$max" "$reserve")
    if ((t < 10)); then say "SKIP  $name (no time left)"; FAILED+=("$name"); return 99; fi
    s=$SECONDS
    echo "=== $name: $*" >> "$log"
    timeout -k 5 "$t" "$@" >> "$log" 2>&1 &  # waited for with `wait`, which a TERM or Ctrl-C interrupts
    RUNNING+=($!)
    wait $!
    rc=$?
    say "$(printf '%-16s rc=%-3s %4ss (limit %ss)' "$name" "$rc" $((SECONDS - s)) "$t")$( ((rc == 124 || rc == 137)) && echo '  TIMED OUT')"
    ((rc == 0)) || FAILED+=("$name")
    return $rc
}

SANITIZERS=() PIDS=() RUNNING=()
background() { if ((DRY)); then "$@"; else "$@" & PIDS+=($!); fi; }  # a step beside the next ones
finish() {  # the exit hook: stop what still runs, gather the sanitizers' logs, say the verdict
    local code=$?
    ((DRY)) && exit "$code"
    for pid in "${PIDS[@]}"; do pkill -TERM -P "$pid" 2>/dev/null; kill "$pid" 2>/dev/null; done
    for pid in "${RUNNING[@]}"; do kill "$pid" 2>/dev/null; done  # timeout passes it on to its command
    for tool in "${SANITIZERS[@]}"; do
        [[ -f $WORK/$tool.log ]] && cat "$WORK/$tool.log" >> "$OUT/sanitizers.log"
    done
    rm -rf "$WORK"
    if ((code == 3)); then say "RESULT: stopped by the preflight"; exit 3; fi
    if ((${#FAILED[@]} == 0 && code == 0)); then say "RESULT: every step passed in $((SECONDS - START))s"; exit 0; fi
    say "RESULT: ${#FAILED[@]} step(s) failed, timed out or were skipped: ${FAILED[*]:-interrupted}"
    exit 1
}
if ((!DRY)); then
    mkdir -p "$OUT" "$WORK" || exit 1  # OUT may be a folder of the user's: only this check's own files go
    rm -f "$OUT"/{summary.txt,doctor.log,suite.log,suite.xml,sanitizers.log,bench.log,kernels.json}
    : > "$SUMMARY" || exit 1
    trap finish EXIT
    trap 'exit 143' TERM
    trap 'exit 130' INT
fi
((DRY)) && printf 'environment: PIP_NO_INDEX=1 PYTHONPATH=%s MINIDL_DATA=%s python=%s budget=%ss\n' \
    "$PYTHONPATH" "${MINIDL_DATA:-none}" "$PY" "$BUDGET"

# ------------------------------------------------------------------ preflight, carried wheels
PREFLIGHT=("$PY" benchmarks/gpu_preflight.py)
[[ $MODE == standin ]] && PREFLIGHT+=(--standin)
if ((DRY)); then
    step preflight 45 0 - "${PREFLIGHT[@]}"
else
    say "mode: $MODE$( ((QUICK)) && echo ', quick'), budget ${BUDGET}s"
    timeout -k 5 45 "${PREFLIGHT[@]}" 2>&1 | tee -a "$SUMMARY"
    rc=$?
    ((rc == 3)) && exit 3
    ((rc == 0)) || { say "preflight rc=$rc"; FAILED+=(preflight); }
fi
shopt -s nullglob
WHEELS=("$CARRY"/wheels/*.whl)
if ((${#WHEELS[@]})) || ((DRY)); then
    step wheels 60 0 "$SUMMARY" "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$WORK/site" \
        "${WHEELS[@]:-$CARRY/wheels/*.whl}" && export PYTHONPATH="$WORK/site:$PYTHONPATH"
fi

# ------------------------------------------------------------------ doctor
step doctor 60 $( ((QUICK)) && echo 70 || echo 240) "$OUT/doctor.log" "$PY" -m minidl.doctor --device cuda
((DRY)) || tail -1 "$OUT/doctor.log" | sed 's/^/  /' | tee -a "$SUMMARY"

# ------------------------------------------------------------------ sanitizers, in the background
TOOLS=(memcheck racecheck initcheck synccheck)
((QUICK)) && TOOLS=(memcheck)
SANITIZER=$(command -v compute-sanitizer)
[[ $MODE == standin ]] && SANITIZER=""
for tool in "${TOOLS[@]}"; do
    if [[ $MODE == standin ]]; then ((DRY)) || say "SKIP  $tool (no compute-sanitizer on the stand-in)"; continue; fi
    if [[ -z $SANITIZER ]] && ((!DRY)); then say "FAIL  $tool (compute-sanitizer is not on PATH)"; FAILED+=("$tool"); continue; fi
    SANITIZERS+=("$tool")
    background step "$tool" 150 $( ((QUICK)) && echo 5 || echo 120) "$WORK/$tool.log" "${SANITIZER:-compute-sanitizer}" \
        --tool "$tool" --error-exitcode 9 --print-limit 20 "$PY" -m minidl.doctor --device cuda
done

# ------------------------------------------------------------------ the suite on cuda
if ((!QUICK)); then
    PLUGINS=(-n 8 --timeout 60)  # the GPU machine has pytest-xdist and pytest-timeout
    if [[ $MODE == standin ]]; then  # here: whichever of them this python has
        PLUGINS=()
        "$PY" -c "import xdist" 2>/dev/null && PLUGINS+=(-n "$(nproc)")
        "$PY" -c "import pytest_timeout" 2>/dev/null && PLUGINS+=(--timeout 60)
    fi
    step suite 200 130 "$OUT/suite.log" env MINIDL_DEVICE=cuda "$PY" -m pytest -q -ra -p no:cacheprovider \
        "${PLUGINS[@]}" -k "not emu" --junitxml "$OUT/suite.xml" $TESTS
    ((DRY)) || { grep -a -E '[0-9]+ (passed|failed)' "$OUT/suite.log" | tail -1 | sed 's/^/  /'
        grep -a -E '^(FAILED|ERROR) ' "$OUT/suite.log" | head -30; } | tee -a "$SUMMARY"
fi

# ------------------------------------------------------------------ Model C beside PyTorch, eager and captured
if [[ $MODE == standin ]]; then BENCH=(--model D --limit 256 --test-limit 500 --epochs 1 --framework minidl); else BENCH=(--epochs 2); fi
((QUICK)) || step model_c 75 100 "$OUT/bench.log" "$PY" benchmarks/train_model_c.py --device cuda "${BENCH[@]}"
step model_c_capture 75 $( ((QUICK)) && echo 0 || echo 45) "$OUT/bench.log" \
    "$PY" benchmarks/train_model_c.py --device cuda --capture "${BENCH[@]}"
((DRY)) || grep -a -E '^(=== |Model| +[0-9]+ )' "$OUT/bench.log" | sed 's/^/  /' | tee -a "$SUMMARY"

for k in "${!PIDS[@]}"; do wait "${PIDS[k]}" || FAILED+=("${SANITIZERS[k]}"); done  # each ran in a subshell
PIDS=()
((DRY)) || for tool in "${SANITIZERS[@]}"; do
    grep -a -m1 -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$WORK/$tool.log" | sed "s/^/  $tool: /" | tee -a "$SUMMARY"
done

# ------------------------------------------------------------------ every kernel family beside PyTorch
((QUICK)) || step kernels 45 0 "$OUT/bench.log" "$PY" benchmarks/kernels.py --device cuda --short --repeats 3 \
    --json "$OUT/kernels.json"
