#!/usr/bin/env bash
# Installs the real ROCm runtimes that tests/real_rocm.rs checks librmcp.so against.
#
#   1. bookworm's ROCm 5.2.3 from the system's own apt sources: libamdhip64-dev,
#      libhsa-runtime-dev, hipcc, rocminfo, and libclang-dev (for the
#      `real-headers` cargo feature, which runs bindgen on the real headers).
#   2. sid's ROCm 6.4.3 runtime (libamdhip64-6, libhsa-runtime64-1 and their
#      whole dependency closure, including sid's own glibc and loader) plus its
#      headers (libamdhip64-dev, libhsa-runtime-dev), unpacked with `dpkg -x` into
#      $RMCP_ROCM_DIR/sid-root (default: <repo>/.rocm/sid-root). Nothing from sid
#      is installed on the system; a private apt state directory is used.
#      Run sid's programs through sid's loader:
#        ROOT/usr/lib64/ld-linux-x86-64.so.2 --library-path ROOT/usr/lib/x86_64-linux-gnu PROG
#
#   3. experimental's ROCm 7.2.4 runtime (libamdhip64-7, libhsa-runtime64-1,
#      libamd-comgr3 and their closure, resolved against sid) plus its headers,
#      unpacked the same way into $RMCP_ROCM_DIR/exp-root. Its ROCr bundles
#      libhsakmt's model mode, which tests/model_gpu.rs runs on a modelled GPU.
#      Beside it, exp-gfx10/libhsa-runtime64.so.1: a private copy of that ROCr
#      in which one call is patched out (the AMDKFD_IOC_SET_TRAP_HANDLER ioctl,
#      issued on gfx10 and not implemented by model mode; see
#      docs/verified-where.md). The input and the output are checked by sha256.
#
#   4. A ROCr whose model mode can raise GPU memory faults (tests/model_fault.rs),
#      built from upstream source: ROCr at the commit kept in the shared
#      upstream directory ($RMCP_UPSTREAM_DIR, else ../shared/upstream beside
#      the clone, or beside the main checkout of a git worktree), checked by
#      sha256, with tests/model/hsakmt-model-memory-fault.patch (model mode
#      interface 0.5) and tests/model/rocr-build-clang19.patch, built with
#      bookworm's clang-19, plus tests/model/rocr_ais_stubs.c (two symbols
#      Debian's HIP 7.2.4 needs). Built once per set of inputs into
#      ${XDG_CACHE_HOME:-~/.cache}/rmcp/rocr-<hash of the inputs> (outside
#      the clone: a second run, or another clone on the machine, reuses it)
#      and linked as $RMCP_ROCM_DIR/exp-fault. Only the fault tests use it;
#      every other test runs Debian's own 7.2.4.
#
# Idempotent: a second run installs nothing and downloads nothing (pass
# --refresh to re-resolve sid). Needs root (or sudo) for step 1 only.
# Environment: RMCP_ROCM_DIR (unpack location), RMCP_SID_MIRROR (Debian mirror
# for sid, default: the mirror of the system's bookworm sources).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ROCM_DIR="${RMCP_ROCM_DIR:-$REPO/.rocm}"
SID_APT="$ROCM_DIR/sid-apt"
SID_DEBS="$ROCM_DIR/sid-debs"
SID_ROOT="$ROCM_DIR/sid-root"
STAMP="$SID_ROOT/.rmcp-sid-packages"
REFRESH=0
[ "${1:-}" = "--refresh" ] && REFRESH=1

# sid packages: the runtimes (their dependency closure is resolved below) and
# the header packages (unpacked alone; their dependencies are not needed to compile C).
SID_RUNTIME_PKGS=(libamdhip64-6 libhsa-runtime64-1)
SID_HEADER_PKGS=(libamdhip64-dev libhsa-runtime-dev)
SID_HIP_VERSION_PREFIX="6.4.3"

# bookworm packages. hipcc's Depends (clang-15, lld-15, rocm-device-libs,
# libamdhip64-dev, ...) are all it needs to compile; recommends are skipped.
# The rest build the faulting ROCr (step 4): clang-19 (bookworm's clang-15 is
# too old for ROCr's gfx12 / code-object-v5 shaders) and ROCr's own build deps.
BOOKWORM_PKGS=(libamdhip64-dev libhsa-runtime-dev hipcc rocminfo libclang-dev
               clang-19 llvm-19-dev libclang-19-dev lld-19 cmake make g++ libnuma-dev
               libdrm-dev libelf-dev xxd)

