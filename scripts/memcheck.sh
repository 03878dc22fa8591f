#!/usr/bin/env bash
# scripts/memcheck.sh - rmcp's integration scenarios under valgrind memcheck.
#
#   scripts/memcheck.sh [--debug]
#
# Builds librmcp.so (release, which keeps debug info; --debug: the dev profile), the C test
# doubles of the HIP and HSA runtimes and the driver programs (tests/double, tests/programs),
# then runs each scenario with LD_PRELOAD=librmcp.so (or linked to it) under
#   valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
#            --track-origins=yes --trace-children=yes
# and reads every process's ERROR SUMMARY (forked children included). Invalid reads/writes,
# uses of uninitialised values, invalid frees and definite/indirect leaks count as errors,
# wherever they are; "still reachable" memory (rmcp's process-lifetime state: config,
# logger, runtime handles, registry nodes) is not a leak. The doubles free what the driver
# frees; nothing is suppressed unless listed in scripts/memcheck.supp (each entry says why it
# is not rmcp's).
#
# Prints one line per scenario and a summary; exits 1 if any scenario has an error.
# Honours CARGO_TARGET_DIR. Needs cargo, cc, valgrind. Takes about a minute.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
PROFILE=release
[[ "${1:-}" == "--debug" ]] && PROFILE=debug
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/memcheck
mkdir -p "$OUT/hip5" "$OUT/logs"
CC=${CC:-cc}

if [[ $PROFILE == release ]]; then
    cargo build --release --lib --quiet
else
    cargo build --lib --quiet
fi
LIB=$TARGET_DIR/$PROFILE/librmcp.so
[[ -f $LIB ]] || { echo "no $LIB" >&2; exit 2; }
ln -sf "$LIB" "$OUT/librmcp.so"

CFLAGS=(-O1 -g -std=c11 -Wall -Wextra -Werror -fPIC -I tests/programs)
P=tests/programs
$CC "${CFLAGS[@]}" -shared -Wl,-soname,libamdhip64.so.6 -Wl,--version-script=tests/double/hip.map \
    tests/double/fake_hip.c -o "$OUT/libamdhip64.so.6" -ldl -lpthread
$CC "${CFLAGS[@]}" -DFAKE_HIP_5 -shared -Wl,-soname,libamdhip64.so.5 \
    -Wl,--version-script=tests/double/hip5.map tests/double/fake_hip.c -o "$OUT/hip5/libamdhip64.so.5" -ldl -lpthread
$CC "${CFLAGS[@]}" -shared -Wl,-soname,libhsa-runtime64.so.1 -Wl,--version-script=tests/double/hsa.map \
    tests/double/fake_hsa.c -o "$OUT/libhsa-runtime64.so.1" -lpthread
ln -sf libamdhip64.so.6 "$OUT/libamdhip64.so"
ln -sf libamdhip64.so.5 "$OUT/hip5/libamdhip64.so"
ln -sf libhsa-runtime64.so.1 "$OUT/libhsa-runtime64.so"
RT=(-L"$OUT" -lamdhip64 -lhsa-runtime64 -ldl -lpthread)
$CC "${CFLAGS[@]}" $P/driver.c $P/driver_exe.c -o "$OUT/driver_exe" "${RT[@]}"
$CC "${CFLAGS[@]}" $P/driver.c $P/driver_exe.c -o "$OUT/driver_exe5" -L"$OUT/hip5" "${RT[@]}"
$CC "${CFLAGS[@]}" -shared $P/driver.c $P/driver_module.c -o "$OUT/libdriver_module.so" "${RT[@]}"
$CC "${CFLAGS[@]}" $P/reopen_host.c -o "$OUT/reopen_host" -ldl
$CC "${CFLAGS[@]}" -shared -Wl,-soname,librocblas.so.4 $P/rocmlike_lib.c -o "$OUT/librocblas.so.4" \
    -L"$OUT" -lhsa-runtime64
$CC "${CFLAGS[@]}" -std=c99 -I include tests/c/api_live.c -o "$OUT/api_live" \
    -Wl,--no-as-needed -L"$OUT" -lrmcp -lamdhip64

SUPP=()
[[ -f scripts/memcheck.supp ]] && SUPP=(--suppressions=scripts/memcheck.supp)
VG=(valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-origins=yes --trace-children=yes
    --child-silent-after-fork=no --num-callers=30 "${SUPP[@]}")

FAILED=0
TOTAL=0
# scenario NAME PRELOAD(0|1) EXPECT(ok|abort|any) PROGRAM ARGS...
# ok: exit 0; abort: killed by a signal (the fault scenarios end in the runtime's abort());
# any: any exit status, no signal (scenarios whose ops fail on purpose). LIBDIRS (env) goes
# before the doubles' directory on LD_LIBRARY_PATH.
scenario() {
    local name=$1 preload=$2 expect=$3 prog=$4
    shift 4
    local log=$OUT/logs/$name.log
    local env=(env -i PATH="$PATH" LD_LIBRARY_PATH="${LIBDIRS:+$LIBDIRS:}$OUT" FAKE_HIP_DEVICES=gfx1030,gfx1100
               FAKE_HIP_LOG="$OUT/logs/$name.record" RMCP_LOG=info)
    [[ $preload == 1 ]] && env+=(LD_PRELOAD="$LIB")
    rm -f "$OUT/logs/$name.record"
    local rc=0
    # (The subshell keeps bash's "Aborted" job message for the fault scenarios quiet.)
    (
        "${env[@]}" "${VG[@]}" --log-file="$log.%p" "$prog" "$@" >"$log.out" 2>"$log.err"
        exit $?
    ) 2>/dev/null || rc=$?
    cat "$log".[0-9]* >"$log" 2>/dev/null || true
    rm -f "$log".[0-9]*
    local procs errors supp
    procs=$(grep -c "ERROR SUMMARY" "$log" || true)
    errors=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
    supp=$(sed -n 's/.*ERROR SUMMARY: .*(suppressed: \([0-9]*\) from.*/\1/p' "$log" | awk '{s += $1} END {print s + 0}')
    local status=ok
    if [[ $expect == ok && $rc != 0 ]]; then status="exit $rc"; fi
    if [[ $expect == abort && $rc -lt 128 ]]; then status="did not abort"; fi
    if [[ $expect == any && $rc -ge 128 ]]; then status="signal $((rc - 128))"; fi
    TOTAL=$((TOTAL + 1))
    if [[ $errors != 0 || $status != ok || $procs == 0 ]]; then
        FAILED=$((FAILED + 1))
        printf '| %-28s | %9s | %6s | %10s | %-14s | FAIL (log: %s) |\n' "$name" "$procs" "$errors" "$supp" "$status" "$log"
    else
        printf '| %-28s | %9s | %6s | %10s | %-14s | clean |\n' "$name" "$procs" "$errors" "$supp" "$status"
    fi
}

