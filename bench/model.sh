#!/usr/bin/env bash
# bench/model.sh - rmcp's cost on the real ROCm 7.2.4 stack (HIP + ROCr from .rocm/exp-root)
# running on the modelled GPU (tests/model/model_gpu.c, libhsakmt's model mode), with and
# without librmcp.so preloaded, in one run.
#
#   bench/model.sh [--quick]
#
# --quick (the cost guard .ci/run runs, about a minute): only sections 1 and 2, and each
# "added" count of table 1 compared with the run committed in docs/performance.md ("The
# run behind these numbers", or the file BENCH_COMMITTED_DOC names); exits 1 when one is more
# than 10% above its committed number, or a check fails.
#
# Measures, per hipHostMalloc(4096, 0)+hipHostFree pair and per hipMalloc(4096)+hipFree pair
# (bench/model_pairs.c, after 32 warm-up pairs of each):
#  0. A check of the counting method: bench/stepcount_check.c counted by stepcount and by
#     callgrind (their counts of the program's own code must agree within 0.5%).
#  1. Instructions executed by the calling thread, counted by single-stepping it with ptrace
#     (bench/stepcount.c), in total and by the file holding each instruction. Not callgrind:
#     libhsakmt's model mode reserves a 256 GiB aperture, and under valgrind 3.19 any single
#     reservation of 64 GiB or more fails ("model: Failed to reserve aperture via mmap");
#     `perf stat -e instructions` is <not supported> in this VM. Single steps are slow here
#     (~65 us each), so N is small (BENCH_MODEL_N, default 10). The count is per thread;
#     without rmcp it repeated exactly between runs, with rmcp it moved by a few per pair.
#     On the RX 6800 XT (gfx1030, a target: rmcp rewrites hipHostMalloc(0)) and the RX 7900 XT
#     (gfx1100, not a target: rmcp forwards it), RMCP_MODE unset (auto).
#  2. A check that the measured pairs were rewritten on gfx1030 and not on gfx1100: one
#     untraced run each with RMCP_LOG=info (rmcp's exit summary) and the model's log (the KFD
#     flags of every 4 KiB allocation).
#  3. Wall clock on gfx1030: BENCH_MODEL_REPS (default 5) alternating untraced runs each way
#     of BENCH_MODEL_WALL_N (default 200, a multiple of 20) pairs timed in 20 chunks; the median chunk per run,
#     the median run (informational: the hipHostMalloc pair is dominated by the system calls
#     of model mode's memory emulation and moves by tens of percent between runs here).
# Needs: cargo, cc, valgrind (for 0.), and ROCm 7.2.4 unpacked by scripts/setup-rocm.sh. Honours CARGO_TARGET_DIR.
# Exits 1 if a check fails, 2 if something is missing.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/bench-model
mkdir -p "$OUT"
CC=${CC:-cc}
N=${BENCH_MODEL_N:-10}
WARMUP=32
WALL_N=${BENCH_MODEL_WALL_N:-200}
REPS=${BENCH_MODEL_REPS:-5}
QUICK=0
[[ "${1:-}" == "--quick" ]] && QUICK=1

EXP=${RMCP_ROCM_DIR:-$ROOT/.rocm}/exp-root
GFX10=${RMCP_ROCM_DIR:-$ROOT/.rocm}/exp-gfx10
LIBDIR=$EXP/usr/lib/x86_64-linux-gnu
LOADER=$EXP/usr/lib64/ld-linux-x86-64.so.2
for f in "$EXP/usr/include/hip/hip_runtime_api.h" "$LIBDIR/libamdhip64.so.7" "$LOADER" \
    "$GFX10/libhsa-runtime64.so.1"; do
    [[ -e $f ]] || { echo "bench/model.sh: $f is missing: run scripts/setup-rocm.sh" >&2; exit 2; }
done

echo "# rmcp on the real ROCm 7.2.4 stack, modelled GPU"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $(nproc) cpus, $($CC --version | head -1)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src bench 2>/dev/null || echo '+local changes')"

cargo build --release --lib --quiet
LIB=$TARGET_DIR/release/librmcp.so
[[ -f $LIB ]] || { echo "bench/model.sh: no $LIB" >&2; exit 2; }

