#!/usr/bin/env bash
# bench/audit.sh - what the audit mode (LD_AUDIT=librmcp-audit.so) adds to process start-up,
# beside LD_PRELOAD=librmcp.so alone, in one run (valgrind --tool=callgrind instruction
# counts of the whole process; deterministic to a few hundred instructions).
#
#   bench/audit.sh [--torch]
#
# Rows: /bin/true and `python3 -c pass` (processes that never use HIP), and a Python process
# that loads the HIP and HSA test doubles with ctypes and looks up the three hooked entry
# points the ctypes test calls (the lookups are what the audit module redirects; nothing is
# called, so the hooks' own work is not counted). --torch adds `python3 -c "import torch"`
# (Debian's python3-torch, CPU build; about 4 minutes per column under callgrind).
# Columns: no rmcp, preload, preload+audit, and what audit adds to preload.
# Needs: cargo, cc, valgrind, /usr/bin/python3. Honours CARGO_TARGET_DIR.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TORCH=0
[[ "${1:-}" == "--torch" ]] && TORCH=1

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=$TARGET_DIR/bench-audit
mkdir -p "$OUT"
CC=${CC:-cc}
PY=/usr/bin/python3 # Debian's, not a pyenv shim earlier on PATH

echo "# rmcp audit-mode start-up cost"
echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(uname -m), $(nproc) cpus, $(valgrind --version), $($CC --version | head -1), $($PY --version)"
echo "# commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet -- src build.rs build 2>/dev/null || echo '+local changes')"

cargo build --release --lib --quiet
LIB=$TARGET_DIR/release/librmcp.so
AUDIT=$TARGET_DIR/release/librmcp-audit.so
[[ -f $LIB && -f $AUDIT ]] || { echo "no $LIB or $AUDIT" >&2; exit 2; }

CFLAGS=(-O2 -g -std=c11 -Wall -Wextra -Werror -fPIC -I tests/programs)
$CC "${CFLAGS[@]}" -shared -Wl,-soname,libamdhip64.so.6 \
    -Wl,--version-script=tests/double/hip.map tests/double/fake_hip.c -o "$OUT/libamdhip64.so.6" -ldl -lpthread
$CC "${CFLAGS[@]}" -shared -Wl,-soname,libhsa-runtime64.so.1 \
    -Wl,--version-script=tests/double/hsa.map tests/double/fake_hsa.c -o "$OUT/libhsa-runtime64.so.1" -lpthread

CTYPES='import ctypes
hip = ctypes.CDLL("libamdhip64.so.6"); hsa = ctypes.CDLL("libhsa-runtime64.so.1")
hip.hipHostMalloc; hip.hipExtMallocWithFlags; hsa.hsa_amd_memory_pool_allocate'

# instructions SETUP CMD...: total instructions callgrind collected for CMD, in a clean
# environment (PYTHONHASHSEED fixed: hash randomisation changes Python's counts). SETUP:
# plain | preload | audit.
instructions() {
    local setup=$1 env=(env -i PATH=/usr/bin:/bin LD_LIBRARY_PATH="$OUT" PYTHONHASHSEED=0)
    shift
    case $setup in
        preload) env+=(LD_PRELOAD="$LIB") ;;
        audit) env+=(LD_PRELOAD="$LIB" LD_AUDIT="$AUDIT") ;;
    esac
    "${env[@]}" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null |
        sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

row() { # LABEL CMD...
    local label=$1 p l a
    shift
    p=$(instructions plain "$@")
    l=$(instructions preload "$@")
    a=$(instructions audit "$@")
    printf '| %-40s | %13s | %13s | %13s | %+9d (%+.2f %%) |\n' "$label" "$p" "$l" "$a" \
        $((a - l)) "$(awk -v a="$a" -v l="$l" 'BEGIN { print (a - l) * 100 / l }')"
}

echo
echo "## Instructions per process (callgrind)"
echo
printf '| %-40s | %13s | %13s | %13s | %s |\n' "process" "no rmcp" "preload" "preload+audit" "audit adds"
echo "|------------------------------------------|--------------:|--------------:|--------------:|--------------------:|"
row "/bin/true" /bin/true
row "python3 -c pass" "$PY" -c pass
row "python3: ctypes loads HIP+HSA, 3 lookups" "$PY" -c "$CTYPES"
if [[ $TORCH == 1 ]]; then
    row "python3 -c 'import torch' (CPU build)" "$PY" -c "import torch"
fi