log() { printf 'setup-rocm: %s\n' "$*" >&2; }
die() { printf 'setup-rocm: error: %s\n' "$*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && SUDO=(sudo) || SUDO=(false)
fi

# Sets RMCP_SID_MIRROR (unless given) to the Debian mirror the system's own
# sources use (deb822 or one-line format), and KEYRING to Debian's archive keys.
debian_mirror_and_keyring() {
    if [ -z "${RMCP_SID_MIRROR:-}" ]; then
        RMCP_SID_MIRROR=$(cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null | grep -v "^[[:space:]]*#" \
            | grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v -- '-security' | head -n1 | tr -d ' ' || true)
        RMCP_SID_MIRROR="${RMCP_SID_MIRROR:-http://deb.debian.org/debian}"
    fi
    KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -r "$KEYRING" ] || die "$KEYRING missing (package debian-archive-keyring)"
}

# apt options for a private state directory $1 (sources, lists, cache, an
# empty dpkg status): nothing from sid or experimental touches the system.
apt_opts_for() {
    local d="$1"
    APT_OPTS=(
        -o "Dir::State=$d/state"
        -o "Dir::State::status=$d/state/status"
        -o "Dir::Etc::SourceList=$d/etc/sources.list"
        -o "Dir::Etc::SourceParts=$d/etc/sources.list.d"
        -o "Dir::Etc::Preferences=$d/etc/preferences"
        -o "Dir::Etc::PreferencesParts=$d/etc/preferences.d"
        -o "Dir::Cache=$d/cache"
        -o "APT::Architecture=amd64" -o "APT::Architectures=amd64"
        -o "Acquire::IndexTargets::deb::DEP-11::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::DEP-11-icons-small::DefaultEnabled=false"
        -o "Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled=false"
        -o "APT::Sandbox::User=root"
        # sid's Release file is only valid for a week; a mirror that serves a
        # frozen snapshot, or a machine clock ahead of it, makes apt reject it
        # as expired. Signatures are still checked (signed-by in sources.list).
        -o "Acquire::Check-Valid-Until=false" -o "Acquire::Check-Date=false"
    )
}

start=$(date +%s)

# ---------------------------------------------------------------- bookworm
missing=()
for p in "${BOOKWORM_PKGS[@]}"; do
    st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [ "$st" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "${SUDO[*]}" = false ] && die "need root (or sudo) to install: ${missing[*]}"
    log "installing from the system's apt sources: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${BOOKWORM_PKGS[@]}" >/dev/null
else
    log "bookworm packages already installed"
fi
command -v hipcc >/dev/null || die "hipcc missing after install"
[ -e /usr/include/hip/hip_runtime_api.h ] || die "/usr/include/hip/hip_runtime_api.h missing"

# ---------------------------------------------------------------- sid
if [ "$REFRESH" = 0 ] && [ -s "$STAMP" ] && [ -x "$SID_ROOT/usr/lib64/ld-linux-x86-64.so.2" ] \
    && [ -e "$SID_ROOT/usr/include/hip/hip_runtime_api.h" ]; then
    log "sid root already unpacked in $SID_ROOT (pass --refresh to redo)"