$CC -shared -fPIC -O2 tests/model/model_gpu.c -o "$OUT/libmodel_gpu.so" -lpthread
$CC -O2 -g -std=c11 -Wall -Wextra -Werror bench/stepcount.c -o "$OUT/stepcount"
$CC -O2 -g -std=c11 -Wall -Wextra -Werror bench/stepcount_check.c -o "$OUT/stepcount_check"
# Against 7.2.4's headers and libraries, as tests/model_gpu.rs builds its probe; the 7.2.4
# libraries need sid's glibc, which they get at run time from exp-root's loader.
$CC -O2 -g -std=c11 -Wall -Wextra -Werror -D__HIP_PLATFORM_AMD__ -I"$EXP/usr/include" \
    bench/model_pairs.c -o "$OUT/model_pairs" -L"$LIBDIR" -lamdhip64 \
    -Wl,-rpath-link,"$LIBDIR" -Wl,--allow-shlib-undefined

# run TOPO RMCP(0|1) ARGS...: model_pairs ARGS on the model, with the variables in VARS and
# the command in PREFIX (stepcount) before the loader. gfx10 topologies need the ROCr copy
# without the trap-handler ioctl (docs/verified-where.md).
VARS=()
PREFIX=()
run() {
    local topo=$1 rmcp=$2 path=$LIBDIR pre=()
    shift 2
    [[ $topo == rx7900xt ]] || path=$GFX10:$LIBDIR
    [[ $rmcp == 1 ]] && pre=(--preload "$LIB")
    env -i PATH="$PATH" HSA_MODEL_TOPOLOGY="$ROOT/tests/model/topologies/$topo" \
        HSA_MODEL_LIB="$OUT/libmodel_gpu.so" HSA_ENABLE_SDMA=0 HSA_ENABLE_INTERRUPT=0 \
        "${VARS[@]}" "${PREFIX[@]}" "$LOADER" --library-path "$path" "${pre[@]}" \
        "$OUT/model_pairs" "$@"
}

FAILED=0
fail() { echo "FAILED: $*"; FAILED=1; }
arch_of() { case $1 in rx6800xt) echo gfx1030 ;; rx7900xt) echo gfx1100 ;; esac; }

if [[ $QUICK == 0 ]]; then
echo
echo "## 0. stepcount against callgrind on a small program (bench/stepcount_check.c: its own loop, qsort and snprintf)"
echo
sc=$(env -i PATH="$PATH" CHECK_MARK=1 "$OUT/stepcount" 2 "$OUT/stepcount_check") || fail "stepcount_check: $sc"
env -i PATH="$PATH" valgrind --tool=callgrind --callgrind-out-file="$OUT/cg.check" --toggle-collect=work \
    "$OUT/stepcount_check" >/dev/null 2>&1 || fail "callgrind on stepcount_check"
# Instructions per object file, from callgrind's per-function lines "N (P%)  file:fn [object]".
callgrind_annotate --threshold=100 --auto=no "$OUT/cg.check" 2>/dev/null |
    sed -n 's/^ *\([0-9,]*\) ([ 0-9.]*%)  .* \[\(.*\)\]$/\1 \2/p' | tr -d , |
    awk '{ n = split($2, p, "/"); sum[p[n]] += $1 } END { for (k in sum) print k, sum[k] }' | sort >"$OUT/check.cg"
sed -n 's/^segment 1 file=\([^ ]*\) steps=/\1 /p' <<<"$sc" | sort >"$OUT/check.sc"
echo "| code | stepcount | callgrind |"
echo "|---|---:|---:|"
join -a 1 -a 2 -e 0 -o 0,1.2,2.2 "$OUT/check.sc" "$OUT/check.cg" |
    awk '{ printf "| %s | %d | %d |\n", $1, $2, $3; a += $2; b += $3 } END { printf "| total | %d | %d |\n", a, b }'
read -r own_sc own_cg < <(join -o 1.2,2.2 <(grep '^stepcount_check ' "$OUT/check.sc") <(grep '^stepcount_check ' "$OUT/check.cg") || true) || true
if [[ -z ${own_sc:-} || -z ${own_cg:-} ]] || ! awk -v a="$own_sc" -v b="$own_cg" 'BEGIN { exit !(a - b <= b / 200 && b - a <= b / 200) }'; then
    fail "stepcount and callgrind disagree by more than 0.5% on stepcount_check's own code (${own_sc:-?} vs ${own_cg:-?})"
fi
fi

declare -A STEPS
for topo in rx6800xt rx7900xt; do
    for rmcp in 0 1; do
        VARS=(MODEL_PAIRS_MARK=1)
        PREFIX=("$OUT/stepcount" 3)
        out=$(run $topo $rmcp "$N" "$WARMUP") || fail "$topo rmcp=$rmcp: exit $?: $out"
        grep -q "^arch=$(arch_of $topo) " <<<"$out" || fail "$topo: HIP did not report $(arch_of $topo): $out"
        STEPS[$topo.$rmcp.host]=$(sed -n 's/^segment 1 steps=//p' <<<"$out")
        STEPS[$topo.$rmcp.malloc]=$(sed -n 's/^segment 2 steps=//p' <<<"$out")
        # "file steps" lines per pair kind, for the breakdown.
        sed -n 's/^segment 1 file=\([^ ]*\) steps=/\1 /p' <<<"$out" | sort >"$OUT/files.$topo.$rmcp.host"
        sed -n 's/^segment 2 file=\([^ ]*\) steps=/\1 /p' <<<"$out" | sort >"$OUT/files.$topo.$rmcp.malloc"
    done
