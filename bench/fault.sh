#!/usr/bin/env bash
# bench/fault.sh - wall clock from a GPU memory fault to rmcp's written report, with many
# live allocations, on the real HIP 7.2.4 and the ROCr that scripts/setup-rocm.sh builds
# from source (.rocm/exp-fault, whose model mode can raise faults), on the modelled
# RX 6800 XT.
#
#   bench/fault.sh [ALLOCATIONS]       (default 1000000)
#
# bench/fault_latency.c makes ALLOCATIONS hipMalloc(64) allocations (librmcp.so records
# every one), registers its own fault handler after HIP's and rmcp's, and makes the model
# fault. Measured: from the model handing the fault to libhsakmt (CLOCK_MONOTONIC, in the
# model's log) to that last handler being called (CLOCK_MONOTONIC): the runtime's event
# delivery, rmcp's report (text to stderr, JSON to RMCP_FAULT_REPORT) and HIP's handler.
# BENCH_FAULT_REPS (default 3) alternating runs without and with librmcp.so (release);
# prints each and the medians, and whether the with-rmcp median is under 5 ms.
# Needs: cargo, cc, ROCm 7.2.4 and the faulting ROCr (scripts/setup-rocm.sh), /usr/bin/hipcc.
# Exits 1 if the target is missed or a report is missing, 2 if something is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/bench-fault
mkdir -p "$OUT"
CC=${CC:-cc}
N=${1:-1000000}
REPS=${BENCH_FAULT_REPS:-3}
TARGET_US=5000

ROCM=${RMCP_ROCM_DIR:-$ROOT/.rocm}
EXP=$ROCM/exp-root
FAULT=$ROCM/exp-fault
LIBDIR=$EXP/usr/lib/x86_64-linux-gnu
LOADER=$EXP/usr/lib64/ld-linux-x86-64.so.2
for f in "$EXP/usr/include/hip/hip_runtime_api.h" "$LIBDIR/libamdhip64.so.7" "$LOADER" \
    "$FAULT/libhsa-runtime64.so.1" /usr/bin/hipcc; do
    [[ -e $f ]] || { echo "bench/fault.sh: $f is missing: run scripts/setup-rocm.sh" >&2; exit 2; }
done

echo "# fault to written report, $N live hipMalloc(64) allocations, real HIP 7.2.4 + ROCr built from source, modelled RX 6800 XT"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $(nproc) cpus, load average $(cut -d" " -f1-3 /proc/loadavg), $($CC --version | head -1)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src bench 2>/dev/null || echo '+local changes')"

cargo build --release --lib --quiet
LIB=$TARGET_DIR/release/librmcp.so
$CC -shared -fPIC -O2 tests/model/model_gpu.c -o "$OUT/libmodel_gpu.so" -lpthread
$CC -O2 -Wall -D__HIP_PLATFORM_AMD__ -I"$EXP/usr/include" bench/fault_latency.c -o "$OUT/fault_latency" \
    -L"$LIBDIR" -lamdhip64 -lhsa-runtime64 -Wl,-rpath-link,"$LIBDIR" -Wl,--allow-shlib-undefined
/usr/bin/hipcc --genco --offload-arch=gfx1030 tests/model/fault_kernels.hip -o "$OUT/fault.co"

# One run; prints the microseconds from the fault to the last handler.
run() { # $1: with (preload librmcp.so) or without
    local dir="$OUT/run"
    rm -rf "$dir" && mkdir -p "$dir"
    local pre=()
    [[ $1 == with ]] && pre=(--preload "$LIB")
    local out
    out=$(cd "$dir" && env -i PATH=/usr/bin:/bin HSA_MODEL_TOPOLOGY="$ROOT/tests/model/topologies/rx6800xt" \
        HSA_MODEL_LIB="$OUT/libmodel_gpu.so" HSA_ENABLE_SDMA=0 RMCP_MODEL_LOG="$dir/model.log" \
        RMCP_FAULT_REPORT="$dir/report.json" \
        "$LOADER" --library-path "$FAULT:$LIBDIR" "${pre[@]}" "$OUT/fault_latency" "$OUT/fault.co" "$N" 2>"$dir/stderr")
    local t0 t1
    t0=$(grep -o 'monotonic_ns=[0-9]*' "$dir/model.log" | head -n1 | cut -d= -f2)
    t1=$(sed -n 's/^handlers_done_ns=\([0-9]*\) .*/\1/p' <<<"$out")
    [[ -n $t0 && -n $t1 ]] || { echo "bench/fault.sh: no timing ($1): $out" >&2; cat "$dir/stderr" >&2; exit 1; }
    if [[ $1 == with ]]; then
        [[ -s $dir/report.json ]] && grep -q '^rmcp: GPU memory fault at address' "$dir/stderr" \
            || { echo "bench/fault.sh: rmcp wrote no report" >&2; cat "$dir/stderr" >&2; exit 1; }
    fi
    echo $(( (t1 - t0) / 1000 ))
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-6s %18s %18s\n' run without_rmcp_us with_rmcp_us
without=() with=()
for i in $(seq 1 "$REPS"); do
    a=$(run without); b=$(run with)
    without+=("$a"); with+=("$b")
    printf '%-6s %18s %18s\n' "$i" "$a" "$b"
done
mw=$(printf '%s\n' "${without[@]}" | median)
mr=$(printf '%s\n' "${with[@]}" | median)
printf '%-6s %18s %18s\n' median "$mw" "$mr"
if (( mr < TARGET_US )); then
    echo "target: fault to written report < $TARGET_US us with $N live allocations: met ($mr us)"
else
    echo "target: fault to written report < $TARGET_US us with $N live allocations: MISSED ($mr us)"
    exit 1
fi