else
    debian_mirror_and_keyring
    mkdir -p "$SID_APT/etc/sources.list.d" "$SID_APT/etc/preferences.d" \
        "$SID_APT/state/lists/partial" "$SID_APT/cache/archives/partial" "$SID_DEBS"
    : > "$SID_APT/state/status"
    echo "deb [signed-by=$KEYRING] ${RMCP_SID_MIRROR%/} sid main" > "$SID_APT/etc/sources.list"
    apt_opts_for "$SID_APT"
    log "resolving sid (${RMCP_SID_MIRROR%/} sid main) in a private apt state dir"
    apt-get "${APT_OPTS[@]}" update -qq
    hipver=$(apt-cache "${APT_OPTS[@]}" show libamdhip64-6 2>/dev/null | awk '/^Version:/{print $2; exit}')
    case "$hipver" in
        "$SID_HIP_VERSION_PREFIX"*) ;;
        *) die "sid's libamdhip64-6 is '${hipver:-absent}', expected $SID_HIP_VERSION_PREFIX*" ;;
    esac
    # Dependency closure of the runtimes (Depends/PreDepends only; <virtual> entries dropped).
    mapfile -t closure < <(apt-cache "${APT_OPTS[@]}" depends --recurse --no-recommends \
        --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
        "${SID_RUNTIME_PKGS[@]}" | grep -E '^[a-z0-9]' | sort -u)
    pkgs=("${closure[@]}" "${SID_HEADER_PKGS[@]}")
    log "downloading ${#pkgs[@]} sid packages"
    (cd "$SID_DEBS" && rm -f ./*.deb && apt-get "${APT_OPTS[@]}" download -qq "${pkgs[@]}" >/dev/null)
    rm -rf "$SID_ROOT.tmp"
    mkdir -p "$SID_ROOT.tmp"
    for deb in "$SID_DEBS"/*.deb; do dpkg -x "$deb" "$SID_ROOT.tmp"; done
    [ -x "$SID_ROOT.tmp/usr/lib64/ld-linux-x86-64.so.2" ] || die "sid loader missing after unpack"
    (cd "$SID_DEBS" && ls -1 ./*.deb | sed 's|^\./||') > "$SID_ROOT.tmp/.rmcp-sid-packages"
    rm -rf "$SID_ROOT"
    mv "$SID_ROOT.tmp" "$SID_ROOT"
fi

# ---------------------------------------------------------------- experimental
# ROCm 7.2.4 lives in experimental and depends on sid (glibc >= 2.38, libllvm22).
# apt resolves the closure itself: `install --download-only` against an empty
# private dpkg status, with the ROCm packages pinned to their experimental
# version and everything else taken from sid.
EXP_APT="$ROCM_DIR/exp-apt"
EXP_ROOT="$ROCM_DIR/exp-root"
EXP_STAMP="$EXP_ROOT/.rmcp-exp-packages"
EXP_GFX10="$ROCM_DIR/exp-gfx10"
EXP_VERSION_PREFIX="7.2.4"
EXP_RUNTIME_PKGS=(libamdhip64-7 libhsa-runtime64-1 libamd-comgr3)
EXP_HEADER_PKGS=(libamdhip64-dev libhsa-runtime-dev)
# The trap-handler patch (see the header of this file).
HSA_SO=libhsa-runtime64.so.1.18.0
HSA_SHA256_IN=a831f5a8f35b08ff9f2141cb2f084153186c66fbec87b1d6e8f8d9754a1e99b0
HSA_PATCH_OFFSET=$((0x153437))           # call hsakmt_ioctl(fd, 0x40184b13, &args)
HSA_PATCH_OLD=e884aeffff                 # call rel32
HSA_PATCH_NEW=31c00f1f00                 # xor %eax,%eax; nopl (%rax): the ioctl "returns 0"
if [ "$REFRESH" = 0 ] && [ -s "$EXP_STAMP" ] && [ -e "$EXP_ROOT/usr/lib/x86_64-linux-gnu/libamdhip64.so.7" ] \
    && [ -e "$EXP_ROOT/usr/include/hip/hip_runtime_api.h" ]; then
    log "experimental root already unpacked in $EXP_ROOT (pass --refresh to redo)"
else
    debian_mirror_and_keyring
    mkdir -p "$EXP_APT/etc/sources.list.d" "$EXP_APT/etc/preferences.d" \
        "$EXP_APT/state/lists/partial" "$EXP_APT/cache/archives/partial" "$EXP_APT/headers"
    : > "$EXP_APT/state/status"
    printf 'deb [signed-by=%s] %s sid main\ndeb [signed-by=%s] %s experimental main\n' \
        "$KEYRING" "${RMCP_SID_MIRROR%/}" "$KEYRING" "${RMCP_SID_MIRROR%/}" > "$EXP_APT/etc/sources.list"
    apt_opts_for "$EXP_APT"
    EXP_OPTS=("${APT_OPTS[@]}")
    log "resolving experimental + sid in a private apt state dir"
    apt-get "${EXP_OPTS[@]}" update -qq
    exp_version() { # the experimental version of package $1
        apt-cache "${EXP_OPTS[@]}" madison "$1" | awk -F'|' '/experimental/ {gsub(/ /,"",$2); print $2; exit}'
    }
    specs=()
    for p in "${EXP_RUNTIME_PKGS[@]}" "${EXP_HEADER_PKGS[@]}"; do
        v=$(exp_version "$p")
        case "$v" in
            "$EXP_VERSION_PREFIX"*) specs+=("$p=$v") ;;
            *) die "experimental's $p is '${v:-absent}', expected $EXP_VERSION_PREFIX*" ;;
        esac
    done
    rm -f "$EXP_APT/cache/archives/"*.deb "$EXP_APT/headers/"*.deb
    log "downloading ROCm $EXP_VERSION_PREFIX and its closure"
    apt-get "${EXP_OPTS[@]}" install --download-only -y -qq --no-install-recommends \
        "${specs[@]:0:${#EXP_RUNTIME_PKGS[@]}}" >/dev/null
    (cd "$EXP_APT/headers" && apt-get "${EXP_OPTS[@]}" download -qq "${specs[@]:${#EXP_RUNTIME_PKGS[@]}}" >/dev/null)
    rm -rf "$EXP_ROOT.tmp"
    mkdir -p "$EXP_ROOT.tmp"
    for deb in "$EXP_APT/cache/archives/"*.deb "$EXP_APT/headers/"*.deb; do dpkg -x "$deb" "$EXP_ROOT.tmp"; done
    [ -x "$EXP_ROOT.tmp/usr/lib64/ld-linux-x86-64.so.2" ] || die "experimental root: loader missing after unpack"
    (cd "$EXP_APT/cache/archives" && ls -1 ./*.deb; cd "$EXP_APT/headers" && ls -1 ./*.deb) | sed 's|^\./||' \
        > "$EXP_ROOT.tmp/.rmcp-exp-packages"
    rm -rf "$EXP_ROOT"
    mv "$EXP_ROOT.tmp" "$EXP_ROOT"
fi

# The gfx10 copy of ROCr: made again whenever it is missing or wrong.
hsa_in="$EXP_ROOT/usr/lib/x86_64-linux-gnu/$HSA_SO"
hsa_out="$EXP_GFX10/libhsa-runtime64.so.1"
if [ ! -s "$EXP_GFX10/.sha256" ] || ! (cd "$EXP_GFX10" && sha256sum --status -c .sha256 2>/dev/null); then
    got=$(sha256sum "$hsa_in" | cut -d' ' -f1)
    [ "$got" = "$HSA_SHA256_IN" ] || die "$hsa_in has sha256 $got, expected $HSA_SHA256_IN: \
experimental's ROCr changed; the trap-handler patch offset must be found again (docs/verified-where.md)"
    at=$(od -An -tx1 -j "$HSA_PATCH_OFFSET" -N5 "$hsa_in" | tr -d ' \n')
    [ "$at" = "$HSA_PATCH_OLD" ] || die "$hsa_in: bytes at $HSA_PATCH_OFFSET are $at, expected $HSA_PATCH_OLD"
    mkdir -p "$EXP_GFX10"
    cp "$hsa_in" "$hsa_out.tmp"
    printf "$(echo "$HSA_PATCH_NEW" | sed 's/../\\x&/g')" \
        | dd of="$hsa_out.tmp" bs=1 seek="$HSA_PATCH_OFFSET" conv=notrunc status=none
    mv "$hsa_out.tmp" "$hsa_out"
    (cd "$EXP_GFX10" && sha256sum libhsa-runtime64.so.1 > .sha256)
    log "patched ROCr copy for gfx10 in $hsa_out"
fi

# ---------------------------------------------------------------- faulting ROCr
ROCR_TAR_NAME=rocr-runtime-1b1610fc2.tar.xz
ROCR_TAR_SHA256=c597830a3ec5422196ac4189812971be97c9094661c73da560c1948ef1d7d868
ROCR_SO=libhsa-runtime64.so.1.18.0
ROCR_INPUTS=(tests/model/hsakmt-model-memory-fault.patch tests/model/rocr-build-clang19.patch
             tests/model/rocr_ais_stubs.c tests/model/rocr_ais_stubs.map)
ROCR_CMAKE_ARGS=(-DIMAGE_SUPPORT=OFF -DBUILD_SHARED_LIBS=ON -DCMAKE_BUILD_TYPE=Release
                 -DCMAKE_PREFIX_PATH=/usr/lib/llvm-19)
EXP_FAULT="$ROCM_DIR/exp-fault"
upstream_dir() {
    local d
    for d in "${RMCP_UPSTREAM_DIR:-}" "$REPO/../shared/upstream" \
        "$(cd "$REPO" && git rev-parse --path-format=absolute --git-common-dir 2>/dev/null)/../../shared/upstream"; do
        [ -n "$d" ] && [ -e "$d/$ROCR_TAR_NAME" ] && { (cd "$d" && pwd); return; }
    done
    die "$ROCR_TAR_NAME not found (set RMCP_UPSTREAM_DIR to the directory holding it; looked beside the clone in ../shared/upstream)"
}
rocr_tar="$(upstream_dir)/$ROCR_TAR_NAME"
# The key: everything the build depends on. A change to any input builds anew.
rocr_key=$( { echo "$ROCR_TAR_SHA256"; (cd "$REPO" && sha256sum "${ROCR_INPUTS[@]}");
    echo "${ROCR_CMAKE_ARGS[*]}"; dpkg-query -W -f='${Version}\n' clang-19 gcc; } | sha256sum | cut -c1-16)
ROCR_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/rmcp/rocr-$rocr_key"
if [ -e "$ROCR_CACHE/.complete" ] && (cd "$ROCR_CACHE" && sha256sum --status -c .sha256 2>/dev/null); then
    log "faulting ROCr already built in $ROCR_CACHE"
else
    got=$(sha256sum "$rocr_tar" | cut -d' ' -f1)
    [ "$got" = "$ROCR_TAR_SHA256" ] || die "$rocr_tar has sha256 $got, expected $ROCR_TAR_SHA256"
    build_start=$(date +%s)
    work="$ROCR_CACHE.build"
    rm -rf "$work" "$ROCR_CACHE" "$ROCR_CACHE.tmp"
    mkdir -p "$work"
    tar -xJf "$rocr_tar" -C "$work"
    src="$work/projects/rocr-runtime"
    for p in tests/model/hsakmt-model-memory-fault.patch tests/model/rocr-build-clang19.patch; do
        (cd "$src" && git apply "$REPO/$p") || die "$p does not apply to $ROCR_TAR_NAME"
    done
    log "building the faulting ROCr (model mode 0.5) in $work; a few minutes"
    mkdir -p "$work/lib"
    cc -O2 -Wall -shared -fPIC -o "$work/lib/librocr_ais_stubs.so" "$REPO/tests/model/rocr_ais_stubs.c" \
        -Wl,--version-script="$REPO/tests/model/rocr_ais_stubs.map" -Wl,-soname,librocr_ais_stubs.so
    # HIP 7.2.4 needs the stubs at load time: ROCr itself names them
    # (DT_NEEDED), found on the same library path as ROCr.
    (cd "$src" && mkdir -p build && cd build \
        && PATH="/usr/lib/llvm-19/bin:$PATH" cmake .. "${ROCR_CMAKE_ARGS[@]}" \
            -DCMAKE_SHARED_LINKER_FLAGS="-L$work/lib -Wl,--no-as-needed -lrocr_ais_stubs -Wl,--as-needed" \
            > "$work/cmake.log" 2>&1 \
        && PATH="/usr/lib/llvm-19/bin:$PATH" make -j"$(nproc)" hsa-runtime64 > "$work/make.log" 2>&1) \
        || die "building ROCr failed; see $work/cmake.log and $work/make.log"
    built="$src/build/rocr/lib/$ROCR_SO"
    [ -e "$built" ] || die "$built missing after the build"
    mkdir -p "$ROCR_CACHE.tmp"
    cp "$built" "$ROCR_CACHE.tmp/libhsa-runtime64.so.1"
    cp "$work/lib/librocr_ais_stubs.so" "$ROCR_CACHE.tmp/"
    cp "$src/LICENSE.txt" "$ROCR_CACHE.tmp/LICENSE-rocr.txt"
    { echo "ROCr $ROCR_TAR_NAME (sha256 $ROCR_TAR_SHA256)"; (cd "$REPO" && sha256sum "${ROCR_INPUTS[@]}");
      echo "cmake ${ROCR_CMAKE_ARGS[*]}"; echo "built in $(( $(date +%s) - build_start ))s"; } > "$ROCR_CACHE.tmp/INPUTS"
    (cd "$ROCR_CACHE.tmp" && sha256sum libhsa-runtime64.so.1 librocr_ais_stubs.so > .sha256 && touch .complete)
    mv "$ROCR_CACHE.tmp" "$ROCR_CACHE"
    rm -rf "$work"
    log "faulting ROCr built in $(( $(date +%s) - build_start ))s: $ROCR_CACHE"
fi
if [ "$(readlink "$EXP_FAULT" 2>/dev/null)" != "$ROCR_CACHE" ]; then
    rm -rf "$EXP_FAULT"
    ln -s "$ROCR_CACHE" "$EXP_FAULT"
fi

# ---------------------------------------------------------------- sid clients
# A real sid program that reaches ROCm 6.4.3 through dlopen: clinfo, with the ICD loader
# and ROCm's OpenCL runtime (tests/audit.rs runs it with and without the audit mode). Its
# other dependencies are already in the sid root; unpacked beside it into sid-clients.
SID_CLIENTS="$ROCM_DIR/sid-clients"
SID_CLIENT_PKGS=(clinfo ocl-icd-libopencl1 rocm-opencl-icd)
if [ "$REFRESH" = 0 ] && [ -x "$SID_CLIENTS/usr/bin/clinfo" ] \
    && [ -e "$SID_CLIENTS/usr/lib/x86_64-linux-gnu/libamdocl64.so" ]; then
    log "sid clients already unpacked in $SID_CLIENTS"
else
    apt_opts_for "$SID_APT"
    [ -n "$(ls "$SID_APT/state/lists/" 2>/dev/null | grep _sid_)" ] || apt-get "${APT_OPTS[@]}" update -qq
    rm -rf "$SID_CLIENTS.tmp" "$SID_CLIENTS.debs"
    mkdir -p "$SID_CLIENTS.tmp" "$SID_CLIENTS.debs"
    (cd "$SID_CLIENTS.debs" && apt-get "${APT_OPTS[@]}" download -qq "${SID_CLIENT_PKGS[@]}" >/dev/null)
    for deb in "$SID_CLIENTS.debs"/*.deb; do dpkg -x "$deb" "$SID_CLIENTS.tmp"; done
    [ -x "$SID_CLIENTS.tmp/usr/bin/clinfo" ] || die "sid clients: clinfo missing after unpack"
    [ -e "$SID_CLIENTS.tmp/usr/lib/x86_64-linux-gnu/libamdocl64.so" ] \
        || die "sid clients: libamdocl64.so missing after unpack"
    rm -rf "$SID_CLIENTS" "$SID_CLIENTS.debs"
    mv "$SID_CLIENTS.tmp" "$SID_CLIENTS"
    log "sid clients (${SID_CLIENT_PKGS[*]}) unpacked in $SID_CLIENTS"
fi

# ---------------------------------------------------------------- summary
deb_ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo absent; }
sid_ver() { sed -n "s/^$1_\([^_]*\)_.*/\1/p" "$STAMP" | sed 's/%3a/:/' | head -n1; }
exp_ver() { sed -n "s/^$1_\([^_]*\)_.*/\1/p" "$EXP_STAMP" | sed 's/%3a/:/' | head -n1; }
printf 'setup-rocm: ok in %ss: bookworm libamdhip64-5 %s, libhsa-runtime64-1 %s, hipcc %s, rocminfo %s | sid (%s) libamdhip64-6 %s, libhsa-runtime64-1 %s, libc6 %s | experimental (%s) libamdhip64-7 %s, libhsa-runtime64-1 %s, libc6 %s\n' \
    "$(( $(date +%s) - start ))" "$(deb_ver libamdhip64-5)" "$(deb_ver libhsa-runtime64-1)" \
    "$(deb_ver hipcc)" "$(deb_ver rocminfo)" "$SID_ROOT" \
    "$(sid_ver libamdhip64-6)" "$(sid_ver libhsa-runtime64-1)" "$(sid_ver libc6)" \
    "$EXP_ROOT" "$(exp_ver libamdhip64-7)" "$(exp_ver libhsa-runtime64-1)" "$(exp_ver libc6)"