done
VARS=()
PREFIX=()

echo
echo "## 1. Instructions per pair (ptrace single-step count of the calling thread, N=$N pairs after $WARMUP warm-up pairs)"
echo
echo "| device | pair | without rmcp | with rmcp (auto) | added | ratio |"
echo "|---|---|---:|---:|---:|---:|"
declare -A ADDED ROW
for topo in rx6800xt rx7900xt; do
    for op in host malloc; do
        case $op in
            host) name="hipHostMalloc(4096, 0) + hipHostFree" ;;
            malloc) name="hipMalloc(4096) + hipFree" ;;
        esac
        case $topo in
            rx6800xt) dev="RX 6800 XT, gfx1030 (target)" ;;
            rx7900xt) dev="RX 7900 XT, gfx1100 (not a target)" ;;
        esac
        ROW[$topo.$op]="$dev|$name"
        ADDED[$topo.$op]=$(awk -v p="${STEPS[$topo.0.$op]}" -v s="${STEPS[$topo.1.$op]}" -v n="$N" \
            'BEGIN { printf "%.0f", (s - p) / n }')
        awk -v d="$dev" -v o="$name" -v p="${STEPS[$topo.0.$op]}" -v s="${STEPS[$topo.1.$op]}" -v n="$N" \
            'BEGIN { printf "| %s | %s | %.0f | %.0f | %.0f | %.3f |\n", d, o, p / n, s / n, (s - p) / n, s / p }'
    done
done

echo
echo "### Where the difference is, per pair (instructions by the file that holds them, with rmcp minus without)"
echo
echo "| file | gfx1030 hipHostMalloc pair | gfx1030 hipMalloc pair | gfx1100 hipHostMalloc pair | gfx1100 hipMalloc pair |"
echo "|---|---:|---:|---:|---:|"
# One column per run pair; a file missing on one side counts 0 there.
diff_col() { # TOPO OP -> "file delta" lines
    join -a 1 -a 2 -e 0 -o 0,1.2,2.2 "$OUT/files.$1.1.$2" "$OUT/files.$1.0.$2" |
        awk -v n="$N" '{ printf "%s %.0f\n", $1, ($2 - $3) / n }' | sort
}
diff_col rx6800xt host >"$OUT/d1"
diff_col rx6800xt malloc >"$OUT/d2"
diff_col rx7900xt host >"$OUT/d3"
diff_col rx7900xt malloc >"$OUT/d4"
join -a 1 -a 2 -e 0 -o 0,1.2,2.2 "$OUT/d1" "$OUT/d2" | join -a 1 -a 2 -e 0 -o 0,1.2,1.3,2.2 - "$OUT/d3" |
    join -a 1 -a 2 -e 0 -o 0,1.2,1.3,1.4,2.2 - "$OUT/d4" |
    awk '{ t2 += $2; t3 += $3; t4 += $4; t5 += $5
           if ($2 != 0 || $3 != 0 || $4 != 0 || $5 != 0) printf "| %s | %d | %d | %d | %d |\n", $1, $2, $3, $4, $5 }
         END { printf "| total | %d | %d | %d | %d |\n", t2, t3, t4, t5 }'