echo "# memcheck: $(valgrind --version), librmcp.so ($PROFILE) $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo
printf '| %-28s | %9s | %6s | %10s | %-14s | %s |\n' scenario processes errors suppressed status result
echo "|---|---:|---:|---:|---|---|"
D=$OUT/driver_exe
scenario targeted-alloc-free 1 ok "$D" \
    hipHostMalloc:4096:0 hipHostMalloc:4096:0x80000000 hipHostAlloc:64:0 hipExtHostAlloc:64:0 \
    hipMemAllocHost:64 hipMallocHost:64 setdev:0 hipExtMallocWithFlags:64:1 hipMallocManaged:64:1 \
    hipMalloc:64 hipHostRegister:4096:0 hipMallocAsync:64 hipMallocFromPoolAsync:64 \
    setdev:1 hipExtMallocWithFlags:64:1 procaddr:hipHostMalloc:64:0 freeall
scenario refused-requests 1 any "$D" hipHostMalloc:64:0 free refree:hipHostFree \
    refree:hipFree hipHostMalloc:0:0 hipHostMalloc:64:0:null hipHostMalloc:64:0xc0000000 \
    hipExtMallocWithFlags:64:9 refree:hipHostUnregister hipExtHostAlloc:64:0
scenario threads-8 1 ok "$D" threads:8 hipHostMalloc:4096:0 hipExtMallocWithFlags:64:1 \
    hipMalloc:64 free free free hipHostMalloc:64:0 freeall
scenario fork-then-allocate 1 ok "$D" hipHostMalloc:64:0 threads:3 hipHostMalloc:64:0 fork \
    hipHostMalloc:64:0 hipExtMallocWithFlags:64:1 freeall
scenario hsa-redirect 1 ok "$D" hsa_init hsa_alloc:0:fine:4096 hsa_alloc:0:extfine:4096 \
    hsa_alloc:0:coarse:4096 rocmlike_alloc:0:fine:4096 hsa_alloc:1:fine:4096 hsa_free hsa_free \
    hsa_free hsa_free hsa_free hsa_shut_down
scenario fault-report-live 1 abort "$D" hsa_init hipHostMalloc:4096:0 hsa_fault:live+0x10:0x1
scenario fault-report-freed 1 abort "$D" hsa_init hipHostMalloc:4096:0 free hsa_fault:freed+0x10:0x1
scenario launches-then-fault 1 abort "$D" hsa_init kernel:0:_Z6vecAddPfPKfS1_i modfunc:1:_Z4fillPim \
    stream:1 launch:kernel:0:64:256:0 launch:kernel:0:8x2:32:1 launch:module:1:4:64:1 \
    launch:graph:2:1:1:0 streamsync:1 launch:ext:0:2:2:0 threads:2 launch:coop:0:1:1:0 \
    hipMalloc:4096 hsa_fault:live+4112:0x1
LIBDIRS=$OUT/hip5 scenario rocm5-missing-symbols 1 any "$OUT/driver_exe5" hipHostMalloc:64:0 \
    hipExtHostAlloc:64:0 hipExtHostAlloc:64:0 freeall
scenario dlopen-close-reopen 1 ok "$OUT/reopen_host" hipHostMalloc:4096:0 hipMallocManaged:64:1 freeall
scenario c-api-linked 0 ok "$OUT/api_live"
scenario no-hip-process 1 ok /bin/true

# Negative control: the same valgrind command must catch a heap overflow and a leak.
printf '#include <stdlib.h>\nint main(void){char *p = malloc(8); p[8] = 1; malloc(16); return p[0] * 0;}\n' \
    >"$OUT/bad.c"
$CC -O0 -g -w "$OUT/bad.c" -o "$OUT/bad"
bad_errors=$("${VG[@]}" "$OUT/bad" 2>&1 | sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p')
echo
if [[ ${bad_errors:-0} -ge 2 ]]; then
    echo "negative control: $bad_errors errors found in a program with a heap overflow and a leak (as expected)"
else
    echo "negative control FAILED: valgrind found ${bad_errors:-0} errors in a program with two"
    FAILED=$((FAILED + 1))
fi
echo
if [[ $FAILED == 0 ]]; then
    echo "memcheck: $TOTAL scenarios, no errors"
else
    echo "memcheck: $FAILED of $TOTAL scenarios with errors (logs in $OUT/logs)"
fi
# The closing line in the plain "N passed, N failed" form CI summaries read.
echo "memcheck: $((TOTAL - FAILED)) passed, $FAILED failed"
[[ $FAILED == 0 ]]
