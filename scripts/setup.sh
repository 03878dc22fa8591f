#!/usr/bin/env bash
# One-time setup of a Debian bookworm machine (as root, or with sudo) for
# building and testing rmcp, then a build. Idempotent.
#
#   - build and test tools: a C compiler, binutils (nm, objdump), valgrind,
#     pkg-config, cmake, Python 3 with Debian's CPU PyTorch (the example);
#   - the real ROCm runtimes the tests prove the ABI against
#     (scripts/setup-rocm.sh: bookworm's 5.2.3 installed, sid's 6.4.3
#     unpacked into .rocm/ with its own loader) and libclang for bindgen;
#   - cbindgen, which checks that include/rmcp.h matches src/capi.rs;
#   - then `cargo build --all-features --all-targets` and a release build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SUDO=()
[ "$(id -u)" -eq 0 ] || SUDO=(sudo)
export DEBIAN_FRONTEND=noninteractive

PKGS=(build-essential binutils valgrind pkg-config cmake python3 python3-torch
      libamdhip64-dev libhsa-runtime-dev hipcc rocminfo libclang-dev)
missing=()
for p in "${PKGS[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" = "install ok installed" ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# bookworm's ROCm is installed above; this unpacks sid's ROCm 6.4.3.
bash scripts/setup-rocm.sh

CBINDGEN_VERSION=0.29.4
if ! cbindgen --version 2>/dev/null | grep -q "$CBINDGEN_VERSION"; then
    echo "setup: installing cbindgen $CBINDGEN_VERSION" >&2
    cargo install --locked --quiet cbindgen --version "$CBINDGEN_VERSION"
fi

cargo build --all-features --all-targets
cargo build --release
echo "setup: done; run the tests with: cargo test --all-features" >&2