echo
echo "## 2. Were the measured calls rewritten? (untraced runs, RMCP_LOG=info, the model's KFD log)"
echo
# 4 KiB KFD allocations by flags: hipHostMalloc(4096, 0) makes one each (GTT|WRITABLE|
# NO_SUBSTITUTE, plus COHERENT when not rewritten); hipMalloc(4096) is sub-allocated from
# a 2 MiB VRAM block and makes none.
COHERENT_GTT=0x94000002
PLAIN_GTT=0x90000002
for topo in rx6800xt rx7900xt; do
    log=$OUT/model-$topo.log
    rm -f "$log"
    VARS=(RMCP_LOG=info RMCP_MODEL_LOG="$log")
    err=$(run $topo 1 "$N" "$WARMUP" 2>&1 >/dev/null) || fail "$topo: sanity run exit $?: $err"
    summary=$(grep '^rmcp: info: summary:' <<<"$err" || true)
    coh=$(grep -c "^alloc .* size=0x1000 flags=$COHERENT_GTT\$" "$log" || true)
    non=$(grep -c "^alloc .* size=0x1000 flags=$PLAIN_GTT\$" "$log" || true)
    echo "- $(arch_of $topo): \`$summary\`; 4 KiB KFD allocations: $non GTT|WRITABLE|NO_SUBSTITUTE, $coh with COHERENT"
    calls=$((N + WARMUP))
    if [[ $topo == rx6800xt ]]; then
        grep -q "hipHostMalloc $calls/$calls," <<<"$summary" ||
            fail "gfx1030: rmcp did not rewrite all $calls hipHostMalloc calls"
        ((non >= calls)) || fail "gfx1030: fewer than $calls non-coherent 4 KiB allocations reached KFD"
    else
        grep -q "hipHostMalloc $calls/0," <<<"$summary" ||
            fail "gfx1100: rmcp rewrote hipHostMalloc on a device it does not target"
        ((coh >= calls)) || fail "gfx1100: fewer than $calls coherent 4 KiB allocations reached KFD"
    fi
done
VARS=()

if [[ $QUICK == 1 ]]; then
    # The guard: table 1's "added" column against the committed run, row by row (device and
    # pair cells).
    DOC=${BENCH_COMMITTED_DOC:-$ROOT/docs/performance.md}
    echo
    echo "## Cost guard: added instructions per pair against the run committed in docs/performance.md (fails above +10%)"
    echo
    echo "| device | pair | committed | measured | change | verdict |"
    echo "|---|---|---:|---:|---:|---|"
    for key in rx6800xt.host rx6800xt.malloc rx7900xt.host rx7900xt.malloc; do
        dev=${ROW[$key]%%|*}
        name=${ROW[$key]#*|}
        committed=$(awk -F '|' -v a="$dev" -v b="$name" '
            function t(s) { gsub(/^ +| +$/, "", s); return s }
            /^The run behind these numbers \(`bench\/model.sh`/ { on = 1 }
            on && /^## / { exit }
            on && t($2) == a && t($3) == b { print t($6); exit }' "$DOC")
        measured=${ADDED[$key]}
        if [[ -z $committed ]]; then
            v="MISSED: no committed number"
            FAILED=1
        elif ((measured * 10 > committed * 11)); then
            v=MISSED
            FAILED=1
        else
            v=ok
        fi
        awk -v d="$dev" -v o="$name" -v c="${committed:-0}" -v m="$measured" -v v="$v" \
            'BEGIN { printf "| %s | %s | %s | %s | %+.1f%% | %s |\n", d, o, c, m, c ? (m / c - 1) * 100 : 0, v }'
    done
    echo
    if [[ $FAILED == 0 ]]; then echo "checks: all passed"; else echo "checks: FAILED"; fi
    exit $FAILED
fi

echo
echo "## 3. Wall clock on gfx1030 ($REPS alternating runs each way of $WALL_N pairs in 20 chunks; per run the median chunk, then the median run; informational)"
echo
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
declare -A NS
for ((r = 0; r < REPS; r++)); do
    for rmcp in 0 1; do
        out=$(run rx6800xt $rmcp "$WALL_N" "$WARMUP" 20) || fail "wall-clock run exit $?: $out"
        NS[$rmcp.host]+="$(sed -n 's/.* host_ns=\([0-9]*\).*/\1/p' <<<"$out") "
        NS[$rmcp.malloc]+="$(sed -n 's/.* malloc_ns=\([0-9]*\).*/\1/p' <<<"$out") "
    done
done
echo "| pair | without rmcp ns | with rmcp ns | ratio | runs without rmcp (ns) | runs with rmcp (ns) |"
echo "|---|---:|---:|---:|---|---|"
for op in host malloc; do
    case $op in
        host) name="hipHostMalloc(4096, 0) + hipHostFree" ;;
        malloc) name="hipMalloc(4096) + hipFree" ;;
    esac
    p=$(tr ' ' '\n' <<<"${NS[0.$op]}" | grep . | median)
    s=$(tr ' ' '\n' <<<"${NS[1.$op]}" | grep . | median)
    awk -v o="$name" -v p="$p" -v s="$s" -v rp="${NS[0.$op]% }" -v rs="${NS[1.$op]% }" \
        'BEGIN { printf "| %s | %d | %d | %.2f | %s | %s |\n", o, p, s, s / p, rp, rs }'
done

echo
if [[ $FAILED == 0 ]]; then echo "checks: all passed"; else echo "checks: FAILED"; fi
exit $FAILED
